"""Speed of `pap-rec evaluate`'s ranking methods, side by side in one run, on one model and split.

- ``first-token``: one decoder step ranks every single-token item (the search's default ranking);
- ``exact``: the sequence log-likelihood ``log p(item) + log p(</s> | item)`` — with single-token items
  the second step runs only for the items whose first step is at or above the target's exact score
  (``rlm.ranking.exact_scores_for_targets``): the same ranks as the full matrix;
- ``exact (full matrix)``: the second step for every item (what ``exact`` cost before), on a subset of
  the users (``--full-users``) because it is slow; the report checks that its ranks equal ``exact``'s.

Each method is warmed up on a few users before it is timed; the order of the timed methods is
reversed on the second of two repeats, and the faster repeat is kept.

    .venv/bin/python benchmarks/evaluate_speed.py --model models/ml-100k --out benchmarks/results/evaluate_speed_ml-100k
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch


def _full_exact_scorer(bundle, split, stage, render):
    from pap_rec_core.rlm.batching import encode_batch
    from pap_rec_core.rlm.ranking import score_items

    def score(users: np.ndarray) -> np.ndarray:
        prompts = [render(int(u), split.history(int(u), stage), None) for u in users]
        return score_items(bundle.model, bundle.tokenizer, encode_batch(bundle.tokenizer, prompts),
                           include_eos=True).numpy()

    return score


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the embedded models/ml-100k)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/evaluate_speed_ml-100k"))
    p.add_argument("--stage", default="test", choices=["valid", "test"])
    p.add_argument("--prompt", default="manual:2-3")
    p.add_argument("--users", type=int, default=None, help="first N evaluation users (default: all)")
    p.add_argument("--full-users", type=int, default=128, help="users the full exact matrix is timed on")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--machine", default=platform.processor() or platform.machine())
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from pap_rec_core.evaluation import EvaluationConfig
    from pap_rec_core.evaluation.evaluator import evaluate_scorer
    from pap_rec_core.rlm import embedded_model_dir, load_rlm_with_split
    from pap_rec_core.rlm.evaluate import evaluate_render
    from pap_rec_core.scoring import PromptSpec, prompt_fn

    model_dir = args.model or str(embedded_model_dir())
    bundle, split = load_rlm_with_split(model_dir, device=args.device)
    if not bundle.tokenizer.item_tokens:
        raise SystemExit("this benchmark compares the single-token methods; the model has digit-text items")
    render = prompt_fn(PromptSpec.parse(args.prompt), bundle.tokenizer, 20)
    users = split.eval_users if args.users is None else split.eval_users[: args.users]
    subset = users[: args.full_users]
    cfg = EvaluationConfig(n_resamples=200, batch_users=args.batch_size)

    def run(method: str, who: np.ndarray):
        if method == "exact (full matrix)":
            return evaluate_scorer(split, args.stage, _full_exact_scorer(bundle, split, args.stage, render),
                                   system=method, config=cfg, users=who)
        return evaluate_render(bundle, split, args.stage, render, "sequential", system=method, method=method,
                               batch_size=args.batch_size, users=who, config=cfg)

    plan = {"first-token": users, "exact": users, "exact (full matrix)": subset}
    for method in plan:  # warm-up
        run(method, users[: min(8, len(users))])
    seconds: dict[str, float] = {}
    results = {}
    for repeat in range(2):
        for method in (list(plan) if repeat == 0 else list(plan)[::-1]):
            t0 = time.perf_counter()
            results[method] = run(method, plan[method])
            seconds[method] = min(seconds.get(method, float("inf")), time.perf_counter() - t0)
    per_user = {m: seconds[m] / len(plan[m]) for m in plan}
    exact_on_subset = run("exact", subset)
    same_ranks = bool(np.array_equal(exact_on_subset.ranks, results["exact (full matrix)"].ranks))
    ranks = results["exact"].ranks
    out = {
        "model": model_dir, "dataset": split.data.name, "n_items": int(split.data.n_items), "stage": args.stage,
        "prompt": args.prompt, "users": int(len(users)), "full_matrix_users": int(len(subset)),
        "batch_size": args.batch_size, "threads": args.threads, "machine": args.machine,
        "device": str(next(bundle.model.parameters()).device), "torch": torch.__version__,
        "seconds": seconds, "seconds_per_user": per_user,
        "exact_speedup_over_full_matrix": per_user["exact (full matrix)"] / per_user["exact"],
        "exact_over_first_token": per_user["exact"] / per_user["first-token"],
        "exact_ranks_equal_full_matrix": same_ranks,
        "exact_target_rank": {"mean": float(ranks.mean()), "median": float(np.median(ranks))},
        "ndcg@10": {m: float(r.per_user["ndcg@10"].mean()) for m, r in results.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=2))
    lines = [f"# `pap-rec evaluate` ranking methods on {split.data.name} ({split.data.n_items:,} items)", "",
             f"`{' '.join(['python benchmarks/evaluate_speed.py', '--model', model_dir, '--out', str(args.out)])}`; "
             f"{args.stage} stage, prompt `{args.prompt}`, {len(users):,} users (the full exact matrix on the first "
             f"{len(subset)}), batch {args.batch_size}, {args.threads} torch thread(s), {out['device']}, "
             f"{args.machine}; each method warmed up, two repeats in alternating order, the faster kept.", "",
             f"| method | users | seconds | ms per user | minutes for all {len(split.eval_users):,} users | ndcg@10 |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in plan:
        minutes = per_user[m] * len(split.eval_users) / 60
        lines.append(f"| {m} | {len(plan[m]):,} | {seconds[m]:.1f} | {1000 * per_user[m]:.1f} | {minutes:,.1f} | "
                     f"{out['ndcg@10'][m]:.4f} |")
    lines += ["", f"- `exact` is {out['exact_speedup_over_full_matrix']:.1f}x faster per user than the full exact "
              f"matrix and {out['exact_over_first_token']:.1f}x slower than first-token; its ranks "
              f"{'equal' if same_ranks else 'DIFFER FROM'} the full matrix's on the {len(subset)} users timed on both "
              f"(ndcg@10 there: {exact_on_subset.per_user['ndcg@10'].mean():.4f} and "
              f"{results['exact (full matrix)'].per_user['ndcg@10'].mean():.4f}).",
              f"- Its cost follows the target's rank (one second decoder step per item ranked at or above it): "
              f"mean exact rank {ranks.mean():.0f}, median {np.median(ranks):.0f} of {split.data.n_items:,} items."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
