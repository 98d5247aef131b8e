"""P5's item-index leak, measured: the same RLM recipe on the random and on the sequential item index.

P5 numbers items in the order users' sequences first mention them (``--item-index sequential``), so the
next item is often "the largest id so far + 1" and, written as digit text, shares its leading pieces with
the items just seen. A model reading digit-text ids can exploit that; with the random index it cannot.
This script trains two digit-text RLMs (items and users as text, as in P5 checkpoints) with one recipe,
differing only in the index, and scores both with the one evaluator (exact ranking, template 2-3, test):

    .venv/bin/python benchmarks/index_leak.py --steps 800 --out benchmarks/results/index_leak_ml-100k

Both models train at once, one process each (``--threads`` per process). It also reports the model-free
signature of the leak: the share of users whose test item is the largest id of their history + 1.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import time
from pathlib import Path


from pap_rec_core.experiments import leak_signature


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--steps", type=int, default=800, help="training steps per model (default: %(default)s)")
    p.add_argument("--time-limit", type=float, default=15.0, help="minutes per model (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default: %(default)s)")
    p.add_argument("--work", type=Path, default=Path("runs/index_leak"), help="model directories (resumable)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/index_leak_ml-100k"))
    return p.parse_args(argv)


def run_one(mode: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from pap_rec_core.data import DatasetConfig, build_item_index, leave_one_out, load_dataset
    from pap_rec_core.rlm.training import preset, train_rlm
    from pap_rec_core.scoring import evaluate_rlm

    dcfg = DatasetConfig(path=args.dataset)
    data = load_dataset(dcfg)
    split = leave_one_out(data)
    index = build_item_index(data, mode, seed=args.seed)
    config = preset("demo", seed=args.seed, item_tokens=False, user_tokens=False, max_steps=args.steps,
                    time_limit_s=args.time_limit * 60, eval_every=max(1, args.steps // 2), eval_users=300,
                    threads=args.threads)
    t0 = time.perf_counter()
    bundle, report = train_rlm(split, index, config, args.work / mode, dataset_config=dcfg.to_dict(), progress=False)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = evaluate_rlm(bundle, split, "test", "manual:2-3", method="exact")
    return {"index": mode, "leak_signature": leak_signature(split, index), "train": report.to_dict(),
            "train_s": train_s, "eval_s": time.perf_counter() - t0, "test": res.summary()}


def main(argv=None) -> None:
    args = parse_args(argv)
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(run_one, [("random", args), ("sequential", args)])
    out = {"dataset": args.dataset, "split": "leave-one-out, test stage, history masked", "prompt": "manual:2-3",
           "ranking": "exact", "items_as": "digit text (P5)", "steps": args.steps, "seed": args.seed,
           "machine": f"{platform.machine()} CPU, {args.threads} torch thread(s) per model", "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=2))
    lines = ["# P5's item-index leak (digit-text item ids)", "",
             f"{args.dataset}, leave-one-out, test, history masked, template 2-3, exact ranking; demo recipe with "
             f"items and users as digit text, up to {args.steps} steps or {args.time_limit:g} minutes per model "
             f"(both trained at once, {args.threads} thread(s) each), seed {args.seed}. Regenerate: "
             f"`python benchmarks/index_leak.py --steps {args.steps} --time-limit {args.time_limit:g}`.", "",
             "| item index | test item = max history id + 1 | steps | hit@5 | ndcg@5 | hit@10 | ndcg@10 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        t = r["test"]
        lines.append(f"| {r['index']} | {r['leak_signature']:.1%} | {r['train']['steps']} | {t['hit@5']:.4f} | "
                     f"{t['ndcg@5']:.4f} | {t['hit@10']:.4f} | {t['ndcg@10']:.4f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
