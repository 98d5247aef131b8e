"""Baselines that need no training framework: popularity and a last-k Markov chain (counting only).

RecBole models (BPR, SASRec, ...) live in :mod:`pap_rec_core.evaluation.recbole_baselines`, which also
dispatches ``Markov`` here so that every baseline is run, reported and compared the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from pap_rec_core.data.split import Split, Stage
from pap_rec_core.data.transitions import transition_counts
from pap_rec_core.evaluation.evaluator import EvaluationConfig, EvaluationResult, evaluate_scorer

MARKOV_KS = (1, 2, 3, 5, 10, 20)  # history items the chain looks back on (chosen on validation)
MARKOV_DECAYS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # weight decay^j of the j-th most recent item


def popularity_scores(split: Split) -> np.ndarray:
    """(n_items,) training-interaction counts: the ``Pop`` baseline (same scores for every user).

    Counts only training items (never validation or test targets), so test-stage scores do not see
    any held-out interaction.
    """
    counts = np.zeros(split.data.n_items, dtype=np.float64)
    for items in split.train:
        np.add.at(counts, items, 1.0)
    return counts


@dataclass(frozen=True, eq=False)
class MarkovChain:
    """First-order transition counts ``C[a, b]`` (item ``b`` right after ``a`` in the *training*
    sequences) scored over the user's last ``k`` history items: ``score = sum_j decay^j C[h_{-1-j}]``
    (``j = 0`` the most recent). No training beyond counting; ``k`` and ``decay`` are chosen on
    validation by :func:`fit_markov`.

    Example::

        chain, valid, grid = fit_markov(split)
        evaluate_scorer(split, "test", chain.scorer(split, "test"), system=chain.name)
    """

    counts: Any  # scipy.sparse.csr_matrix (I, I)
    k: int
    decay: float

    @property
    def name(self) -> str:
        return f"Markov (last {self.k}, decay {self.decay:g})"

    def scores(self, split: Split, stage: Stage | str, users: np.ndarray) -> np.ndarray:
        """(B, I) scores of ``users`` from their histories before the stage's target."""
        from scipy.sparse import csr_matrix

        rows, cols, vals = [], [], []
        for r, u in enumerate(users):
            recent = split.history(int(u), stage)[-self.k:][::-1]  # most recent first
            rows.extend([r] * len(recent))
            cols.extend(recent.tolist())
            vals.extend((self.decay ** np.arange(len(recent))).tolist())
        weights = csr_matrix((vals, (rows, cols)), shape=(len(users), self.counts.shape[0]))  # duplicates add up
        return np.asarray((weights @ self.counts).todense())

    def scorer(self, split: Split, stage: Stage | str):
        return lambda users: self.scores(split, stage, users)


def fit_markov(split: Split, ks: Sequence[int] = MARKOV_KS, decays: Sequence[float] = MARKOV_DECAYS,
               config: EvaluationConfig = EvaluationConfig()) -> tuple[MarkovChain, EvaluationResult, list[dict]]:
    """Count training transitions and choose ``(k, decay)`` by validation NDCG@10 (the first best in
    grid order). Returns the chosen chain, its validation result and the grid (k, decay, NDCG@10)."""
    counts = transition_counts(split.train, split.data.n_items).astype(np.float64)
    best: tuple[float, MarkovChain, EvaluationResult] | None = None
    grid = []
    for k in ks:
        for decay in decays:
            chain = MarkovChain(counts, int(k), float(decay))
            res = evaluate_scorer(split, Stage.VALID, chain.scorer(split, Stage.VALID), system=chain.name,
                                  config=config)
            score = res.summary()["ndcg@10"]
            grid.append({"k": int(k), "decay": float(decay), "valid ndcg@10": score})
            if best is None or score > best[0]:
                best = (score, chain, res)
    if best is None:
        raise ValueError("empty Markov grid: give at least one k and one decay")
    return best[1], best[2], grid
