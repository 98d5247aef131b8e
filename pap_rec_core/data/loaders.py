"""Loaders: RecBole atomic files, P5 preprocessed directories, OpenP5 ``user_sequence.txt``, CSV/Parquet.

Every loader returns one :class:`InteractionData`. Malformed input raises :class:`DataFormatError`
naming file, line and field; nothing is dropped without a count in ``InteractionData.notes`` (logged).
"""

from __future__ import annotations

import json
import logging
import math
import pickle
from dataclasses import asdict, dataclass, replace
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pap_rec_core.configs import known_fields
from pap_rec_core.data.errors import DataFormatError, PickleNotTrustedError, UnknownDatasetError
from pap_rec_core.data.interactions import InteractionData, build_interactions

log = logging.getLogger(__name__)

BUILTIN_DATASETS = ("ml-100k",)  # shipped inside the recbole package (dataset_example/)
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
P5_REVIEW_PICKLES = ("review_splits.pkl", "exp_splits.pkl")


class SourceKind(str, Enum):
    """File format of a dataset source."""

    RECBOLE = "recbole"  # directory of atomic files <name>.inter [.item .user]
    P5 = "p5"  # P5 preprocessed directory: sequential_data.txt, datamaps.json, ...
    OPENP5 = "openp5"  # OpenP5 user_sequence.txt
    TABLE = "table"  # CSV / TSV / Parquet with a column mapping


@dataclass(frozen=True)
class DatasetConfig:
    """Where a dataset comes from and how to read it; JSON-serialisable (``to_dict``/``from_dict``).

    Example::

        DatasetConfig()                                            # bundled ml-100k
        DatasetConfig(kind=SourceKind.P5, path="data/beauty")
        DatasetConfig(kind=SourceKind.TABLE, path="x.csv", user_col="uid", item_col="iid", time_col="ts")
    """

    kind: SourceKind = SourceKind.RECBOLE
    path: str = "ml-100k"  # a builtin name (BUILTIN_DATASETS) or a file/directory path
    name: str | None = None  # display name; defaults to the file/directory stem
    user_col: str = "user_id"  # RecBole field / table column names
    item_col: str = "item_id"
    time_col: str | None = "timestamp"  # optional for RecBole/tables: used when present
    rating_col: str | None = "rating"
    trust_pickle: bool = False  # allow loading P5's review pickles (pickles can execute code)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SourceKind(self.kind))
        if not self.path:
            raise ValueError("DatasetConfig.path must not be empty")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DatasetConfig":
        return cls(**known_fields(cls, d))


def dataset_config_for_path(path: str | Path, **fields: Any) -> DatasetConfig:
    """A ``DatasetConfig`` for a location by its shape: a P5 directory (``sequential_data.txt``), an
    OpenP5 ``user_sequence.txt``, a CSV/TSV/Parquet table, else RecBole atomic files (or a builtin
    name such as ``ml-100k``)."""
    path = Path(path)
    if (path / "sequential_data.txt").is_file():
        kind = SourceKind.P5
    elif path.is_file() and path.name == "user_sequence.txt":
        kind = SourceKind.OPENP5
    elif path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".parquet"):
        kind = SourceKind.TABLE
    else:
        kind = SourceKind.RECBOLE
    return DatasetConfig(kind=kind, path=str(path), **fields)


def load_dataset(config: DatasetConfig) -> InteractionData:
    """Load any supported source into an :class:`InteractionData`."""
    if config.kind is SourceKind.RECBOLE:
        return load_recbole(resolve_recbole_dir(config.path), name=config.name, config=config)
    if config.kind is SourceKind.P5:
        return load_p5_dir(config.path, name=config.name, trust_pickle=config.trust_pickle)
    if config.kind is SourceKind.OPENP5:
        return load_openp5(config.path, name=config.name)
    return load_table(
        config.path,
        user_col=config.user_col,
        item_col=config.item_col,
        time_col=config.time_col,
        rating_col=config.rating_col,
        name=config.name,
    )


# ----------------------------------------------------------------------------------------------------
# RecBole atomic files


