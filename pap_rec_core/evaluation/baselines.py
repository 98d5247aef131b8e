"""Baselines that need no training framework. RecBole models (BPR, SASRec, ...) come with the RLM issue."""

from __future__ import annotations

import numpy as np

from pap_rec_core.data.split import Split


def popularity_scores(split: Split) -> np.ndarray:
    """(n_items,) training-interaction counts: the ``Pop`` baseline (same scores for every user).

    Counts only training items (never validation or test targets), so test-stage scores do not see
    any held-out interaction.
    """
    counts = np.zeros(split.data.n_items, dtype=np.float64)
    for items in split.train:
        np.add.at(counts, items, 1.0)
    return counts
