"""P5 preprocessed directories (``sequential_data.txt``, ``datamaps.json``, negatives, review pickles) and
OpenP5 ``user_sequence.txt``."""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pap_rec_core.data.errors import DataFormatError, PickleNotTrustedError, UnknownDatasetError
from pap_rec_core.data.interactions import InteractionData, build_interactions

log = logging.getLogger(__name__)

P5_REVIEW_PICKLES = ("review_splits.pkl", "exp_splits.pkl")


def _is_id(text: str) -> bool:
    """A P5 id: ASCII digits only (str.isdigit alone accepts '²', which int() rejects)."""
    return text.isascii() and text.isdigit()


def _bad_id(text: str) -> str:
    """How a rejected id is wrong, in the error's words."""
    return "negative" if text.startswith("-") and _is_id(text[1:]) else "non-integer"


def read_sequence_file(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Parse ``user item item ...`` lines (P5 ``sequential_data.txt``, OpenP5 ``user_sequence.txt``).

    Ids must be non-negative integers. Errors name the line and whether the user or which item is bad.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    users: list[str] = []
    seqs: list[list[str]] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            parts = raw.split()
            if not parts:
                continue
            user, items = parts[0], parts[1:]
            if not _is_id(user):
                raise DataFormatError(path, f"{_bad_id(user)} user id {user!r} (ids are integers >= 0)", line=lineno,
                                      field="user_id")
            if not items:
                raise DataFormatError(path, f"user {user} has no items", line=lineno, field="item_id")
            for pos, item in enumerate(items, start=1):
                if not _is_id(item):
                    raise DataFormatError(path, f"{_bad_id(item)} item id {item!r} (item {pos} of user {user}; ids "
                                                "are integers >= 0)", line=lineno, field="item_id")
            if user in seen:
                raise DataFormatError(path, f"user {user} already has a line ({seen[user]})", line=lineno, field="user_id")
            seen[user] = lineno
            users.append(user)
            seqs.append(items)
    if not users:
        raise DataFormatError(path, "empty file (expected lines 'user_id item_id item_id ...')")
    return users, seqs


def _flatten(users: list[str], seqs: list[list[str]]) -> tuple[list[str], list[str]]:
    flat_users = [u for u, s in zip(users, seqs) for _ in s]
    flat_items = [i for s in seqs for i in s]
    return flat_users, flat_items


def load_openp5(path: str | Path, *, name: str | None = None) -> InteractionData:
    """OpenP5 ``user_sequence.txt``: one line per user, items in time order."""
    path = Path(path)
    users, seqs = read_sequence_file(path)
    flat_users, flat_items = _flatten(users, seqs)
    return build_interactions(flat_users, flat_items, name=name or path.parent.name or path.stem,
                              source=f"openp5:{path}")


def load_p5_dir(directory: str | Path, *, name: str | None = None, trust_pickle: bool = False,
                require_reviews: bool = False) -> InteractionData:
    """P5's preprocessed directory (e.g. ``data/beauty``).

    Reads ``sequential_data.txt`` (required), ``datamaps.json`` (raw Amazon ids, checked against the
    sequences), ``negative_samples.txt`` (P5's fixed negatives for the direct task) and, only with
    ``trust_pickle=True``, ``review_splits.pkl``/``exp_splits.pkl`` (review text for explanation).
    ``require_reviews=True`` turns absent/untrusted review pickles into an error.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UnknownDatasetError(f"P5 directory {directory} does not exist")
    seq_path = directory / "sequential_data.txt"
    users, seqs = read_sequence_file(seq_path)
    flat_users, flat_items = _flatten(users, seqs)
    notes: list[str] = []
    item_info = None
    datamaps = None
    maps_path = directory / "datamaps.json"
    if maps_path.is_file():
        datamaps = _read_datamaps(maps_path)
        item_info = _p5_item_info(maps_path, datamaps, set(flat_items))
        _check_p5_users(maps_path, datamaps, users)
    else:
        notes.append("no datamaps.json: raw Amazon ids unknown")
    data = build_interactions(flat_users, flat_items, name=name or directory.name, source=f"p5:{directory}",
                              item_info=item_info, notes=notes)
    negatives = None
    neg_path = directory / "negative_samples.txt"
    if neg_path.is_file():
        negatives = _read_p5_negatives(neg_path, data)
    reviews = _load_p5_reviews(directory, data, datamaps, trust_pickle, require_reviews)
    return replace(data, given_negatives=negatives, reviews=reviews)


def _read_datamaps(path: Path) -> dict[str, Any]:
    try:
        maps = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(path, f"invalid JSON: {err.msg}", line=err.lineno) from None
    for key in ("id2item", "user2id", "item2id"):
        if not isinstance(maps.get(key), dict):
            raise DataFormatError(path, "missing or not an object", field=key)
    return maps


def _check_p5_users(path: Path, maps: dict[str, Any], users: list[str]) -> None:
    """Every user of sequential_data.txt is a value of ``user2id`` (raw reviewer id -> P5 user id)."""
    known = {str(v) for v in maps["user2id"].values()}
    unknown = [u for u in users if u not in known]
    if unknown:
        raise DataFormatError(path, f"{len(unknown)} user ids of sequential_data.txt are missing here, e.g. "
                                    f"{unknown[:5]}", field="user2id")


def _p5_item_info(path: Path, maps: dict[str, Any], items: set[str]) -> pd.DataFrame:
    id2item = maps["id2item"]
    unknown = sorted(items - set(id2item), key=int)
    if unknown:
        raise DataFormatError(path, f"{len(unknown)} item ids of sequential_data.txt are missing here, e.g. {unknown[:5]}",
                              field="id2item")
    return pd.DataFrame({"asin": pd.Series(id2item)})


def _read_p5_negatives(path: Path, data: InteractionData) -> dict[int, np.ndarray]:
    """``negative_samples.txt``: ``user neg neg ...`` per line, P5 ids."""
    negatives: dict[int, np.ndarray] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            parts = raw.split()
            if not parts:
                continue
            try:
                user = data.user_index(parts[0])
            except KeyError:
                raise DataFormatError(path, f"unknown user id {parts[0]!r}", line=lineno, field="user_id") from None
            idx = []
            for item in parts[1:]:
                try:
                    idx.append(data.item_index(item))
                except KeyError:
                    raise DataFormatError(path, f"unknown item id {item!r}", line=lineno, field="item_id") from None
            if user in negatives:
                raise DataFormatError(path, f"user {parts[0]} has a second line", line=lineno, field="user_id")
            negatives[user] = np.asarray(idx, dtype=np.int64)
    return negatives


def _load_p5_reviews(directory: Path, data: InteractionData, maps: dict[str, Any] | None,
                     trust_pickle: bool, require: bool) -> pd.DataFrame | None:
    present = [directory / f for f in P5_REVIEW_PICKLES if (directory / f).is_file()]
    if not present:
        if require:
            raise DataFormatError(directory, f"no review pickles ({' or '.join(P5_REVIEW_PICKLES)}) for explanation")
        return None
    if not trust_pickle:
        msg = (f"{present[0]} holds review text, but pickle files can execute code when loaded; pass "
               "trust_pickle=True (CLI: --trust-pickle) if you trust this file")
        if require:
            raise PickleNotTrustedError(msg)
        log.warning("review text not loaded: %s", msg)
        return None
    if maps is None:
        raise DataFormatError(directory / "datamaps.json", "needed to map review pickles' raw ids, but missing")
    path = present[-1] if (directory / "exp_splits.pkl").is_file() else present[0]
    with path.open("rb") as fh:
        splits = pickle.load(fh)  # noqa: S301 — explicitly trusted by the caller
    return _reviews_frame(path, splits, data, maps)


def _reviews_frame(path: Path, splits: Any, data: InteractionData, maps: dict[str, Any]) -> pd.DataFrame:
    if not isinstance(splits, dict):
        raise DataFormatError(path, f"expected a dict of splits (train/val/test), found {type(splits).__name__}")
    rows = []
    user2id, item2id = maps["user2id"], maps["item2id"]
    for split_name, records in splits.items():
        for k, rec in enumerate(records):
            try:
                user = data.user_index(user2id[rec["reviewerID"]])
                item = data.item_index(item2id[rec["asin"]])
            except KeyError as err:
                raise DataFormatError(path, f"record {k} of split {split_name!r}: unknown id {err}",
                                      field="reviewerID/asin") from None
            text = rec.get("explanation", rec.get("reviewText", ""))
            feature = rec.get("feature", None)
            rows.append((user, item, float(rec.get("overall", float("nan"))), text, feature, split_name))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "text", "feature", "split"])