def builtin_dataset_dir(name: str) -> Path:
    """Directory of a dataset bundled with the installed ``recbole`` package (no download)."""
    if name not in BUILTIN_DATASETS:
        raise UnknownDatasetError(f"unknown builtin dataset {name!r}; builtin: {', '.join(BUILTIN_DATASETS)}")
    # Locate the package data without importing recbole (its import is slow and has side effects).
    spec_root = resources.files("recbole") if _has_recbole() else None
    if spec_root is None:
        raise UnknownDatasetError(f"builtin dataset {name!r} needs the 'recbole' package, which is not installed")
    path = Path(str(spec_root)) / "dataset_example" / name
    if not (path / f"{name}.inter").is_file():
        raise UnknownDatasetError(f"recbole is installed but {path}/{name}.inter is missing")
    return path


def _has_recbole() -> bool:
    import importlib.util

    return importlib.util.find_spec("recbole") is not None


def resolve_recbole_dir(path_or_name: str) -> Path:
    """A builtin name, a directory holding ``<dir name>.inter``, or a path to an ``.inter`` file."""
    p = Path(path_or_name)
    if p.is_file() and p.suffix == ".inter":
        return p.parent
    if p.is_dir():
        return p
    if path_or_name in BUILTIN_DATASETS:
        return builtin_dataset_dir(path_or_name)
    raise UnknownDatasetError(
        f"{path_or_name!r} is neither a directory of RecBole atomic files nor a builtin dataset "
        f"({', '.join(BUILTIN_DATASETS)})"
    )


@dataclass(frozen=True)
class AtomicTable:
    """A parsed RecBole atomic file: typed fields and string columns (values as written)."""

    path: Path
    fields: tuple[tuple[str, str], ...]  # (name, type)
    columns: dict[str, list[str]]
    lines: list[int]  # 1-based file line of each data row

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def field_type(self, name: str) -> str | None:
        return dict(self.fields).get(name)

    def floats(self, name: str) -> np.ndarray:
        return np.asarray(self.columns[name], dtype=np.float64)


