"""Explanation generation with an RLM (template family 3): greedy decoding of the explanation for a
(user, item) pair of the held-out reviews, scored with BLEU / ROUGE (``evaluation.text_metrics``)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from pap_rec_core.evaluation.text_metrics import explanation_metrics, pair_surrogate
from pap_rec_core.prompts.parts import Part
from pap_rec_core.prompts.render import render_text
from pap_rec_core.prompts.templates import Family, get_template
from pap_rec_core.rlm.batching import EncodedBatch, encode_batch
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.tokenizer import EOS_ID, PAD_ID, RecTokenizer

ReviewRender = Callable[[Any], list[Part]]  # a review row (user, item, rating, ...) -> prompt parts

EVAL_SPLITS = ("test",)


def held_out_reviews(data, split_names=EVAL_SPLITS) -> pd.DataFrame:
    """The review rows of ``split_names`` (P5's review splits); an error when the data has no reviews."""
    if data.reviews is None:
        raise ValueError(f"{data.name} has no review text (explanation needs P5's review_splits.pkl / exp_splits.pkl)")
    rows = data.reviews[data.reviews["split"].isin(split_names)]
    if rows.empty:
        raise ValueError(f"{data.name}: no reviews in split(s) {', '.join(split_names)}")
    return rows


@torch.no_grad()
def greedy_decode(model: RecLM, tok: RecTokenizer, batch: EncodedBatch, max_new_tokens: int = 48) -> list[str]:
    """Greedy text continuation of each prompt of ``batch`` (special tokens removed)."""
    from transformers.modeling_outputs import BaseModelOutput

    batch = batch.to(next(model.parameters()).device)
    hidden = model.encode_batch(batch)
    seqs = model.t5.generate(encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                             attention_mask=batch.attention_mask, num_beams=1, do_sample=False,
                             max_new_tokens=max_new_tokens, decoder_start_token_id=PAD_ID, eos_token_id=EOS_ID,
                             pad_token_id=PAD_ID)
    return [tok.decode([t for t in seq.tolist() if t not in (PAD_ID, EOS_ID)]) for seq in seqs]


def template_render(data, template: str = "3-1") -> ReviewRender:
    """Prompts of an explanation template for review rows (user, item, rating; the item's title)."""
    tpl = get_template(template)
    if tpl.family is not Family.EXPLANATION:
        raise ValueError(f"template {template} is not an explanation template")
    titles = data.item_titles()

    def render(row) -> list[Part]:
        values = {"user": int(row.user), "item": int(row.item), "rating": f"{row.rating:g}",
                  "title": "" if titles is None else str(titles[int(row.item)])}
        return render_text(tpl.source, **{k: v for k, v in values.items() if k in tpl.fields})

    return render


def generate_explanations(bundle: RLMBundle, data, rows: pd.DataFrame, template: str | ReviewRender = "3-1",
                          batch_size: int = 32, max_new_tokens: int = 48) -> list[str]:
    """Greedy explanations for each review row (user, item, rating) with an explanation template (its id)
    or a render function (row -> prompt parts, e.g. a search's prompt: ``scoring.search_render``)."""
    render = template_render(data, template) if isinstance(template, str) else template
    out: list[str] = []
    for s in range(0, len(rows), batch_size):
        chunk = rows.iloc[s : s + batch_size]
        batch = encode_batch(bundle.tokenizer, [render(r) for r in chunk.itertuples()])
        out.extend(greedy_decode(bundle.model, bundle.tokenizer, batch, max_new_tokens))
    return out


def evaluate_explanations(bundle: RLMBundle, data, template: str | ReviewRender = "3-1", max_rows: int | None = None,
                          seed: int = 0, users=None, rows: pd.DataFrame | None = None) -> dict[str, Any]:
    """BLEU-1/4, ROUGE-1/2/L (and the search surrogate) of generated explanations on held-out reviews
    (only ``users``' when given; at most ``max_rows``, a seeded sample; or exactly ``rows``), plus the
    per-pair surrogate (``pair_surrogate``) for paired comparisons."""
    if rows is None:
        rows = evaluation_rows(data, users=users, max_rows=max_rows, seed=seed)
    hyps = generate_explanations(bundle, data, rows, template)
    refs = [str(t) for t in rows["text"]]
    return {"template": template if isinstance(template, str) else "prompt", "pairs": len(rows),
            **explanation_metrics(hyps, refs), "pair_surrogate": pair_surrogate(hyps, refs)}


def evaluation_rows(data, split_names=EVAL_SPLITS, users=None, max_rows: int | None = None,
                    seed: int = 0) -> pd.DataFrame:
    """The held-out review rows an explanation evaluation uses (``users``' only; a seeded sample of
    ``max_rows``); an error when none are left."""
    rows = held_out_reviews(data, split_names)
    if users is not None:
        rows = rows[rows["user"].isin([int(u) for u in users])]
        if rows.empty:
            raise ValueError(f"{data.name}: none of the {len(users)} users has a review in {', '.join(split_names)}")
    if max_rows is not None and len(rows) > max_rows:
        rows = rows.iloc[np.sort(np.random.default_rng(seed).choice(len(rows), max_rows, replace=False))]
    return rows


def compare_explanations(bundle: RLMBundle, data, prompts: dict[str, str | ReviewRender], users=None,
                         max_rows: int | None = None, seed: int = 0, n_resamples: int = 2000,
                         split_names=EVAL_SPLITS) -> pd.DataFrame:
    """One row per prompt (name -> template id or render): corpus metrics on the same held-out review
    pairs and the per-pair surrogate's paired bootstrap difference (95% CI, p) against the first prompt."""
    from pap_rec_core.evaluation.bootstrap import paired_bootstrap

    rows = evaluation_rows(data, split_names, users=users, max_rows=max_rows, seed=seed)
    results = {name: evaluate_explanations(bundle, data, p, rows=rows) for name, p in prompts.items()}
    first = next(iter(results.values()))
    table = []
    for name, r in results.items():
        line = {"system": name, "pairs": r["pairs"], **{k: r[k] for k in ("bleu-1", "bleu-4", "rouge-1", "rouge-2",
                                                                            "rouge-l", "surrogate")},
                "pair surrogate": float(np.mean(r["pair_surrogate"]))}
        if r is not first:
            d = paired_bootstrap(np.asarray(first["pair_surrogate"]), np.asarray(r["pair_surrogate"]),
                                 "pair surrogate", n_resamples=n_resamples, seed=seed)
            line.update({"Δ pair surrogate": d.diff, "low": d.low, "high": d.high, "p": d.p_value})
        table.append(line)
    return pd.DataFrame(table)
