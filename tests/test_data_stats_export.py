"""Tests for pap_rec_core.data.stats and pap_rec_core.data.export (RecBole benchmark layout)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pap_rec_core.data import (
    NO_TARGET,
    DataFormatError,
    SplitConfig,
    build_interactions,
    build_item_index,
    dataset_stats,
    export_recbole,
    leave_one_out,
    load_recbole,
    sequence_length_histogram,
)

# ---- statistics -------------------------------------------------------------------------------------


def test_stats_hand_computed(tiny_data) -> None:
    # Lengths: u1 4, u2 2, u3 3, u4 3 -> 12 interactions over 8 items.
    s = dataset_stats(tiny_data)
    assert (s.users, s.items, s.interactions) == (4, 8, 12)
    assert s.density == pytest.approx(12 / 32)
    assert s.sparsity == pytest.approx(1 - 12 / 32)
    assert (s.seq_len_min, s.seq_len_median, s.seq_len_max) == (2, 3.0, 4)
    assert s.seq_len_mean == pytest.approx(3.0)
    assert (s.seq_len_p25, s.seq_len_p75) == (pytest.approx(2.75), pytest.approx(3.25))
    assert s.users_under_3 == 1
    assert s.interactions_per_item == pytest.approx(1.5)
    assert (s.has_timestamps, s.has_ratings, s.has_item_titles, s.reviews) == (False, False, False, 0)
    assert s.fingerprint == tiny_data.fingerprint() and s.name == "tiny"
    assert (s.test_repeats, s.valid_repeats) == (0, 0)


def test_stats_count_targets_that_repeat_a_history_item() -> None:
    from pap_rec_core.data import build_interactions

    seqs = {"u1": list("abca"), "u2": list("ab"), "u3": list("bbc"), "u4": list("aaa")}
    data = build_interactions([u for u, q in seqs.items() for _ in q], [i for q in seqs.values() for i in q],
                              name="rep", source="test")
    s = dataset_stats(data)
    # test repeats: u1 (a), u4 (a); validation repeats: u3 (b after b), u4 (a after a); u2 has no targets
    assert (s.test_repeats, s.valid_repeats) == (2, 2)
    assert dict(s.to_frame().itertuples(index=False))["test / validation targets repeating a history item"] \
        .startswith("2 / 2 users")


def test_stats_frame_and_dict(tiny_data) -> None:
    s = dataset_stats(tiny_data)
    frame = dict(s.to_frame().itertuples(index=False))
    assert frame["users"] == "4" and frame["items"] == "8" and frame["interactions"] == "12"
    assert frame["density"] == "37.5000%"
    assert frame["users with < 3 interactions"] == "1"
    assert frame["sequence length min / p25 / median / p75 / max"] == "2 / 2.75 / 3 / 3.25 / 4"
    assert frame["timestamps"] == "no (file order)"
    d = json.loads(json.dumps(s.to_dict()))
    assert d["users_under_3"] == 1 and d["interactions"] == 12


def test_stats_ml100k(ml100k) -> None:
    s = dataset_stats(ml100k)
    assert (s.users, s.items, s.interactions) == (943, 1682, 100_000)
    assert s.density == pytest.approx(100_000 / (943 * 1682))
    assert (s.seq_len_min, s.seq_len_max, s.users_under_3) == (20, 737, 0)
    assert s.has_timestamps and s.has_ratings and s.has_item_titles
    assert dict(s.to_frame().itertuples(index=False))["items"] == "1,682"


def test_stats_users_under_3_counts_each_short_user() -> None:
    users = ["a", "b", "b", "c", "c", "c", "d"]
    data = build_interactions(users, list("xxyxyzz"), name="s", source="s")
    s = dataset_stats(data)
    assert s.users_under_3 == 3  # a (1), b (2), d (1); c has 3
    assert (s.seq_len_min, s.seq_len_max) == (1, 3)


def test_stats_empty_dataset_rejected() -> None:
    data = build_interactions([], [], name="empty", source="s")
    with pytest.raises(ValueError, match="no users"):
        dataset_stats(data)


def test_sequence_length_histogram_counts_every_user(ml100k, tiny_data) -> None:
    for data in (ml100k, tiny_data):
        hist = sequence_length_histogram(data, bins=10)
        assert hist["users"].sum() == data.n_users
        assert (hist["length_from"] <= hist["length_to"]).all()
    hist = sequence_length_histogram(ml100k, bins=10)
    assert hist["length_from"].iloc[0] == 20 and hist["length_to"].iloc[-1] >= 737


# ---- export -----------------------------------------------------------------------------------------


def _data_lines(path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "user_id:token\titem_id:token\ttimestamp:float"
    return lines[1:]


@pytest.fixture(scope="module")
def ml100k_export(ml100k, tmp_path_factory):
    split = leave_one_out(ml100k, SplitConfig(n_negatives=20, seed=4))
    index = build_item_index(ml100k, "random", seed=4)
    out = tmp_path_factory.mktemp("export")
    paths = export_recbole(split, index, out)
    return split, index, out / "ml-100k", paths


def test_export_writes_the_benchmark_layout(ml100k_export) -> None:
    split, index, out, paths = ml100k_export
    names = sorted(p.name for p in paths)
    assert names == sorted(["ml-100k.train.inter", "ml-100k.valid.inter", "ml-100k.test.inter", "ml-100k.item",
                            "item_index.json", "split.json", "ml-100k.negatives.tsv"])
    assert all(p.parent == out and p.is_file() for p in paths)


def test_export_line_counts_match_split(ml100k_export) -> None:
    split, _, out, _ = ml100k_export
    n_train = sum(len(t) for t in split.train)
    counts = {part: len(_data_lines(out / f"ml-100k.{part}.inter")) for part in ("train", "valid", "test")}
    assert counts == {"train": n_train, "valid": 943, "test": 943}
    meta = json.loads((out / "split.json").read_text())
    assert meta["counts"] == counts
    assert meta["fingerprint"] == split.data.fingerprint()
    assert meta["split"] == split.config.to_dict()
    assert meta["item_index"] == {"mode": "random", "seed": 4, "leaky": False}


def test_export_item_index_and_negatives(ml100k_export) -> None:
    split, index, out, _ = ml100k_export
    saved = json.loads((out / "item_index.json").read_text())
    assert saved["texts"] == list(index.texts)
    lines = (out / "ml-100k.negatives.tsv").read_text().splitlines()
    assert len(lines) == len(split.eval_users)
    for line, u in zip(lines, split.eval_users):
        user, negs = line.split("\t")
        assert user == split.data.user_ids[u]
        assert [index.item_of(t) for t in negs.split(" ")] == split.negatives[u].tolist()


def test_export_test_file_holds_each_users_last_item(ml100k_export) -> None:
    split, index, out, _ = ml100k_export
    data = split.data
    rows = [line.split("\t") for line in _data_lines(out / "ml-100k.test.inter")]
    got = {user: index.item_of(item) for user, item, _ in rows}
    assert got == {data.user_ids[u]: int(data.sequences[u][-1]) for u in range(data.n_users)}


def test_export_loads_back_through_load_recbole(ml100k_export) -> None:
    split, index, out, _ = ml100k_export
    data = split.data
    back = load_recbole(out)
    assert back.name == "ml-100k"
    assert (back.n_users, back.n_items, back.n_interactions) == (data.n_users, data.n_items, data.n_interactions)
    assert list(back.user_ids) == list(data.user_ids)
    for u in range(data.n_users):
        mapped = [index.item_of(back.item_ids[i]) for i in back.sequences[u]]
        assert mapped == data.sequences[u].tolist()
    # Item metadata travels under the textual ids.
    titles = back.item_titles()
    orig = data.item_titles()
    for j in range(0, back.n_items, 97):
        assert titles[j] == orig[index.item_of(back.item_ids[j])]
    # Leave-one-out on the reloaded data gives the same targets.
    again = leave_one_out(back, SplitConfig(n_negatives=0))
    to_orig = np.array([index.item_of(t) for t in back.item_ids])
    assert np.array_equal(to_orig[again.test_target], split.test_target)
    assert np.array_equal(to_orig[again.valid_target], split.valid_target)


def test_export_round_trip_with_short_users_ties_and_no_timestamps(tmp_path) -> None:
    # Ties in time: file order decides; the export must keep that order when read back.
    users = ["a"] * 4 + ["b"] * 2 + ["c"] * 3
    items = ["p", "q", "r", "s", "q", "t", "s", "p", "u"]
    ts = [1, 1, 1, 1, 7, 7, 2, 2, 2]
    for timestamps in (ts, None):
        data = build_interactions(users, items, timestamps=timestamps, name="mini", source="t")
        split = leave_one_out(data, SplitConfig(n_negatives=1, seed=0))
        index = build_item_index(data, "given")
        out = tmp_path / ("ts" if timestamps else "nots")
        export_recbole(split, index, out, name="mini2")
        d = out / "mini2"
        counts = {part: len(_data_lines(d / f"mini2.{part}.inter")) for part in ("train", "valid", "test")}
        assert counts == {"train": 2 + 2 + 1, "valid": 2, "test": 2}  # b is short: both items train
        assert not (d / "mini2.item").exists()
        back = load_recbole(d)
        assert back.name == "mini2"
        assert {u: [back.item_ids[i] for i in s] for u, s in zip(back.user_ids, back.sequences)} == {
            "a": ["p", "q", "r", "s"], "b": ["q", "t"], "c": ["s", "p", "u"]}
        negs = (d / "mini2.negatives.tsv").read_text().splitlines()
        assert [n.split("\t")[0] for n in negs] == ["a", "c"]


def test_export_short_user_has_no_valid_or_test_rows(tiny_data, tmp_path) -> None:
    split = leave_one_out(tiny_data, SplitConfig(n_negatives=2, seed=1))
    assert split.test_target[tiny_data.user_index("u2")] == NO_TARGET
    export_recbole(split, build_item_index(tiny_data, seed=1), tmp_path)
    out = tmp_path / "tiny"
    for part in ("valid", "test"):
        assert "u2" not in {line.split("\t")[0] for line in _data_lines(out / f"tiny.{part}.inter")}
    assert [line.split("\t")[0] for line in _data_lines(out / "tiny.train.inter")].count("u2") == 2
    assert json.loads((out / "split.json").read_text())["notes"] == list(split.notes)


def test_export_refuses_an_index_of_another_dataset(tiny_data, wide_data, tmp_path) -> None:
    split = leave_one_out(tiny_data, SplitConfig(n_negatives=0))
    with pytest.raises(DataFormatError, match="fingerprint"):
        export_recbole(split, build_item_index(wide_data), tmp_path)
    assert not (tmp_path / "tiny").exists()
