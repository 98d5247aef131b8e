"""Ranking metrics for leave-one-out evaluation (one held-out target item per user).

Everything here is pure numpy and works on *ranks*: the 1-based position of each user's target
item. Two ways to get ranks:

* :func:`ranks_from_scores` - a score matrix over the whole item catalogue (baselines, or an LM
  scoring every candidate);
* :func:`ranks_from_lists` - an ordered list of generated item ids per user (beam search output).

:func:`metrics_from_ranks` turns ranks into per-user ``hit@k`` / ``ndcg@k`` / ``mrr`` arrays, which
:func:`summarize` averages and :mod:`pap_rec_core.evaluation.bootstrap` compares between systems.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from pap_rec_core import PapRecError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "DEFAULT_KS",
    "PAPER_METRICS",
    "BASELINE_METRICS",
    "MetricInputError",
    "ranks_from_scores",
    "ranks_from_lists",
    "metrics_from_ranks",
    "summarize",
    "per_user_frame",
]

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)
# the columns of every results table: the paper's (P5's) four metrics, and the baselines' wider table
PAPER_METRICS: tuple[str, ...] = ("hit@5", "ndcg@5", "hit@10", "ndcg@10")
BASELINE_METRICS: tuple[str, ...] = ("hit@1", "hit@5", "hit@10", "ndcg@5", "ndcg@10", "mrr")


class MetricInputError(PapRecError, ValueError):
    """Bad input to a metric or bootstrap function (wrong shape, empty, out of range ...)."""


def ranks_from_scores(
    scores: np.ndarray,
    target_idx: np.ndarray,
    mask: np.ndarray | None = None,
    chunk_rows: int = 1024,
) -> np.ndarray:
    """1-based rank of each row's target column in a score matrix (higher score = better).

    Args:
        scores: ``(U, N)`` scores, one row per user, one column per candidate item.
        target_idx: ``(U,)`` integer column of the target item in each row.
        mask: optional ``(U, N)`` bool; ``True`` excludes that item from the ranking (e.g. items
            already in the user's history). The target column is never excluded, even where the
            mask is ``True`` on it.
        chunk_rows: rows processed at once; peak extra memory is about ``2 * chunk_rows * N`` bytes.

    Returns:
        ``(U,)`` float64 ranks.

    Tie policy is *pessimistic*: ``rank = 1 + #(non-masked items scoring strictly higher)
    + #(other non-masked items scoring exactly the same)``, so a constant scorer ranks every
    target last and never gets a free hit. NaN scores count as ``-inf``. A target whose own score
    is ``-inf`` or NaN therefore ties with every other non-masked ``-inf``/NaN item and ranks last,
    i.e. its rank is the number of non-masked items in the row (target included).
    """
    scores = np.asarray(scores)
    target_idx = np.asarray(target_idx)
    if scores.ndim != 2:
        raise MetricInputError(f"scores must be 2-D (users, items), got shape {scores.shape}")
    n_users, n_items = scores.shape
    if n_items == 0:
        raise MetricInputError("scores has no item columns")
    if scores.dtype.kind not in "biuf":
        raise MetricInputError(f"scores must be numeric, got dtype {scores.dtype}")
    if target_idx.shape != (n_users,):
        raise MetricInputError(
            f"target_idx must have shape ({n_users},) to match scores, got {target_idx.shape}"
        )
    if n_users and target_idx.dtype.kind not in "iu":
        raise MetricInputError(f"target_idx must be integers, got dtype {target_idx.dtype}")
    if n_users and (target_idx.min() < 0 or target_idx.max() >= n_items):
        raise MetricInputError(f"target_idx out of range [0, {n_items})")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != scores.shape:
            raise MetricInputError(f"mask shape {mask.shape} != scores shape {scores.shape}")
    if int(chunk_rows) < 1:
        raise MetricInputError(f"chunk_rows must be >= 1, got {chunk_rows}")
    chunk_rows = int(chunk_rows)

    target_idx = target_idx.astype(np.intp, copy=False)
    ranks = np.empty(n_users, dtype=np.float64)  # (U,)
    for start in range(0, n_users, chunk_rows):
        stop = min(start + chunk_rows, n_users)
        rows = np.arange(stop - start)
        s = scores[start:stop]  # (C, N), a view: no float copy
        t_col = target_idx[start:stop]  # (C,)
        t_score = s[rows, t_col]  # (C,)
        if s.dtype.kind == "f":
            # NaN/-inf target: it ties with everything non-masked -> last place.
            t_last = np.isnan(t_score) | np.isneginf(t_score)  # (C,)
        else:
            t_last = np.zeros(len(rows), dtype=bool)
        # ``s >= t`` is False for NaN items, which is right for a finite/+inf target (NaN = -inf).
        at_or_above = s >= t_score[:, None]  # (C, N) bool, includes the target itself
        if mask is None:
            n_valid = np.full(len(rows), n_items, dtype=np.int64)  # (C,)
        else:
            valid = ~mask[start:stop]  # (C, N) bool, fresh array
            valid[rows, t_col] = True
            at_or_above &= valid
            n_valid = valid.sum(axis=1)  # (C,)
        counts = at_or_above.sum(axis=1)  # (C,)
        ranks[start:stop] = np.where(t_last, n_valid, counts)
    return ranks


def ranks_from_lists(
    ranked: Sequence[Sequence[int]] | np.ndarray,
    targets: np.ndarray,
    exclude: Sequence[set[int]] | None = None,
) -> np.ndarray:
    """1-based rank of each user's target in an ordered (top-first) list of item ids.

    Args:
        ranked: per user, item ids best first. Lists may differ in length or be empty; duplicate
            ids keep only their first occurrence.
        targets: ``(U,)`` target item id per user.
        exclude: optional per-user collection of item ids removed from the list before ranking
            (history masking); the target itself is never removed. ``None`` entries mean "nothing".

    Returns:
        ``(U,)`` float64 ranks, ``np.inf`` where the target does not appear in the (filtered) list.
    """
    targets = np.asarray(targets)
    if targets.ndim != 1:
        raise MetricInputError(f"targets must be 1-D, got shape {targets.shape}")
    n_users = targets.shape[0]
    if len(ranked) != n_users:
        raise MetricInputError(f"ranked has {len(ranked)} users but targets has {n_users}")
    if exclude is not None and len(exclude) != n_users:
        raise MetricInputError(f"exclude has {len(exclude)} users but targets has {n_users}")

    ranks = np.full(n_users, np.inf, dtype=np.float64)  # (U,)
    for u in range(n_users):
        target = targets[u].item() if isinstance(targets[u], np.generic) else targets[u]
        skip = _as_set(exclude[u]) if exclude is not None else set()
        skip.discard(target)
        seen: set = set()
        pos = 0
        for item in _iter_items(ranked[u]):
            if item in seen or item in skip:
                continue
            seen.add(item)
            pos += 1
            if item == target:
                ranks[u] = pos
                break
    return ranks


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-user ranking metrics for a single relevant item per user.

    Args:
        ranks: ``(U,)`` 1-based ranks, ``np.inf`` for "target not retrieved".
        ks: cut-offs (positive ints; duplicates dropped, sorted ascending).

    Returns:
        ``{"hit@k": ..., "ndcg@k": ..., "mrr": ...}`` with ``(U,)`` float64 arrays. Keys are
        ``hit@k`` for every k, then ``ndcg@k`` for every k >= 2 (``ndcg@1`` equals ``hit@1``), then
        ``mrr``. ``hit@k = [rank <= k]``, ``ndcg@k = [rank <= k] / log2(rank + 1)`` and
        ``mrr = 1 / rank`` (untruncated; 0 for an infinite rank).
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim != 1:
        raise MetricInputError(f"ranks must be 1-D, got shape {ranks.shape}")
    if np.isnan(ranks).any():
        raise MetricInputError("ranks contain NaN")
    if ranks.size and ranks.min() < 1:
        raise MetricInputError(f"ranks are 1-based, got minimum {ranks.min()}")
    ks_sorted = _check_ks(ks)

    out: dict[str, np.ndarray] = {}
    for k in ks_sorted:
        out[f"hit@{k}"] = (ranks <= k).astype(np.float64)
    gain = 1.0 / np.log2(ranks + 1.0)  # (U,), 0 for inf ranks
    for k in ks_sorted:
        if k >= 2:
            out[f"ndcg@{k}"] = np.where(ranks <= k, gain, 0.0)
    out["mrr"] = 1.0 / ranks  # 1/inf == 0
    return out


def summarize(per_user: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean of each per-user metric array, as python floats (same key order)."""
    if not per_user:
        raise MetricInputError("no metrics to summarize")
    out: dict[str, float] = {}
    for key, values in per_user.items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.size == 0:
            raise MetricInputError(f"metric {key!r} has no users; cannot average an empty array")
        out[key] = float(arr.mean())
    return out


def per_user_frame(per_user: Mapping[str, np.ndarray], user_ids: Sequence | np.ndarray) -> pd.DataFrame:
    """One row per user: a ``user`` column followed by one column per metric key."""
    import pandas as pd

    users = list(user_ids)
    columns: dict[str, object] = {"user": users}
    for key, values in per_user.items():
        if key == "user":
            raise MetricInputError("metric key 'user' clashes with the user id column")
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape != (len(users),):
            raise MetricInputError(
                f"metric {key!r} has shape {arr.shape}, expected ({len(users)},) to match user_ids"
            )
        columns[key] = arr
    return pd.DataFrame(columns)


def _check_ks(ks: Sequence[int]) -> list[int]:
    """Validate cut-offs; return them unique and ascending."""
    ks_list = list(ks)
    if not ks_list:
        raise MetricInputError("ks must contain at least one cut-off")
    for k in ks_list:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise MetricInputError(f"cut-offs must be positive integers, got {k!r}")
    return sorted({int(k) for k in ks_list})


def _as_set(items: Iterable | None) -> set:
    """Copy a per-user exclude collection into a set of plain python scalars."""
    if items is None:
        return set()
    return {i.item() if isinstance(i, np.generic) else i for i in items}


def _iter_items(row: Iterable) -> Iterable:
    """Items of one ranked row as plain python scalars (numpy rows converted via ``tolist``)."""
    if isinstance(row, np.ndarray):
        return row.tolist()
    return (i.item() if isinstance(i, np.generic) else i for i in row)
