"""RecBole baselines on our leave-one-out split, scored by our evaluator; writes JSON + a markdown table.

    .venv/bin/python benchmarks/run_baselines.py                      # all six models on ml-100k
    .venv/bin/python benchmarks/run_baselines.py --models Pop,SASRec --epochs 50 --out /tmp/b.json

Every model trains with early stopping on validation NDCG@10 (``--stopping-step``) up to ``--epochs``.
``--budget-minutes`` bounds the whole run: each model may train for its share of what is left (the
remaining budget divided by the models still to run, less an allowance for loading and scoring), so
time a fast model does not use flows to the next; ``--max-minutes`` optionally caps each model as well.
No epoch is started that would end past a model's cap (``BaselineConfig.max_seconds``). The JSON (``--out``) holds the settings, per-model validation/test
summaries, epochs run, best epoch, stop reason and seconds; the markdown table goes next to it (``.md``).
Results are rewritten after each model, so an interrupted run keeps what finished.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "baselines_ml-100k.json"
OVERHEAD_S = 45.0  # per model, outside training epochs: export, RecBole loading, per-epoch and test scoring


def parse_args(argv=None) -> argparse.Namespace:
    from pap_rec_core.evaluation.recbole_baselines import SUPPORTED

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(SUPPORTED), help="comma-separated (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=200, help="epoch cap per model (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON path; the .md table goes beside it")
    p.add_argument("--dataset", default="ml-100k", help="builtin dataset or RecBole atomic directory")
    p.add_argument("--p5-dir", default=None, metavar="DIR",
                   help="a P5 preprocessed directory (sequential_data.txt, datamaps.json) instead of --dataset")
    p.add_argument("--item-index", default="random", choices=["random", "sequential", "given"])
    p.add_argument("--stopping-step", type=int, default=10,
                   help="epochs without validation NDCG@10 improvement before stopping (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=512, help="training batch size (default: %(default)s)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="(default: %(default)s)")
    p.add_argument("--budget-minutes", type=float, default=40.0,
                   help="wall-time budget of the whole run, shared among the models, 0 = none (default: %(default)s)")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="training-time cap per model in minutes, 0 = none (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--machine", default="2-core CPU", help="machine note stored with the results")
    return p.parse_args(argv)


def setting_notes(models: list[str]) -> list[str]:
    """What differs from RecBole's defaults, and why."""
    notes = ["RecBole 1.2.1 model defaults otherwise (hidden sizes, dropout, layers; sequential models: CE loss over "
             "all items, MAX_ITEM_LIST_LENGTH 50); training batch 512 instead of RecBole's 2048 (about 1.7x "
             "faster per sample on this CPU)."]
    if "Caser" in models:
        notes.append("Caser: MAX_ITEM_LIST_LENGTH 5 (the Caser paper's Markov window L=5); with RecBole's default "
                     "50 it convolves 50 filter heights and one epoch was estimated at ~20 min here (timed over a few batches).")
    return notes


