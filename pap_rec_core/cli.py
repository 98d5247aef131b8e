"""``pap-rec``: the command-line client of the library.

Subcommands (this release): ``data info`` (statistics table) and ``data export`` (split as RecBole
atomic files). Every subcommand is a thin wrapper over ``pap_rec_core`` functions; bad input exits
with status 2 and a one-line message naming file, line and field.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from pap_rec_core import PapRecError, __version__

log = logging.getLogger("pap_rec_core.cli")


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose a dataset source (shared by every subcommand that reads data)."""
    group = parser.add_argument_group("dataset source (choose one; default: --dataset ml-100k)")
    src = group.add_mutually_exclusive_group()
    src.add_argument("--dataset", metavar="NAME|DIR",
                     help="builtin dataset (ml-100k, bundled with recbole) or a directory of RecBole atomic files")
    src.add_argument("--p5-dir", metavar="DIR", help="P5 preprocessed directory (sequential_data.txt, datamaps.json)")
    src.add_argument("--openp5-file", metavar="FILE", help="OpenP5 user_sequence.txt")
    src.add_argument("--csv", metavar="FILE", help="CSV/TSV/Parquet interactions (see --user-col ...)")
    group.add_argument("--user-col", default="user_id", help="user column/field (default: %(default)s)")
    group.add_argument("--item-col", default="item_id", help="item column/field (default: %(default)s)")
    group.add_argument("--time-col", default="timestamp", help="timestamp column, used if present (default: %(default)s)")
    group.add_argument("--rating-col", default="rating", help="rating column, used if present (default: %(default)s)")
    group.add_argument("--name", help="display name of the dataset (default: file/directory name)")
    group.add_argument("--trust-pickle", action="store_true",
                       help="allow loading P5 review pickles (review_splits.pkl/exp_splits.pkl); pickles can run code")


def dataset_config_from_args(args: argparse.Namespace):
    from pap_rec_core.data import DatasetConfig, SourceKind

    common = dict(name=args.name, user_col=args.user_col, item_col=args.item_col, time_col=args.time_col,
                  rating_col=args.rating_col, trust_pickle=args.trust_pickle)
    if args.p5_dir:
        return DatasetConfig(kind=SourceKind.P5, path=args.p5_dir, **common)
    if args.openp5_file:
        return DatasetConfig(kind=SourceKind.OPENP5, path=args.openp5_file, **common)
    if args.csv:
        return DatasetConfig(kind=SourceKind.TABLE, path=args.csv, **common)
    return DatasetConfig(kind=SourceKind.RECBOLE, path=args.dataset or "ml-100k", **common)


def cmd_data_info(args: argparse.Namespace) -> int:
    from pap_rec_core.data import dataset_stats, load_dataset

    data = load_dataset(dataset_config_from_args(args))
    stats = dataset_stats(data)
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2))
    else:
        print(stats.to_frame().to_string(index=False, header=False))
        for note in data.notes:
            print(f"note: {note}")
    return 0


def cmd_data_export(args: argparse.Namespace) -> int:
    from pap_rec_core.data import SplitConfig, build_item_index, export_recbole, leave_one_out, load_dataset

    data = load_dataset(dataset_config_from_args(args))
    try:
        split = leave_one_out(data, SplitConfig(n_negatives=args.negatives, seed=args.seed))
    except ValueError as err:  # e.g. fewer unseen items than --negatives: bad input, not a crash
        raise PapRecError(str(err)) from None
    index = build_item_index(data, args.item_index, seed=args.seed)
    if index.mode.leaky:
        log.warning("the sequential item index leaks the answer (P5's numbering); use it only to show the leak")
    paths = export_recbole(split, index, args.out, name=args.name)
    for p in paths:
        print(p)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pap-rec", description="PAP-REC Workbench: personalized automatic prompts "
                                     "for P5-style recommendation language models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="inspect and export datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    info = data_sub.add_parser("info", help="print dataset statistics (users, items, interactions, density, lengths)")
    add_dataset_arguments(info)
    info.add_argument("--json", action="store_true", help="print the statistics as JSON")
    info.set_defaults(func=cmd_data_info)

    export = data_sub.add_parser("export", help="write the leave-one-out split as RecBole atomic files")
    add_dataset_arguments(export)
    export.add_argument("--format", choices=["recbole"], default="recbole", help="output format (default: %(default)s)")
    export.add_argument("--out", required=True, metavar="DIR", help="output directory (files go to DIR/<name>/)")
    export.add_argument("--item-index", choices=["random", "sequential", "given"], default="random",
                        help="textual item ids: random (default), sequential (P5's, leaky), given (file ids)")
    export.add_argument("--seed", type=int, default=0, help="seed of the item index and negatives (default: 0)")
    export.add_argument("--negatives", type=int, default=99, help="negatives per user for the direct task (default: 99)")
    export.set_defaults(func=cmd_data_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except PapRecError as err:
        print(f"pap-rec: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
