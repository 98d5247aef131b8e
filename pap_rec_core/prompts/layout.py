"""The automatic prompt's layout: key information plus shared and personalised trigger slots.

PAP-REC's auto prompt is the key information (``user_{u} : \\n {history} \\n`` for the sequential task,
``user_{u} : \\n {candidates} \\n`` for the direct task, ``user_{u} : {item} : {title} \\n`` for the
explanation task) followed by ``n_shared`` trigger tokens shared
by every user and then ``n_personal`` tokens of that user (the paper's suffix layout); ``prefix`` puts
the slots before the key information instead. Slots are single vocabulary ids
(:class:`~pap_rec_core.rlm.tokenizer.TokenRef`), so their positions in the encoded prompt are known
(``Encoded.slots``: shared slots first, then personal ones).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from pap_rec_core.choices import Choice, Task
from pap_rec_core.configs import known_fields
from pap_rec_core.prompts.parts import ItemRef, Part, TokenRef, UserRef
from pap_rec_core.prompts.render import DEFAULT_MAX_HISTORY, item_list_parts, key_info_parts, truncate_history

TASKS = Task.values()


class SlotPosition(Choice):
    SUFFIX = "suffix"  # key info, then the slots (the paper)
    PREFIX = "prefix"  # the slots, then key info


@dataclass(frozen=True)
class PromptLayout:
    """Where the trigger slots go and how many there are.

    Example::

        layout = PromptLayout(task="sequential", n_shared=5, n_personal=1)
        parts = layout.parts(user=3, history=hist, shared=[17, 40, 9, 12, 88], personal=[301])
    """

    task: Task = Task.SEQUENTIAL  # sequential | direct | explanation
    n_shared: int = 5
    n_personal: int = 0
    position: SlotPosition = SlotPosition.SUFFIX
    max_history: int = DEFAULT_MAX_HISTORY

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", SlotPosition(self.position))
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; use {', '.join(TASKS)}")
        object.__setattr__(self, "task", Task(self.task))
        if self.n_shared < 0 or self.n_personal < 0:
            raise ValueError(f"token counts cannot be negative (got {self.n_shared} shared, {self.n_personal} personal)")
        if self.n_shared + self.n_personal == 0:
            raise ValueError("choose at least one shared or personal token")

    @property
    def n_slots(self) -> int:
        return self.n_shared + self.n_personal

    def key_info(self, user: int, history: np.ndarray | None, candidates: np.ndarray | None,
                 item: int | None = None, title: str | None = None) -> list[Part]:
        if self.task == "explanation":
            if item is None:
                raise ValueError("the explanation task's key info needs the item")
            title_parts = [" : ", str(title)] if title else []
            return ["user_", UserRef(int(user)), " : ", ItemRef(int(item)), *title_parts, " \n "]
        if self.task == "direct":
            if candidates is None:
                raise ValueError("the direct task's key info needs the candidate list")
            return ["user_", UserRef(int(user)), " : \n ", *item_list_parts(candidates), " \n "]
        if history is None:
            raise ValueError("the sequential task's key info needs the history")
        return key_info_parts(user, truncate_history(np.asarray(history), self.max_history))

    def parts(self, user: int, history: np.ndarray | None = None, candidates: np.ndarray | None = None, *,
              shared: Sequence[int], personal: Sequence[int] = (), item: int | None = None,
              title: str | None = None) -> list[Part]:
        if len(shared) != self.n_shared or len(personal) != self.n_personal:
            raise ValueError(f"layout has {self.n_shared} shared and {self.n_personal} personal slots; got "
                             f"{len(shared)} and {len(personal)} tokens")
        slots: list[Part] = [TokenRef(int(t)) for t in (*shared, *personal)]
        key = self.key_info(user, history, candidates, item, title)
        return key + slots if self.position is SlotPosition.SUFFIX else slots + [" "] + key

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["position"], d["task"] = self.position.value, self.task.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PromptLayout":
        return cls(**known_fields(cls, d))
