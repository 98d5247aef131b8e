"""Item-to-item transition counts of user sequences (the collaborative signal counting baselines and the
RLM's item-embedding initialisation use; pass the *training* sequences of a split)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def transition_counts(sequences: Sequence[np.ndarray], n_items: int):
    """(I, I) ``scipy.sparse.csr_matrix``: ``C[a, b]`` = how often item ``b`` directly follows item ``a``."""
    from scipy.sparse import coo_matrix

    pairs = [(np.asarray(s[:-1], dtype=np.int64), np.asarray(s[1:], dtype=np.int64)) for s in sequences if len(s) > 1]
    prev = np.concatenate([p for p, _ in pairs]) if pairs else np.zeros(0, np.int64)
    nxt = np.concatenate([n for _, n in pairs]) if pairs else np.zeros(0, np.int64)
    counts = coo_matrix((np.ones(len(prev)), (prev, nxt)), shape=(n_items, n_items)).tocsr()
    counts.sum_duplicates()
    return counts
