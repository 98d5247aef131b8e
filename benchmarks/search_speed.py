"""Speed of the search: the fast engine against the reference engine, side by side in one run.

One iteration (a shared round with k candidates per tried slot, then a personal round) on the
validation users of the model's dataset, with each engine; checks that both took the same decisions;
counts the model FLOPs of the fast engine's iteration (``torch.utils.flop_counter``, forward and
backward matrix products) and compares the achieved FLOP/s with this machine's fp32 matrix-multiply
rate measured in the same run.

    .venv/bin/python benchmarks/search_speed.py --model models/ml-100k --out benchmarks/results/search_speed_ml-100k

``--reference-batch`` is the batch size of the reference engine (the paper's code scores candidates
in small batches, one candidate at a time); the fast engine uses ``--batch-size``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch


def matmul_rate(seconds: float = 3.0, n: int = 1024) -> float:
    """fp32 FLOP/s of square matrix products on this machine (threads as currently set)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - t0)


def run_engine(bundle, split, config, engine: str) -> tuple[list, float]:
    from pap_rec_core.search import PapRecSearch

    t0 = time.perf_counter()
    events = list(PapRecSearch(bundle, split, config, engine=engine).events())
    return events, time.perf_counter() - t0


def decisions(events) -> list:
    keep = ("candidates_scored", "token_accepted", "slot_rejected", "personal_round", "finished")
    return [(e.event, getattr(e, "slot", None), getattr(e, "candidates", None), getattr(e, "after", None),
             getattr(e, "changed", None), getattr(e, "shared", None)) for e in events if e.event in keep]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the embedded models/ml-100k)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/search_speed_ml-100k"))
    p.add_argument("--users", type=int, default=None, help="first N validation users (default: all)")
    p.add_argument("--shared", type=int, default=5)
    p.add_argument("--personal", type=int, default=1)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--surrogate", default="exact", choices=["exact", "beam", "likelihood"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--reference-batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from pap_rec_core.rlm import embedded_model_dir, load_rlm_with_split
    from pap_rec_core.search import SearchConfig

    model_dir = args.model or str(embedded_model_dir())
    bundle, split = load_rlm_with_split(model_dir, device=args.device)
    config = SearchConfig(n_shared=args.shared, n_personal=args.personal, top_k=args.top_k, surrogate=args.surrogate,
                          iterations=1, max_users=args.users, batch_size=args.batch_size, seed=args.seed)
    device = next(bundle.model.parameters()).device
    rate = matmul_rate() if device.type == "cpu" else None
    ref_events, ref_s = run_engine(bundle, split, replace(config, batch_size=args.reference_batch), "reference")
    fast_events, fast_s = run_engine(bundle, split, config, "fast")
    same = decisions(ref_events) == decisions(fast_events)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        counted, _ = run_engine(bundle, split, config, "fast")
    flops = counter.get_total_flops()
    phases = {}
    for name, events in (("reference", ref_events), ("fast", fast_events)):
        phases[name] = {
            "gradient_s": sum(e.seconds for e in events if e.event == "gradient_computed"),
            "candidates_s": sum(e.seconds for e in events if e.event == "candidates_scored"),
            "personal_round_s": sum(e.seconds for e in events if e.event == "personal_round"),
            "slots_tried": sum(e.event == "candidates_scored" for e in events),
        }
    result = {
        "model": model_dir, "dataset": split.data.name, "users": len(ref_events[0].users),
        "config": config.to_dict(), "reference_batch": args.reference_batch,
        "reference_s": ref_s, "fast_s": fast_s, "speedup": ref_s / fast_s, "same_decisions": same,
        "phases": phases, "fast_model_flops": flops, "fast_flops_per_s": flops / fast_s,
        "machine_fp32_matmul_flops_per_s": rate, "flops_fraction": (flops / fast_s / rate) if rate else None,
        "device": str(device), "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"# Search speed: {result['dataset']}, {result['users']} validation users", "",
             f"One iteration (shared round, {args.shared} shared slots, top-{args.top_k}; personal round, "
             f"{args.personal} personal slot), surrogate `{args.surrogate}`, model `{model_dir}`, {result['device']}, "
             f"{result['threads']} threads, {result['date']}. Regenerate: `python benchmarks/search_speed.py`.", "",
             "| engine | batch | wall s | gradient s | candidates s | personal round s | slots tried |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, batch, wall in (("reference", args.reference_batch, ref_s), ("fast", args.batch_size, fast_s)):
        ph = phases[name]
        lines.append(f"| {name} | {batch} | {wall:.1f} | {ph['gradient_s']:.1f} | {ph['candidates_s']:.1f} | "
                     f"{ph['personal_round_s']:.1f} | {ph['slots_tried']} |")
    lines += ["", f"Speed-up {result['speedup']:.2f}x (goal: 10x); same decisions: {same}.",
              f"Fast engine: {flops / 1e9:.1f} GFLOP in {fast_s:.1f} s = {flops / fast_s / 1e9:.1f} GFLOP/s"
              + (f"; machine fp32 matmul {rate / 1e9:.1f} GFLOP/s; fraction {result['flops_fraction']:.0%} (goal: 30%)."
                 if rate else ".")]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
