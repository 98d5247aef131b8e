"""``pap-rec``: the command-line client of the library.

Subcommands: ``data info`` (statistics table), ``data export`` (split as RecBole atomic files),
``train-rlm`` (train the embedded RLM), ``evaluate`` (metric table of an RLM with a prompt),
``search`` (PAP-REC's prompt search, resumable), ``baselines`` (RecBole models on our split, scored
by our evaluator), ``export-plots`` (a run's figures and tables), ``reproduce`` (every notebook). Every subcommand is a thin wrapper over ``pap_rec_core`` functions; bad input
exits with status 2 and a one-line message naming file, line and field.

Layout: :mod:`~pap_rec_core.cli.parser` (the options), :mod:`~pap_rec_core.cli.commands` (one function
per subcommand), :mod:`~pap_rec_core.cli.args` (the option parsers they share).
"""

from __future__ import annotations

import logging
import sys
from typing import Sequence

from pap_rec_core import PapRecError
from pap_rec_core.cli.args import parse_families, parse_settings
from pap_rec_core.cli.parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (PapRecError, FileNotFoundError) as err:
        print(f"pap-rec: error: {err}", file=sys.stderr)
        return 2


__all__ = ["PapRecError", "build_parser", "main", "parse_families", "parse_settings"]
