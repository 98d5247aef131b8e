"""Tests for pap_rec_core.data loaders: RecBole atomic files, P5 directories, OpenP5, CSV/TSV/Parquet."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pandas as pd
import pytest

from pap_rec_core.data import (
    DataFormatError,
    DatasetConfig,
    InteractionData,
    PickleNotTrustedError,
    SourceKind,
    UnknownDatasetError,
    UnknownUserError,
    build_interactions,
    builtin_dataset_dir,
    load_dataset,
    load_openp5,
    load_p5_dir,
    load_recbole,
    load_table,
    read_atomic,
    read_sequence_file,
)

INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]


def seqs_by_user(data: InteractionData) -> dict[str, list[str]]:
    """Raw-id view of every sequence: {user id: [item id, ...]} in time order."""
    return {str(u): [str(data.item_ids[i]) for i in s] for u, s in zip(data.user_ids, data.sequences)}


# ====================================================================================================
# Builtin MovieLens-100k (bundled with the installed recbole)


def test_ml100k_counts(ml100k) -> None:
    assert (ml100k.n_users, ml100k.n_items, ml100k.n_interactions) == (943, 1682, 100_000)
    assert ml100k.name == "ml-100k"
    assert ml100k.source.startswith("recbole:")


def test_ml100k_timestamps_non_decreasing_within_each_user(ml100k) -> None:
    assert ml100k.timestamps is not None
    assert len(ml100k.timestamps) == ml100k.n_users
    for ts in ml100k.timestamps:
        assert np.all(np.diff(ts) >= 0)
    # Not trivially constant: the data spans months.
    all_ts = np.concatenate(ml100k.timestamps)
    assert all_ts.max() - all_ts.min() > 30 * 24 * 3600


def test_ml100k_titles_and_ratings(ml100k) -> None:
    titles = ml100k.item_titles()
    assert titles is not None and len(titles) == 1682
    assert "title" in ml100k.item_info.columns
    assert "genres" in ml100k.item_info.columns  # RecBole's "class" field is renamed
    toy_story = ml100k.item_index("1")
    assert titles[toy_story] == "Toy Story"
    assert ml100k.item_info.loc[toy_story, "item_id"] == "1"
    assert ml100k.ratings is not None
    all_ratings = np.concatenate(ml100k.ratings)
    assert set(np.unique(all_ratings)) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_ml100k_matches_an_independent_parse(ml100k) -> None:
    """Per-user sequences agree with a plain pandas reading sorted by (timestamp, file order)."""
    raw = pd.read_csv(builtin_dataset_dir("ml-100k") / "ml-100k.inter", sep="\t", dtype=str)
    raw.columns = [c.split(":")[0] for c in raw.columns]
    raw["t"] = raw["timestamp"].astype(float)
    raw["line"] = np.arange(len(raw))
    raw = raw.sort_values(["t", "line"], kind="stable")
    expected = raw.groupby("user_id", sort=False)["item_id"].apply(list).to_dict()
    got = seqs_by_user(ml100k)
    assert len(got) == len(expected) == 943
    for user in ("1", "196", "405", "943"):
        assert got[user] == expected[user]
    # First user in file order is the first dense user index.
    assert ml100k.user_ids[0] == "196"
    assert len(got["405"]) == 737  # the most active user


def test_ml100k_unknown_user_error_names_id_and_dataset(ml100k) -> None:
    with pytest.raises(UnknownUserError) as exc:
        ml100k.user_index("no-such-user")
    assert "no-such-user" in str(exc.value) and "ml-100k" in str(exc.value)
    with pytest.raises(KeyError):
        ml100k.item_index("999999")


def test_builtin_dataset_dir_unknown_name() -> None:
    with pytest.raises(UnknownDatasetError, match="ml-100k"):
        builtin_dataset_dir("ml-1m")


def test_load_dataset_unknown_recbole_name(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownDatasetError) as exc:
        load_dataset(DatasetConfig(path="no-such-dataset"))
    assert "no-such-dataset" in str(exc.value)


# ====================================================================================================
# Real P5 Beauty (../shared/data/p5_beauty)


@pytest.mark.p5data
def test_beauty_counts(beauty) -> None:
    assert (beauty.n_users, beauty.n_items, beauty.n_interactions) == (22_363, 12_101, 198_502)
    assert beauty.item_info is not None and "asin" in beauty.item_info.columns
    assert beauty.item_info["asin"].notna().all()


@pytest.mark.p5data
def test_beauty_file_ids_are_consecutive_along_sequences(beauty) -> None:
    """P5's leaky numbering: ids in order of first appearance are exactly 1, 2, ..., I."""
    assert list(beauty.item_ids) == [str(i) for i in range(1, beauty.n_items + 1)]


@pytest.mark.p5data
def test_beauty_datamaps_agree_with_asins(beauty, p5_beauty_dir) -> None:
    maps = json.loads((p5_beauty_dir / "datamaps.json").read_text())
    for i in (0, 1, 500, beauty.n_items - 1):
        raw = beauty.item_ids[i]
        assert beauty.item_info.loc[i, "asin"] == maps["id2item"][raw]
        assert maps["item2id"][maps["id2item"][raw]] == raw


