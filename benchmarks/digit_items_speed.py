"""Ranking with digit-text items (what P5 checkpoints use), side by side in one run: the fast paths
against transformers on the random t5-small-shaped P5 checkpoint (``benchmarks/p5_shaped.py``).

- beam lists (20 beams, 5 returned; with the item trie, and plain as the public code): the replay of
  transformers' beam search (``rlm.beam_replay.beam_search_sequences``) vs ``generate`` (``beam_rank``),
  lists checked equal;
- exact scores of every item: on the item trie (``rlm.decoding.trie_item_scores``) vs teacher forcing of
  every item (what ``score_items`` did before), scores checked equal to 1e-4;
- the FLOP/s of each fast path (``torch.utils.flop_counter``) against this machine's fp32 matmul rate.

Each method is warmed up first; two repeats in alternating order, the faster kept.

    .venv/bin/python benchmarks/digit_items_speed.py --p5-shaped runs/p5-shaped --out benchmarks/results/digit_items_speed_p5-shaped
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--p5-shaped", default="runs/p5-shaped", metavar="DIR")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/digit_items_speed_p5-shaped"))
    p.add_argument("--users", type=int, default=64, help="validation users for the beam lists")
    p.add_argument("--exact-users", type=int, default=8, help="validation users for exact scores (slow; 0: skip)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from p5_shaped import load_p5_shaped
    from search_speed import matmul_rate, model_flop_counter

    from pap_rec_core.rlm.batching import encode_batch
    from pap_rec_core.rlm.beams import beam_rank, beam_top_items
    from pap_rec_core.rlm.ranking import item_sequences, score_items
    from pap_rec_core.scoring import PromptSpec, prompt_fn

    bundle, split = load_p5_shaped(args.p5_shaped, device=args.device)
    model, tok = bundle.model, bundle.tokenizer
    device = next(model.parameters()).device
    render = prompt_fn(PromptSpec.parse("manual:2-3"), tok, 20)
    users = split.eval_users[: args.users]
    batches = [encode_batch(tok, [render(int(u), split.history(int(u), "valid"), None)
                                  for u in users[s : s + args.batch_size]]) for s in range(0, len(users), args.batch_size)]
    exact_users = users[: args.exact_users]
    exact_batches = [encode_batch(tok, [render(int(u), split.history(int(u), "valid"), None)
                                        for u in exact_users[s : s + args.batch_size]])
                     for s in range(0, len(exact_users), args.batch_size)]
    n_exact = len(exact_users)
    methods = {
        "beam, trie: generate": lambda: [beam_rank(model, tok, b, 20, 5) for b in batches],
        "beam, trie: replay": lambda: [beam_top_items(model, tok, b, 20, 5) for b in batches],
        "beam, plain: generate": lambda: [beam_rank(model, tok, b, 20, 5, constrained=False) for b in batches],
        "beam, plain: replay": lambda: [beam_top_items(model, tok, b, 20, 5, constrained=False) for b in batches],
        "exact: teacher forcing": lambda: [score_items(model, tok, b, trie=False) for b in exact_batches],
        "exact: trie": lambda: [score_items(model, tok, b) for b in exact_batches],
    }
    if not n_exact:  # --exact-users 0: beams only (the GPU check's CPU fallback)
        methods = {m: f for m, f in methods.items() if not m.startswith("exact")}
    per = {m: (n_exact if m.startswith("exact") else len(users)) for m in methods}
    warm = [encode_batch(tok, [render(int(u), split.history(int(u), "valid"), None) for u in users[:1]])]
    for m in methods:
        if "beam" in m:
            (beam_rank if "generate" in m else beam_top_items)(model, tok, warm[0], 20, 5, constrained="trie" in m)
        else:
            score_items(model, tok, warm[0], trie="trie" in m)
    seconds: dict[str, float] = {}
    outputs: dict[str, list] = {}
    for repeat in range(2):
        for m in (list(methods) if repeat == 0 else list(methods)[::-1]):
            t0 = time.perf_counter()
            outputs[m] = methods[m]()
            seconds[m] = min(seconds.get(m, float("inf")), time.perf_counter() - t0)
    flops = {}
    for m in [m for m in ("beam, trie: replay", "beam, plain: replay", "exact: trie") if m in methods]:
        with model_flop_counter() as counter:
            methods[m]()
        flops[m] = counter.get_total_flops()
    rate = matmul_rate(device=device)
    same = {
        "beam, trie": outputs["beam, trie: generate"] == outputs["beam, trie: replay"],
        "beam, plain": outputs["beam, plain: generate"] == outputs["beam, plain: replay"],
    }
    if n_exact:
        same["exact"] = all(torch.allclose(a, b, atol=1e-4) for a, b in zip(outputs["exact: teacher forcing"],
                                                                            outputs["exact: trie"]))
    lengths = sorted({len(s) - 1 for s in item_sequences(tok)})
    result = {
        "model": f"{args.p5_shaped} (random, t5-small-shaped, digit-text items)", "dataset": split.data.name,
        "n_items": int(split.data.n_items), "sentencepiece_pieces": int(tok.sp_size),
        "model_embeddings": int(model.t5.config.vocab_size), "item_pieces": lengths,
        "users": {m: per[m] for m in methods}, "batch_size": args.batch_size, "threads": args.threads,
        "device": str(device), "seconds": seconds, "ms_per_user": {m: 1000 * seconds[m] / per[m] for m in methods},
        "speedup": {"beam, trie": seconds["beam, trie: generate"] / seconds["beam, trie: replay"],
                    "beam, plain": seconds["beam, plain: generate"] / seconds["beam, plain: replay"],
                    **({"exact": seconds["exact: teacher forcing"] / seconds["exact: trie"]} if n_exact else {})},
        "same_output": same, "flops": flops, "machine_fp32_matmul_flops_per_s": rate,
        "flops_fraction": {m: flops[m] / seconds[m] / rate for m in flops},
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"# Digit-text items: fast paths vs transformers on a random t5-small-shaped P5 checkpoint ({split.data.name})",
             "", f"`python benchmarks/digit_items_speed.py {' '.join(sys.argv[1:]) if argv is None else ' '.join(argv)}`; "
             f"d_model 512, 6+6 layers, 8 heads, d_ff 2048, {result['model_embeddings']:,} output rows "
             f"({result['sentencepiece_pieces']:,} SentencePiece pieces trained here: no T5 tokenizer offline), "
             f"items of {'/'.join(map(str, lengths))} pieces + </s>; validation prompts (manual 2-3, 20 history items), "
             f"batch {args.batch_size}, {args.threads} thread(s), {device}, {result['date']}. Each method warmed up; two "
             "repeats in alternating order, the faster kept.", "",
             "| method | users | seconds | ms per user | GFLOP/s (fraction of fp32 matmul) |", "|---|---:|---:|---:|---:|"]
    for m in methods:
        fr = (f"{flops[m] / seconds[m] / 1e9:.1f} ({result['flops_fraction'][m]:.0%})" if m in flops else "")
        lines.append(f"| {m} | {per[m]} | {seconds[m]:.2f} | {result['ms_per_user'][m]:.0f} | {fr} |")
    lines += ["", f"Speed-ups: beam with the trie {result['speedup']['beam, trie']:.1f}x, plain beam "
              f"{result['speedup']['beam, plain']:.1f}x"
              + (f", exact scores {result['speedup']['exact']:.1f}x" if n_exact else "") + ". Same output: "
              + ", ".join(f"{k} {v}" for k, v in same.items()) + f". Machine fp32 matmul: {rate / 1e9:.1f} GFLOP/s."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
