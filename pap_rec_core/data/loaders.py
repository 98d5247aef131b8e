"""Loaders: RecBole atomic files (``recbole_atomic.py``), P5 preprocessed directories and OpenP5
``user_sequence.txt`` (``p5.py``), CSV/TSV/Parquet (``tables.py``); which one, from a
:class:`DatasetConfig` (``dataset_config.py``). This module dispatches and re-exports them.

Every loader returns one :class:`InteractionData`. Malformed input raises :class:`DataFormatError`
naming file, line and field; nothing is dropped without a count in ``InteractionData.notes`` (logged).
"""

from __future__ import annotations

from pap_rec_core.data.dataset_config import DatasetConfig, SourceKind, dataset_config_for_path
from pap_rec_core.data.interactions import InteractionData
from pap_rec_core.data.p5 import P5_REVIEW_PICKLES, load_openp5, load_p5_dir, read_sequence_file
from pap_rec_core.data.recbole_atomic import (
    BUILTIN_DATASETS,
    RECBOLE_TYPES,
    AtomicTable,
    builtin_dataset_dir,
    load_recbole,
    read_atomic,
    resolve_recbole_dir,
)
from pap_rec_core.data.tables import load_table

__all__ = ["AtomicTable", "BUILTIN_DATASETS", "DatasetConfig", "P5_REVIEW_PICKLES", "RECBOLE_TYPES", "SourceKind",
           "builtin_dataset_dir", "dataset_config_for_path", "load_dataset", "load_openp5", "load_p5_dir",
           "load_recbole", "load_table", "read_atomic", "read_sequence_file", "resolve_recbole_dir"]


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