def read_atomic(path: str | Path) -> AtomicTable:
    """Parse one RecBole atomic file (tab-separated, header ``name:type``), validating every line."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n")
        if not header.strip():
            raise DataFormatError(path, "empty file (expected a header line 'field:type<TAB>...')", line=1)
        fields = _parse_atomic_header(path, header)
        names = [f for f, _ in fields]
        columns: dict[str, list[str]] = {f: [] for f in names}
        lines: list[int] = []
        float_cols = [i for i, (_, t) in enumerate(fields) if t == "float"]
        lineno = 1
        for raw in fh:
            lineno += 1
            line = raw.rstrip("\r\n")
            if not line:
                continue  # blank lines carry no data
            if line == header:
                raise DataFormatError(path, "the header line is repeated inside the data", line=lineno)
            values = line.split("\t")
            if len(values) != len(fields):
                raise DataFormatError(
                    path, f"expected {len(fields)} tab-separated fields ({', '.join(names)}), found {len(values)}",
                    line=lineno,
                )
            for i in float_cols:
                if not _is_float(values[i]):
                    raise DataFormatError(path, f"expected a number, found {values[i]!r}", line=lineno, field=names[i])
            for name, value in zip(names, values):
                columns[name].append(value)
            lines.append(lineno)
    return AtomicTable(path=path, fields=tuple(fields), columns=columns, lines=lines)


def _parse_atomic_header(path: Path, header: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    seen: set[str] = set()
    for col in header.split("\t"):
        name, sep, typ = col.partition(":")
        if not sep or not name:
            raise DataFormatError(path, f"header column {col!r} is not of the form 'name:type'", line=1)
        if typ not in RECBOLE_TYPES:
            raise DataFormatError(path, f"unknown type {typ!r} (expected one of {', '.join(RECBOLE_TYPES)})",
                                  line=1, field=name)
        if name in seen:
            raise DataFormatError(path, "duplicate column in the header", line=1, field=name)
        seen.add(name)
        fields.append((name, typ))
    return fields


def _is_float(s: str) -> bool:
    try:
        return not math.isnan(float(s))
    except ValueError:
        return False


def load_recbole(directory: str | Path, *, name: str | None = None, config: DatasetConfig | None = None) -> InteractionData:
    """Load ``<name>.inter`` (required), ``<name>.item`` (optional metadata) from a directory."""
    directory = Path(directory)
    config = config or DatasetConfig()
    stem = directory.name
    inter_path = directory / f"{stem}.inter"
    benchmark = [directory / f"{stem}.{part}.inter" for part in ("train", "valid", "test")]
    if not inter_path.is_file() and all(p.is_file() for p in benchmark):
        # RecBole's benchmark layout, as written by `pap-rec data export`: read the parts in order.
        table = _concat_atomic([read_atomic(p) for p in benchmark])
        inter_path = benchmark[0]
    else:
        if not inter_path.is_file():
            inter_files = sorted(directory.glob("*.inter"))
            if len(inter_files) != 1:
                raise UnknownDatasetError(
                    f"{directory}: expected {stem}.inter, {stem}.train/valid/test.inter or exactly one .inter "
                    f"file, found {[p.name for p in inter_files] or 'none'}"
                )
            inter_path = inter_files[0]
            stem = inter_path.stem
        table = read_atomic(inter_path)
    if len(table) == 0:
        raise DataFormatError(inter_path, "no interactions (only a header)")
    for col in (config.user_col, config.item_col):
        if col not in table.columns:
            raise DataFormatError(inter_path, f"missing column; header has {', '.join(table.columns)}", line=1, field=col)
    _check_nonempty_tokens(table, (config.user_col, config.item_col))
    ts = _optional_float_field(table, config.time_col)
    ratings = _optional_float_field(table, config.rating_col)
    item_info = None
    item_path = directory / f"{stem}.item"
    if item_path.is_file():
        item_info = _recbole_item_info(read_atomic(item_path), config.item_col)
    notes = [] if ts is not None else ["no timestamp field: file order is taken as time order"]
    return build_interactions(
        table.columns[config.user_col],
        table.columns[config.item_col],
        name=name or stem,
        source=f"recbole:{inter_path}",
        timestamps=ts,
        ratings=ratings,
        item_info=item_info,
        notes=notes,
    )


def _concat_atomic(tables: list[AtomicTable]) -> AtomicTable:
    first = tables[0]
    for t in tables[1:]:
        if t.fields != first.fields:
            raise DataFormatError(t.path, f"header differs from {first.path.name}", line=1)
    columns = {name: [v for t in tables for v in t.columns[name]] for name in first.columns}
    return AtomicTable(path=first.path, fields=first.fields, columns=columns,
                       lines=[line for t in tables for line in t.lines])


def _check_nonempty_tokens(table: AtomicTable, names: tuple[str, ...]) -> None:
    for name in names:
        for i, v in enumerate(table.columns[name]):
            if not v.strip():
                raise DataFormatError(table.path, "empty id", line=_atomic_line(table, i), field=name)


def _atomic_line(table: AtomicTable, row: int) -> int:
    return table.lines[row]


def _optional_float_field(table: AtomicTable, name: str | None) -> np.ndarray | None:
    if name is None or name not in table.columns:
        return None
    if table.field_type(name) != "float":
        raise DataFormatError(table.path, f"must be of type float, header says {table.field_type(name)!r}", line=1, field=name)
    return table.floats(name)


def _recbole_item_info(table: AtomicTable, item_col: str) -> pd.DataFrame:
    if item_col not in table.columns:
        raise DataFormatError(table.path, f"missing column; header has {', '.join(table.columns)}", line=1, field=item_col)
    ids = table.columns[item_col]
    seen: set[str] = set()
    for i, v in enumerate(ids):
        if v in seen:
            raise DataFormatError(table.path, f"item {v!r} appears twice", line=_atomic_line(table, i), field=item_col)
        seen.add(v)
    frame = pd.DataFrame({k: v for k, v in table.columns.items() if k != item_col}, index=pd.Index(ids, name=None))
    rename = {}
    for col in frame.columns:
        low = col.lower()
        if "title" in low and "title" not in rename.values():
            rename[col] = "title"
        elif low in ("class", "genre", "genres", "categories", "category") and "genres" not in rename.values():
            rename[col] = "genres"
    return frame.rename(columns=rename)


# ----------------------------------------------------------------------------------------------------
# P5 / OpenP5 sequence files


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


# ----------------------------------------------------------------------------------------------------
# CSV / TSV / Parquet


def load_table(path: str | Path, *, user_col: str = "user_id", item_col: str = "item_id",
               time_col: str | None = "timestamp", rating_col: str | None = None,
               name: str | None = None) -> InteractionData:
    """Interactions from a CSV/TSV (header row) or Parquet file, with a column mapping.

    ``time_col``/``rating_col`` are used when the file has them; a column named explicitly but absent
    is an error only for ``user_col``/``item_col``. Timestamps may be numbers or date strings.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
        frame.index = pd.RangeIndex(1, len(frame) + 1)  # "row N", 1-based
        header_line = None
        frame = frame.astype({c: str for c in (user_col, item_col) if c in frame.columns})
    else:
        sep = "\t" if suffix in (".tsv", ".tab") else ","
        _check_csv_header(path, sep)
        try:
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=False)
        except pd.errors.ParserError as err:
            raise DataFormatError(path, f"cannot parse: {err}") from None
        frame.index = pd.RangeIndex(2, len(frame) + 2)  # file line numbers (header is line 1)
        blank = (frame == "").all(axis=1)
        frame = frame[~blank.to_numpy()]
        header_line = 1
    for col in (user_col, item_col):
        if col not in frame.columns:
            raise DataFormatError(path, f"missing column; the file has {', '.join(map(str, frame.columns))}",
                                  line=header_line, field=col)
    if len(frame) == 0:
        raise DataFormatError(path, "no interactions (only a header)")
    loc = _Locator(row=suffix == ".parquet")
    for col in (user_col, item_col):
        empty = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
        if empty.any():
            n = int(frame.index[empty.to_numpy()][0])
            raise DataFormatError(path, "empty id", field=col, **loc(n))
    ts = None
    if time_col is not None and time_col in frame.columns:
        ts = _parse_times(path, frame[time_col], time_col, loc)
    ratings = None
    if rating_col is not None and rating_col in frame.columns:
        ratings = _parse_numbers(path, frame[rating_col], rating_col, loc)
    notes = [] if ts is not None else ["no timestamp column: file order is taken as time order"]
    return build_interactions(frame[user_col].astype(str).tolist(), frame[item_col].astype(str).tolist(),
                              name=name or path.stem, source=f"table:{path}", timestamps=ts, ratings=ratings,
                              notes=notes)


