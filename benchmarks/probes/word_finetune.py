"""Probe (2026-12-02): fine-tune a trained RLM on template words (sequential 2-1..2-6 + conditional),
keep the best manual 2-3 validation checkpoint, score test prompts.

    python benchmarks/probes/word_finetune.py MODEL STEPS LR THREADS COND_SHARE [title|all|C-2,C-7,...] [last] [save=DIR]

AdamW, 50 warm-up steps, cosine to 0, batch 256, seed 0, validation every 200 steps (943 users);
conditional templates: "all" (C-1..C-7, the default), "title" (C-6/C-7) or a comma list; "last": the last weights are scored too;
"save=DIR": the best weights are saved as an RLM directory (the source's metadata, with a note of the fine-tune). Results: benchmarks/results/rlm_probes_ml-100k.json.
"""
import json, random, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
from pap_rec_core.evaluation import EvaluationConfig
from pap_rec_core.rlm import load_rlm_with_split
from pap_rec_core.rlm.samples import SampleBuilder, make_batch
from pap_rec_core.rlm.training import TrainConfig
from pap_rec_core.scoring import evaluate_rlm
src, steps, lr = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
cond = float(sys.argv[5]) if len(sys.argv) > 5 else 0.3
bundle, split = load_rlm_with_split(src, device="cpu")
model, tok = bundle.model, bundle.tokenizer
SEQ = ("2-1", "2-2", "2-3", "2-4", "2-5", "2-6")
fw = (("sequential", 1 - cond), ("conditional", cond)) if cond else (("sequential", 1.0),)
kind = sys.argv[6] if len(sys.argv) > 6 else "all"
CT = {"title": ("C-6", "C-7"), "all": ("C-1", "C-2", "C-3", "C-4", "C-5", "C-6", "C-7")}.get(kind) or tuple(kind.split(","))
cfg = TrainConfig(family_weights=fw, templates=SEQ + CT,
                  item_separator="", user_tokens=False, whole_word_embeddings=False, max_history=20, seed=0)
rng = random.Random(0); torch.manual_seed(0)
builder = SampleBuilder(split, tok, cfg, rng)
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
ev = EvaluationConfig(n_resamples=1000, seed=0)
def score(stage, spec):
    model.eval(); r = evaluate_rlm(bundle, split, stage, spec, method="first-token", config=ev); model.train(); return r.summary()["ndcg@10"]
print("start", "val 2-3", round(score("valid", "manual:2-3"), 4), "test 2-3", round(score("test", "manual:2-3"), 4), flush=True)
model.train(); t0 = time.time(); best = (-1, None, 0)
for step in range(1, steps + 1):
    batch, labels = make_batch(builder.batch(256), tok)
    for g in opt.param_groups: g["lr"] = lr * min(1, step / 50) * (0.5 * (1 + np.cos(np.pi * step / steps)))
    out = model(batch.attention_mask, labels=labels, input_ids=batch.input_ids, whole_word_ids=batch.whole_word_ids)
    opt.zero_grad(); out.loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    if step % 200 == 0 or step == steps:
        v = score("valid", "manual:2-3")
        print(step, round(time.time() - t0), "val 2-3", round(v, 4), flush=True)
        if v > best[0]: best = (v, {k: x.clone() for k, x in model.state_dict().items()}, step)
def report(label):
    res = {s: score("test", s) for s in ["manual:B-1", "manual:2-3", "manual:2-13", "keyinfo", "random:0", "random:1", "random:2"]}
    res["random_drop"] = 1 - np.mean([res[f"random:{i}"] for i in range(3)]) / res["manual:2-3"]
    print(label, {k: round(float(v), 4) for k, v in res.items()}, flush=True)
if "last" in sys.argv[7:]:
    report(f"last step {steps}")
model.load_state_dict(best[1])
report(f"best step {best[2]} val {best[0]:.4f}")
saves = [a[5:] for a in sys.argv[7:] if a.startswith("save=")]
if saves:
    from pap_rec_core.rlm.checkpoint import save_rlm
    meta = dict(bundle.metadata)
    meta["word_finetune"] = {"source": src, "argv": sys.argv[1:], "best_step": best[2], "best_valid_2-3": best[0]}
    import shutil
    from pathlib import Path
    out = save_rlm(saves[0], model, tok, meta)
    for extra in Path(src).iterdir():  # the item index (and the training report) travel with the weights
        if extra.is_file() and extra.name != "train_state.pt" and not (out / extra.name).exists():
            shutil.copy2(extra, out / extra.name)
    print("saved", out, flush=True)

