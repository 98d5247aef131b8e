"""The paper's findings, measured here: manual vs automatic vs personalised prompts, the RLM against the
baselines, how well each judge on validation predicts the test metric, and what a search costs.

    .venv/bin/python benchmarks/search_findings.py --iterations 5 --seeds 0,1,2 --personal 0,1,2,3 \\
        --variants likelihood-tiebreak,strict:h3 --direct --judge-holdouts 0,3 \\
        --baselines benchmarks/results/baselines_ml-100k.json --out benchmarks/results/findings_ml-100k
    .venv/bin/python benchmarks/search_findings.py --render benchmarks/results/findings_ml-100k.json

A thin CLI over ``pap_rec_core.findings`` (the arms, the rows, the claims and the judges are described
there; notebooks 02 and 05 call the same ``compute_findings``). Searches go to ``--runs-dir`` and resume
when rerun. Writes ``<out>.json`` and ``<out>.md``; ``--render`` rewrites the markdown of a stored JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from pap_rec_core.findings import (  # noqa: E402  (re-exported for old imports)
    FindingsConfig, compute_findings, parse_variants, run_name, verdict)
from pap_rec_core.findings_report import findings_markdown, fmt_diff  # noqa: E402,F401


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the embedded models/ml-100k)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/findings_ml-100k"))
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
    p.add_argument("--variants", default="", metavar="RULE[:hN],...",
                   help="more personal rules, each searched with 1 personal slot beside the main rule, "
                        "e.g. likelihood-tiebreak,strict:h3")
    p.add_argument("--direct", action="store_true",
                   help="also the direct task: manual 5-7 and a shared-only search, on the fixed 1+99 candidates")
    p.add_argument("--judge-holdouts", default="0", metavar="N,...",
                   help="held-out training items of the judges whose correlation with test is measured (default: 0)")
    p.add_argument("--judges", default="", metavar="NAME,...",
                   help="the judges by name instead of --judge-holdouts, e.g. exact,ndcg,likelihood,likelihood+h10")
    p.add_argument("--users", type=int, default=None, help="first N validation users (default: all)")
    p.add_argument("--max-candidates", type=int, default=40,
                   help="candidate prompts for the judge correlation, pooled over the seeds' shared-only searches")
    p.add_argument("--seeds", default="0", help="search seeds, comma-separated (default: 0)")
    p.add_argument("--baselines", default="", metavar="JSON,...",
                   help="run_baselines.py JSONs on the same split: their test rows are shown (unpaired); a "
                        "later file's model replaces an earlier one's")
    p.add_argument("--sasrec", type=Path, default=None, help="(kept for old commands) the same as --baselines FILE")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--render", type=Path, default=None, metavar="JSON",
                   help="only rewrite the markdown of a stored report (next to it) and exit")
    args = p.parse_args(argv)
    if args.render:
        report = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(findings_markdown(report))
        print(args.render.with_suffix(".md").read_text())
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        config = FindingsConfig(
            n_shared=args.shared, personal=tuple(int(x) for x in args.personal.split(",")), iterations=args.iterations,
            surrogate=args.surrogate, personal_rule=args.personal_rule, personal_holdout=args.personal_holdout,
            shared_holdout=args.shared_holdout, variants=parse_variants(args.variants), direct=args.direct,
            judge_holdouts=tuple(int(x) for x in args.judge_holdouts.split(",")),
            judges=tuple(x for x in args.judges.split(",") if x), users=args.users,
            max_candidates=args.max_candidates, seeds=tuple(int(x) for x in args.seeds.split(",")),
            baselines=tuple(x for x in args.baselines.split(",") if x) + ((str(args.sasrec),) if args.sasrec else ()),
            resamples=args.resamples)
    except ValueError as err:
        raise SystemExit(f"search_findings.py: {err}")

    from pap_rec_core.rlm import embedded_model_dir, load_rlm_with_split

    model_dir = args.model or str(embedded_model_dir())
    bundle, split = load_rlm_with_split(model_dir, device=args.device)
    command = "python benchmarks/search_findings.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    report = compute_findings(bundle, split, config, args.runs_dir, model_dir=model_dir, command=command,
                              log=lambda line: print(line, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    args.out.with_suffix(".md").write_text(findings_markdown(report))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
