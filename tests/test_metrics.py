"""Tests for pap_rec_core.evaluation.metrics: hand-computed cases, brute force, recbole and scikit-learn cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pap_rec_core import PapRecError
from pap_rec_core.evaluation import (
    DEFAULT_KS,
    MetricInputError,
    metrics_from_ranks,
    per_user_frame,
    ranks_from_lists,
    ranks_from_scores,
    summarize,
)

# ---------------------------------------------------------------------------------------------
# metrics_from_ranks
# ---------------------------------------------------------------------------------------------


def test_keys_and_order_default_ks() -> None:
    out = metrics_from_ranks(np.array([1.0, 2.0]))
    assert DEFAULT_KS == (1, 5, 10)
    assert list(out) == ["hit@1", "hit@5", "hit@10", "ndcg@5", "ndcg@10", "mrr"]
    assert all(v.dtype == np.float64 and v.shape == (2,) for v in out.values())


def test_keys_sorted_and_deduplicated() -> None:
    out = metrics_from_ranks(np.array([3.0]), ks=[10, 2, 10, 1])
    assert list(out) == ["hit@1", "hit@2", "hit@10", "ndcg@2", "ndcg@10", "mrr"]


def test_hand_computed_ranks() -> None:
    k = 5
    # absent, rank 1, rank exactly k, rank k + 1
    ranks = np.array([np.inf, 1.0, float(k), float(k + 1)])
    out = metrics_from_ranks(ranks, ks=(1, k))
    np.testing.assert_array_equal(out["hit@1"], [0, 1, 0, 0])
    np.testing.assert_array_equal(out["hit@5"], [0, 1, 1, 0])
    np.testing.assert_allclose(out["ndcg@5"], [0.0, 1.0, 1 / math.log2(k + 1), 0.0])
    np.testing.assert_allclose(out["mrr"], [0.0, 1.0, 1 / k, 1 / (k + 1)])  # untruncated


def test_absent_target_is_all_zero() -> None:
    out = metrics_from_ranks(np.array([np.inf]))
    assert all(v[0] == 0.0 for v in out.values())


def test_ndcg_at_rank_two() -> None:
    out = metrics_from_ranks(np.array([2.0]), ks=(2,))
    assert out["ndcg@2"][0] == pytest.approx(1 / math.log2(3))


def test_empty_ranks_give_empty_arrays() -> None:
    out = metrics_from_ranks(np.array([]))
    assert all(v.shape == (0,) for v in out.values())


@pytest.mark.parametrize(
    "ranks, ks",
    [
        (np.array([0.0]), (1,)),
        (np.array([np.nan]), (1,)),
        (np.array([[1.0]]), (1,)),
        (np.array([1.0]), ()),
        (np.array([1.0]), (0,)),
        (np.array([1.0]), (1.5,)),
    ],
)
def test_metrics_from_ranks_rejects_bad_input(ranks: np.ndarray, ks: tuple) -> None:
    with pytest.raises(MetricInputError):
        metrics_from_ranks(ranks, ks=ks)


def test_error_is_value_error_and_pap_rec_error() -> None:
    with pytest.raises(ValueError):
        metrics_from_ranks(np.array([0.0]))
    with pytest.raises(PapRecError):
        metrics_from_ranks(np.array([0.0]))


# ---------------------------------------------------------------------------------------------
# ranks_from_scores
# ---------------------------------------------------------------------------------------------


def test_scores_basic() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [0.8, 0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(ranks_from_scores(scores, np.array([2, 0])), [2.0, 1.0])
    assert ranks_from_scores(scores, np.array([2, 0])).dtype == np.float64


def test_scores_ties_are_pessimistic() -> None:
    scores = np.array([[0.5, 0.5, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0], [0.9, 0.5, 0.5, 0.5]])
    # row 0: two others tie with the target -> 3; row 1: constant scorer -> last (4)
    # row 2: one strictly higher + two ties -> 4
    np.testing.assert_array_equal(ranks_from_scores(scores, np.array([1, 0, 2])), [3.0, 4.0, 4.0])


def test_constant_scorer_never_hits() -> None:
    scores = np.zeros((6, 20))
    ranks = ranks_from_scores(scores, np.arange(6))
    np.testing.assert_array_equal(ranks, np.full(6, 20.0))
    assert metrics_from_ranks(ranks, ks=(1, 10))["hit@10"].sum() == 0


def test_mask_removes_items_above_target() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.1]])
    mask = np.array([[True, False, False, True]])
    assert ranks_from_scores(scores, np.array([2]), mask)[0] == 2.0  # only 0.8 counts above
    mask_ties = np.array([[False, True, False, False]])
    scores_ties = np.array([[0.5, 0.5, 0.5, 0.5]])
    assert ranks_from_scores(scores_ties, np.array([0]), mask_ties)[0] == 3.0


def test_mask_never_excludes_target() -> None:
    scores = np.array([[0.9, 0.8, 0.7]])
    mask = np.array([[True, False, True]])  # target column 2 is masked: ignored for the target
    assert ranks_from_scores(scores, np.array([2]), mask)[0] == 2.0
    all_masked = np.ones((1, 3), dtype=bool)
    assert ranks_from_scores(scores, np.array([2]), all_masked)[0] == 1.0


def test_nan_scores_count_as_minus_inf() -> None:
    scores = np.array(
        [
            [np.nan, 0.5, np.nan, 0.7],  # target 0.5: only 0.7 above
            [np.nan, 0.5, -np.inf, 0.7],  # target NaN: ties with -inf -> last of 4
            [-np.inf, 0.5, np.nan, 0.7],  # target -inf: last of 4
            [np.inf, np.inf, 0.0, 1.0],  # +inf target ties with the other +inf -> 2
        ]
    )
    ranks = ranks_from_scores(scores, np.array([1, 0, 0, 1]))
    np.testing.assert_array_equal(ranks, [2.0, 4.0, 4.0, 2.0])


def test_nan_target_ranks_last_among_unmasked() -> None:
    scores = np.array([[np.nan, 0.5, 0.6, 0.7, 0.8]])
    mask = np.array([[True, True, False, False, False]])
    # non-masked items: target (col 0, never masked) + cols 2..4 -> rank 4
    assert ranks_from_scores(scores, np.array([0]), mask)[0] == 4.0


def test_integer_scores_accepted() -> None:
    scores = np.array([[3, 1, 2]], dtype=np.int64)
    assert ranks_from_scores(scores, np.array([2]))[0] == 2.0


def test_zero_users() -> None:
    out = ranks_from_scores(np.zeros((0, 5)), np.zeros(0, dtype=np.int64))
    assert out.shape == (0,)


def _brute_force_rank(row: np.ndarray, target: int, mask_row: np.ndarray | None) -> float:
    """Literal pessimistic rank from the definition, one python loop per item."""
    t = row[target]
    t = -math.inf if math.isnan(t) else t
    above = 0
    ties = 0
    n_valid = 0
    for j, s in enumerate(row):
        if j != target and mask_row is not None and mask_row[j]:
            continue
        n_valid += 1
        if j == target:
            continue
        s = -math.inf if math.isnan(s) else s
        if s > t:
            above += 1
        elif s == t:
            ties += 1
    if t == -math.inf:
        return float(n_valid)
    return float(1 + above + ties)


@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("chunk_rows", [1, 7, 1024])
def test_scores_match_brute_force(use_mask: bool, chunk_rows: int) -> None:
    rng = np.random.default_rng(12345)
    n_users, n_items = 60, 25
    scores = rng.integers(0, 5, size=(n_users, n_items)).astype(np.float64)  # many ties
    scores[rng.random((n_users, n_items)) < 0.05] = np.nan
    scores[rng.random((n_users, n_items)) < 0.05] = -np.inf
    targets = rng.integers(0, n_items, size=n_users)
    mask = rng.random((n_users, n_items)) < 0.3 if use_mask else None
    got = ranks_from_scores(scores, targets, mask, chunk_rows=chunk_rows)
    expected = [
        _brute_force_rank(scores[u], int(targets[u]), None if mask is None else mask[u])
        for u in range(n_users)
    ]
    np.testing.assert_array_equal(got, expected)


def test_scores_do_not_modify_inputs() -> None:
    scores = np.array([[np.nan, 1.0, 2.0]])
    mask = np.array([[False, True, True]])
    ranks_from_scores(scores, np.array([2]), mask)
    assert np.isnan(scores[0, 0]) and mask.tolist() == [[False, True, True]]


@pytest.mark.parametrize(
    "scores, targets, mask, chunk_rows",
    [
        (np.zeros(3), np.array([0]), None, 8),  # 1-D scores
        (np.zeros((2, 3)), np.array([0]), None, 8),  # wrong target length
        (np.zeros((1, 3)), np.array([3]), None, 8),  # target out of range
        (np.zeros((1, 3)), np.array([-1]), None, 8),
        (np.zeros((1, 3)), np.array([0.0]), None, 8),  # float targets
        (np.zeros((1, 3)), np.array([0]), np.zeros((1, 2), bool), 8),  # mask shape
        (np.zeros((1, 3)), np.array([0]), None, 0),  # chunk_rows
        (np.zeros((1, 0)), np.array([0]), None, 8),  # no items
    ],
)
def test_scores_reject_bad_input(scores, targets, mask, chunk_rows) -> None:
    with pytest.raises(MetricInputError):
        ranks_from_scores(scores, targets, mask, chunk_rows=chunk_rows)


# ---------------------------------------------------------------------------------------------
# ranks_from_lists
# ---------------------------------------------------------------------------------------------


def test_lists_basic_and_absent() -> None:
    ranked = [[5, 3, 9], [1, 2], [7], []]
    ranks = ranks_from_lists(ranked, np.array([9, 1, 8, 4]))
    np.testing.assert_array_equal(ranks, [3.0, 1.0, np.inf, np.inf])
    assert ranks.dtype == np.float64


def test_lists_duplicates_keep_first_occurrence() -> None:
    ranked = [[4, 4, 4, 2], [3, 1, 3, 1, 6]]
    np.testing.assert_array_equal(ranks_from_lists(ranked, np.array([2, 6])), [2.0, 3.0])


def test_lists_exclude_history_but_never_target() -> None:
    ranked = [[10, 11, 12, 13], [10, 11, 12, 13], [10, 11]]
    exclude = [{10, 11}, {12, 13, 10}, None]
    ranks = ranks_from_lists(ranked, np.array([12, 12, 11]), exclude)
    np.testing.assert_array_equal(ranks, [1.0, 2.0, 2.0])


def test_lists_exclude_everything_before_absent_target() -> None:
    ranks = ranks_from_lists([[1, 2, 3]], np.array([4]), [{1, 2, 3}])
    assert ranks[0] == np.inf


def test_lists_accept_numpy_rows_and_ids() -> None:
    ranked = np.array([[3, 2, 1], [1, 2, 3]], dtype=np.int64)
    exclude = [np.array([3], dtype=np.int64), set()]
    ranks = ranks_from_lists(ranked, np.array([1, 3], dtype=np.int32), exclude)
    np.testing.assert_array_equal(ranks, [2.0, 3.0])


def test_lists_match_scores_without_ties() -> None:
    rng = np.random.default_rng(7)
    scores = rng.random((30, 15))
    targets = rng.integers(0, 15, size=30)
    mask = rng.random((30, 15)) < 0.3
    ranked = [list(np.argsort(-row)) for row in scores]
    exclude = [set(np.flatnonzero(m).tolist()) for m in mask]
    np.testing.assert_array_equal(
        ranks_from_lists(ranked, targets, exclude), ranks_from_scores(scores, targets, mask)
    )


def test_lists_reject_length_mismatch() -> None:
    with pytest.raises(MetricInputError):
        ranks_from_lists([[1]], np.array([1, 2]))
    with pytest.raises(MetricInputError):
        ranks_from_lists([[1]], np.array([1]), exclude=[set(), set()])
    with pytest.raises(MetricInputError):
        ranks_from_lists([[1]], np.array([[1]]))


# ---------------------------------------------------------------------------------------------
# summarize / per_user_frame
# ---------------------------------------------------------------------------------------------


def test_summarize_means_as_floats() -> None:
    per_user = metrics_from_ranks(np.array([1.0, 2.0, np.inf, 10.0]), ks=(1, 10))
    summary = summarize(per_user)
    assert list(summary) == list(per_user)
    assert all(type(v) is float for v in summary.values())
    assert summary["hit@1"] == pytest.approx(0.25)
    assert summary["hit@10"] == pytest.approx(0.75)
    assert summary["mrr"] == pytest.approx((1 + 0.5 + 0 + 0.1) / 4)


def test_summarize_rejects_empty() -> None:
    with pytest.raises(ValueError, match="hit@1"):
        summarize({"hit@1": np.array([])})
    with pytest.raises(ValueError):
        summarize({})


def test_per_user_frame() -> None:
    per_user = metrics_from_ranks(np.array([1.0, np.inf]), ks=(1, 5))
    frame = per_user_frame(per_user, ["u1", "u2"])
    assert list(frame.columns) == ["user", *per_user]
    assert frame["user"].tolist() == ["u1", "u2"]
    assert frame["hit@5"].tolist() == [1.0, 0.0]
    with pytest.raises(MetricInputError):
        per_user_frame(per_user, ["only-one"])


# ---------------------------------------------------------------------------------------------
# Independent implementations: recbole's Hit, scikit-learn's NDCG and label-ranking AP (= MRR here).
# recbole's NDCG/MRR classes use ``np.float`` (removed in numpy 1.24) and we do not patch numpy, so
# those two formulas are checked against scikit-learn instead, from raw scores rather than ranks.
# ---------------------------------------------------------------------------------------------


def _pos_index(ranks: np.ndarray, max_k: int) -> np.ndarray:
    """recbole's input: (U, max_k) bool with True at the target's position."""
    pos_index = np.zeros((ranks.shape[0], max_k), dtype=bool)  # (U, K)
    hit = np.isfinite(ranks) & (ranks <= max_k)
    pos_index[np.flatnonzero(hit), ranks[hit].astype(int) - 1] = True
    return pos_index


def test_hit_matches_recbole() -> None:
    metrics_module = pytest.importorskip("recbole.evaluator.metrics")
    rng = np.random.default_rng(2024)
    ks = (1, 3, 5, 10, 20)
    max_k = 40
    ranks = rng.integers(1, max_k + 1, size=500).astype(np.float64)
    ranks[rng.random(500) < 0.2] = np.inf
    hit = metrics_module.Hit({"topk": list(ks), "metric_decimal_place": 4}).metric_info(_pos_index(ranks, max_k))
    ours = metrics_from_ranks(ranks, ks=ks)
    for k in ks:
        np.testing.assert_allclose(ours[f"hit@{k}"], hit[:, k - 1])  # column k-1 = @k


def test_ndcg_and_mrr_match_sklearn_from_scores() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    n_users, n_items = 200, 60
    scores = rng.normal(size=(n_users, n_items))  # continuous: no ties, so tie policies agree
    targets = rng.integers(0, n_items, size=n_users)
    relevance = np.zeros_like(scores)
    relevance[np.arange(n_users), targets] = 1.0
    ours = metrics_from_ranks(ranks_from_scores(scores, targets), ks=(5, 10, 20))
    for k in (5, 10, 20):
        expected = [sk.ndcg_score(relevance[u : u + 1], scores[u : u + 1], k=k) for u in range(n_users)]
        np.testing.assert_allclose(ours[f"ndcg@{k}"], expected, rtol=1e-12)
    # With one relevant item, label-ranking average precision is 1 / rank of that item.
    lrap = [sk.label_ranking_average_precision_score(relevance[u : u + 1], scores[u : u + 1]) for u in range(n_users)]
    np.testing.assert_allclose(ours["mrr"], lrap, rtol=1e-12)


def test_mrr_ties_match_sklearn_pessimistic_rank() -> None:
    """LRAP ranks a label by |{scores >= its score}|: exactly our pessimistic tie rule."""
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(8)
    scores = rng.integers(0, 4, size=(100, 30)).astype(np.float64)  # many ties
    targets = rng.integers(0, 30, size=100)
    relevance = np.zeros_like(scores)
    relevance[np.arange(100), targets] = 1.0
    ours = metrics_from_ranks(ranks_from_scores(scores, targets))["mrr"]
    lrap = [sk.label_ranking_average_precision_score(relevance[u : u + 1], scores[u : u + 1]) for u in range(100)]
    np.testing.assert_allclose(ours, lrap, rtol=1e-12)
