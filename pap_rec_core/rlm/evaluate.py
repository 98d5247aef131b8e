"""Evaluating an RLM with a prompt, through the one evaluator (``pap_rec_core.evaluation``).

Prompt specs (CLI ``--prompt``): ``manual:ID`` (a P5 template, e.g. ``manual:2-3``, ``manual:2-13``,
``manual:5-7`` for the direct task), ``keyinfo`` (only ``user_{u} : \\n {history} \\n``, no template
words) and ``random:SEED`` (template 2-3 with every template word replaced by a random vocabulary word —
the prompt-sensitivity probe).
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from pap_rec_core.data.split import Split, Stage
from pap_rec_core.evaluation.evaluator import (
    EvaluationConfig,
    EvaluationResult,
    Task,
    evaluate_candidate_scores,
    evaluate_ranked_lists,
    evaluate_scorer,
)
from pap_rec_core.prompts.render import DEFAULT_MAX_HISTORY, key_info_parts, render_text, truncate_history
from pap_rec_core.prompts.templates import Family, get_template
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.ranking import beam_rank, encode_batch, score_items
from pap_rec_core.rlm.tokenizer import Part, RecTokenizer

PromptFn = Callable[[int, np.ndarray, "np.ndarray | None"], list[Part]]  # (user, history, candidates) -> parts


@dataclass(frozen=True)
class PromptSpec:
    kind: str  # manual | keyinfo | random
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
        from pap_rec_core.search.run import SearchResult

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


def random_word_source(source: str, tokenizer: RecTokenizer, seed: int) -> str:
    """``source`` with every template word (not the ``user_`` of the key info) replaced by a random
    word-initial vocabulary piece."""
    vocab = [tokenizer.sp.id_to_piece(i)[1:] for i in np.flatnonzero(tokenizer.word_initial_mask())]
    vocab = [w for w in vocab if len(w) >= 2 and w.isalpha()]
    rng = random.Random(seed)
    out = []
    for literal, field_name, _, _ in string.Formatter().parse(source):
        out.append(re.sub(r"\b[A-Za-z]+\b(?!_)", lambda m: rng.choice(vocab), literal))
        if field_name:
            out.append("{" + field_name + "}")
    return "".join(out)


def prompt_fn(spec: PromptSpec, tokenizer: RecTokenizer, max_history: int = DEFAULT_MAX_HISTORY) -> PromptFn:
    if spec.kind == "run":
        return run_prompt_fn(spec.search_result, tokenizer)
    if spec.kind == "keyinfo":
        return lambda u, hist, cands: key_info_parts(u, truncate_history(hist, max_history))
    source = get_template(spec.value).source if spec.kind == "manual" else random_word_source(
        get_template("2-3").source, tokenizer, int(spec.value))

    def render(u: int, hist: np.ndarray, cands: np.ndarray | None) -> list[Part]:
        values = {"user": u, "history": truncate_history(hist, max_history), "candidates": cands}
        needed = {f for _, f, _, _ in string.Formatter().parse(source) if f}
        return render_text(source, **{k: v for k, v in values.items() if k in needed})

    return render


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
                 system: str | None = None, progress: bool = False, seed: int = 0) -> EvaluationResult:
    """Rank with the RLM and score with the shared evaluator. ``method``: ``exact`` (full ranking by
    sequence log-likelihood), ``first-token`` (single-token items: first decoder step only — fast) or
    ``beam`` (20-beam search, top-10, the paper's protocol)."""
    spec = PromptSpec.parse(spec) if isinstance(spec, str) else spec
    spec.check(bundle, split)
    users = spec.default_users(split) if users is None else np.asarray(users)
    return evaluate_render(bundle, split, stage, prompt_fn(spec, bundle.tokenizer, max_history), spec.task,
                           system=system or str(spec), method=method, batch_size=batch_size, users=users,
                           config=config, progress=progress, seed=seed)


def evaluate_render(bundle: RLMBundle, split: Split, stage: Stage | str, render: PromptFn, task: Task | str, *,
                    system: str, method: str = "exact", batch_size: int = 64, users: np.ndarray | None = None,
                    config: EvaluationConfig = EvaluationConfig(), progress: bool = False,
                    seed: int = 0) -> EvaluationResult:
    """:func:`evaluate_rlm` for any prompt function ``render(user, history, candidates) -> parts``."""
    stage, task = Stage(stage), Task(task)
    model, tok = bundle.model, bundle.tokenizer
    users = split.eval_users if users is None else np.asarray(users)
    if task is Task.DIRECT:
        cands = split.candidates(stage, users)  # (E, 1+n), target in column 0
        order_rng = np.random.default_rng(seed)
        shown = np.stack([row[order_rng.permutation(len(row))] for row in cands])  # fixed, seeded order
        scores = np.empty(cands.shape, dtype=np.float64)
        for s in tqdm(range(0, len(users), batch_size), disable=not progress, desc=f"score {system}"):
            rows = range(s, min(len(users), s + batch_size))
            prompts = [render(int(users[r]), split.history(int(users[r]), stage), shown[r]) for r in rows]
            scores[s : s + len(rows)] = score_items(model, tok, encode_batch(tok, prompts), candidates=cands[s : s + len(rows)],
                                                   include_eos=method != "first-token").numpy()
        return evaluate_candidate_scores(split, stage, scores, system=system, config=config, users=users)
    if method == "beam":
        ranked: list[list[int]] = []
        for s in tqdm(range(0, len(users), batch_size), disable=not progress, desc=f"beam {system}"):
            prompts = [render(int(u), split.history(int(u), stage), None) for u in users[s : s + batch_size]]
            ranked.extend(beam_rank(model, tok, encode_batch(tok, prompts)))
        return evaluate_ranked_lists(split, stage, ranked, system=system, config=config, users=users)
    if method not in ("exact", "first-token"):
        raise ValueError(f"unknown ranking method {method!r} (exact, first-token or beam)")

    def score(batch_users: np.ndarray) -> np.ndarray:
        prompts = [render(int(u), split.history(int(u), stage), None) for u in batch_users]
        return score_items(model, tok, encode_batch(tok, prompts), include_eos=method == "exact").numpy()

    cfg = EvaluationConfig(**{**config.to_dict(), "batch_users": batch_size})
    return evaluate_scorer(split, stage, score, system=system, config=cfg, users=users, progress=progress)


def validation_ndcg10(model: RecLM, tok: RecTokenizer, split: Split, users: np.ndarray | None = None,
                      max_history: int = DEFAULT_MAX_HISTORY, template: str = "manual:2-3") -> float:
    """Model selection signal: validation NDCG@10 of one prompt (first-token ranking, fast) on ``users``
    (default: every validation user)."""
    res = evaluate_rlm(RLMBundle(model=model, tokenizer=tok), split, Stage.VALID, template, method="first-token",
                       batch_size=128, users=split.eval_users if users is None else users, max_history=max_history)
    return res.summary()["ndcg@10"]
