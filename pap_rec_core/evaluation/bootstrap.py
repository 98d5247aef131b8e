"""Bootstrap confidence intervals over users, and paired comparisons between two systems.

Users are the resampling unit: each resample draws ``n`` users with replacement and recomputes
the mean of a per-user metric. Paired comparisons reuse the same drawn users for both systems.
Resampling is vectorised in chunks so that no single allocation exceeds ~64 MB.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pap_rec_core.evaluation.metrics import MetricInputError

__all__ = ["Interval", "PairedDifference", "bootstrap_mean", "paired_bootstrap", "compare_systems"]

# Elements (index + gathered value, 16 bytes each) drawn per chunk: 4e6 * 16 B = 64 MB.
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with a ``[low, high]`` confidence interval."""

    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        """Plain dict of the fields."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PairedDifference:
    """Paired bootstrap comparison of one metric between system A and system B.

    ``diff = mean_b - mean_a``; ``[low, high]`` is its percentile CI and ``p_value`` the two-sided
    bootstrap p-value for "no difference" (see :func:`paired_bootstrap`).
    """

    metric: str
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p_value: float
    n_users: int
    n_resamples: int

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain dict of the fields (JSON-serialisable)."""
        return dataclasses.asdict(self)


def bootstrap_mean(
    values: np.ndarray, n_resamples: int = 2000, alpha: float = 0.05, seed: int = 0
) -> Interval:
    """Percentile bootstrap CI of the mean of per-user ``values``.

    Returns the sample mean with the ``alpha/2`` and ``1 - alpha/2`` quantiles of
    ``n_resamples`` resampled means. Deterministic for a given ``seed``.
    """
    x = _check_values(values, "values")
    _check_params(n_resamples, alpha)
    means = _resampled_means(x, n_resamples, np.random.default_rng(seed))  # (B,)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return Interval(estimate=float(x.mean()), low=float(low), high=float(high))


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    metric: str = "",
    n_resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> PairedDifference:
    """Paired bootstrap of ``mean(b) - mean(a)`` over users.

    Each resample draws the same user indices for both systems, which is the same as resampling
    the per-user differences ``d = b - a``. The CI is the percentile interval of the resampled
    mean differences ``d*``. The two-sided p-value uses the percentile (CI-inversion) convention,
    not a shifted null: ``p = min(1, 2 * min(frac(d* <= 0), frac(d* >= 0)))``. It is 1 for
    identical systems and 0 when no resample crosses zero (read that as ``p < 1/n_resamples``).
    Deterministic for a given ``seed``.
    """
    xa = _check_values(a, "a")
    xb = _check_values(b, "b")
    if xa.shape != xb.shape:
        raise MetricInputError(f"paired inputs differ in length: {xa.shape[0]} vs {xb.shape[0]}")
    _check_params(n_resamples, alpha)
    d = xb - xa  # (U,)
    diffs = _resampled_means(d, n_resamples, np.random.default_rng(seed))  # (B,)
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    frac_le = float(np.mean(diffs <= 0))
    frac_ge = float(np.mean(diffs >= 0))
    mean_a, mean_b = float(xa.mean()), float(xb.mean())
    return PairedDifference(
        metric=metric,
        mean_a=mean_a,
        mean_b=mean_b,
        diff=mean_b - mean_a,
        low=float(low),
        high=float(high),
        p_value=min(1.0, 2.0 * min(frac_le, frac_ge)),
        n_users=int(xa.shape[0]),
        n_resamples=int(n_resamples),
    )


def compare_systems(
    per_user_a: Mapping[str, np.ndarray],
    per_user_b: Mapping[str, np.ndarray],
    n_resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> list[PairedDifference]:
    """:func:`paired_bootstrap` for every metric key present in both systems (A's key order).

    Every metric uses the same ``seed``, hence the same resampled users.
    """
    common = [key for key in per_user_a if key in per_user_b]
    if not common:
        raise MetricInputError("the two systems share no metric keys")
    return [
        paired_bootstrap(
            per_user_a[key], per_user_b[key], metric=key, n_resamples=n_resamples, alpha=alpha, seed=seed
        )
        for key in common
    ]


def _check_values(values: np.ndarray, name: str) -> np.ndarray:
    """Validate a non-empty, finite 1-D array; return it as float64."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise MetricInputError(f"{name} must be 1-D (one value per user), got shape {x.shape}")
    if x.size == 0:
        raise MetricInputError(f"{name} is empty; need at least one user to bootstrap")
    if not np.isfinite(x).all():
        raise MetricInputError(f"{name} contains NaN or infinite values")
    return x


def _check_params(n_resamples: int, alpha: float) -> None:
    """Validate the resample count and the CI level."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise MetricInputError(f"n_resamples must be an integer >= 1, got {n_resamples!r}")
    if not 0.0 < float(alpha) < 1.0:
        raise MetricInputError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")


def _resampled_means(x: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` with-replacement resamples of ``x``, drawn in memory-bounded chunks."""
    n = x.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // n)
    means = np.empty(n_resamples, dtype=np.float64)  # (B,)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))  # (C, U)
        means[start:stop] = x[idx].mean(axis=1)
    return means
