"""Data layer: loaders for every supported format, the leave-one-out split, item indices, statistics."""

from pap_rec_core.data.errors import DataFormatError, PickleNotTrustedError, UnknownDatasetError, UnknownUserError
from pap_rec_core.data.export import export_recbole
from pap_rec_core.data.interactions import InteractionData, build_interactions
from pap_rec_core.data.item_index import IndexMode, ItemIndex, build_item_index
from pap_rec_core.data.loaders import (
    dataset_config_for_path,
    BUILTIN_DATASETS,
    DatasetConfig,
    SourceKind,
    builtin_dataset_dir,
    load_dataset,
    load_openp5,
    load_p5_dir,
    load_recbole,
    load_table,
    read_atomic,
    read_sequence_file,
)
from pap_rec_core.data.split import NO_TARGET, Split, SplitConfig, Stage, leave_one_out
from pap_rec_core.data.stats import DatasetStats, dataset_stats, sequence_length_histogram

__all__ = [
    "BUILTIN_DATASETS", "DataFormatError", "DatasetConfig", "DatasetStats", "IndexMode", "InteractionData",
    "ItemIndex", "NO_TARGET", "PickleNotTrustedError", "SourceKind", "Split", "SplitConfig", "Stage",
    "UnknownDatasetError", "UnknownUserError", "build_interactions", "build_item_index", "builtin_dataset_dir",
    "dataset_config_for_path", "dataset_stats", "export_recbole", "leave_one_out", "load_dataset", "load_openp5", "load_p5_dir",
    "load_recbole", "load_table", "read_atomic", "read_sequence_file", "sequence_length_histogram",
]
