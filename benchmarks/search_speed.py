"""Speed of the search: the fast engine against the reference engine, side by side in one run.

One iteration (a shared round with k candidates per tried slot, then a personal round) on the
validation users of the model's dataset (or of the random P5-shaped model, ``--p5-shaped``), with each engine; checks that both took the same decisions;
counts the model FLOPs of each engine's iteration (``torch.utils.flop_counter``, forward and
backward matrix products; their ratio is the speed-up the engines would show at equal FLOP/s) and compares the achieved FLOP/s with this machine's fp32 matrix-multiply
rate measured in the same run.

    .venv/bin/python benchmarks/search_speed.py --model models/ml-100k --out benchmarks/results/search_speed_ml-100k

``--reference-batch`` is the batch size of the reference engine (the paper's code scores candidates
in small batches, one candidate at a time); the fast engine uses ``--batch-size``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch


def matmul_rate(seconds: float = 3.0, n: int = 1024, device: torch.device | str = "cpu") -> float:
    """fp32 FLOP/s of square matrix products on ``device`` (CPU: threads as currently set; CUDA: n = 4096,
    timed between synchronisations)."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    n = 4096 if cuda else n
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.mm(a, b)
    sync()
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        count += 1
        if cuda and count % 10 == 0:
            sync()
    sync()
    return 2 * n**3 * count / (time.perf_counter() - t0)


def model_flop_counter():
    """``torch.utils.flop_counter.FlopCounterMode`` that also counts SDPA's CPU kernels (the counter knows
    only the CUDA ones: ``_scaled_dot_product_flash_attention_for_cpu`` and its backward go uncounted),
    with the same formulas as their CUDA twins."""
    from torch.utils import flop_counter as fc

    def forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return fc.sdpa_flop_count(query_shape, key_shape, value_shape)

    def backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)

    aten = torch.ops.aten
    return fc.FlopCounterMode(display=False, custom_mapping={
        aten._scaled_dot_product_flash_attention_for_cpu: forward,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: backward})


def run_engine(bundle, split, config, engine: str) -> tuple[list, float]:
    from pap_rec_core.search import PapRecSearch

    t0 = time.perf_counter()
    events = list(PapRecSearch(bundle, split, config, engine=engine).events())
    return events, time.perf_counter() - t0


def decisions(events) -> list:
    keep = ("candidates_scored", "token_accepted", "slot_rejected", "personal_round", "finished")
    return [(e.event, getattr(e, "slot", None), getattr(e, "candidates", None), getattr(e, "after", None),
             getattr(e, "changed", None), getattr(e, "shared", None)) for e in events if e.event in keep]


