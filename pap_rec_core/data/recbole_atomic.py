"""RecBole atomic files (``.inter``, ``.item``, ``.user``): reading, checking, the builtin datasets that ship inside the
``recbole`` package."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from pap_rec_core.data.dataset_config import DatasetConfig
from pap_rec_core.data.errors import DataFormatError, UnknownDatasetError
from pap_rec_core.data.interactions import InteractionData, build_interactions

BUILTIN_DATASETS = ("ml-100k",)  # shipped inside the recbole package (dataset_example/)
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")


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
