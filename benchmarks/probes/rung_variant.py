"""Probe (2026-12-02): one ladder rung with overrides, outside the ladder table.

    python benchmarks/probes/rung_variant.py NAME SAMPLES JSON_OVERRIDES [BASE_RUNG]

rung_config(BASE_RUNG, default svd) + lr 2e-3 cosine, best checkpoint, then the overrides; 1 thread;
writes /tmp/explore/NAME.json. Results: benchmarks/results/rlm_probes_ml-100k.json.
"""
from pathlib import Path
import json, sys, time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rlm_ladder import rung_config, run_rung
name = sys.argv[1]; samples = int(sys.argv[2]); over = json.loads(sys.argv[3]); base = sys.argv[4] if len(sys.argv) > 4 else "svd"
cfg = rung_config(base, samples, 0)
cfg.update({"learning_rate": 2e-3, "lr_schedule": "cosine", "keep": "best"})
cfg.update(over)
row = run_rung(base, 0, samples, Path("/tmp/explore/work"), 1, cfg=cfg, model_dir=name)
row["variant"] = name; row["overrides"] = over
best = max(c["valid_ndcg@10"] for c in row["curve"] if c.get("valid_ndcg@10") is not None)
print(name, "test", round(row["test"]["ndcg@10"], 4), "best val", round(best, 4), "samples/s", round(row["samples_per_s"]), flush=True)
Path(f"/tmp/explore/{name}.json").write_text(json.dumps(row))