def _check_csv_header(path: Path, sep: str) -> None:
    import csv

    with path.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh, delimiter=sep), None)
    if not header or not any(h.strip() for h in header):
        raise DataFormatError(path, "empty file (expected a header row)", line=1)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataFormatError(path, "duplicate column in the header", line=1, field=dupes[0])


@dataclass(frozen=True)
class _Locator:
    """Text tables report file lines; Parquet reports 1-based rows."""

    row: bool

    def __call__(self, n: int) -> dict[str, int]:
        return {"row": n} if self.row else {"line": n}


def _first_bad(col: pd.Series, bad: np.ndarray) -> tuple[int, Any]:
    pos = int(np.flatnonzero(bad)[0])
    return int(col.index[pos]), col.iloc[pos]


def _parse_numbers(path: Path, col: pd.Series, name: str, loc: _Locator) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        line, value = _first_bad(col, bad)
        raise DataFormatError(path, f"expected a number, found {value!r}", field=name, **loc(line))
    return values.to_numpy(dtype=np.float64)


def _parse_times(path: Path, col: pd.Series, name: str, loc: _Locator) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(col):  # Parquet timestamp columns
        if col.isna().any():
            line, value = _first_bad(col, col.isna().to_numpy())
            raise DataFormatError(path, "missing timestamp", field=name, **loc(line))
        utc = col.dt.tz_localize("UTC") if col.dt.tz is None else col
        return (utc - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)
    numeric = pd.to_numeric(col, errors="coerce")
    if not numeric.isna().any():
        return numeric.to_numpy(dtype=np.float64)
    dates = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
    bad = dates.isna().to_numpy()
    if bad.any():
        # Report a value that is neither a number nor a date (not a valid number that is no date); if
        # every value is one or the other, the column mixes both kinds: report the first of the rarer.
        num_bad = numeric.isna().to_numpy()
        neither = num_bad & bad
        if neither.any():
            line, value = _first_bad(col, neither)
            raise DataFormatError(path, f"expected a number or a date, found {value!r}", field=name, **loc(line))
        mostly_numbers = num_bad.sum() <= bad.sum()
        line, value = _first_bad(col, num_bad if mostly_numbers else bad)
        kind = "number" if mostly_numbers else "date"
        raise DataFormatError(path, f"expected a {kind} like the other rows, found {value!r}", field=name,
                              **loc(line))
    return (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)