# ====================================================================================================
# P5 sequential_data.txt and friends: well-formed tiny directories


def test_p5_tiny_directory(make_p5_dir) -> None:
    seqs = {1: [1, 2, 3], 2: [4, 2], 3: [3, 5, 1, 6]}
    d = make_p5_dir(seqs, negatives={1: [4, 5], 2: [1, 3], 3: [2, 4]})
    data = load_p5_dir(d)
    assert (data.n_users, data.n_items, data.n_interactions) == (3, 6, 9)
    assert seqs_by_user(data) == {str(u): [str(i) for i in s] for u, s in seqs.items()}
    assert data.name == "p5tiny" and data.source == f"p5:{d}"
    assert data.item_info["asin"].tolist() == [f"A{i}" for i in data.item_ids]
    assert data.timestamps is None and data.reviews is None
    neg = data.given_negatives
    assert set(neg) == {0, 1, 2}
    assert [data.item_ids[i] for i in neg[data.user_index("2")]] == ["1", "3"]


def test_p5_without_datamaps_notes_it(make_p5_dir) -> None:
    data = load_p5_dir(make_p5_dir({1: [1, 2]}, datamaps=False))
    assert data.item_info is None
    assert any("datamaps" in n for n in data.notes)


def test_p5_datamaps_with_extra_items_drops_and_notes(make_p5_dir, p5_maps) -> None:
    seqs = {1: [1, 2], 2: [2, 3]}
    data = load_p5_dir(make_p5_dir(seqs, datamaps=p5_maps(seqs, extra_items=[7, 8])))
    assert data.n_items == 3 and len(data.item_info) == 3
    assert any(n.startswith("2 items") for n in data.notes)


def test_p5_missing_directory() -> None:
    with pytest.raises(UnknownDatasetError, match="does not exist"):
        load_p5_dir("/nonexistent/p5/dir")


# ---- P5 errors name file, line and field -----------------------------------------------------------


def _six_good_lines() -> str:
    return "".join(f"{u} {u} {u + 1}\n" for u in range(1, 7))


def test_p5_non_integer_item_on_line_7(make_p5_dir) -> None:
    d = make_p5_dir(_six_good_lines() + "7 8 x9 10\n8 1 2\n", datamaps=False)
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(d)
    err = exc.value
    assert err.line == 7
    assert err.path.endswith("sequential_data.txt")
    assert err.field == "item_id"
    assert f"{d / 'sequential_data.txt'}:7:" in str(err)
    assert "'x9'" in str(err) and "item 2 of user 7" in str(err)


def test_p5_user_without_items(make_p5_dir) -> None:
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(make_p5_dir("1 1 2\n2 3\n3\n4 5\n", datamaps=False))
    assert (exc.value.line, exc.value.field) == (3, "item_id")
    assert "user 3 has no items" in str(exc.value)


def test_p5_duplicate_user_line(make_p5_dir) -> None:
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(make_p5_dir("1 1 2\n2 3 4\n1 5 6\n", datamaps=False))
    assert (exc.value.line, exc.value.field) == (3, "user_id")
    assert "already has a line (1)" in str(exc.value)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_p5_empty_file(make_p5_dir, text) -> None:
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(make_p5_dir(text, datamaps=False))
    assert exc.value.path.endswith("sequential_data.txt")
    assert "empty file" in str(exc.value)


def test_p5_non_integer_user(make_p5_dir) -> None:
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(make_p5_dir("1 1 2\nbob 3 4\n", datamaps=False))
    assert (exc.value.line, exc.value.field) == (2, "user_id")
    assert "'bob'" in str(exc.value) and ":2:" in str(exc.value)


@pytest.mark.parametrize("bad", ["\u00b2", "\u0663", "+3", "3.0"])
def test_p5_ids_must_be_ascii_integers(make_p5_dir, bad) -> None:
    # str.isdigit() alone accepts '²' (which int() rejects); every such id must be a clean error.
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(make_p5_dir(f"1 1 2\n2 3 {bad}\n", datamaps={"user2id": {}, "item2id": {}, "id2item": {}}))
    assert (exc.value.line, exc.value.field) == (2, "item_id")
    with pytest.raises(DataFormatError) as exc:
        load_openp5(make_p5_dir(f"1 1 2\n{bad} 3 4\n", datamaps=False) / "sequential_data.txt")
    assert (exc.value.line, exc.value.field) == (2, "user_id")


def test_p5_blank_lines_keep_line_numbers(make_p5_dir) -> None:
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(make_p5_dir("1 1 2\n\n\n2 3 -4\n", datamaps=False))
    assert exc.value.line == 4 and "'-4'" in str(exc.value)
    assert "negative item id '-4'" in str(exc.value)  # not "non-integer"


