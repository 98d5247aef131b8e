"""benchmarks/gpu_check.sh: the one-command GPU check, run here through its CPU fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(sys.platform == "win32", reason="a bash script")
def test_gpu_check_runs_every_benchmark_and_writes_json_on_the_cpu_fallback(tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: run benchmarks/gpu_check.sh itself (minutes)")
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_USERS": "6", "GPU_CHECK_BEAM_USERS": "4", "GPU_CHECK_DIGIT_USERS": "2",
           "OMP_NUM_THREADS": "1"}
    out = tmp_path / "check"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "device.json").read_text())["device"] == "cpu"
    assert json.loads((out / "search_speed_paper.json").read_text())["protocol"] == "paper"
    for name in ("search_speed_exact", "search_speed_beam", "search_speed_paper"):
        result = json.loads((out / f"{name}.json").read_text())
        assert result["device"] == "cpu" and result["users"] == (6 if name.endswith("exact") else 4)
        assert result["same_decisions"] is True, name
        assert result["fast_s"] > 0 and result["reference_s"] > 0
        assert (out / f"{name}.md").is_file()
    ev = json.loads((out / "evaluate_speed.json").read_text())
    assert ev["users"] == 6 and ev["exact_ranks_equal_full_matrix"] is True
    digit = json.loads((out / "digit_items_speed.json").read_text())  # the P5-shaped model, digit-text items
    assert digit["model_embeddings"] == 32128 and digit["same_output"] == {"beam, trie": True, "beam, plain": True}
    p5_search = json.loads((out / "search_speed_p5-shaped_beam.json").read_text())
    assert p5_search["item_tokens"] is False and p5_search["same_decisions"] is True and p5_search["users"] == 2
    assert not (out / "p5-shaped" / "model.pth").exists()  # the 240 MB checkpoint is not left behind
    assert "gpu_check: done" in done.stdout
