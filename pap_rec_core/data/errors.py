"""Errors raised on bad input data: each names the file, the line (1-based) and the field."""

from __future__ import annotations

from pathlib import Path

from pap_rec_core import PapRecError


class DataFormatError(PapRecError, ValueError):
    """A data file is malformed. ``str(err)`` reads ``path:line: field 'x': what is wrong``.

    >>> str(DataFormatError("data.txt", "non-integer id 'x'", line=7, field="item_id"))
    "data.txt:7: field 'item_id': non-integer id 'x'"
    """

    def __init__(self, path: str | Path, message: str, *, line: int | None = None, field: str | None = None,
                 row: int | None = None):
        self.path = str(path)
        self.line = line  # 1-based line of a text file
        self.row = row  # 1-based data row of a binary table (Parquet), where lines do not exist
        self.field = field
        self.reason = message
        where = self.path if line is None else f"{self.path}:{line}"
        where = where if row is None else f"{where} (row {row})"
        what = message if field is None else f"field '{field}': {message}"
        super().__init__(f"{where}: {what}")


class PickleNotTrustedError(PapRecError, PermissionError):
    """A pickle file would have to be loaded; pickles can run code, so the caller must opt in."""


class UnknownUserError(PapRecError, KeyError):
    """A user id that the dataset does not contain."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


class UnknownDatasetError(PapRecError, FileNotFoundError):
    """A dataset name or path that does not resolve to loadable files."""
