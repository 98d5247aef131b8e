"""The paper's findings, measured here: manual vs automatic vs personalised prompts, and how well the
surrogates on validation predict the test metric.

    .venv/bin/python benchmarks/search_findings.py --model models/ml-100k --iterations 5 \\
        --out benchmarks/results/search_findings_ml-100k

For each personal-slot count in ``--personal`` (default 0,1,2,3) a search with ``--shared`` shared
slots runs into ``--runs-dir`` (resumable: rerunning skips finished searches), then every prompt —
manual 2-3, unseen manual 2-13 and each search's — is evaluated on test (first-token ranking over all
items, history masked) with paired bootstrap 95% CIs against manual 2-3, on the searched users.
Then, over the candidate prompts scored during the shared-only search (at most ``--max-candidates``),
the Spearman correlation of each surrogate on validation (exact, beam, likelihood) with test NDCG@10.
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pap_rec_core.experiments import surrogate_correlation  # noqa: E402

KEYS = ["hit@5", "ndcg@5", "hit@10", "ndcg@10"]


def run_name(n_shared: int, n_personal: int, rule: str, holdout: int, surrogate: str = "exact",
             shared_holdout: int = 0) -> str:
    """``s5p1`` for the paper's rule and the exact surrogate; ``s5p1-tiebreak-h3`` for another rule / a
    personal holdout, ``-sh3`` for a shared holdout, ``-ndcg`` for another surrogate."""
    name = f"s{n_shared}p{n_personal}"
    if n_personal and rule != "strict":
        name += "-tiebreak"
    if n_personal and holdout:
        name += f"-h{holdout}"
    if shared_holdout:
        name += f"-sh{shared_holdout}"
    if surrogate != "exact":
        name += f"-{surrogate}"
    return name


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the embedded models/ml-100k)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/search_findings_ml-100k"))
    p.add_argument("--runs-dir", type=Path, default=Path("runs/findings"))
    p.add_argument("--shared", type=int, default=5)
    p.add_argument("--personal", default="0,1,2,3", help="personal-slot counts, comma-separated")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--surrogate", default="exact", choices=["exact", "ndcg", "beam", "likelihood"])
    p.add_argument("--personal-rule", default="strict", choices=["strict", "likelihood-tiebreak"])
    p.add_argument("--personal-holdout", type=int, default=0, metavar="N",
                   help="personal rounds also judge on each user's last N training items")
    p.add_argument("--shared-holdout", type=int, default=0, metavar="N",
                   help="shared rounds also judge on each user's last N training items")
    p.add_argument("--judge-holdouts", default="0", metavar="N,...",
                   help="held-out training items of the judges whose correlation with test is measured (default: 0)")
    p.add_argument("--users", type=int, default=None, help="first N validation users (default: all)")
    p.add_argument("--max-candidates", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)


    from pap_rec_core.evaluation import EvaluationConfig, compare
    from pap_rec_core.rlm import embedded_model_dir, load_rlm_with_split
    from pap_rec_core.rlm.evaluate import evaluate_rlm
    from pap_rec_core.search import SearchConfig, run_search

    model_dir = args.model or str(embedded_model_dir())
    bundle, split = load_rlm_with_split(model_dir, device=args.device)
    t_start = time.perf_counter()
    runs = {}
    for n_personal in [int(x) for x in args.personal.split(",")]:
        config = SearchConfig(n_shared=args.shared, n_personal=n_personal, iterations=args.iterations,
                              surrogate=args.surrogate, personal_rule=args.personal_rule, max_users=args.users,
                              personal_holdout=args.personal_holdout if n_personal else 0,
                              shared_holdout=args.shared_holdout, seed=args.seed)
        run_dir = args.runs_dir / run_name(args.shared, n_personal, args.personal_rule, args.personal_holdout,
                                           args.surrogate, args.shared_holdout)
        t0 = time.perf_counter()
        result = run_search(bundle, split, config, run_dir)
        runs[n_personal] = (run_dir, result, time.perf_counter() - t0)
        print(f"search s{args.shared}p{n_personal}: value {result.value:.4f}, {result.iterations} iterations")

    users = np.asarray(next(iter(runs.values()))[1].users)
    econf = EvaluationConfig(n_resamples=2000, seed=args.seed)
    specs = ["manual:2-3", "manual:2-13"] + [f"run:{d}" for d, _, _ in runs.values()]
    results = {s: evaluate_rlm(bundle, split, "test", s, method="first-token", users=users, config=econf)
               for s in specs}
    rows = []
    labels = {"manual:2-3": "manual 2-3", "manual:2-13": "manual 2-13 (unseen)"}
    rule = "" if args.personal_rule == "strict" and not args.personal_holdout else (
        f" ({args.personal_rule}" + (f", holdout {args.personal_holdout}" if args.personal_holdout else "") + ")")
    labels.update({f"run:{d}": f"auto, {args.shared} shared + {n} personal{rule if n else ''}"
                   for n, (d, _, _) in runs.items()})
    ref = results["manual:2-3"]
    for spec, res in results.items():
        row = {"prompt": labels[spec], "spec": spec, **{k: res.summary()[k] for k in KEYS}}
        if spec != "manual:2-3":
            for d in compare(ref, res):
                if d.metric in KEYS:
                    row[f"{d.metric} diff"] = [d.diff, d.low, d.high, d.p_value]
        rows.append(row)

    # surrogate vs test over the candidates of the shared-only search (or the first run)
    first_dir, first_result, _ = runs[min(runs)]
    correlations, candidates = {}, []
    if first_result.config.n_personal == 0:
        frame, corr = surrogate_correlation(bundle, split, first_result, users, args.max_candidates, econf,
                                            tuple(int(x) for x in args.judge_holdouts.split(",")))
        candidates = list(frame.candidate)
        if len(frame) >= 3:
            for row in corr.itertuples(index=False):
                correlations[row.surrogate] = {"spearman": float(row[1]), "valid": list(frame[f"valid {row.surrogate}"])}
            correlations["test_ndcg@10"] = list(frame["test ndcg@10"])

    report = {"model": model_dir, "dataset": split.data.name, "users": len(users), "split": "test, leave-one-out",
              "ranking": "first-token", "search": {k: v for k, v in vars(args).items() if k not in ("out", "runs_dir")},
              "runs": {n: {"run_dir": str(d), "valid_value": r.value, "iterations": r.iterations, "seconds": s,
                           "shared_text": [bundle.tokenizer.token_text(t) for t in r.shared]}
                       for n, (d, r, s) in runs.items()},
              "rows": rows, "surrogate_vs_test": correlations, "seconds": time.perf_counter() - t_start,
              "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads", "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    lines = [f"# PAP-REC findings: {report['dataset']}, {len(users)} users, test", "",
             f"Searches: {args.shared} shared slots, surrogate `{args.surrogate}`, {args.iterations} iterations, "
             f"personal rule `{args.personal_rule}`, personal holdout {args.personal_holdout}, shared holdout "
             f"{args.shared_holdout}, seed {args.seed}; model `{model_dir}`; first-token ranking "
             f"over all items, history masked; paired bootstrap 95% CIs vs manual 2-3 (2,000 resamples). "
             f"Regenerate: `python benchmarks/search_findings.py {shlex.join(sys.argv[1:] if argv is None else argv)}`.", "",
             "| prompt | hit@5 | ndcg@5 | hit@10 | ndcg@10 | Δndcg@10 vs manual 2-3 [95% CI] | p |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        d = r.get("ndcg@10 diff")
        ci = f"{d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}] | {d[3]:.3f}" if d else " | "
        lines.append(f"| {r['prompt']} | " + " | ".join(f"{r[k]:.4f}" for k in KEYS) + f" | {ci} |")
    lines.append("")
    for n, info in report["runs"].items():
        lines.append(f"- {Path(info['run_dir']).name}: shared tokens `{' '.join(info['shared_text'])}`, validation surrogate "
                     f"{info['valid_value']:.4f}, {info['iterations']} iterations, {info['seconds']:.0f} s.")
    if correlations:
        lines.append("")
        lines.append(f"Surrogate on validation vs test NDCG@10 over {len(candidates)} candidate prompts of the "
                     "shared-only search (Spearman): " + ", ".join(
                         f"{k} {v['spearman']:+.3f}" for k, v in correlations.items() if isinstance(v, dict)) + ".")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
