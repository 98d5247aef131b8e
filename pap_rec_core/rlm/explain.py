"""Explanation generation with an RLM (template family 3): greedy decoding of the explanation for a
(user, item) pair of the held-out reviews, scored with BLEU / ROUGE (``evaluation.text_metrics``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from pap_rec_core.evaluation.text_metrics import explanation_metrics
from pap_rec_core.prompts.render import render_text
from pap_rec_core.prompts.templates import Family, get_template
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.rlm.ranking import encode_batch
from pap_rec_core.rlm.tokenizer import EOS_ID, PAD_ID

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
def generate_explanations(bundle: RLMBundle, data, rows: pd.DataFrame, template: str = "3-1", batch_size: int = 32,
                          max_new_tokens: int = 48) -> list[str]:
    """Greedy explanations for each review row (user, item, rating) with an explanation template."""
    from transformers.modeling_outputs import BaseModelOutput

    tpl = get_template(template)
    if tpl.family is not Family.EXPLANATION:
        raise ValueError(f"template {template} is not an explanation template")
    titles = data.item_titles()
    model, tok = bundle.model, bundle.tokenizer
    device = next(model.parameters()).device
    out: list[str] = []
    for s in range(0, len(rows), batch_size):
        chunk = rows.iloc[s : s + batch_size]
        prompts = []
        for r in chunk.itertuples():
            values = {"user": int(r.user), "item": int(r.item), "rating": f"{r.rating:g}",
                      "title": "" if titles is None else str(titles[int(r.item)])}
            prompts.append(render_text(tpl.source, **{k: v for k, v in values.items() if k in tpl.fields}))
        batch = encode_batch(tok, prompts).to(device)
        hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
        seqs = model.t5.generate(encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                                 attention_mask=batch.attention_mask, num_beams=1, do_sample=False,
                                 max_new_tokens=max_new_tokens, decoder_start_token_id=PAD_ID, eos_token_id=EOS_ID,
                                 pad_token_id=PAD_ID)
        out.extend(tok.decode([t for t in seq.tolist() if t not in (PAD_ID, EOS_ID)]) for seq in seqs)
    return out


def evaluate_explanations(bundle: RLMBundle, data, template: str = "3-1", max_rows: int | None = None,
                          seed: int = 0) -> dict[str, float]:
    """BLEU-1/4, ROUGE-1/2/L (and the search surrogate) of generated explanations on held-out reviews
    (at most ``max_rows``, a seeded sample)."""
    rows = held_out_reviews(data)
    if max_rows is not None and len(rows) > max_rows:
        rows = rows.iloc[np.sort(np.random.default_rng(seed).choice(len(rows), max_rows, replace=False))]
    hyps = generate_explanations(bundle, data, rows, template)
    return {"template": template, "pairs": len(rows), **explanation_metrics(hyps, [str(t) for t in rows["text"]])}