def phase_seconds(events, wall: float) -> dict:
    """Non-overlapping phases of one run from its events: a round's ``gradient_computed`` covers the judge's
    pass over the current tokens (``judge_seconds``) and then the gradient; ``personal_round`` is timed from
    the same start, so its candidates are the rest of it."""
    grads = [e for e in events if e.event == "gradient_computed"]
    judge = sum(e.judge_seconds for e in grads)
    gradient = sum(e.seconds - e.judge_seconds for e in grads)
    shared_cands = sum(e.seconds for e in events if e.event == "candidates_scored")
    personal_grad = sum(e.seconds for e in grads if e.kind == "personal")
    personal_cands = sum(e.seconds for e in events if e.event == "personal_round") - personal_grad
    return {"judge_s": judge, "gradient_s": gradient, "shared_candidates_s": shared_cands,
            "personal_candidates_s": personal_cands,
            "other_s": wall - judge - gradient - shared_cands - personal_cands,
            "slots_tried": sum(e.event == "candidates_scored" for e in events)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the embedded models/ml-100k)")
    p.add_argument("--p5-shaped", default=None, metavar="DIR",
                   help="instead of --model: the random t5-small-shaped P5 checkpoint with digit-text items on "
                        "ml-100k (benchmarks/p5_shaped.py; built under DIR on first use)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/search_speed_ml-100k"))
    p.add_argument("--users", type=int, default=None, help="first N validation users (default: all)")
    p.add_argument("--shared", type=int, default=5)
    p.add_argument("--personal", type=int, default=1)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--surrogate", default=None, choices=["exact", "beam", "likelihood"],
                   help="(default: the protocol's: exact for ours, beam for paper)")
    p.add_argument("--max-history", type=int, default=None, help="history items in a prompt (default: the protocol's)")
    p.add_argument("--protocol", default="ours", choices=["ours", "paper"],
                   help="ours (the defaults) or paper (the public code's choices, SearchConfig.preset)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--reference-batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2, help="timed runs per engine, alternating order (default: 2)")
    p.add_argument("--no-reference-flops", dest="reference_flops", action="store_false",
                   help="skip counting the reference engine's FLOPs (one more, untimed reference run)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from pap_rec_core.rlm import embedded_model_dir, load_rlm_with_split
    from pap_rec_core.search import SearchConfig

    if args.p5_shaped:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from p5_shaped import load_p5_shaped

        bundle, split = load_p5_shaped(args.p5_shaped, device=args.device)
        model_dir = f"{args.p5_shaped} (random, t5-small-shaped, digit-text items)"
    else:
        model_dir = args.model or str(embedded_model_dir())
        bundle, split = load_rlm_with_split(model_dir, device=args.device)
    fields = dict(n_shared=args.shared, n_personal=args.personal, top_k=args.top_k, iterations=1,
                  max_users=args.users, batch_size=args.batch_size, seed=args.seed)
    if args.surrogate:
        fields["surrogate"] = args.surrogate
    if args.max_history is not None:
        fields["max_history"] = args.max_history
    config = SearchConfig.preset(args.protocol, **fields)
    device = next(bundle.model.parameters()).device
    rate = matmul_rate(device=device) if device.type in ("cpu", "cuda") else None
    configs = {"reference": replace(config, batch_size=args.reference_batch), "fast": config}
    for name, cfg in configs.items():  # warm-up (first calls, allocator, kernels) outside the timings
        run_engine(bundle, split, replace(cfg, max_users=min(8, args.users or 8), user_ids=None), name)
    walls: dict[str, list[float]] = {name: [] for name in configs}
    best_events: dict[str, list] = {}
    for repeat in range(args.repeats):  # alternate the order: neither engine always runs first
        for name in (list(configs) if repeat % 2 == 0 else list(configs)[::-1]):
            events, seconds = run_engine(bundle, split, configs[name], name)
            if not walls[name] or seconds < min(walls[name]):
                best_events[name] = events
            walls[name].append(seconds)
    ref_events, fast_events = best_events["reference"], best_events["fast"]
    ref_s, fast_s = min(walls["reference"]), min(walls["fast"])
    same = decisions(ref_events) == decisions(fast_events)
    with model_flop_counter() as counter:
        counted, _ = run_engine(bundle, split, config, "fast")
    flops = counter.get_total_flops()
    ref_flops = None
    if args.reference_flops:
        with model_flop_counter() as counter:
            run_engine(bundle, split, configs["reference"], "reference")
        ref_flops = counter.get_total_flops()
    phases = {name: phase_seconds(events, min(walls[name])) for name, events in best_events.items()}
    result = {
        "model": model_dir, "dataset": split.data.name, "item_tokens": bool(bundle.tokenizer.item_tokens), "users": len(ref_events[0].users), "protocol": args.protocol,
        "config": config.to_dict(), "reference_batch": args.reference_batch,
        "reference_s": ref_s, "fast_s": fast_s, "speedup": ref_s / fast_s, "same_decisions": same,
        "repeats": args.repeats, "wall_s_per_repeat": walls,
        "repeat_speedups": [r / f for r, f in zip(walls["reference"], walls["fast"])],  # each repeat's own pair
        "phases": phases, "fast_model_flops": flops, "fast_flops_per_s": flops / fast_s,
        "reference_model_flops": ref_flops, "flop_ratio": (ref_flops / flops) if ref_flops else None,
        "machine_fp32_matmul_flops_per_s": rate, "flops_fraction": (flops / fast_s / rate) if rate else None,
        "device": str(device), "threads": torch.get_num_threads(),
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},  # glibc tuning moves the reference
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"# Search speed: {result['dataset']}, {result['users']} validation users", "",
             f"One iteration (shared round, {args.shared} shared slots, top-{args.top_k}; personal round, "
             f"{args.personal} personal slot), protocol `{args.protocol}`, surrogate `{config.surrogate}`, histories up to {config.max_history} items, model `{model_dir}`, {result['device']}, "
             f"{result['threads']} threads, {result['date']}. Regenerate: `"
             + "".join(f"{k}={v} " for k, v in sorted(result["malloc_env"].items()))
             + "python benchmarks/search_speed.py "
             f"{' '.join(sys.argv[1:]) if argv is None else ' '.join(argv)}`.", "",
             f"Both engines warmed up on {min(8, args.users or 8)} users first; {args.repeats} timed repeats in alternating order, the faster "
             "kept. Phases do not overlap: judge = the surrogate of the current tokens at the start of each round, "
             "gradient = the training-loss gradients, shared / personal candidates = scoring the top-k candidates, "
             "other = the rest (initial evaluation, setup, re-judging an accepted token).", "",
             "| engine | batch | wall s | judge s | gradient s | shared candidates s | personal candidates s | "
             "other s | slots tried |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, batch, wall in (("reference", args.reference_batch, ref_s), ("fast", args.batch_size, fast_s)):
        ph = phases[name]
        lines.append(f"| {name} | {batch} | {wall:.1f} | {ph['judge_s']:.1f} | {ph['gradient_s']:.1f} | "
                     f"{ph['shared_candidates_s']:.1f} | {ph['personal_candidates_s']:.1f} | {ph['other_s']:.1f} | "
                     f"{ph['slots_tried']} |")
    goal = "10x on the embedded model" if bundle.tokenizer.item_tokens else "5x on a t5-small-shaped digit-item model"
    ratios = sorted(result["repeat_speedups"])
    lines += ["", "Wall s per repeat, in run order: reference "
              + ", ".join(f"{w:.1f}" for w in walls["reference"]) + "; fast " + ", ".join(f"{w:.1f}" for w in walls["fast"])
              + f". Each repeat's own ratio: {ratios[0]:.2f}x to {ratios[-1]:.2f}x, median "
              f"{statistics.median(ratios):.2f}x."]
    lines += ["", f"Speed-up {result['speedup']:.2f}x, the faster of each engine (goal: {goal}); same decisions: {same}.",
              f"Fast engine: {flops / 1e9:.1f} GFLOP in {fast_s:.1f} s = {flops / fast_s / 1e9:.1f} GFLOP/s"
              + (f"; machine fp32 matmul {rate / 1e9:.1f} GFLOP/s; fraction {result['flops_fraction']:.1%} (goal: 40%)."
                 if rate else ".")]
    if ref_flops and result["flop_ratio"] <= result["speedup"]:
        lines += [f"Reference engine: {ref_flops / 1e9:.1f} GFLOP, {result['flop_ratio']:.2f}x the fast engine's: at equal "
                  f"FLOP/s the speed-up would be {result['flop_ratio']:.2f}x; the rest of the {result['speedup']:.2f}x is the "
                  "fast engine running its products faster (larger, length-sorted batches; no generate loop)."]
    elif ref_flops:
        lines += [f"Reference engine: {ref_flops / 1e9:.1f} GFLOP, {result['flop_ratio']:.2f}x the fast engine's, more "
                  f"than the {result['speedup']:.2f}x speed-up: the fast engine runs its products slower than the reference."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
