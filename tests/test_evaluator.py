"""The one evaluator: masking policy, task protocols, batching, comparisons — on hand-made splits."""

from __future__ import annotations

import numpy as np
import pytest

from pap_rec_core.data import NO_TARGET, SplitConfig, Stage, build_interactions, leave_one_out
from pap_rec_core.evaluation import (
    EvaluationConfig,
    MetricInputError,
    Task,
    compare,
    evaluate_candidate_scores,
    evaluate_ranked_lists,
    evaluate_scorer,
    evaluate_scores,
    history_mask,
    popularity_scores,
    results_table,
)


@pytest.fixture()
def split():
    # user a: i1 i2 i3 i4 (train i1 i2, valid i3, test i4); user b: i5 i1 i2; user c: i6 i1 (too short)
    users = ["a"] * 4 + ["b"] * 3 + ["c"] * 2
    items = ["i1", "i2", "i3", "i4", "i5", "i1", "i2", "i6", "i1"]
    data = build_interactions(users, items, name="toy", source="test")
    return leave_one_out(data, SplitConfig(n_negatives=1, seed=0))


def test_history_mask_covers_history_before_target(split) -> None:
    a, b = 0, 1
    mask = history_mask(split, Stage.TEST, np.array([a, b]))
    assert mask[0].tolist() == [True, True, True, False, False, False]  # i1 i2 i3 (valid) before test i4
    assert mask[1].tolist() == [True, False, False, False, True, False]  # i5 i1 before test i2
    valid_mask = history_mask(split, Stage.VALID, np.array([a]))
    assert valid_mask[0].tolist() == [True, True, False, False, False, False]


def test_users_without_target_are_not_evaluated(split) -> None:
    assert split.test_target[2] == NO_TARGET
    res = evaluate_scores(split, Stage.TEST, np.zeros((2, 6)), system="zeros")
    assert res.users.tolist() == [0, 1]
    with pytest.raises(MetricInputError, match="no test target"):
        evaluate_scores(split, Stage.TEST, np.zeros((1, 6)), system="x", users=np.array([2]))


def test_masking_policy_changes_ranks(split) -> None:
    # Scores favour history items; the target (i4 for a, i2 for b) comes after them.
    scores = np.array([[9, 8, 7, 5, 0, 0], [9, 5, 0, 0, 8, 0]], dtype=float)
    masked = evaluate_scores(split, "test", scores, system="s")
    unmasked = evaluate_scores(split, "test", scores, system="s", config=EvaluationConfig(mask_history=False))
    assert masked.ranks.tolist() == [1.0, 1.0]
    assert unmasked.ranks.tolist() == [4.0, 3.0]
    assert masked.summary()["hit@1"] == 1.0 and unmasked.summary()["hit@1"] == 0.0


def test_target_repeating_history_is_not_masked() -> None:
    data = build_interactions(["u"] * 4, ["x", "y", "x", "x"], name="rep", source="test")
    split = leave_one_out(data, SplitConfig(n_negatives=0))
    assert any("repeats" in n for n in split.notes)
    res = evaluate_scores(split, "test", np.array([[1.0, 0.0]]), system="s")
    assert res.ranks.tolist() == [1.0]


def test_scorer_is_called_in_batches_and_shape_checked(split) -> None:
    calls = []

    def score(users):
        calls.append(users.tolist())
        return np.zeros((len(users), 6))

    evaluate_scorer(split, "valid", score, system="z", config=EvaluationConfig(batch_users=1))
    assert calls == [[0], [1]]
    with pytest.raises(MetricInputError, match="shape"):
        evaluate_scorer(split, "valid", lambda u: np.zeros((len(u), 5)), system="bad")


def test_ranked_lists_apply_the_same_policy(split) -> None:
    lists = [[0, 1, 2, 3], [4, 0, 1]]  # history first, then the target
    res = evaluate_ranked_lists(split, "test", lists, system="beam")
    assert res.ranks.tolist() == [1.0, 1.0]
    raw = evaluate_ranked_lists(split, "test", lists, system="beam", config=EvaluationConfig(mask_history=False))
    assert raw.ranks.tolist() == [4.0, 3.0]
    assert res.task is Task.SEQUENTIAL


def test_direct_task_uses_fixed_candidates(split) -> None:
    cands = split.candidates("test")
    assert cands.shape == (2, 2) and (cands[:, 0] == split.test_target[[0, 1]]).all()
    res = evaluate_candidate_scores(split, "test", np.array([[1.0, 0.0], [0.0, 1.0]]), system="d")
    assert res.ranks.tolist() == [1.0, 2.0] and res.task is Task.DIRECT
    with pytest.raises(MetricInputError, match="expected"):
        evaluate_candidate_scores(split, "test", np.zeros((2, 3)), system="d")


def test_popularity_counts_training_items_only(split) -> None:
    pop = popularity_scores(split)
    # train: a -> i1 i2, b -> i5, c -> i6 i1 (all of c is train)
    assert pop.tolist() == [2, 1, 0, 0, 1, 1]


def test_compare_and_table(split) -> None:
    good = evaluate_scores(split, "test", np.array([[0, 0, 0, 9, 0, 0], [0, 9, 0, 0, 0, 0]], float), system="good")
    bad = evaluate_scores(split, "test", np.zeros((2, 6)), system="bad")
    diffs = {d.metric: d for d in compare(bad, good)}
    assert diffs["hit@1"].diff == pytest.approx(1.0)
    table = results_table([bad, good], reference=bad)
    assert table["system"].tolist() == ["bad", "good"]
    assert table.loc[1, "hit@1"] == 1.0 and table.loc[0, "hit@1"] == 0.0
    assert "hit@1 ci" in table and "hit@1 p" in table
    other_stage = evaluate_scores(split, "valid", np.zeros((2, 6)), system="v")
    with pytest.raises(MetricInputError, match="cannot compare"):
        compare(bad, other_stage)


def test_popularity_on_ml100k_is_in_the_known_range() -> None:
    """Pop on ml-100k (leave-one-out, history masked) — a sanity check of the whole pipeline."""
    from pap_rec_core.data import DatasetConfig, load_dataset

    split = leave_one_out(load_dataset(DatasetConfig()))
    pop = popularity_scores(split)
    res = evaluate_scorer(split, "test", lambda b: np.tile(pop, (len(b), 1)), system="pop")
    s = res.summary()
    assert len(res.users) == 943
    assert 0.02 < s["ndcg@10"] < 0.08  # measured 0.043
    rnd = evaluate_scorer(split, "test", lambda b: np.random.default_rng(0).random((len(b), 1682)), system="rnd")
    assert rnd.summary()["ndcg@10"] < s["ndcg@10"] / 3
