"""Does the search have anything to find on a model? One iteration of the default search.

    python benchmarks/search_headroom.py                       # the embedded model, 200 validation users
    python benchmarks/search_headroom.py --model runs/rlm --users 200

Runs ``PapRecSearch`` with the default ``SearchConfig`` (exact surrogate, 5 shared slots, top-5) for one
iteration on the first ``--users`` validation users and records, per slot tried, the candidates'
surrogate values: how many distinct values they take, the spread, and whether a token was accepted.
A prompt-deaf model gives every candidate the same value (nothing to find); issue 12's headroom goal
is at least one accepted token and a slot whose candidates are not all equal. Writes ``<out>.json``
and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def headroom(bundle, split, users: int, seed: int = 0, personal: int = 0) -> dict:
    from pap_rec_core.search import PapRecSearch, SearchConfig

    config = SearchConfig(iterations=1, max_users=users, seed=seed, n_personal=personal)
    t0 = time.perf_counter()
    events = list(PapRecSearch(bundle, split, config).events())
    slots = []
    for e in events:
        if e.event == "candidates_scored":
            values = [float(v) for v in e.values]
            slots.append({"slot": e.slot, "current_value": float(e.current_value), "values": values,
                          "candidates_text": list(e.candidates_text), "distinct": len({round(v, 9) for v in values}),
                          "spread": max(values) - min(values) if values else 0.0})
    accepted = [{"slot": e.slot, "before": e.before_text, "after": e.after_text, "value_before": e.value_before,
                 "value_after": e.value_after} for e in events if e.event == "token_accepted"]
    evaluated = {e.label: e.metrics for e in events if e.event == "evaluated"}
    return {"config": config.to_dict(), "users": users, "seconds": time.perf_counter() - t0, "slots": slots,
            "accepted": accepted, "evaluated": evaluated,
            "slots_with_unequal_candidates": sum(s["distinct"] > 1 for s in slots),
            "goal_met": bool(accepted) and any(s["distinct"] > 1 for s in slots)}


def main(argv=None) -> int:
    import torch

    from pap_rec_core.rlm import embedded_model_dir, load_rlm_with_split

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the embedded models/ml-100k)")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "search_headroom_ml-100k"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    path = Path(args.model) if args.model else embedded_model_dir()
    model_dir = args.model or str(path.relative_to(ROOT))  # (as shown in the report)
    bundle, split = load_rlm_with_split(path, device="cpu")
    result = {"model": model_dir, **headroom(bundle, split, args.users, args.seed)}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# Search headroom: {split.data.name}, {args.users} validation users", "",
             f"`python benchmarks/search_headroom.py --users {args.users}` — model `{model_dir}`; one iteration of the "
             f"default search (exact surrogate, {result['config']['n_shared']} shared slots, top-{result['config']['top_k']}), "
             f"{result['seconds']:.0f} s. Goal (issue 12): a token accepted and a slot whose candidates' surrogate "
             f"values are not all equal — **{'met' if result['goal_met'] else 'not met'}**.", "",
             "| slot | current value | candidates (surrogate value) | distinct values |", "|---:|---:|---|---:|"]
    for s in result["slots"]:
        cands = ", ".join(f"`{t}` {v:.4f}" for t, v in zip(s["candidates_text"], s["values"]))
        lines.append(f"| {s['slot']} | {s['current_value']:.4f} | {cands} | {s['distinct']} |")
    lines += ["", "Accepted: " + ("; ".join(f"slot {a['slot']}: `{a['before']}` -> `{a['after']}` "
                                         f"({a['value_before']:.4f} -> {a['value_after']:.4f})" for a in result["accepted"])
                                 or "none")]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
