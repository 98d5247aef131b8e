"""Scoring a prompt with an RLM, whatever the prompt is: a manual template (``manual:ID``, e.g.
``manual:2-3``, ``manual:2-13``, ``manual:5-7`` for the direct task), the key info alone (``keyinfo``: only
``user_{u} : \\n {history} \\n``), template 2-3 with every word replaced by a random vocabulary word
(``random:SEED``, the prompt-sensitivity probe), or a finished search (``run:DIR``: its layout, shared
tokens and each searched user's personal tokens). The CLI's ``--prompt`` specs.

This layer sits above the model (``rlm``: prompt functions and the evaluator) and the search (``search``:
runs and traces), so that neither has to know the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pap_rec_core.data.split import Split, Stage
from pap_rec_core.evaluation.evaluator import EvaluationConfig, EvaluationResult, Task
from pap_rec_core.prompts.parts import Part
from pap_rec_core.prompts.render import DEFAULT_MAX_HISTORY
from pap_rec_core.prompts.templates import Family, get_template
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.rlm.evaluate import PromptFn, evaluate_render, template_prompt_fn
from pap_rec_core.rlm.explain import ReviewRender
from pap_rec_core.rlm.tokenizer import RecTokenizer
from pap_rec_core.search.run import SearchResult


@dataclass(frozen=True)
class PromptSpec:
    kind: str  # manual | keyinfo | random | run
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> "PromptSpec":
        kind, _, value = text.partition(":")
        if kind == "manual":
            get_template(value)  # validates the id
            return cls("manual", value)
        if kind == "keyinfo" and not value:
            return cls("keyinfo")
        if kind == "random":
            return cls("random", value or "0")
        if kind == "run" and value:
            return cls("run", value)
        raise ValueError(f"unknown prompt {text!r}; use manual:ID (e.g. manual:2-3), keyinfo, random:SEED or run:DIR")

    @property
    def is_explanation(self) -> bool:
        """An explanation prompt (``manual:3-x``, or a run of an explanation search): judged by BLEU/ROUGE
        of generated text (``rlm.explain``), not by the ranking evaluator."""
        if self.kind == "manual":
            return get_template(self.value).family is Family.EXPLANATION
        return self.kind == "run" and self.search_result.config.task == "explanation"

    @property
    def task(self) -> Task:
        if self.is_explanation:
            raise ValueError(f"{self} is an explanation prompt: evaluate it with rlm.explain.compare_explanations")
        if self.kind == "manual" and get_template(self.value).family is Family.DIRECT:
            return Task.DIRECT
        if self.kind == "run":
            return Task(self.search_result.config.task)
        return Task.SEQUENTIAL

    @cached_property
    def search_result(self):
        """The finished search of a ``run:DIR`` prompt, read from its trace once per spec."""
        return SearchResult.from_run(self.value)

    def check(self, bundle: RLMBundle, split: Split) -> None:
        """Refuse a ``run:DIR`` searched on another dataset or model (its tokens and user rows would be
        read as ids of this one)."""
        if self.kind == "run":
            self.search_result.check_matches(bundle, split)

    def default_users(self, split: Split) -> np.ndarray:
        """The users this prompt is evaluated on by default: all evaluation users, or a run's users."""
        if self.kind != "run":
            return split.eval_users
        searched = set(self.search_result.users)
        return np.array([u for u in split.eval_users if int(u) in searched], dtype=split.eval_users.dtype)

    def __str__(self) -> str:
        return self.kind + (f":{self.value}" if self.value else "")


def prompt_fn(spec: PromptSpec, tokenizer: RecTokenizer, max_history: int = DEFAULT_MAX_HISTORY) -> PromptFn:
    """The prompt function of a spec: a run's layout and tokens, or a template (``rlm.evaluate``)."""
    if spec.kind == "run":
        return run_prompt_fn(spec.search_result, tokenizer)
    return template_prompt_fn(spec.kind, spec.value, tokenizer, max_history)


def run_prompt_fn(result, tokenizer: RecTokenizer, personal: bool = True) -> PromptFn:
    """Prompts of a finished search: its layout with its shared tokens and each user's own tokens
    (``personal=False``: the shared tokens alone, the personal slots left out of the layout)."""
    layout, personal_of = run_layout(result, tokenizer, personal)

    def render(u: int, hist: np.ndarray, cands: np.ndarray | None) -> list[Part]:
        return layout.parts(int(u), hist, cands, shared=result.shared, personal=personal_of(int(u)))

    return render


