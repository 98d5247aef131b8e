"""Interaction tables: CSV, TSV, Parquet, with clear errors naming the file, line and column."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pap_rec_core.data.errors import DataFormatError
from pap_rec_core.data.interactions import InteractionData, build_interactions


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
