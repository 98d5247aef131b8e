"""Training throughput of the RLM per task family, on this CPU: samples/s and the fraction of the
measured matmul rate that training reaches.

    python benchmarks/rlm_throughput.py                  # the demo preset's model, every family
    python benchmarks/rlm_throughput.py --preset full --threads 2 --steps 20

For each family (one family per run, the preset's templates of it, else its seen templates; ``keyinfo``:
the key-info steps, template B-1), times
``--steps`` optimiser steps (after 3 warm-up steps) of ``train_rlm``'s step: sample building and
encoding, forward, backward, AdamW. Reports samples/s, the mean padded encoder length, where the time
goes (building vs model), the training FLOP estimate per sample (3 x the forward's matrix products:
projections, feed-forward, attention, LM head) and that estimate over the fp32 matmul rate measured in
the same run (``search_speed.matmul_rate``, 1024 x 1024). Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def forward_flops(cfg, enc_len: float, dec_len: float, vocab: int) -> float:
    """Matrix-product FLOPs of one sample's forward pass (multiply-add = 2)."""
    d, inner, ff = cfg.d_model, cfg.num_heads * cfg.d_kv, cfg.d_ff
    enc_layer = enc_len * (2 * 4 * d * inner + 2 * 2 * d * ff + 2 * 2 * enc_len * inner)
    dec_layer = (dec_len * (2 * 4 * d * inner + 2 * 2 * d * ff + 2 * 2 * dec_len * inner)  # self-attn + ff
                 + dec_len * 2 * 2 * d * inner + enc_len * 2 * 2 * d * inner  # cross-attn q, o | k, v
                 + 2 * 2 * dec_len * enc_len * inner)
    return cfg.num_layers * enc_layer + cfg.num_decoder_layers * dec_layer + dec_len * 2 * d * vocab


def measure(split, index, config, family: str, steps: int) -> dict:
    import torch

    from pap_rec_core.rlm.model import RecLM
    from pap_rec_core.rlm.samples import SampleBuilder, make_batch
    from pap_rec_core.rlm.training import build_tokenizer

    from pap_rec_core.prompts.templates import get_template

    # the family's own templates among the configuration's (all its seen ones when the config names none)
    if family == "keyinfo":  # the key-info steps (keyinfo_steps): the history alone, template B-1
        cfg = replace(config, family_weights=(("sequential", 1.0),), templates=("B-1",))
    else:
        chosen = tuple(t for t in config.templates if get_template(t).family.value == family)
        cfg = replace(config, family_weights=((family, 1.0),), templates=chosen)
    torch.manual_seed(0)
    tok = build_tokenizer(split.data, index, cfg)
    model = RecLM(cfg.rlm_config(tok.vocab_size))
    model.train()
    builder = SampleBuilder(split, tok, cfg, random.Random(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    build_s = model_s = 0.0
    enc_tokens = dec_tokens = 0
    for step in range(steps + 3):
        t0 = time.perf_counter()
        batch, labels = make_batch(builder.batch(cfg.batch_size), tok)
        t1 = time.perf_counter()
        out = model(batch.attention_mask, labels=labels, input_ids=batch.input_ids, whole_word_ids=batch.whole_word_ids)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if step >= 3:
            build_s, model_s = build_s + t1 - t0, model_s + t2 - t1
            enc_tokens += batch.input_ids.numel()
            dec_tokens += labels.numel()
    n = steps * cfg.batch_size
    enc_len, dec_len = enc_tokens / n, dec_tokens / n
    flops = 3 * forward_flops(model.config, enc_len, dec_len, tok.vocab_size)
    return {"family": family, "samples_per_s": n / (build_s + model_s), "model_samples_per_s": n / model_s,
            "build_fraction": build_s / (build_s + model_s), "encoder_len": enc_len, "decoder_len": dec_len,
            "train_gflop_per_sample": flops / 1e9, "model_gflop_per_s": flops * n / model_s / 1e9}


def main(argv=None) -> int:
    import torch

    from pap_rec_core.data import DatasetConfig, SourceKind, SplitConfig, build_item_index, leave_one_out, load_dataset
    from pap_rec_core.rlm.training import preset

    sys_path = str(ROOT / "benchmarks")
    import sys

    sys.path.insert(0, sys_path)
    from search_speed import matmul_rate

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="demo")
    p.add_argument("--families", default="keyinfo,sequential,conditional,direct,history,rating,metadata",
                   help="task families (keyinfo: the key-info steps; default: %(default)s)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="default: benchmarks/results/rlm_throughput_ml-100k_<preset>")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset(DatasetConfig(kind=SourceKind.RECBOLE, path="ml-100k"))
    split = leave_one_out(data, SplitConfig(seed=0))
    index = build_item_index(data, "random", seed=0)
    config = preset(args.preset, device="cpu")
    rate = matmul_rate()
    rows = []
    for family in args.families.split(","):
        row = measure(split, index, config, family, args.steps)
        row["fraction_of_matmul_rate"] = row["model_gflop_per_s"] * 1e9 / rate
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"rlm_throughput_ml-100k_{args.preset}")
    result = {"preset": args.preset, "config": config.to_dict(), "threads": args.threads, "steps": args.steps,
              "matmul_gflop_per_s": rate / 1e9, "machine": f"{platform.machine()} CPU", "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# RLM training throughput per task family (ml-100k, preset `{args.preset}`)", "",
             f"`python benchmarks/rlm_throughput.py --preset {args.preset} --threads {args.threads} --steps {args.steps}` "
             f"— {result['machine']}, {args.threads} torch threads, batch {config.batch_size}, d_model {config.d_model}, "
             f"dropout {config.dropout_rate}. fp32 matmul rate measured in the same run: {rate / 1e9:.1f} GFLOP/s. "
             "Training FLOPs = 3 x the forward's matrix products (an estimate); the model's rate excludes "
             "sample building.", "",
             "| family | samples/s | model-only samples/s | building share | encoder tokens | train GFLOP/sample | model GFLOP/s | of matmul rate |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['family']} | {r['samples_per_s']:.0f} | {r['model_samples_per_s']:.0f} | {r['build_fraction']:.0%} | "
                     f"{r['encoder_len']:.1f} | {r['train_gflop_per_sample']:.4f} | {r['model_gflop_per_s']:.1f} | "
                     f"{r['fraction_of_matmul_rate']:.0%} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
