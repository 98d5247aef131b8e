"""Which dataset to load and how: :class:`DatasetConfig` (a frozen config) and its source kinds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pap_rec_core.choices import Choice
from pap_rec_core.configs import known_fields


class SourceKind(Choice):
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
