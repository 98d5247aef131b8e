"""Which app search settings make the tokens visibly change on the embedded model? (issue 14, item 3)

    python benchmarks/demo_settings.py                       # the embedded model, picked user 42 + 199 others
    python benchmarks/demo_settings.py --users 200 --picked 42 --iterations 2 --threads 1

Runs the search the workbench's form starts (the picked user first plus a seeded sample of others,
``pap_rec_core.search.users.sample_user_ids``; 5 shared + 1 personal token, top-5, seed 0) under a few
settings of the surrogate, the personal rule and the held-out items, and records for each: the shared
tokens accepted, the users whose personal token changed per round (and whether the picked user's did),
iterations run and why it stopped, seconds, and test NDCG@10 of the found prompt on the searched users
next to manual 2-3 (paired bootstrap; 200 users is a small sample: this table is about visible change, the
findings report is about effects). Writes ``<out>.json`` and ``<out>.md``; each setting's run goes to
``<runs-dir>/<name>`` and is resumed (or just read) when run again.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> SearchConfig overrides on top of the app's form defaults
SETTINGS = {
    "exact, strict (paper)": {},
    "exact, strict, 3 held-out": {"shared_holdout": 3, "personal_holdout": 3},
    "exact, likelihood tie-break": {"personal_rule": "likelihood-tiebreak"},
    "likelihood, strict": {"surrogate": "likelihood"},
    "exact, tie-break, 3 held-out": {"personal_rule": "likelihood-tiebreak", "shared_holdout": 3,
                                     "personal_holdout": 3},
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")


def measure(bundle, split, config, run_dir: Path, picked: int) -> dict:
    from pap_rec_core.evaluation.evaluator import compare
    from pap_rec_core.scoring import PromptSpec, evaluate_rlm
    from pap_rec_core.search import run_search
    from pap_rec_core.search.events import RunTrace, TokenAccepted

    t0 = time.perf_counter()
    users = run_search(bundle, split, config, run_dir).users
    seconds = time.perf_counter() - t0
    trace = RunTrace.read(run_dir)
    start, done, last = trace.started, trace.finished, trace.iterations
    row_of_picked = list(start.users).index(picked)
    accepted = [f"slot {e.slot}: {e.before_text!r} -> {e.after_text!r}" for e in trace.of(TokenAccepted)]
    rounds = trace.users_changed
    picked_changed = list(done.personal[row_of_picked]) != list(start.personal[row_of_picked])
    stop = ("changed nothing in iteration %d" % (last[-1].iteration + 1)) if last and last[-1].converged \
        else f"budget ({config.iterations} iterations)"
    found = evaluate_rlm(bundle, split, "test", PromptSpec("run", str(run_dir)), users=users)
    manual = evaluate_rlm(bundle, split, "test", "manual:2-3", users=found.users)
    diff = next(d for d in compare(manual, found) if d.metric == "ndcg@10")
    return {"config": config.to_dict(), "run_dir": str(run_dir), "search_seconds": done.seconds or seconds,
            "iterations_run": len(last), "stop": stop, "shared_accepted": accepted,
            "shared_before": start.shared, "shared_after": done.shared, "users_changed_per_round": rounds,
            "picked_user_changed": bool(picked_changed),
            "test_ndcg10": found.summary()["ndcg@10"], "manual_2_3_ndcg10": manual.summary()["ndcg@10"],
            "vs_manual": {"diff": diff.diff, "low": diff.low, "high": diff.high, "p": diff.p_value},
            "users": len(users)}


def main(argv=None) -> int:
    import torch

    from pap_rec_core.rlm import embedded_model_dir, load_rlm_with_split
    from pap_rec_core.search import SearchConfig
    from pap_rec_core.search.users import sample_user_ids

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the embedded models/ml-100k)")
    p.add_argument("--users", type=int, default=200, help="users searched, the picked one among them")
    p.add_argument("--picked", default="42", help="the raw id of the picked user (default: %(default)s)")
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs-dir", default=str(ROOT / "runs" / "demo-settings"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "demo_settings_ml-100k"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = Path(args.model) if args.model else embedded_model_dir()
    bundle, split = load_rlm_with_split(path, device="cpu")
    picked = split.data.user_index(args.picked)
    base = SearchConfig(n_shared=5, n_personal=1, iterations=args.iterations, top_k=5, seed=args.seed,
                        user_ids=sample_user_ids(split, picked, args.users, args.seed))
    rows = {}
    for name, overrides in SETTINGS.items():
        rows[name] = measure(bundle, split, replace(base, **overrides), Path(args.runs_dir) / slug(name), picked)
        print(name, {k: rows[name][k] for k in ("shared_accepted", "users_changed_per_round", "stop")}, flush=True)
    model_dir = args.model or str(path.relative_to(ROOT))
    result = {"model": model_dir, "dataset": split.data.name, "picked_user": args.picked, "users": args.users,
              "iterations": args.iterations, "seed": args.seed, "threads": args.threads,
              "machine": platform.processor() or platform.machine(), "settings": rows}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# App search settings that change tokens: {split.data.name}, model `{model_dir}`", "",
             f"`python benchmarks/demo_settings.py --users {args.users} --picked {args.picked} --iterations "
             f"{args.iterations} --threads {args.threads}` — the workbench form's search (user {args.picked} + "
             f"{args.users - 1} others drawn with seed {args.seed}; 5 shared + 1 personal token, top-5, "
             f"{args.iterations} iterations), one CPU thread. Test NDCG@10 on the searched users, paired against "
             "manual 2-3 on the same users (95% bootstrap CI; a small sample).", "",
             "| setting | shared tokens accepted | users changed per personal round | user "
             f"{args.picked} changed | stop | seconds | test NDCG@10 | vs 2-3 [95% CI] |",
             "|---|---:|---|---|---|---:|---:|---|"]
    for name, r in rows.items():
        v = r["vs_manual"]
        lines.append(f"| {name} | {len(r['shared_accepted'])} | {', '.join(map(str, r['users_changed_per_round'])) or '-'} "
                     f"| {'yes' if r['picked_user_changed'] else 'no'} | {r['stop']} | {r['search_seconds']:.0f} "
                     f"| {r['test_ndcg10']:.4f} | {v['diff']:+.4f} [{v['low']:+.4f}, {v['high']:+.4f}] |")
    lines += ["", "Manual 2-3 on these users: " + f"{next(iter(rows.values()))['manual_2_3_ndcg10']:.4f}.", ""]
    for name, r in rows.items():
        lines.append(f"- {name}: " + ("; ".join(r["shared_accepted"]) or "no shared token accepted"))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
