"""Item-embedding initialisation from collaborative signal (training interactions only).

A from-scratch RLM starts with random item embeddings and spends most of its first epochs learning
which items follow which. ``transition-svd`` gives it that structure at step 0: the truncated SVD of
``log(1 + C)``, where ``C[a, b]`` counts how often item ``b`` directly follows item ``a`` in the users'
*training* sequences (never a validation or test item), written as ``U * sqrt(S)`` and rescaled to unit
standard deviation — the scale of T5's own embedding initialisation. Items that never precede another
item in training keep their random initialisation. What it buys is measured in the ablation ladder
(``benchmarks/rlm_ladder.py``).

Example::

    emb = transition_svd_embeddings(split.train, n_items=1682, dim=128, seed=0)   # (1682, 128)
"""

from __future__ import annotations

from enum import Enum
from typing import Sequence

import numpy as np

from pap_rec_core.data.transitions import transition_counts


class ItemInit(str, Enum):
    RANDOM = "random"  # T5's initialisation, N(0, 1)
    TRANSITION_SVD = "transition-svd"  # truncated SVD of log(1 + training transition counts)


def transition_svd_embeddings(train: Sequence[np.ndarray], n_items: int, dim: int, seed: int = 0) -> np.ndarray:
    """(n_items, dim) float32 item embeddings: ``U * sqrt(S)`` of the truncated SVD of ``log(1 + counts)``
    (:func:`transition_counts` of the training sequences), rescaled to unit standard deviation. Rows of
    items that never precede another item in ``train``, and the dimensions beyond ``n_items - 1``, are
    drawn from N(0, 1) (seeded), as T5 initialises embeddings."""
    from scipy.sparse.linalg import svds

    rng = np.random.default_rng(seed)
    out = rng.standard_normal((n_items, dim))
    counts = transition_counts(train, n_items)
    logc = counts.copy()
    logc.data = np.log1p(logc.data)
    k = min(dim, n_items - 1)
    active = np.asarray(counts.sum(axis=1)).ravel() > 0  # items with an outgoing transition
    if k < 1 or logc.nnz == 0:
        return out.astype(np.float32)
    v0 = rng.standard_normal(min(logc.shape))  # ARPACK's start vector: seeded, so the result is reproducible
    u, s, _ = svds(logc, k=k, v0=v0, solver="arpack")
    order = np.argsort(-s)
    emb = u[:, order] * np.sqrt(np.maximum(s[order], 0.0))  # (I, k)
    emb /= emb[active].std() or 1.0
    out[active, :k] = emb[active]
    return out.astype(np.float32)
