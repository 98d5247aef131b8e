"""Tests for pap_rec_core.data.split: leave-one-out targets and fixed, seeded negatives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pap_rec_core.data import (
    NO_TARGET,
    SplitConfig,
    Stage,
    build_interactions,
    leave_one_out,
    load_p5_dir,
)


def items_of(data, idx) -> list[str]:
    return [str(data.item_ids[i]) for i in np.atleast_1d(idx)]


# ---- targets and histories -------------------------------------------------------------------------


def test_leave_one_out_targets(tiny_data) -> None:
    split = leave_one_out(tiny_data, SplitConfig(n_negatives=0))
    d = tiny_data
    u1, u2, u3, u4 = (d.user_index(u) for u in ("u1", "u2", "u3", "u4"))
    assert items_of(d, split.train[u1]) == ["a", "b"]
    assert items_of(d, split.valid_target[u1]) == ["c"]
    assert items_of(d, split.test_target[u1]) == ["d"]
    assert items_of(d, split.train[u3]) == ["c"]
    assert items_of(d, [split.valid_target[u3], split.test_target[u3]]) == ["a", "f"]
    assert items_of(d, split.train[u4]) == ["g"]
    # Every item of every user is in exactly one of train / valid / test.
    for u, seq in enumerate(d.sequences):
        parts = list(split.train[u]) + [t for t in (split.valid_target[u], split.test_target[u]) if t != NO_TARGET]
        assert parts == list(seq)


def test_short_users_have_no_target_and_a_note(tiny_data) -> None:
    split = leave_one_out(tiny_data, SplitConfig(n_negatives=0))
    u2 = tiny_data.user_index("u2")
    assert split.valid_target[u2] == NO_TARGET and split.test_target[u2] == NO_TARGET
    assert items_of(tiny_data, split.train[u2]) == ["b", "e"]
    assert split.eval_users.tolist() == [0, 2, 3]
    assert any(n.startswith("1 users with fewer than 3 interactions") for n in split.notes)


def test_no_short_user_note_when_all_users_qualify(wide_data) -> None:
    split = leave_one_out(wide_data, SplitConfig(n_negatives=5))
    assert not any("fewer than" in n for n in split.notes)
    assert len(split.eval_users) == wide_data.n_users


def test_min_interactions_raises_the_bar(tiny_data) -> None:
    split = leave_one_out(tiny_data, SplitConfig(n_negatives=0, min_interactions=4))
    assert split.eval_users.tolist() == [tiny_data.user_index("u1")]
    assert any(n.startswith("3 users with fewer than 4") for n in split.notes)


def test_history_per_stage(tiny_data) -> None:
    split = leave_one_out(tiny_data, SplitConfig(n_negatives=0))
    d = tiny_data
    u1, u2 = d.user_index("u1"), d.user_index("u2")
    assert items_of(d, split.history(u1, Stage.VALID)) == ["a", "b"]
    assert items_of(d, split.history(u1, "test")) == ["a", "b", "c"]
    assert items_of(d, split.history(u1, Stage.TEST)) == items_of(d, d.sequences[u1][:-1])
    assert items_of(d, split.history(u2, "test")) == ["b", "e"]  # short user: all training items
    assert split.targets("valid") is split.valid_target and split.targets(Stage.TEST) is split.test_target
    with pytest.raises(ValueError):
        split.targets("train")


def test_the_history_mask_marks_exactly_the_history_of_each_stage(tiny_data) -> None:
    from pap_rec_core.data.split import item_mask

    split = leave_one_out(tiny_data, SplitConfig(n_negatives=0))
    d = tiny_data
    u1, u2 = d.user_index("u1"), d.user_index("u2")
    for stage in ("valid", "test"):
        mask = split.history_mask(stage, np.array([u1, u2]))
        assert mask.shape == (2, d.n_items) and mask.dtype == bool
        for row, u in enumerate((u1, u2)):
            assert sorted(items_of(d, np.flatnonzero(mask[row]))) == sorted(set(items_of(d, split.history(u, stage))))
    assert not split.history_mask("test", np.array([u1]))[0, split.test_target[u1]]  # the target never
    rows = item_mask([np.array([0, 2]), None, np.array([], dtype=np.int64)], 4)
    assert rows.tolist() == [[True, False, True, False], [False] * 4, [False] * 4]


def test_repeated_test_item_is_noted() -> None:
    data = build_interactions(["u"] * 4 + ["v"] * 3, list("abca") + list("xyz"), name="r", source="r")
    split = leave_one_out(data, SplitConfig(n_negatives=0))
    assert any(n.startswith("1 users' test item repeats") for n in split.notes)


# ---- sampled negatives -------------------------------------------------------------------------------


def test_negatives_shape_and_disjointness(wide_data) -> None:
    n = 20
    split = leave_one_out(wide_data, SplitConfig(n_negatives=n, seed=3))
    assert split.negatives.shape == (wide_data.n_users, n)
    assert split.negatives.dtype == np.int64
    for u in split.eval_users:
        row = split.negatives[u]
        assert len(set(row.tolist())) == n, "duplicate negatives in a row"
        assert not set(row.tolist()) & set(wide_data.sequences[u].tolist()), "negative the user interacted with"
        assert row.min() >= 0 and row.max() < wide_data.n_items


def test_negatives_rows_for_users_without_targets(tiny_data) -> None:
    split = leave_one_out(tiny_data, SplitConfig(n_negatives=3))
    u2 = tiny_data.user_index("u2")
    assert split.negatives[u2].tolist() == [NO_TARGET] * 3
    for u in split.eval_users:
        assert not set(split.negatives[u].tolist()) & set(tiny_data.sequences[u].tolist())


def test_negatives_deterministic_per_seed(wide_data) -> None:
    a = leave_one_out(wide_data, SplitConfig(n_negatives=10, seed=7)).negatives
    b = leave_one_out(wide_data, SplitConfig(n_negatives=10, seed=7)).negatives
    c = leave_one_out(wide_data, SplitConfig(n_negatives=10, seed=8)).negatives
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_candidates_have_target_first(wide_data) -> None:
    split = leave_one_out(wide_data, SplitConfig(n_negatives=9, seed=1))
    for stage in (Stage.VALID, Stage.TEST):
        cands = split.candidates(stage)
        assert cands.shape == (len(split.eval_users), 10)
        assert np.array_equal(cands[:, 0], split.targets(stage)[split.eval_users])
        assert np.array_equal(cands[:, 1:], split.negatives[split.eval_users])
    # The same negatives serve validation and test (never resampled per stage).
    assert np.array_equal(split.candidates("valid")[:, 1:], split.candidates("test")[:, 1:])
    some = split.candidates("test", users=np.array([3, 0]))
    assert some[:, 0].tolist() == [split.test_target[3], split.test_target[0]]


def test_shown_candidates_permute_each_list_in_each_users_own_seeded_order(wide_data) -> None:
    split = leave_one_out(wide_data, SplitConfig(n_negatives=9, seed=1))
    users = split.eval_users
    shown = split.shown_candidates("valid", users)
    cands = split.candidates("valid", users)
    assert shown.shape == cands.shape
    assert all(sorted(a.tolist()) == sorted(b.tolist()) for a, b in zip(shown, cands))
    assert not np.array_equal(shown, cands), "a seeded order, not the stored one (target first)"
    assert np.array_equal(shown, split.shown_candidates("valid", users))
    other_seed = leave_one_out(wide_data, SplitConfig(n_negatives=9, seed=2))
    assert np.array_equal(other_seed.candidates("valid", users)[:, 0], cands[:, 0])
    assert not np.array_equal(other_seed.shown_candidates("valid", users), shown)
    # per user: any subset of the users, in any order, sees each user's list in the same order
    pick = users[[5, 0, 3]]
    assert np.array_equal(split.shown_candidates("valid", pick), shown[[5, 0, 3]])
    assert np.array_equal(split.shown_candidates("valid", users[::-1]), shown[::-1])
    assert split.shown_candidates("valid", users[:0]).shape == (0, 10)
    # the test stage shows its own list (another target) in its own order
    assert not np.array_equal(split.shown_candidates("test", users), shown)


def test_negatives_are_drawn_per_user(wide_data) -> None:
    """A user's negatives depend on the split seed and the user alone: not on which other users have
    targets (a dataset with one more short user leaves everybody else's list unchanged)."""
    split = leave_one_out(wide_data, SplitConfig(n_negatives=10, seed=7))
    short = list(wide_data.sequences)
    short[0] = short[0][:2]  # user 0 loses its targets
    fewer = leave_one_out(dataclasses.replace(wide_data, sequences=tuple(short), timestamps=None),
                          SplitConfig(n_negatives=10, seed=7))
    assert fewer.negatives[0].tolist() == [NO_TARGET] * 10
    assert np.array_equal(fewer.negatives[1:], split.negatives[1:])


def test_zero_negatives(tiny_data) -> None:
    split = leave_one_out(tiny_data, SplitConfig(n_negatives=0))
    assert split.negatives.shape == (tiny_data.n_users, 0)
    assert split.candidates("test").shape == (3, 1)


def test_too_few_unseen_items(tiny_data) -> None:
    # u1 has interacted with 4 of the 8 items, so only 4 are unseen.
    with pytest.raises(ValueError) as exc:
        leave_one_out(tiny_data, SplitConfig(n_negatives=5))
    assert "u1" in str(exc.value) and "only 4 unseen items" in str(exc.value) and "5 negatives" in str(exc.value)


def test_default_ml100k_split(ml100k) -> None:
    split = leave_one_out(ml100k)
    assert split.negatives.shape == (943, 99)
    assert len(split.eval_users) == 943  # every ml-100k user has >= 20 ratings
    assert sum(len(t) for t in split.train) == 100_000 - 2 * 943
    u = 0
    assert split.test_target[u] == ml100k.sequences[u][-1]
    assert not set(split.negatives[u].tolist()) & set(ml100k.sequences[u].tolist())


# ---- given (P5) negatives ----------------------------------------------------------------------------


SEQS = {1: [1, 2, 3], 2: [4, 5, 6, 1], 3: [2, 7]}


def _p5_with_negatives(make_p5_dir, p5_maps, negatives):
    return load_p5_dir(make_p5_dir(SEQS, datamaps=p5_maps(SEQS), negatives=negatives))


def test_given_negatives_are_used(make_p5_dir, p5_maps) -> None:
    # A fourth user brings items 8 and 9 into the dataset, so they can be negatives of the others.
    seqs = {**SEQS, 4: [8, 9, 7]}
    data = load_p5_dir(make_p5_dir(seqs, datamaps=p5_maps(seqs),
                                   negatives={1: [9, 8, 7], 2: [3, 2, 8, 9], 3: [1, 3], 4: [1, 2, 3]}))
    split = leave_one_out(data, SplitConfig(n_negatives=3, seed=0))
    raw = {data.user_ids[u]: items_of(data, split.negatives[u]) for u in split.eval_users}
    assert raw == {"1": ["9", "8", "7"], "2": ["3", "2", "8"], "4": ["1", "2", "3"]}
    assert any("dataset's own" in n for n in split.notes)
    # User 3 (2 items) has no target, so its short negative list is never needed.
    assert split.negatives[data.user_index("3")].tolist() == [NO_TARGET] * 3

    sampled = leave_one_out(data, SplitConfig(n_negatives=3, seed=0, use_given_negatives=False))
    assert not np.array_equal(sampled.negatives, split.negatives)
    assert not any("dataset's own" in n for n in sampled.notes)
    for u in sampled.eval_users:
        assert not set(sampled.negatives[u].tolist()) & set(data.sequences[u].tolist())


def test_given_negatives_too_few(make_p5_dir, p5_maps) -> None:
    data = _p5_with_negatives(make_p5_dir, p5_maps, {1: [4, 5], 2: [2, 3], 3: [1]})
    with pytest.raises(ValueError) as exc:
        leave_one_out(data, SplitConfig(n_negatives=3))
    assert "use_given_negatives=False" in str(exc.value) and "user 1" in str(exc.value)


def test_given_negatives_missing_for_an_eval_user(make_p5_dir, p5_maps) -> None:
    data = _p5_with_negatives(make_p5_dir, p5_maps, {1: [4, 5, 6]})
    with pytest.raises(ValueError, match="user 2 have 0 items"):
        leave_one_out(data, SplitConfig(n_negatives=3))


# ---- SplitConfig -------------------------------------------------------------------------------------


def test_split_config_validation_and_round_trip() -> None:
    with pytest.raises(ValueError, match="n_negatives"):
        SplitConfig(n_negatives=-1)
    with pytest.raises(ValueError, match="min_interactions"):
        SplitConfig(min_interactions=2)
    cfg = SplitConfig(n_negatives=5, seed=9, min_interactions=4, use_given_negatives=False)
    assert SplitConfig.from_dict(cfg.to_dict()) == cfg
    assert SplitConfig().n_negatives == 99 and SplitConfig().min_interactions == 3