def markdown(payload: dict) -> str:
    from pap_rec_core.evaluation.metrics import BASELINE_METRICS

    metrics = list(BASELINE_METRICS)
    lines = [
        f"# RecBole baselines on {payload['dataset']['name']} (our split, our evaluator)",
        "",
        f"Test stage, {payload['dataset']['eval_users']} users, full ranking over {payload['dataset']['items']} "
        "items, history masked (target never), pessimistic ties. Early stopping on validation NDCG@10 "
        f"(patience {payload['settings']['stopping_step']}, cap {payload['settings']['epochs']} epochs; "
        + (f"whole-run budget {payload['settings']['budget_minutes']:g} min shared among the models"
           if payload["settings"]["budget_minutes"] else "no whole-run budget")
        + (f", per-model cap {payload['settings']['max_minutes']:g} min" if payload["settings"]["max_minutes"] else "")
        + f"); batch {payload['settings']['batch_size']}, learning rate {payload['settings']['learning_rate']:g}, "
        f"seed {payload['settings']['seed']}; machine: {payload['machine']}.",
        "",
        "| model | " + " | ".join(metrics) + " | valid ndcg@10 | epochs | best epoch | stop | s/epoch | seconds |",
        "|---|" + "---:|" * (len(metrics) + 3) + "---|---:|---:|",
    ]
    for m in payload["models"]:
        t = m["test"]
        lines.append(f"| {m['model']} | " + " | ".join(f"{t[k]:.4f}" for k in metrics)
                     + f" | {m['valid']['ndcg@10']:.4f} | {m['epochs_run']} | {m['best_epoch']} | {m['stop_reason']} "
                     f"| {m['train_seconds'] / m['epochs_run']:.1f} | {m['wall_seconds']:.0f} |")
    lines += ["", "Epochs are 0-based in *best epoch*. *stop*: `early_stopping` (converged on validation), "
              "`epoch_cap`, `time_limit` (stopped by the training-time cap: **not converged**), `single_pass` (Pop)."]
    if payload.get("notes"):
        lines += [""] + [f"- {n}" for n in payload["notes"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    import recbole

    from pap_rec_core.data import DatasetConfig, SourceKind, Stage, build_item_index, leave_one_out, load_dataset
    from pap_rec_core.evaluation import EvaluationConfig, evaluate_scores, popularity_scores
    from pap_rec_core.evaluation.recbole_baselines import BaselineConfig, baselines_frame, train_baseline

    torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    configs = [BaselineConfig(model=m, epochs=args.epochs, stopping_step=args.stopping_step,
                              learning_rate=args.learning_rate, train_batch_size=args.batch_size, seed=args.seed,
                              device=args.device) for m in models]
    data = load_dataset(DatasetConfig(kind=SourceKind.P5, path=args.p5_dir) if args.p5_dir else
                        DatasetConfig(kind=SourceKind.RECBOLE, path=args.dataset))
    split = leave_one_out(data)
    index = build_item_index(data, args.item_index, seed=0)
    eval_config = EvaluationConfig()
    payload = {
        "dataset": {"name": data.name, "fingerprint": data.fingerprint(), "users": data.n_users,
                    "items": data.n_items, "interactions": data.n_interactions,
                    "eval_users": int(len(split.eval_users))},
        "split": split.config.to_dict(),
        "item_index": {"mode": index.mode.value, "seed": index.seed},
        "evaluation": {"task": "sequential, full ranking", "mask_history": eval_config.mask_history,
                       "ties": "pessimistic", "ks": list(eval_config.ks)},
        "settings": {"epochs": args.epochs, "stopping_step": args.stopping_step, "batch_size": args.batch_size,
                     "learning_rate": args.learning_rate, "budget_minutes": args.budget_minutes,
                     "max_minutes": args.max_minutes, "seed": args.seed,
                     "threads": args.threads, "device": args.device,
                     "command": "python benchmarks/run_baselines.py " + " ".join(sys.argv[1:] if argv is None else argv)},
        "machine": f"{args.machine}; torch threads {args.threads}",
        "versions": {"torch": torch.__version__, "recbole": recbole.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "models": [],
        "notes": setting_notes(models),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    md_path = args.out.with_suffix(".md")
    start = time.perf_counter()
    results = []
    for k, cfg in enumerate(configs):
        caps = [args.max_minutes * 60] if args.max_minutes > 0 else []
        if args.budget_minutes > 0:
            share = (args.budget_minutes * 60 - (time.perf_counter() - start)) / (len(configs) - k)
            caps.append(max(60.0, share - OVERHEAD_S))
        cfg = replace(cfg, max_seconds=round(min(caps), 1) if caps else None)
        print(f"[{time.perf_counter() - start:7.0f} s] training {cfg.model} (training cap "
              f"{cfg.max_seconds or 'none'} s) ...", file=sys.stderr, flush=True)
        res = train_baseline(split, index, cfg, eval_config=eval_config, progress=True)
        results.append(res)
        payload["models"].append(res.to_dict())
        s = res.test.summary()
        print(f"[{time.perf_counter() - start:7.0f} s] {cfg.model}: test ndcg@10 {s['ndcg@10']:.4f} hit@10 "
              f"{s['hit@10']:.4f}, {res.epochs_run} epochs (best {res.best_epoch}, {res.stop_reason}), "
              f"{res.wall_seconds:.0f} s", file=sys.stderr, flush=True)
        if cfg.model == "Pop":
            pop = popularity_scores(split)
            ours = evaluate_scores(split, Stage.TEST, np.broadcast_to(pop, (len(split.eval_users), len(pop))),
                                   system="popularity_scores", config=eval_config, users=split.eval_users)
            same = bool(np.array_equal(ours.ranks, res.test.ranks))
            payload["pop_cross_check"] = {"popularity_scores_test": ours.summary(), "identical_ranks": same}
            payload["notes"].append(
                "Pop cross-check: pap_rec_core.evaluation.popularity_scores (training counts) scored by the same "
                f"evaluator gives {'identical' if same else 'DIFFERENT'} test ranks to RecBole's Pop "
                f"(ndcg@10 {ours.summary()['ndcg@10']:.4f}). RecBole's Pop as shipped counts an item once per "
                "training batch (item_cnt[items] += 1 with repeated indices); the adapter feeds it duplicate-free "
                "sub-batches so it counts every training interaction.")
        payload["total_wall_seconds"] = round(time.perf_counter() - start, 1)
        args.out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        md_path.write_text(markdown(payload), encoding="utf-8")
    capped = [r.model for r in results if r.stop_reason in ("epoch_cap", "time_limit")]
    if capped:
        payload["notes"].append("Not converged (stopped by a cap, validation still improving or not yet "
                                f"plateaued for {args.stopping_step} epochs): {', '.join(capped)}.")
    args.out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    md_path.write_text(markdown(payload), encoding="utf-8")
    print(baselines_frame(results).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(f"wrote {args.out} and {md_path} ({payload['total_wall_seconds']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
