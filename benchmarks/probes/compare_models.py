"""Probe (2026-12-02): paired bootstrap of test NDCG@10 between two RLMs (same split, same users).

    python benchmarks/probes/compare_models.py MODEL_A MODEL_B [PROMPT ...]   # default prompt manual:2-3

Prints, per prompt, both models' test NDCG@10 and B - A with its 95% CI and p (2,000 resamples, seed 0).
"""
import sys

import torch

from pap_rec_core.evaluation import EvaluationConfig, compare
from pap_rec_core.rlm import load_rlm_with_split
from pap_rec_core.scoring import evaluate_rlm

torch.set_num_threads(1)
a_dir, b_dir, prompts = sys.argv[1], sys.argv[2], sys.argv[3:] or ["manual:2-3"]
a, split = load_rlm_with_split(a_dir, device="cpu")
b, split_b = load_rlm_with_split(b_dir, device="cpu")
if split.data.fingerprint() != split_b.data.fingerprint():
    raise SystemExit("the two models were trained on different data")
ev = EvaluationConfig(n_resamples=2000, seed=0)
for prompt in prompts:
    ra = evaluate_rlm(a, split, "test", prompt, method="first-token", config=ev)
    rb = evaluate_rlm(b, split, "test", prompt, method="first-token", config=ev)
    d = next(x for x in compare(ra, rb) if x.metric == "ndcg@10")
    print(f"{prompt}: A {ra.summary()['ndcg@10']:.4f}  B {rb.summary()['ndcg@10']:.4f}  "
          f"B-A {d.diff:+.4f} [{d.low:+.4f}, {d.high:+.4f}] p={d.p_value:.3f}", flush=True)
