"""The option parsers of ``pap-rec``: the dataset source shared by every subcommand, ``--families``,
``--set FIELD=VALUE`` and ``--user-ids``. Bad values raise :class:`~pap_rec_core.PapRecError` naming the option."""

from __future__ import annotations

import argparse
from pathlib import Path

from pap_rec_core import PapRecError


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


def dataset_given(args: argparse.Namespace) -> bool:
    return any(getattr(args, a, None) for a in ("dataset", "p5_dir", "openp5_file", "csv"))


def parse_families(text: str) -> tuple[tuple[str, float], ...]:
    """``sequential=1,history=0.2`` -> the training's family weights (unknown names are an error)."""
    from pap_rec_core.prompts.templates import Family

    known = [f.value for f in Family]
    out = []
    for item in text.split(","):
        name, sep, weight = item.strip().partition("=")
        if name not in known:
            raise PapRecError(f"--families: unknown family {name!r}; known: {', '.join(known)}")
        try:
            w = float(weight) if sep else 1.0
        except ValueError:
            raise PapRecError(f"--families: weight of {name} is not a number: {weight!r}") from None
        if w < 0:
            raise PapRecError(f"--families: weight of {name} must be >= 0")
        out.append((name, w))
    return tuple(out)


def parse_settings(specs: list[str]) -> dict:
    """``--set FIELD=VALUE`` pairs as TrainConfig overrides; VALUE is read as JSON when it parses (numbers,
    true/false, null, lists), else as a string."""
    import dataclasses
    import json

    from pap_rec_core.rlm.training import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    known = set(fields) - {"preset", "seed", "device"}  # (--seed and --device have their own options)
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise PapRecError(f"--set {spec!r}: expected FIELD=VALUE, e.g. --set dropout_rate=0.2")
        if name not in known:
            raise PapRecError(f"--set: unknown training field {name!r}; known: {', '.join(sorted(known))}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        if isinstance(parsed, str) and "tuple" in str(fields[name].type):  # comma lists: templates=2-3,C-1
            items = parsed.split(",") if parsed else []
            if name == "family_weights":  # family_weights=sequential:0.7,conditional:0.3
                try:
                    items = [[k, float(w)] for k, w in (x.split(":") for x in items)]
                except ValueError:
                    raise PapRecError(f"--set family_weights={value!r}: expected FAMILY:WEIGHT,... "
                                      "(e.g. sequential:0.7,conditional:0.3)") from None
            parsed = items
        out[name] = tuple(tuple(x) if isinstance(x, list) else x for x in parsed) if isinstance(parsed, list) else parsed
    return out


def user_ids(spec: str | None) -> tuple[str, ...] | None:
    """``--user-ids``: ``196,186`` or ``@users.txt`` (one id per line, blank lines ignored)."""
    if spec is None:
        return None
    if spec.startswith("@"):
        path = Path(spec[1:])
        if not path.is_file():
            raise PapRecError(f"--user-ids {spec}: {path} does not exist")
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        ids = [x.strip() for x in spec.split(",") if x.strip()]
    if not ids:
        raise PapRecError(f"--user-ids {spec!r}: no user id given")
    return tuple(ids)
