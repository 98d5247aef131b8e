"""The RLM ablation ladder: from the minimal recipe to the product, one change per rung.

    python benchmarks/rlm_ladder.py                         # every rung, seed 0 (resumable: rerun to continue)
    python benchmarks/rlm_ladder.py --rungs svd,words --seeds 0,1,2

Each rung is a ``TrainConfig`` = its base rung's configuration plus one change, trained with
``pap_rec_core.rlm.training.train_rlm`` (our code; resumable) at the same sample budget and seed on
ml-100k (leave-one-out, random item index, seed 0), then scored on test by the one evaluator (first-token
ranking over all items, history masked) with the rung's own prompt (``select_prompt``: the history
alone for the rungs without template words, manual 2-3 after). Recorded per rung: the validation
curve, training samples/s, test NDCG@10 with its bootstrap CI, the paired difference to its base
(bootstrap 95% CI, p), and where the rung has template words, the prompt-sensitivity probe (template
words replaced by random words, 3 seeds) and, where it trains the direct family, direct 5-7.

Writes ``<out>.json`` (updated after every rung) and ``<out>.md``; models under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# The minimal recipe (issue 12's first probe): a plain T5 in the P5 shape, history -> next item,
# no template words, separators, user tokens or whole-word embeddings; sequential task only.
MINIMAL: dict[str, Any] = dict(
    family_weights=(("sequential", 1.0),), templates=("B-1",), select_prompt="manual:B-1", item_separator="",
    user_tokens=False, whole_word_embeddings=False, item_init="random", d_model=64, d_ff=256, d_kv=16,
    num_heads=4, num_layers=2, num_decoder_layers=2, dropout_rate=0.1, batch_size=256, learning_rate=1e-3,
    warmup_steps=100, lr_schedule="constant", keep="last", weight_decay=0.01, position_sampling="position",
    eval_users=943, patience=None, time_limit_s=None, max_history=20, sp_vocab_size=2000)

SEQ_TEMPLATES = ("2-1", "2-2", "2-3", "2-4", "2-5", "2-6")
SEQ_CANDIDATE_TEMPLATES = ("2-7", "2-8", "2-9", "2-10")
COND_TEMPLATES = ("C-1", "C-2", "C-3", "C-4", "C-5")
DIRECT_TEMPLATES = ("5-5", "5-6", "5-7")
P5_MIX = (("sequential", 0.5), ("history", 0.2), ("direct", 0.05), ("rating", 0.1), ("metadata", 0.15))


@dataclass(frozen=True)
class Rung:
    name: str
    base: str | None  # the rung this one changes (None: MINIMAL)
    change: str  # what the rung adds, in words
    overrides: dict[str, Any] = field(default_factory=dict)


RUNGS: tuple[Rung, ...] = (
    Rung("minimal", None, "history -> next item; no words, separators, user tokens, whole-word embeddings"),
    Rung("svd", "minimal", "item embeddings from the SVD of training transitions", dict(item_init="transition-svd")),
    Rung("words", "svd", "P5's sequential templates 2-1 ... 2-6 (user as digit text)",
         dict(templates=SEQ_TEMPLATES, select_prompt="manual:2-3")),
    Rung("separators", "words", "' , ' between the items (P5's format)", dict(item_separator=" , ")),
    Rung("user-tokens", "words", "one token per user (instead of its digits)", dict(user_tokens=True)),
    Rung("whole-words", "user-tokens", "P5's whole-word embeddings, N(0, 1) initialisation",
         dict(whole_word_embeddings=True)),
    Rung("whole-words-zero", "user-tokens", "whole-word embeddings initialised at 0",
         dict(whole_word_embeddings=True, whole_word_init_std=0.0)),
    Rung("candidates", "whole-words", "+ the candidate-list sequential templates 2-7 ... 2-10 (20 candidates)",
         dict(templates=SEQ_TEMPLATES + SEQ_CANDIDATE_TEMPLATES)),
    Rung("mixture", "whole-words", "the previous product's mixture: + history, direct, rating, metadata",
         dict(family_weights=P5_MIX, templates=())),
    Rung("history", "whole-words", "+ history questions (H-1 ... H-4), 20% of samples",
         dict(family_weights=(("sequential", 0.8), ("history", 0.2)), templates=SEQ_TEMPLATES + ("H-1", "H-2", "H-3", "H-4"))),
    Rung("direct", "whole-words", "+ direct recommendation (5-5 ... 5-7, 1 + 99 candidates), 5% of samples",
         dict(family_weights=(("sequential", 0.95), ("direct", 0.05)), templates=SEQ_TEMPLATES + DIRECT_TEMPLATES)),
    Rung("metadata", "whole-words", "+ item metadata (M-1 ... M-3), 15% of samples",
         dict(family_weights=(("sequential", 0.85), ("metadata", 0.15)), templates=SEQ_TEMPLATES + ("M-1", "M-2", "M-3"))),
    Rung("rating", "whole-words", "+ rating prediction (1-1, 1-2, 1-6), 10% of samples",
         dict(family_weights=(("sequential", 0.9), ("rating", 0.1)), templates=SEQ_TEMPLATES + ("1-1", "1-2", "1-6"))),
    Rung("conditional", "whole-words", "+ conditional next items (C-1 ... C-5: a named genre, liked, disliked), 30%",
         dict(family_weights=(("sequential", 0.7), ("conditional", 0.3)), templates=SEQ_TEMPLATES + COND_TEMPLATES)),
    Rung("title-words", "conditional", "+ the next item with a named title word (C-6, C-7), in the conditional 30%",
         dict(templates=SEQ_TEMPLATES + COND_TEMPLATES + ("C-6", "C-7"))),
    Rung("product", "whole-words", "the presets' recipe until 2026-12-02: 80% of the steps on the key info "
         "alone, then 2-1 ... 2-6 + conditional 30% + direct 5%; lr 2e-3, cosine; best checkpoint",
         dict(family_weights=(("sequential", 0.65), ("conditional", 0.3), ("direct", 0.05)),
              templates=SEQ_TEMPLATES + COND_TEMPLATES + DIRECT_TEMPLATES,
              learning_rate=2e-3, lr_schedule="cosine", keep="best", keyinfo_share=0.8)),
    Rung("two-phase", "svd", "the presets' recipe since 2026-12-02 (rlm/recipe.py RECIPE, two_phase): 80% of the "
         "steps on the key info alone with their own cosine and best checkpoint (by B-1), then from there 2-1 ... 2-6 "
         "+ conditional 60% (C-1, C-2, C-6, C-7) + direct 5%, lr 5e-4 with its own cosine; best 2-3 checkpoint",
         dict(family_weights=(("sequential", 0.35), ("conditional", 0.6), ("direct", 0.05)),
              templates=SEQ_TEMPLATES + ("C-1", "C-2", "C-6", "C-7") + DIRECT_TEMPLATES, select_prompt="manual:2-3",
              learning_rate=2e-3, lr_schedule="cosine", keep="best", two_phase=True, word_learning_rate=5e-4,
              word_warmup_steps=50, keyinfo_share=0.8)),
    Rung("product-metadata", "product", "+ item metadata (M-1 ... M-3: titles and genres in the prompt), 15%",
         dict(family_weights=(("sequential", 0.5), ("conditional", 0.3), ("direct", 0.05), ("metadata", 0.15)),
              templates=SEQ_TEMPLATES + COND_TEMPLATES + DIRECT_TEMPLATES + ("M-1", "M-2", "M-3"))),
)
BY_NAME = {r.name: r for r in RUNGS}


def rung_config(name: str, samples: int, seed: int) -> dict[str, Any]:
    """The TrainConfig fields of a rung (its base's, then its overrides), at ``samples`` training samples."""
    rung = BY_NAME[name]
    cfg = dict(MINIMAL) if rung.base is None else rung_config(rung.base, samples, seed)
    cfg.update(rung.overrides)
    cfg.update(seed=seed, max_steps=max(1, samples // cfg["batch_size"]), eval_every=max(1, 64_000 // cfg["batch_size"]))
    share = cfg.pop("keyinfo_share", None)
    if share is not None:  # (a share of the budget, so that the rung scales with --samples)
        cfg["keyinfo_steps"] = int(share * cfg["max_steps"])
    return cfg


def run_rung(name: str, seed: int, samples: int, work: Path, threads: int, cfg: dict[str, Any] | None = None,
             model_dir: str | None = None) -> dict[str, Any]:
    """Train and score one rung (``cfg``: its TrainConfig fields, default ``rung_config``; ``model_dir``
    under ``work``, default ``<name>@<seed>``)."""
    import torch

    from pap_rec_core.data import DatasetConfig, SourceKind, SplitConfig, build_item_index, leave_one_out, load_dataset
    from pap_rec_core.evaluation import EvaluationConfig
    from pap_rec_core.rlm.checkpoint import load_rlm_with_split
    from pap_rec_core.rlm.training import TrainConfig, train_rlm
    from pap_rec_core.scoring import evaluate_rlm

    torch.set_num_threads(threads)
    cfg = cfg or rung_config(name, samples, seed)
    model_dir = model_dir or f"{name}@{seed}"
    t0 = time.perf_counter()
    dataset = DatasetConfig(kind=SourceKind.RECBOLE, path="ml-100k")
    data = load_dataset(dataset)
    split = leave_one_out(data, SplitConfig(seed=0))  # the split and item index of every row: seed 0
    index = build_item_index(data, "random", seed=0)
    _, report = train_rlm(split, index, TrainConfig(preset=f"ladder:{name}", device="cpu", **cfg), work / model_dir,
                          dataset_config=dataset.to_dict(), progress=False)
    bundle, split = load_rlm_with_split(work / model_dir, device="cpu")
    ev = EvaluationConfig(n_resamples=2000, seed=0)
    prompt = cfg["select_prompt"]
    main = evaluate_rlm(bundle, split, "test", prompt, method="first-token", config=ev)
    ci = main.summary_with_ci().set_index("metric").loc["ndcg@10"]
    row: dict[str, Any] = {
        "rung": name, "seed": seed, "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
        "prompt": prompt, "test": main.summary(), "test ndcg@10 ci": [float(ci["ci_low"]), float(ci["ci_high"])],
        "per_user_ndcg@10": [round(float(x), 6) for x in main.per_user["ndcg@10"]],
        "curve": report.curve, "samples_per_s": report.samples_per_s, "train_s": report.wall_s,
        "parameters": bundle.model.num_parameters(), "wall_s": time.perf_counter() - t0, "threads": threads,
    }
    if prompt != "manual:B-1":  # template words: are they read?
        rand = [evaluate_rlm(bundle, split, "test", f"random:{s}", method="first-token", config=ev).summary()["ndcg@10"]
                for s in range(3)]
        row["random_words_ndcg@10"] = rand
        row["random_words_relative_drop"] = 1 - float(np.mean(rand)) / main.summary()["ndcg@10"]
    if dict(cfg["family_weights"]).get("direct"):
        row["direct 5-7 ndcg@10"] = evaluate_rlm(bundle, split, "test", "manual:5-7", method="exact",
                                                 config=ev).summary()["ndcg@10"]
    return row


def paired(rows: dict[str, dict], name: str, seed: int) -> dict[str, float] | None:
    from pap_rec_core.evaluation.bootstrap import paired_bootstrap

    base = BY_NAME[name].base
    a, b = rows.get(f"{base}@{seed}"), rows.get(f"{name}@{seed}")
    if base is None or a is None or b is None:
        return None
    d = paired_bootstrap(np.array(a["per_user_ndcg@10"]), np.array(b["per_user_ndcg@10"]), "ndcg@10")
    return {"diff": d.diff, "low": d.low, "high": d.high, "p": d.p_value}


def write_markdown(path: Path, result: dict[str, Any]) -> None:
    rows = result["rows"]
    lines = [
        "# RLM ablation ladder (ml-100k)", "",
        f"`python benchmarks/rlm_ladder.py --samples {result['samples']}` — {result['machine']}. Every rung trains "
        f"{result['samples']:,} samples (batch 256 unless the rung changes it) with our `train_rlm`, seed as listed, "
        "and is scored on **test** (943 users, leave-one-out, random item index, first-token ranking over all "
        "items, history masked) with its own prompt: the history alone (`B-1`) before template words, manual "
        "2-3 after. Δ = paired bootstrap difference of test NDCG@10 to the rung's base (95% CI, p; 2,000 "
        "resamples). Random words: template words of 2-3 replaced by random vocabulary words, mean of 3 seeds, "
        "relative NDCG@10 change.", "",
        "| rung | base | change | samples/s (threads) | best valid NDCG@10 | test NDCG@10 [95% CI] | Δ vs base [95% CI] | p | random words |",
        "|---|---|---|---:|---:|---|---|---:|---:|",
    ]
    for key, r in rows.items():
        name, seed = r["rung"], r["seed"]
        rung = BY_NAME.get(name)
        d = paired(rows, name, seed)
        best = max((c["valid_ndcg@10"] for c in r["curve"]), default=float("nan"))
        ci = r["test ndcg@10 ci"]
        delta = f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]" if d else ""
        p = f"{d['p']:.3f}" if d else ""
        rw = f"{-r['random_words_relative_drop']:+.0%}" if "random_words_relative_drop" in r else ""
        lines.append(f"| {key} | {rung.base if rung else ''} | {rung.change if rung else ''} | {r['samples_per_s']:.0f} ({r.get('threads', '?')}) | "
                     f"{best:.4f} | {r['test']['ndcg@10']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] | {delta} | {p} | {rw} |")
    lines += ["", "Validation curves (samples: NDCG@10 of the rung's prompt, 943 validation users):", ""]
    for key, r in rows.items():
        bs = r["config"]["batch_size"]
        lines.append(f"- {key}: " + ", ".join(f"{c['step'] * bs // 1000}k {c['valid_ndcg@10']:.4f}" for c in r["curve"]))
    if result.get("notes"):
        lines += ["", "Notes (written by hand into the JSON's `notes`):", ""] + [f"- {n}" for n in result["notes"]]
    if any("direct 5-7 ndcg@10" in r for r in rows.values()):
        lines += ["", "Direct 5-7 (exact, fixed 1 + 99 candidates), test NDCG@10: " + ", ".join(
            f"{k} {r['direct 5-7 ndcg@10']:.4f}" for k, r in rows.items() if "direct 5-7 ndcg@10" in r)]
    path.write_text("\n".join(lines) + "\n")


def _store(path: Path, result: dict[str, Any], key: str, row: dict[str, Any]) -> dict[str, Any]:
    """Add ``row`` to the JSON at ``path`` under a file lock, keeping rows other processes wrote meanwhile."""
    import fcntl

    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        on_disk = json.loads(path.read_text()) if path.is_file() else {}
        merged = {**result, "rows": {**on_disk.get("rows", {}), key: row}}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(merged, indent=1))
        tmp.replace(path)
    return merged


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rungs", default=",".join(r.name for r in RUNGS), help="comma-separated rung names")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: %(default)s)")
    p.add_argument("--samples", type=int, default=512_000, help="training samples per rung (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="/tmp/rlm_ladder", help="model directories (resumable)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rlm_ladder_ml-100k"))
    args = p.parse_args(argv)
    names = [n for n in args.rungs.split(",") if n]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        p.error(f"unknown rungs {unknown}; known: {', '.join(BY_NAME)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.with_suffix(".json")
    result = json.loads(path.read_text()) if path.is_file() else {}
    if result.get("samples", args.samples) != args.samples:
        p.error(f"{path} holds a ladder at {result['samples']} samples per rung; use another --out")
    result.update(samples=args.samples, dataset="ml-100k",
                  machine=f"{platform.machine()} CPU")
    rows = result.setdefault("rows", {})
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in names:
            key = f"{name}@{seed}"
            if key in rows and rows[key]["config"] == json.loads(json.dumps(rung_config(name, args.samples, seed))):
                continue
            row = run_rung(name, seed, args.samples, Path(args.work), args.threads)
            print(json.dumps({k: v for k, v in row.items() if k != "per_user_ndcg@10"}), flush=True)
            result = _store(path, result, key, row)  # (other ladder processes may write the same file)
            write_markdown(out.with_suffix(".md"), result)
            rows = result["rows"]
    write_markdown(out.with_suffix(".md"), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
