"""Tests for pap_rec_core.evaluation.bootstrap."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pap_rec_core.evaluation import (
    Interval,
    MetricInputError,
    PairedDifference,
    bootstrap_mean,
    compare_systems,
    metrics_from_ranks,
    paired_bootstrap,
)


def _hits(n: int, p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p).astype(np.float64)


def test_bootstrap_mean_deterministic_and_seed_dependent() -> None:
    values = np.random.default_rng(0).random(300)
    first = bootstrap_mean(values, n_resamples=500, seed=3)
    assert first == bootstrap_mean(values, n_resamples=500, seed=3)
    assert first != bootstrap_mean(values, n_resamples=500, seed=4)


def test_bootstrap_mean_ci_contains_sample_mean() -> None:
    values = _hits(400, 0.3, seed=1)
    interval = bootstrap_mean(values, n_resamples=1000)
    assert isinstance(interval, Interval)
    assert interval.estimate == pytest.approx(values.mean())
    assert interval.low < interval.estimate < interval.high
    # Roughly the normal-approximation width for a proportion.
    se = np.sqrt(values.mean() * (1 - values.mean()) / values.size)
    assert interval.high - interval.low == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_bootstrap_mean_narrower_with_larger_alpha() -> None:
    values = np.random.default_rng(5).random(200)
    wide = bootstrap_mean(values, n_resamples=800, alpha=0.01)
    narrow = bootstrap_mean(values, n_resamples=800, alpha=0.5)
    assert wide.low < narrow.low <= narrow.high < wide.high


def test_bootstrap_mean_constant_and_single_user() -> None:
    interval = bootstrap_mean(np.full(50, 0.25), n_resamples=100)
    assert (interval.estimate, interval.low, interval.high) == (0.25, 0.25, 0.25)
    one = bootstrap_mean(np.array([0.7]), n_resamples=10)
    assert one.low == one.high == one.estimate == pytest.approx(0.7)


def test_bootstrap_mean_many_chunks_is_fine() -> None:
    # 25k users -> 160 resamples per chunk, so 400 resamples span several chunks.
    values = _hits(25_000, 0.1, seed=2)
    interval = bootstrap_mean(values, n_resamples=400, seed=1)
    assert interval.low < values.mean() < interval.high
    assert interval == bootstrap_mean(values, n_resamples=400, seed=1)


def test_paired_identical_systems() -> None:
    a = _hits(300, 0.4, seed=3)
    result = paired_bootstrap(a, a.copy(), metric="hit@10", n_resamples=500)
    assert isinstance(result, PairedDifference)
    assert result.diff == 0.0
    assert (result.low, result.high) == (0.0, 0.0)
    assert result.p_value == 1.0
    assert result.metric == "hit@10"
    assert (result.n_users, result.n_resamples) == (300, 500)


def test_paired_clearly_better_system() -> None:
    rng = np.random.default_rng(11)
    a = rng.random(400) * 0.5
    b = a.copy()
    b[:200] += 0.5
    result = paired_bootstrap(a, b, n_resamples=2000, seed=0)
    assert result.diff == pytest.approx(0.25)
    assert result.mean_b - result.mean_a == pytest.approx(result.diff)
    assert 0.0 < result.low <= result.diff <= result.high
    assert result.p_value < 0.01
    # Swapping the systems mirrors the interval.
    swapped = paired_bootstrap(b, a, n_resamples=2000, seed=0)
    assert swapped.diff == pytest.approx(-result.diff)
    assert swapped.high < 0.0 and swapped.p_value < 0.01


def test_paired_no_real_difference_has_large_p() -> None:
    rng = np.random.default_rng(8)
    a = rng.random(500)
    b = a + rng.normal(0, 0.1, size=500)
    b -= b.mean() - a.mean()  # exactly equal means, noisy per-user differences
    result = paired_bootstrap(a, b, n_resamples=1000)
    assert result.low < 0.0 < result.high
    assert result.p_value > 0.5


def test_paired_deterministic_and_serialisable() -> None:
    a, b = _hits(200, 0.3, seed=4), _hits(200, 0.35, seed=5)
    first = paired_bootstrap(a, b, metric="m", n_resamples=300, seed=9)
    assert first == paired_bootstrap(a, b, metric="m", n_resamples=300, seed=9)
    d = first.to_dict()
    assert list(d) == [f.name for f in dataclasses.fields(PairedDifference)]
    json.dumps(d)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.diff = 1.0  # type: ignore[misc]


def test_paired_p_value_bounds() -> None:
    for seed in range(5):
        a, b = _hits(60, 0.5, seed=seed), _hits(60, 0.5, seed=seed + 100)
        p = paired_bootstrap(a, b, n_resamples=200, seed=seed).p_value
        assert 0.0 <= p <= 1.0


def test_compare_systems_common_keys_in_order() -> None:
    rng = np.random.default_rng(6)
    ranks_a = rng.integers(1, 30, size=150).astype(float)
    ranks_b = np.maximum(ranks_a - 3, 1)
    per_a = metrics_from_ranks(ranks_a)
    per_b = dict(metrics_from_ranks(ranks_b))
    del per_b["hit@1"]
    per_b["extra"] = np.zeros(150)
    results = compare_systems(per_a, per_b, n_resamples=300, seed=2)
    assert [r.metric for r in results] == [k for k in per_a if k != "hit@1"]
    for r in results:
        assert r == paired_bootstrap(per_a[r.metric], per_b[r.metric], r.metric, 300, seed=2)
        assert r.diff >= 0.0


def test_compare_systems_without_common_keys() -> None:
    with pytest.raises(MetricInputError):
        compare_systems({"a": np.ones(3)}, {"b": np.ones(3)})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_resamples": 0},
        {"n_resamples": 1.5},
        {"alpha": 0.0},
        {"alpha": 1.0},
        {"alpha": -0.1},
    ],
)
def test_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        bootstrap_mean(np.ones(5), **kwargs)
    with pytest.raises(ValueError):
        paired_bootstrap(np.ones(5), np.ones(5), **kwargs)


def test_bad_values() -> None:
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap(np.ones(5), np.ones(4))
    with pytest.raises(ValueError, match="empty"):
        paired_bootstrap(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="empty"):
        bootstrap_mean(np.array([]))
    with pytest.raises(ValueError):
        bootstrap_mean(np.array([1.0, np.nan]))
    with pytest.raises(ValueError):
        bootstrap_mean(np.ones((2, 2)))