def test_p5_datamaps_missing_a_user(make_p5_dir, p5_maps) -> None:
    seqs = {1: [1, 2, 3], 2: [3, 4], 3: [1, 4]}
    maps = p5_maps(seqs)
    del maps["user2id"]["U2"], maps["user2id"]["U3"]
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(make_p5_dir(seqs, datamaps=maps))
    assert exc.value.field == "user2id" and "2 user ids" in str(exc.value) and "['2', '3']" in str(exc.value)


def test_p5_datamaps_missing_an_item(make_p5_dir, p5_maps) -> None:
    seqs = {1: [1, 2, 3], 2: [3, 4]}
    maps = p5_maps(seqs)
    del maps["id2item"]["4"]
    d = make_p5_dir(seqs, datamaps=maps)
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(d)
    assert exc.value.path.endswith("datamaps.json")
    assert exc.value.field == "id2item"
    assert "['4']" in str(exc.value)


def test_p5_datamaps_invalid_json_names_line(make_p5_dir) -> None:
    d = make_p5_dir({1: [1, 2]}, datamaps='{\n"user2id": {},\n"item2id": {,\n}')
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(d)
    assert exc.value.path.endswith("datamaps.json") and exc.value.line == 3


def test_p5_datamaps_missing_key(make_p5_dir, p5_maps) -> None:
    maps = p5_maps({1: [1, 2]})
    del maps["item2id"]
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(make_p5_dir({1: [1, 2]}, datamaps=maps))
    assert exc.value.field == "item2id"


def test_p5_negatives_with_unknown_item(make_p5_dir) -> None:
    d = make_p5_dir({1: [1, 2, 3], 2: [2, 3, 4]}, negatives="1 4\n2 1 99\n")
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(d)
    err = exc.value
    assert err.path.endswith("negative_samples.txt")
    assert (err.line, err.field) == (2, "item_id")
    assert "'99'" in str(err) and ":2:" in str(err)


def test_p5_negatives_with_repeated_user_line(make_p5_dir) -> None:
    d = make_p5_dir({1: [1, 2, 3], 2: [2, 3, 4]}, negatives="1 4\n1 4\n")
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(d)
    assert (exc.value.line, exc.value.field) == (2, "user_id")


def test_p5_negatives_with_unknown_user(make_p5_dir) -> None:
    d = make_p5_dir({1: [1, 2, 3]}, negatives="\n7 1\n")
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(d)
    assert (exc.value.line, exc.value.field) == (2, "user_id")


# ---- P5 review pickles ------------------------------------------------------------------------------


def _review_splits(text_key: str = "explanation") -> dict:
    def rec(u, i, r, text, feat):
        return {"reviewerID": f"U{u}", "asin": f"A{i}", "overall": r, text_key: text, "feature": feat}

    return {
        "train": [rec(1, 1, 5.0, "great smell", "smell"), rec(2, 4, 2.0, "too oily", "oil")],
        "val": [rec(1, 2, 4.0, "nice color", "color")],
        "test": [rec(2, 2, 3.0, "ok", None)],
    }


SEQS = {1: [1, 2, 3], 2: [4, 2, 5]}


def test_review_pickle_untrusted_loads_sequences_and_warns(make_p5_dir, caplog) -> None:
    d = make_p5_dir(SEQS, reviews={"review_splits.pkl": _review_splits()})
    with caplog.at_level(logging.WARNING, logger="pap_rec_core.data.loaders"):
        data = load_p5_dir(d)
    assert data.reviews is None
    assert (data.n_users, data.n_items, data.n_interactions) == (2, 5, 6)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "expected a warning about the untrusted pickle"
    msg = warnings[0].getMessage()
    assert "review_splits.pkl" in msg and "trust_pickle" in msg


