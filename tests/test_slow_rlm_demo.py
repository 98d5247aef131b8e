"""Slow end-to-end: the demo preset on ml-100k at a reduced budget, through the CLI (``make test-slow``)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_demo_preset_reduced_budget_end_to_end(tmp_path, capsys) -> None:
    from pap_rec_core.cli import main

    out = tmp_path / "demo"
    assert main(["-q", "train-rlm", "--dataset", "ml-100k", "--preset", "demo", "--max-steps", "400",
                 "--out", str(out)]) == 0
    meta = json.loads((out / "rlm_metadata.json").read_text())
    assert meta["train_config"]["preset"] == "demo" and meta["train_report"]["steps"] == 400
    capsys.readouterr()
    assert main(["-q", "evaluate", "--model", str(out), "--prompt", "manual:2-3", "--prompt", "random:0",
                 "--method", "first-token", "--json", "--resamples", "200"]) == 0
    rows = json.loads(capsys.readouterr().out)
    manual = rows[0]
    assert manual["system"] == "manual:2-3" and manual["users"] == 943
    # 400 steps already learn popularity-like signal: far above a random ranking (ndcg@10 ~ 0.003).
    assert manual["ndcg@10"] > 0.01
