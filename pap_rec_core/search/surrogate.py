"""Surrogate metrics: cheap per-user judgements of a prompt on validation.

``exact``: NDCG@5 + HR@5 from the target's rank among all items (history masked, as in evaluation);
``beam``: the paper's — beam search (20 beams, 5 returned), NDCG@5 + HR@5 of the returned list;
``likelihood``: log p(target | prompt). Every kind also returns the target's log-likelihood under the
same scores, used as a tie-break by the ``likelihood-tiebreak`` personal rule.
"""

from __future__ import annotations

import numpy as np
import torch

from pap_rec_core.evaluation.metrics import ranks_from_lists, ranks_from_scores
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.ranking import EncodedBatch, beam_rank, score_items
from pap_rec_core.rlm.tokenizer import RecTokenizer


def ndcg5_plus_hit5(ranks: np.ndarray) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks <= 5, 1.0 + 1.0 / np.log2(ranks + 1.0), 0.0)


@torch.no_grad()
def surrogate_values(kind: str, model: RecLM, tok: RecTokenizer, batch: EncodedBatch, targets: np.ndarray,
                     history_mask: np.ndarray | None, ranking: str = "first-token") -> tuple[np.ndarray, np.ndarray]:
    """``(values, loglik)``, each (B,) float64, for prompts ``batch`` with validation ``targets``."""
    if kind == "beam":
        lists = beam_rank(model, tok, batch, num_beams=20, top_n=5)
        exclude = None if history_mask is None else [set(np.flatnonzero(row).tolist()) for row in history_mask]
        ranks = ranks_from_lists(lists, targets, exclude)
        lik = score_items(model, tok, batch, candidates=torch.as_tensor(targets)[:, None]).numpy()[:, 0]
        return ndcg5_plus_hit5(ranks), lik.astype(np.float64)
    scores = score_items(model, tok, batch, include_eos=ranking == "exact").numpy()
    lik = scores[np.arange(len(targets)), targets].astype(np.float64)
    if kind == "likelihood":
        return lik, lik
    return ndcg5_plus_hit5(ranks_from_scores(scores, targets, history_mask)), lik
