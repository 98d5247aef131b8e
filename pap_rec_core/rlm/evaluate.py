"""Evaluating an RLM with a prompt function, through the one evaluator (``pap_rec_core.evaluation``).

The model layer knows templates (``manual:ID``), key info only and random words (the prompt-sensitivity
probe); prompts that come from a search run, and the ``--prompt`` specs of the CLI, are scored one layer up
(``pap_rec_core.scoring``).
"""

from __future__ import annotations

import random
import re
import string
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
from pap_rec_core.prompts.parts import Part
from pap_rec_core.prompts.render import DEFAULT_MAX_HISTORY, key_info_parts, render_text, truncate_history
from pap_rec_core.prompts.templates import get_template
from pap_rec_core.rlm.batching import encode_batch
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.beams import beam_top_items
from pap_rec_core.rlm.ranking import exact_scores_for_targets, score_items
from pap_rec_core.rlm.tokenizer import RecTokenizer

PromptFn = Callable[[int, np.ndarray, "np.ndarray | None"], list[Part]]  # (user, history, candidates) -> parts


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


def template_prompt_fn(kind: str, value: str, tokenizer: RecTokenizer,
                       max_history: int = DEFAULT_MAX_HISTORY) -> PromptFn:
    """The prompt function of a template (``kind`` manual, ``value`` its id), of the key info alone
    (``keyinfo``) or of template 2-3 with random words (``random``, ``value`` the seed)."""
    if kind == "keyinfo":
        return lambda u, hist, cands: key_info_parts(u, truncate_history(hist, max_history))
    if kind not in ("manual", "random"):
        raise ValueError(f"no template prompt of kind {kind!r} (manual, keyinfo or random)")
    source = get_template(value).source if kind == "manual" else random_word_source(
        get_template("2-3").source, tokenizer, int(value))

    def render(u: int, hist: np.ndarray, cands: np.ndarray | None) -> list[Part]:
        values = {"user": u, "history": truncate_history(hist, max_history), "candidates": cands}
        needed = {f for _, f, _, _ in string.Formatter().parse(source) if f}
        return render_text(source, **{k: v for k, v in values.items() if k in needed})

    return render


def evaluate_render(bundle: RLMBundle, split: Split, stage: Stage | str, render: PromptFn, task: Task | str, *,
                    system: str, method: str = "exact", batch_size: int = 64, users: np.ndarray | None = None,
                    config: EvaluationConfig = EvaluationConfig(), progress: bool = False,
                    beam_constrained: bool = True) -> EvaluationResult:
    """:func:`evaluate_rlm` for any prompt function ``render(user, history, candidates) -> parts``.
    ``beam_constrained=False``: the ``beam`` method runs plain ``generate`` (the public code's), each item
    ranked by its position among the returned sequences (non-item outputs keep their places)."""
    stage, task = Stage(stage), Task(task)
    if task is Task.EXPLANATION:
        raise ValueError("the explanation task is judged on generated text, not on item ranks: use "
                         "rlm.explain.compare_explanations")
    model, tok = bundle.model, bundle.tokenizer
    users = split.eval_users if users is None else np.asarray(users)
    shown = split.shown_candidates(stage, users) if task is Task.DIRECT else None  # each user's seeded order
    if method == "beam":  # direct task: beams over its prompt, the target among what it lists (the public code)
        ranked: list[list[int]] = []
        for s in tqdm(range(0, len(users), batch_size), disable=not progress, desc=f"beam {system}"):
            rows = range(s, min(len(users), s + batch_size))
            prompts = [render(int(users[r]), split.history(int(users[r]), stage), None if shown is None else shown[r])
                       for r in rows]
            ranked.extend(beam_top_items(model, tok, encode_batch(tok, prompts),  # beam_rank's lists, no generate
                                         constrained=beam_constrained, keep_places=not beam_constrained))
        return evaluate_ranked_lists(split, stage, ranked, system=system, config=config, users=users, task=task)
    if task is Task.DIRECT:
        cands = split.candidates(stage, users)  # (E, 1+n), target in column 0
        scores = np.empty(cands.shape, dtype=np.float64)
        for s in tqdm(range(0, len(users), batch_size), disable=not progress, desc=f"score {system}"):
            rows = range(s, min(len(users), s + batch_size))
            prompts = [render(int(users[r]), split.history(int(users[r]), stage), shown[r]) for r in rows]
            scores[s : s + len(rows)] = score_items(model, tok, encode_batch(tok, prompts), candidates=cands[s : s + len(rows)],
                                                   include_eos=method != "first-token").numpy()
        return evaluate_candidate_scores(split, stage, scores, system=system, config=config, users=users)
    if method not in ("exact", "first-token"):
        raise ValueError(f"unknown ranking method {method!r} (exact, first-token or beam)")

    def score(batch_users: np.ndarray) -> np.ndarray:
        prompts = [render(int(u), split.history(int(u), stage), None) for u in batch_users]
        batch = encode_batch(tok, prompts)
        if method == "exact" and tok.item_tokens:  # the same target ranks, second steps only above the target
            exclude = split.history_mask(stage, batch_users) if config.mask_history else None
            return exact_scores_for_targets(model, tok, batch, split.targets(stage)[batch_users], exclude).numpy()
        return score_items(model, tok, batch, include_eos=method == "exact").numpy()

    cfg = EvaluationConfig(**{**config.to_dict(), "batch_users": batch_size})
    return evaluate_scorer(split, stage, score, system=system, config=cfg, users=users, progress=progress)


def validation_ndcg10(model: RecLM, tok: RecTokenizer, split: Split, users: np.ndarray | None = None,
                      max_history: int = DEFAULT_MAX_HISTORY, template: str = "2-3") -> float:
    """Model selection signal: validation NDCG@10 of one template (first-token ranking, fast) on ``users``
    (default: every validation user)."""
    template = template.removeprefix("manual:")
    res = evaluate_render(RLMBundle(model=model, tokenizer=tok), split, Stage.VALID,
                          template_prompt_fn("manual", template, tok, max_history), Task.SEQUENTIAL,
                          system=f"manual:{template}", method="first-token", batch_size=128,
                          users=split.eval_users if users is None else users)
    return res.summary()["ndcg@10"]
