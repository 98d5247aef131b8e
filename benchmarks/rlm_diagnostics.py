"""Why is the embedded RLM weak? Diagnostic trainings on ml-100k (issue 3), one configuration per call.

    python benchmarks/rlm_diagnostics.py NAME [--reverse-history] [key=value ...]   # TrainConfig overrides

Trains the ``demo`` preset (``--preset``) with the overrides (Python literals, e.g. ``family_weights='(("sequential", 1.0),)'``
``max_steps=1000 eval_every=200 time_limit_s=None``) into ``/tmp/rlm_diagnostics/NAME`` on one CPU thread
and prints the validation curve (template 2-3, first-token NDCG@10 on all 943 users) as one JSON line.
``--reverse-history`` renders every item list most recent first (training and validation alike), so that
the most recent item always sits at the same word position — a probe of whether the encoder-decoder
finds recency in a chronological prompt. Diagnostics only: the product's prompts stay chronological (P5's).
"""

from __future__ import annotations

import argparse
import ast
import json
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name")
    p.add_argument("overrides", nargs="*", help="TrainConfig key=value (Python literals)")
    p.add_argument("--reverse-history", action="store_true")
    p.add_argument("--preset", default="demo", help="the preset the overrides apply to (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="/tmp/rlm_diagnostics")
    args = p.parse_intermixed_args(argv)
    import torch

    from pap_rec_core.data import DatasetConfig, SourceKind
    from pap_rec_core.rlm.training import train_preset

    if args.reverse_history:
        import pap_rec_core.prompts.layout as layout
        import pap_rec_core.prompts.render as render

        chronological = render.item_list_parts

        def most_recent_first(items):
            return chronological(list(items)[::-1])

        render.item_list_parts = most_recent_first
        layout.item_list_parts = most_recent_first
    overrides = {}
    for kv in args.overrides:
        k, v = kv.split("=", 1)
        overrides[k] = ast.literal_eval(v)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    _, report = train_preset(DatasetConfig(kind=SourceKind.RECBOLE, path="ml-100k"), args.preset,
                             f"{args.out}/{args.name}",
                             seed=0, progress=False, device="cpu", **overrides)
    print(json.dumps({"name": args.name, "preset": args.preset, "reverse_history": args.reverse_history,
                      "overrides": {k: repr(v) for k, v in overrides.items()}, "curve": report.curve,
                      "best_valid_ndcg10": report.best_valid_ndcg10, "best_step": report.best_step,
                      "wall_s": time.time() - t0}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
