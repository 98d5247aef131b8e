"""The search's settings: one frozen, JSON-serialisable dataclass recorded at the start of every trace."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pap_rec_core.choices import Choice, PersonalRule, Ranking, Surrogate, Task
from pap_rec_core.configs import known_fields
from pap_rec_core.prompts.layout import PromptLayout, SlotPosition

SURROGATES = Surrogate.values()
TASK_SURROGATES = {"sequential": ("beam", "exact", "ndcg", "likelihood"), "direct": ("exact", "ndcg", "likelihood", "beam"),
                   "explanation": ("bleu-rouge", "likelihood")}
PERSONAL_RULES = PersonalRule.values()


@dataclass(frozen=True)
class SearchConfig:
    """How PAP-REC searches. Defaults follow the paper where it says (5 shared slots, top-5 candidates,
    NDCG@5 + HR@5 on validation) and are fast where it does not.

    Example::

        SearchConfig(n_shared=5, n_personal=1, surrogate="exact", iterations=10, seed=0)
    """

    task: Task = Task.SEQUENTIAL  # sequential | direct | explanation (datasets with review text)
    n_shared: int = 5
    n_personal: int = 0
    position: SlotPosition = SlotPosition.SUFFIX  # suffix (the paper) | prefix
    top_k: int = 5  # candidates per slot
    # beam (the paper; direct task: beams over its prompt, the target among the generated items) |
    # exact (NDCG@5 + HR@5 from full scores) | ndcg (NDCG of the full ranking, no cut-off:
    # every user's rank counts) | likelihood; explanation: bleu-rouge
    surrogate: Surrogate = Surrogate.EXACT
    ranking: Ranking = Ranking.FIRST_TOKEN  # how `exact` ranks: first-token (single-token items) | exact
    iterations: int = 10  # alternations of one shared round and one personal round
    samples_per_user: int = 1  # training samples per user for each gradient
    max_users: int | None = None  # search on the first N validation users (None: all)
    user_ids: tuple[str, ...] | None = None  # or exactly these users (raw dataset ids, in this order)
    personal_rule: PersonalRule = PersonalRule.STRICT  # strict (the paper) | likelihood-tiebreak
    personal_holdout: int = 0  # personal rounds also judge on each user's last N training items (held out)
    shared_holdout: int = 0  # shared rounds also judge on each user's last N training items (held out)
    exclude_untrained: bool = True  # keep only tokens seen in the RLM's training texts
    max_history: int = 20
    batch_size: int = 128  # prompts per forward pass
    max_explanation_tokens: int = 32  # explanation task: greedy tokens generated per prompt (bleu-rouge)
    seed: int = 0
    # Where the public PAP-REC code chooses otherwise (``SearchConfig.preset("paper")`` sets its choices):
    sample_window: int = 0  # gradient samples' targets among each user's last N usable training items (0: any)
    allow_current: bool = False  # a slot's current token may be one of its candidates (it can never strictly win)
    mask_history: bool = True  # the judge leaves each user's history out of its ranking and beam lists
    beam_constrained: bool = True  # the beam surrogate's beam search is held to valid item ids (a prefix trie)

    def __post_init__(self) -> None:
        if self.surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {self.surrogate!r}; use one of {', '.join(SURROGATES)}")
        if self.personal_rule not in PERSONAL_RULES:
            raise ValueError(f"unknown personal rule {self.personal_rule!r}; use one of {', '.join(PERSONAL_RULES)}")
        if self.ranking not in Ranking.values():
            raise ValueError(f"unknown ranking {self.ranking!r}; use first-token or exact")
        for name, kind in (("surrogate", Surrogate), ("personal_rule", PersonalRule), ("ranking", Ranking)):
            object.__setattr__(self, name, kind(getattr(self, name)))  # a string from JSON/CLI becomes the enum
        for name in ("top_k", "iterations", "samples_per_user", "batch_size", "max_explanation_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.personal_holdout < 0 or self.shared_holdout < 0:
            raise ValueError("personal_holdout and shared_holdout must be >= 0")
        if self.sample_window < 0:
            raise ValueError("sample_window must be >= 0 (0: any training position)")
        allowed = TASK_SURROGATES.get(self.task, SURROGATES)
        if self.surrogate not in allowed:
            raise ValueError(f"the {self.task} task's search takes the {' or '.join(allowed)} surrogate, "
                             f"not '{self.surrogate}'")
        for name in ("personal_holdout", "shared_holdout"):
            if self.task != "sequential" and getattr(self, name):
                raise ValueError(f"{name} needs the sequential task (the {self.task} task has no held-out "
                                 "training positions)")
        if self.user_ids is not None:
            object.__setattr__(self, "user_ids", tuple(str(u) for u in self.user_ids))
            if not self.user_ids:
                raise ValueError("user_ids is empty: name at least one user (or leave it out to search all)")
            if len(set(self.user_ids)) != len(self.user_ids):
                dup = sorted({u for u in self.user_ids if self.user_ids.count(u) > 1})
                raise ValueError(f"user_ids lists {', '.join(dup[:5])} more than once")
            if self.max_users:
                raise ValueError("give either max_users (the first N users) or user_ids (these users), not both")
        self.layout  # validates task, slot counts and position
        object.__setattr__(self, "task", Task(self.task))
        object.__setattr__(self, "position", SlotPosition(self.position))

    @property
    def layout(self) -> PromptLayout:
        return PromptLayout(task=self.task, n_shared=self.n_shared, n_personal=self.n_personal,
                            position=self.position, max_history=self.max_history)

    @property
    def holdout(self) -> int:
        """Training positions per user kept out of every gradient (the larger of the two holdouts)."""
        return max(self.personal_holdout, self.shared_holdout)

    @classmethod
    def preset(cls, protocol: str, **overrides: Any) -> "SearchConfig":
        """The named protocol's config (``ours``: the defaults; ``paper``: the public code's choices, see
        :data:`PROTOCOLS`), with ``overrides`` on top."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
        task = Task(overrides.get("task", Task.SEQUENTIAL))
        if protocol == "paper" and task not in PAPER_TASKS:
            raise ValueError(f"the paper protocol is the public code's sequential or direct search; the {task} "
                             "task's judge there (greedy text, unsmoothed BLEU-4 + 0.1 ROUGE-L) is not reproduced: "
                             "use protocol 'ours'")
        return cls(**{**PROTOCOLS[protocol], **(PAPER_TASKS[task] if protocol == "paper" else {}), **overrides})

    def to_dict(self) -> dict[str, Any]:
        return {k: v.value if isinstance(v, Choice) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchConfig":
        return cls(**known_fields(cls, d))


def default_surrogate(task: str) -> str:
    """The surrogate a search of ``task`` uses unless told otherwise."""
    return "bleu-rouge" if task == "explanation" else "exact"


# The public code (rutgerswiselab/PAP-REC, main.py and src/pretrain_data.py) read as a protocol. What it
# does and we reproduce: the beam surrogate (NDCG@5 + HR@5 of 20 beams, 5 returned) by plain ``generate``
# over the whole vocabulary, history items left in the lists, 5 gradient samples per user whose targets
# are among the last 4 training items, the current token allowed among the candidates, long histories.
# What it does and we do not (defects, README "Search protocols"): a validation set rebuilt on every pass
# with a random separator and fresh negatives (candidates judged on different draws), truncation of the
# whole prompt at 512 tokens from the end (long histories lose their newest items and the slots).
PROTOCOLS: dict[str, dict[str, Any]] = {
    "ours": {},
    "paper": {"surrogate": "beam", "samples_per_user": 5, "sample_window": 4, "allow_current": True,
              "mask_history": False, "beam_constrained": False, "max_history": 200},
}
# What the public code does per task under the paper protocol, on top of PROTOCOLS["paper"]: the direct
# task ("traditional", template 5-7) is judged by the same plain beam search over its prompt (the target
# among the generated items, which need not be candidates), with 5 gradient samples per user whose targets
# are any training item.
PAPER_TASKS: dict[Task, dict[str, Any]] = {Task.SEQUENTIAL: {}, Task.DIRECT: {"sample_window": 0}}