def test_untrusted_pickle_is_never_unpickled(make_p5_dir, tmp_path) -> None:
    """A malicious pickle (it would create a directory when loaded) is left alone without trust."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    d = make_p5_dir(SEQS, reviews={"exp_splits.pkl": Evil()})
    assert load_p5_dir(d).reviews is None
    assert not marker.exists()
    # Proof that the payload is real: trusting it runs it (and then the content is rejected).
    with pytest.raises(DataFormatError, match="expected a dict of splits"):
        load_p5_dir(d, trust_pickle=True)
    assert marker.exists()


def test_require_reviews_without_trust_raises(make_p5_dir) -> None:
    d = make_p5_dir(SEQS, reviews={"review_splits.pkl": _review_splits()})
    with pytest.raises(PickleNotTrustedError) as exc:
        load_p5_dir(d, require_reviews=True)
    assert "trust_pickle=True" in str(exc.value)
    assert isinstance(exc.value, PermissionError)


def test_require_reviews_without_pickles_raises(make_p5_dir) -> None:
    with pytest.raises(DataFormatError, match="no review pickles"):
        load_p5_dir(make_p5_dir(SEQS), trust_pickle=True, require_reviews=True)


def test_trusted_review_pickle_gives_mapped_reviews(make_p5_dir) -> None:
    d = make_p5_dir(SEQS, reviews={"review_splits.pkl": _review_splits()})
    data = load_p5_dir(d, trust_pickle=True)
    rv = data.reviews
    assert isinstance(rv, pd.DataFrame)
    assert list(rv.columns) == ["user", "item", "rating", "text", "feature", "split"]
    assert len(rv) == 4
    assert rv["split"].tolist() == ["train", "train", "val", "test"]
    first = rv.iloc[0]
    assert (first["user"], first["item"]) == (data.user_index("1"), data.item_index("1"))
    second = rv.iloc[1]
    assert data.user_ids[second["user"]] == "2" and data.item_ids[second["item"]] == "4"
    assert (second["rating"], second["text"], second["feature"]) == (2.0, "too oily", "oil")
    # Indices are dense indices (user "2" is index 1, item "4" is index 3 by first appearance).
    assert (second["user"], second["item"]) == (1, 3)


def test_trusted_review_text_falls_back_to_review_text(make_p5_dir) -> None:
    d = make_p5_dir(SEQS, reviews={"review_splits.pkl": _review_splits("reviewText")})
    rv = load_p5_dir(d, trust_pickle=True).reviews
    assert rv["text"].tolist() == ["great smell", "too oily", "nice color", "ok"]


def test_exp_splits_preferred_over_review_splits(make_p5_dir) -> None:
    exp = {"train": [{"reviewerID": "U2", "asin": "A5", "overall": 1.0, "explanation": "exp"}]}
    d = make_p5_dir(SEQS, reviews={"review_splits.pkl": _review_splits(), "exp_splits.pkl": exp})
    rv = load_p5_dir(d, trust_pickle=True).reviews
    assert rv["text"].tolist() == ["exp"]


def test_trusted_review_with_unknown_id(make_p5_dir) -> None:
    bad = {"train": [{"reviewerID": "U1", "asin": "A_nope", "overall": 5.0}]}
    d = make_p5_dir(SEQS, reviews={"review_splits.pkl": bad})
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(d, trust_pickle=True)
    assert exc.value.path.endswith("review_splits.pkl")
    assert "record 0 of split 'train'" in str(exc.value)


def test_trusted_review_without_datamaps(make_p5_dir) -> None:
    d = make_p5_dir(SEQS, datamaps=False, reviews={"review_splits.pkl": _review_splits()})
    with pytest.raises(DataFormatError) as exc:
        load_p5_dir(d, trust_pickle=True)
    assert exc.value.path.endswith("datamaps.json")


def test_dataset_config_trust_pickle_reaches_loader(make_p5_dir) -> None:
    d = make_p5_dir(SEQS, reviews={"review_splits.pkl": _review_splits()})
    assert load_dataset(DatasetConfig(kind="p5", path=str(d))).reviews is None
    assert len(load_dataset(DatasetConfig(kind="p5", path=str(d), trust_pickle=True)).reviews) == 4


# ====================================================================================================
# OpenP5 user_sequence.txt


def test_openp5_loads_in_file_order(write_file) -> None:
    path = write_file("toys/user_sequence.txt", "10 3 1 2\n11 2 5\n\n12 5 3 4 1\n")
    data = load_openp5(path)
    assert data.name == "toys" and data.source == f"openp5:{path}"
    assert (data.n_users, data.n_items, data.n_interactions) == (3, 5, 9)
    assert list(data.item_ids) == ["3", "1", "2", "5", "4"]
    assert seqs_by_user(data) == {"10": ["3", "1", "2"], "11": ["2", "5"], "12": ["5", "3", "4", "1"]}


def test_openp5_error_line(write_file) -> None:
    path = write_file("user_sequence.txt", "1 1 2\n2 3 4.5\n")
    with pytest.raises(DataFormatError) as exc:
        load_openp5(path)
    assert (exc.value.line, exc.value.field) == (2, "item_id")
    assert exc.value.path == str(path)


def test_read_sequence_file_missing(tmp_path) -> None:
    with pytest.raises(DataFormatError, match="file not found"):
        read_sequence_file(tmp_path / "nope.txt")


# ====================================================================================================
# RecBole atomic files


def test_recbole_tiny_with_item_file(make_recbole) -> None:
    d = make_recbole(
        "shop",
        inter=(INTER_HEADER, [("u1", "i2", 4, 20), ("u1", "i1", 5, 10), ("u2", "i1", 3, 5)]),
        item=(["item_id:token", "item_title:token_seq", "category:token_seq"],
              [("i1", "First thing", "a b"), ("i2", "Second thing", "c"), ("i9", "Unused", "z")]),
    )
    data = load_recbole(d)
    assert data.name == "shop"
    assert list(data.user_ids) == ["u1", "u2"] and list(data.item_ids) == ["i2", "i1"]
    assert seqs_by_user(data) == {"u1": ["i1", "i2"], "u2": ["i1"]}  # sorted by timestamp
    assert [list(r) for r in data.ratings] == [[5.0, 4.0], [3.0]]
    assert [list(t) for t in data.timestamps] == [[10.0, 20.0], [5.0]]
    assert list(data.item_titles()) == ["Second thing", "First thing"]
    assert list(data.item_info["genres"]) == ["c", "a b"]
    assert any("1 items listed in the item file have no interactions" in n for n in data.notes)


def test_recbole_item_file_missing_rows_noted(make_recbole) -> None:
    d = make_recbole("shop", item=(["item_id:token", "title:token_seq"], [("i1", "One")]))
    data = load_recbole(d)
    assert any("1 interacted items have no row" in n for n in data.notes)
    titles = data.item_titles()
    assert titles[data.item_index("i1")] == "One"
    assert pd.isna(titles[data.item_index("i2")])


def test_recbole_item_file_duplicate_item(make_recbole) -> None:
    d = make_recbole("shop", item=(["item_id:token", "title:token_seq"], [("i1", "One"), ("i2", "Two"), ("i1", "x")]))
    with pytest.raises(DataFormatError) as exc:
        load_recbole(d)
    assert exc.value.path.endswith("shop.item")
    assert (exc.value.line, exc.value.field) == (4, "item_id")


def test_recbole_without_timestamp_keeps_file_order(make_recbole) -> None:
    d = make_recbole("plain", inter=(["user_id:token", "item_id:token"], [("a", "x"), ("b", "y"), ("a", "z"), ("a", "y")]))
    data = load_recbole(d)
    assert data.timestamps is None and data.ratings is None
    assert seqs_by_user(data) == {"a": ["x", "z", "y"], "b": ["y"]}
    assert any("file order" in n for n in data.notes)


def test_recbole_custom_field_names(make_recbole) -> None:
    d = make_recbole("c", inter=(["uid:token", "iid:token", "when:float"], [("a", "x", 2), ("a", "y", 1)]))
    cfg = DatasetConfig(path=str(d), user_col="uid", item_col="iid", time_col="when", rating_col=None)
    data = load_dataset(cfg)
    assert seqs_by_user(data) == {"a": ["y", "x"]}


def test_recbole_single_inter_file_with_other_name_and_path_to_file(make_recbole) -> None:
    d = make_recbole("other", directory="folder")
    data = load_recbole(d)
    assert data.name == "other" and data.n_interactions == 3
    via_file = load_dataset(DatasetConfig(path=str(d / "other.inter")))
    assert via_file.fingerprint() == data.fingerprint()


def test_recbole_ambiguous_directory(make_recbole) -> None:
    d = make_recbole("one", directory="folder")
    make_recbole("two", directory="folder")
    with pytest.raises(UnknownDatasetError) as exc:
        load_recbole(d)
    assert "one.inter" in str(exc.value) and "two.inter" in str(exc.value)


# ---- RecBole errors ----------------------------------------------------------------------------------


def _inter(rows: list[str], header: str = "\t".join(INTER_HEADER)) -> str:
    return "\n".join([header] + rows) + "\n"


def _recbole_error(make_recbole, text: str) -> DataFormatError:
    d = make_recbole("bad", inter=text)
    with pytest.raises(DataFormatError) as exc:
        load_recbole(d)
    return exc.value


def test_recbole_non_numeric_timestamp(make_recbole) -> None:
    err = _recbole_error(make_recbole, _inter(["u1\ti1\t5\t10", "u1\ti2\t4\t11", "u2\ti1\t3\tyesterday"]))
    assert (err.line, err.field) == (4, "timestamp")
    assert err.path.endswith("bad.inter")
    assert ":4: field 'timestamp'" in str(err) and "'yesterday'" in str(err)


def test_recbole_nan_timestamp_is_an_error(make_recbole) -> None:
    err = _recbole_error(make_recbole, _inter(["u1\ti1\t5\tnan"]))
    assert (err.line, err.field) == (2, "timestamp")


def test_recbole_wrong_number_of_fields(make_recbole) -> None:
    err = _recbole_error(make_recbole, _inter(["u1\ti1\t5\t10", "u1\ti2\t4"]))
    assert err.line == 3
    assert "expected 4 tab-separated fields" in str(err) and "found 3" in str(err)


def test_recbole_duplicate_header_column(make_recbole) -> None:
    err = _recbole_error(make_recbole, _inter(["u1\ti1\t1"], header="user_id:token\titem_id:token\tuser_id:token"))
    assert (err.line, err.field) == (1, "user_id")
    assert "duplicate" in str(err)


def test_recbole_repeated_header_line(make_recbole) -> None:
    header = "\t".join(INTER_HEADER)
    err = _recbole_error(make_recbole, _inter(["u1\ti1\t5\t10", header, "u2\ti2\t4\t11"]))
    assert err.line == 3 and "header line is repeated" in str(err)


@pytest.mark.parametrize("text", ["", "\n"])
def test_recbole_empty_file(make_recbole, text) -> None:
    err = _recbole_error(make_recbole, text)
    assert err.line == 1 and "empty file" in str(err)


def test_recbole_header_only(make_recbole) -> None:
    err = _recbole_error(make_recbole, _inter([]))
    assert "no interactions" in str(err)


def test_recbole_missing_user_column(make_recbole) -> None:
    err = _recbole_error(make_recbole, "uid:token\titem_id:token\nu1\ti1\n")
    assert (err.line, err.field) == (1, "user_id")
    assert "uid" in str(err)  # the header's actual columns are listed


def test_recbole_header_column_without_type(make_recbole) -> None:
    err = _recbole_error(make_recbole, "user_id:token\titem_id\nu1\ti1\n")
    assert err.line == 1 and "'item_id'" in str(err) and "name:type" in str(err)


def test_recbole_header_unknown_type(make_recbole) -> None:
    err = _recbole_error(make_recbole, "user_id:token\titem_id:string\nu1\ti1\n")
    assert (err.line, err.field) == (1, "item_id") and "'string'" in str(err)


def test_recbole_timestamp_must_be_float_typed(make_recbole) -> None:
    err = _recbole_error(make_recbole, "user_id:token\titem_id:token\ttimestamp:token\nu1\ti1\t5\n")
    assert err.field == "timestamp" and "float" in str(err)


def test_recbole_empty_id(make_recbole) -> None:
    err = _recbole_error(make_recbole, _inter(["u1\ti1\t5\t10", "u1\t \t5\t11"]))
    assert (err.line, err.field) == (3, "item_id")


def test_recbole_blank_lines_keep_line_numbers(make_recbole) -> None:
    text = _inter(["u1\ti1\t5\t10", "", "", "u1\ti2\t4\t11", "", "u2\ti1\tbad\t12"])
    err = _recbole_error(make_recbole, text)
    assert (err.line, err.field) == (7, "rating")
    # ... and without the bad line, blank lines are skipped and both users load.
    d = make_recbole("ok", inter=_inter(["u1\ti1\t5\t10", "", "", "u1\ti2\t4\t11", "", "u2\ti1\t3\t12"]))
    assert load_recbole(d).n_interactions == 3
    table = read_atomic(d / "ok.inter")
    assert table.lines == [2, 5, 7]


def test_recbole_crlf_line_endings(make_recbole) -> None:
    d = make_recbole("crlf", inter=_inter(["u1\ti1\t5\t10", "u2\ti2\t4\t11"]).replace("\n", "\r\n"))
    data = load_recbole(d)
    assert list(data.item_ids) == ["i1", "i2"]  # no stray '\r' in ids


def test_read_atomic_missing_file(tmp_path) -> None:
    with pytest.raises(DataFormatError, match="file not found"):
        read_atomic(tmp_path / "x.inter")


def test_recbole_benchmark_layout_with_different_headers(tmp_path, atomic) -> None:
    d = tmp_path / "bench"
    d.mkdir()
    (d / "bench.train.inter").write_text(atomic(["user_id:token", "item_id:token"], [("u", "a")]))
    (d / "bench.valid.inter").write_text(atomic(["user_id:token", "item_id:token"], [("u", "b")]))
    (d / "bench.test.inter").write_text(atomic(["user_id:token", "item_id:token", "timestamp:float"], [("u", "c", 1)]))
    with pytest.raises(DataFormatError) as exc:
        load_recbole(d)
    assert exc.value.path.endswith("bench.test.inter") and "header differs" in str(exc.value)


# ====================================================================================================
# CSV / TSV / Parquet


def test_csv_basic_with_ratings(make_table) -> None:
    path = make_table("user_id,item_id,timestamp,rating\n1,a,30,5\n1,b,10,4\n2,a,20,3\n")
    data = load_table(path, rating_col="rating")
    assert data.name == "interactions" and data.source == f"table:{path}"
    assert seqs_by_user(data) == {"1": ["b", "a"], "2": ["a"]}
    assert [list(r) for r in data.ratings] == [[4.0, 5.0], [3.0]]


def test_csv_custom_columns_and_tsv(make_table) -> None:
    path = make_table("uid\tiid\tts\nx\tp\t2\nx\tq\t1\n", name="log.tsv")
    data = load_table(path, user_col="uid", item_col="iid", time_col="ts")
    assert seqs_by_user(data) == {"x": ["q", "p"]}
    assert data.name == "log"


def test_csv_without_time_column_keeps_file_order(make_table) -> None:
    data = load_table(make_table("user_id,item_id\n1,c\n1,a\n1,b\n"))
    assert data.timestamps is None
    assert seqs_by_user(data) == {"1": ["c", "a", "b"]}
    assert any("file order" in n for n in data.notes)


def test_csv_missing_column_names_it(make_table) -> None:
    with pytest.raises(DataFormatError) as exc:
        load_table(make_table("uid,item_id\n1,a\n"))
    assert (exc.value.field, exc.value.line) == ("user_id", 1)
    assert "uid" in str(exc.value)


def test_csv_blank_line_then_bad_timestamp_gives_file_line(make_table) -> None:
    path = make_table("user_id,item_id,timestamp\n1,a,10\n\n2,b,20\n2,c,soon\n")
    with pytest.raises(DataFormatError) as exc:
        load_table(path)
    assert (exc.value.line, exc.value.field) == (5, "timestamp")
    assert f"{path}:5:" in str(exc.value) and "'soon'" in str(exc.value)


def test_csv_blank_lines_are_skipped(make_table) -> None:
    data = load_table(make_table("user_id,item_id,timestamp\n1,a,10\n\n\n2,b,20\n"))
    assert data.n_interactions == 2 and data.n_users == 2


def test_csv_mixed_numbers_and_dates_is_an_error(make_table) -> None:
    path = make_table("user_id,item_id,timestamp\n1,a,100\n1,b,200\n1,c,2020-01-01\n")
    with pytest.raises(DataFormatError) as exc:
        load_table(path)
    assert (exc.value.line, exc.value.field) == (4, "timestamp")
    assert "'2020-01-01'" in str(exc.value)


def test_csv_date_string_timestamps(make_table) -> None:
    path = make_table(
        "user_id,item_id,timestamp\n"
        "1,a,2020-01-02\n"
        "1,b,2020-01-01T10:00:00\n"
        "2,c,2019-12-31\n"
        "1,d,2020-01-01 09:00\n"
    )
    data = load_table(path)
    assert seqs_by_user(data) == {"1": ["d", "b", "a"], "2": ["c"]}
    expected = pd.Timestamp("2020-01-01T09:00:00", tz="UTC").timestamp()
    assert data.timestamps[0][0] == pytest.approx(expected)
    assert np.all(np.diff(data.timestamps[0]) > 0)


def test_csv_timestamp_ties_keep_file_order(make_table) -> None:
    data = load_table(make_table("user_id,item_id,timestamp\n1,x,5\n1,y,3\n1,z,5\n1,w,3\n"))
    assert seqs_by_user(data) == {"1": ["y", "w", "x", "z"]}


def test_csv_duplicate_header_column(make_table) -> None:
    with pytest.raises(DataFormatError) as exc:
        load_table(make_table("user_id,item_id,item_id\n1,a,b\n"))
    assert (exc.value.line, exc.value.field) == (1, "item_id")


@pytest.mark.parametrize("text", ["", "\n", " , \n"])
def test_csv_empty_file(make_table, text) -> None:
    with pytest.raises(DataFormatError) as exc:
        load_table(make_table(text))
    assert exc.value.line == 1 and "empty file" in str(exc.value)


def test_csv_header_only(make_table) -> None:
    with pytest.raises(DataFormatError, match="no interactions"):
        load_table(make_table("user_id,item_id\n"))


def test_csv_empty_id_and_bad_rating(make_table) -> None:
    with pytest.raises(DataFormatError) as exc:
        load_table(make_table("user_id,item_id\n1,a\n,b\n"))
    assert (exc.value.line, exc.value.field) == (3, "user_id")
    with pytest.raises(DataFormatError) as exc:
        load_table(make_table("user_id,item_id,rating\n1,a,5\n1,b,great\n"), rating_col="rating")
    assert (exc.value.line, exc.value.field) == (3, "rating")


def test_table_missing_file(tmp_path) -> None:
    with pytest.raises(DataFormatError, match="file not found"):
        load_table(tmp_path / "none.csv")


def test_parquet_round_trip(tmp_path, make_table) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError as err:  # a declared dependency: its absence is a broken environment
        pytest.fail(f"pyarrow (a declared dependency, needed for Parquet) cannot be imported: {err}")
    frame = pd.DataFrame({"user_id": [7, 7, 8, 7], "item_id": [100, 101, 100, 102],
                          "timestamp": [3.0, 1.0, 2.0, 2.0], "rating": [5.0, 4.0, 3.0, 2.0]})
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    data = load_table(path, rating_col="rating")
    assert data.name == "x"
    assert list(data.user_ids) == ["7", "8"]
    assert seqs_by_user(data) == {"7": ["101", "102", "100"], "8": ["100"]}
    assert [list(r) for r in data.ratings] == [[4.0, 2.0, 5.0], [3.0]]
    # Same interactions as CSV give the same fingerprint.
    csv = make_table(frame.to_csv(index=False))
    assert load_table(csv).fingerprint() == data.fingerprint()


def test_parquet_errors_name_the_row_not_a_line(tmp_path) -> None:
    frame = pd.DataFrame({"user_id": ["7", "8", "9"], "item_id": ["1", "", "3"]})
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataFormatError) as exc:
        load_table(path)
    assert (exc.value.row, exc.value.line, exc.value.field) == (2, None, "item_id")
    assert "bad.parquet (row 2)" in str(exc.value)


def test_parquet_datetime_column_is_seconds(tmp_path) -> None:
    times = pd.to_datetime(["2020-01-01 00:00:10", "2020-01-01 00:00:00"])
    frame = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["late", "early"], "timestamp": times})
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    data = load_table(path)
    assert seqs_by_user(data) == {"u": ["early", "late"]}
    assert data.timestamps[0].tolist() == [1577836800.0, 1577836810.0]


# ====================================================================================================
# InteractionData: ordering, dense indices, fingerprints


def test_build_interactions_dense_indices_in_order_of_first_appearance() -> None:
    data = build_interactions(["b", "a", "b", "c", "a"], ["y", "x", "z", "x", "y"], name="t", source="t")
    assert list(data.user_ids) == ["b", "a", "c"]
    assert list(data.item_ids) == ["y", "x", "z"]
    assert [s.tolist() for s in data.sequences] == [[0, 2], [1, 0], [1]]
    assert all(s.dtype == np.int64 for s in data.sequences)
    assert data.user_index("c") == 2 and data.item_index("z") == 2


def test_build_interactions_stable_time_order() -> None:
    users = ["u"] * 5 + ["v"] * 2
    items = ["p", "q", "r", "s", "t", "p", "q"]
    ts = [5, 3, 5, 3, 1, 9, 9]
    data = build_interactions(users, items, name="t", source="t", timestamps=ts, ratings=[1, 2, 3, 4, 5, 6, 7])
    assert seqs_by_user(data) == {"u": ["t", "q", "s", "p", "r"], "v": ["p", "q"]}
    assert data.timestamps[0].tolist() == [1, 3, 3, 5, 5]
    assert data.ratings[0].tolist() == [5, 2, 4, 1, 3]  # ratings follow their interactions


def test_interaction_data_validates_alignment() -> None:
    with pytest.raises(ValueError, match="sequences for"):
        InteractionData(name="x", source="x", user_ids=np.array(["a", "b"]), item_ids=np.array(["i"]),
                        sequences=(np.array([0]),))
    with pytest.raises(ValueError, match="timestamps"):
        InteractionData(name="x", source="x", user_ids=np.array(["a"]), item_ids=np.array(["i"]),
                        sequences=(np.array([0, 0]),), timestamps=(np.array([1.0]),))


def test_fingerprint_stable_across_loads_and_sensitive_to_one_change(make_table, tmp_path) -> None:
    text = "user_id,item_id,timestamp\n1,a,1\n1,b,2\n2,a,3\n2,c,4\n"
    p1 = make_table(text, name="one.csv")
    p2 = make_table(text, name="two.csv")
    f1 = load_table(p1).fingerprint()
    assert f1 == load_table(p1).fingerprint() == load_table(p2).fingerprint()
    assert len(f1) == 16 and int(f1, 16) >= 0
    changed = make_table(text.replace("2,c,4", "2,b,4"), name="three.csv")
    assert load_table(changed).fingerprint() != f1
    reordered = make_table(text.replace("1,b,2", "1,b,0"), name="four.csv")  # b now before a
    assert load_table(reordered).fingerprint() != f1


def test_fingerprint_of_ml100k_is_reproducible(ml100k) -> None:
    again = load_dataset(DatasetConfig(path="ml-100k"))
    assert again.fingerprint() == ml100k.fingerprint()


# ====================================================================================================
# DatasetConfig


def test_dataset_config_round_trip_json() -> None:
    cfg = DatasetConfig(kind=SourceKind.TABLE, path="x.csv", name="X", user_col="uid", item_col="iid",
                        time_col=None, rating_col="r", trust_pickle=True)
    d = cfg.to_dict()
    assert d["kind"] == "table"
    back = DatasetConfig.from_dict(json.loads(json.dumps(d)))
    assert back == cfg and back.kind is SourceKind.TABLE


def test_dataset_config_kind_as_string_and_validation() -> None:
    assert DatasetConfig(kind="p5", path="d").kind is SourceKind.P5
    assert DatasetConfig(kind="openp5", path="d").kind is SourceKind.OPENP5
    assert DatasetConfig().kind is SourceKind.RECBOLE and DatasetConfig().path == "ml-100k"
    with pytest.raises(ValueError):
        DatasetConfig(kind="excel", path="d")
    with pytest.raises(ValueError, match="unknown DatasetConfig field.*colour"):
        DatasetConfig.from_dict({"path": "d", "colour": "red"})
    with pytest.raises(ValueError, match="path"):
        DatasetConfig(path="")


def test_load_dataset_dispatches_on_kind(make_p5_dir, make_table, write_file) -> None:
    p5 = make_p5_dir({1: [1, 2]})
    openp5 = write_file("o/user_sequence.txt", "1 1 2\n")
    table = make_table("user_id,item_id\n1,1\n1,2\n")
    sources = [
        load_dataset(DatasetConfig(kind="p5", path=str(p5))).source,
        load_dataset(DatasetConfig(kind="openp5", path=str(openp5))).source,
        load_dataset(DatasetConfig(kind="table", path=str(table), name="T")).source,
    ]
    assert [s.split(":")[0] for s in sources] == ["p5", "openp5", "table"]
    assert load_dataset(DatasetConfig(kind="table", path=str(table), name="T")).name == "T"