def run_layout(result, tokenizer: RecTokenizer, personal: bool = True):
    """``(layout, personal_of)`` of a finished search: its layout (without the personal slots when
    ``personal=False``) and user index -> that user's personal tokens (an error for a user the run did
    not search; ``()`` without personal slots). Checks that the tokens fit ``tokenizer``."""
    from dataclasses import replace

    from pap_rec_core.data.errors import UnknownUserError

    tokens = list(result.shared) + [t for row in result.personal for t in row]
    if tokens and max(tokens) >= tokenizer.vocab_size:
        raise ValueError(f"{result.run_dir}: its tokens do not fit this model's vocabulary ({tokenizer.vocab_size})")
    layout = result.config.layout
    if not personal:
        if layout.n_shared == 0:
            raise ValueError(f"{result.run_dir}: the run has no shared slots to evaluate alone")
        return replace(layout, n_personal=0), lambda u: ()
    row_of = {u: r for r, u in enumerate(result.users)}

    def personal_of(u: int):
        if u not in row_of:
            raise UnknownUserError(f"user index {u} was not searched in {result.run_dir} "
                                   f"({len(row_of)} users were); evaluate on the run's users")
        return result.personal[row_of[u]]

    return layout, personal_of


def evaluate_rlm(bundle: RLMBundle, split: Split, stage: Stage | str, spec: PromptSpec | str, *,
                 method: str = "exact", batch_size: int = 64, users: np.ndarray | None = None,
                 config: EvaluationConfig = EvaluationConfig(), max_history: int = DEFAULT_MAX_HISTORY,
                 system: str | None = None, progress: bool = False,
                 beam_constrained: bool = True) -> EvaluationResult:
    """Rank with the RLM and score with the shared evaluator. ``method``: ``exact`` (full ranking by
    sequence log-likelihood), ``first-token`` (single-token items: first decoder step only — fast) or
    ``beam`` (20-beam search, top-10, the paper's protocol; ``beam_constrained=False``: plain ``generate``,
    as the public code calls it)."""
    spec = PromptSpec.parse(spec) if isinstance(spec, str) else spec
    spec.check(bundle, split)
    users = spec.default_users(split) if users is None else np.asarray(users)
    return evaluate_render(bundle, split, stage, prompt_fn(spec, bundle.tokenizer, max_history), spec.task,
                           system=system or str(spec), method=method, batch_size=batch_size, users=users,
                           config=config, progress=progress, beam_constrained=beam_constrained)


def search_render(result, data, tokenizer: RecTokenizer, personal: bool = True) -> ReviewRender:
    """Prompts of a finished explanation search for review rows: its layout (user, item, title) with its
    shared tokens and each searched user's own tokens (``personal=False``: the shared tokens alone)."""
    if result.config.task != "explanation":
        raise ValueError(f"{result.run_dir} searched the {result.config.task} task, not explanation")
    layout, personal_of = run_layout(result, tokenizer, personal)
    titles = data.item_titles()

    def render(row) -> list[Part]:
        u, item = int(row.user), int(row.item)
        return layout.parts(u, item=item, title=None if titles is None else str(titles[item]), shared=result.shared,
                            personal=personal_of(u))

    return render


def compare_explanation_prompts(bundle: RLMBundle, data, prompts: dict, *, users=None, stage: Stage | str = Stage.TEST,
                                seed: int = 0, n_resamples: int = 2000):
    """The one explanation comparison (the CLI's ``evaluate``, the workbench's Compare page, the notebooks):
    each prompt is a template id (``"3-1"``), a finished explanation search (:class:`SearchResult`: its
    shared and each user's personal tokens) or a review render; all are judged on the same held-out
    review pairs of ``stage`` (test, or valid: P5's val reviews) of ``users`` (default: the first search's
    users, else every user). One row per prompt, paired bootstrap of the per-pair surrogate against the
    first (:func:`rlm.explain.compare_explanations`)."""
    from pap_rec_core.rlm.explain import compare_explanations

    runs = [p for p in prompts.values() if isinstance(p, SearchResult)]
    if users is None and runs:
        users = list(runs[0].users)
    rendered = {name: search_render(p, data, bundle.tokenizer) if isinstance(p, SearchResult) else p
                for name, p in prompts.items()}
    return compare_explanations(bundle, data, rendered, users=users, seed=seed, n_resamples=n_resamples,
                                split_names=("val",) if Stage(stage) is Stage.VALID else ("test",))
