"""benchmarks/search_findings.py end to end on a tiny RLM: searches per seed, the rows, the claims."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_findings_report_answers_every_claim_from_its_rows(disk_rlm_dir, tmp_path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from search_findings import main, verdict

    from pap_rec_core.rlm import load_rlm_with_split

    _, split = load_rlm_with_split(disk_rlm_dir, device="cpu")
    baselines = tmp_path / "baselines.json"
    test = {"hit@5": 0.5, "ndcg@5": 0.3, "hit@10": 0.9, "ndcg@10": 0.45}
    baselines.write_text(json.dumps({"dataset": {"name": split.data.name, "eval_users": 12}, "models": [
        {"model": "Pop", "stop_reason": "single_pass", "test": test},
        {"model": "SASRec", "stop_reason": "early_stopping", "test": test},
        {"model": "GRU4Rec", "stop_reason": "time_limit", "test": {**test, "ndcg@10": 0.9}}]}))
    out = tmp_path / "findings"
    main(["--model", str(disk_rlm_dir), "--users", "12", "--iterations", "1", "--personal", "0,1", "--seeds", "0,1",
          "--variants", "likelihood-tiebreak,strict:h2", "--direct", "--baselines", str(baselines),
          "--max-candidates", "4", "--judge-holdouts", "0,2", "--runs-dir", str(tmp_path / "runs"), "--out", str(out),
          "--device", "cpu"])
    report = json.loads(out.with_suffix(".json").read_text())
    prompts = [r["prompt"] for r in report["rows"]]
    assert prompts[0] == "manual 2-3" and "manual 5-7, direct task" in prompts
    assert prompts[-2:] == ["SASRec (RecBole, converged; unpaired)", "GRU4Rec (RecBole, not converged (time_limit); unpaired)"]
    assert prompts[-4] == "Pop" and prompts[-3].startswith("Markov (last ")
    # 5 arms (p0, p1, p1 tie-break, p1 holdout 2, direct p0) x 2 seeds, and each arm's mean over the seeds
    assert sum("mean of 2 seeds" in p for p in prompts) == 5 and sum(", seed " in p for p in prompts) == 10
    assert "PAP-REC 5 shared + 1 personal (strict, holdout 2), mean of 2 seeds" in prompts
    assert [c["claim"][:3] for c in report["claims"]] == ["1. ", "1b.", "2. ", "3. ", "4. "]
    direct = next(r for r in report["rows"] if r["prompt"] == "PAP-REC 5 shared, direct task, mean of 2 seeds")
    assert direct["task"] == "direct" and "ndcg@10 diff vs Markov" not in direct
    manual_direct = next(r for r in report["rows"] if r["spec"] == "manual:5-7")
    assert direct["ndcg@10 diff"][0] == pytest.approx(direct["ndcg@10"] - manual_direct["ndcg@10"], abs=1e-12)
    third = report["claims"][3]
    assert third["best_recbole"]["model"].startswith("SASRec")  # the converged one, not GRU4Rec
    assert len(report["claims"][2]["all"]) == 3
    assert all(isinstance(r["users_changed_per_personal_round"], list) for r in report["runs"].values())
    corr = report["surrogate_vs_test"]
    assert len(corr["test_ndcg@10"]) == 4 and all(len(v["ci"]) == 2 for k, v in corr.items() if isinstance(v, dict))
    assert set(corr["test_reliability"][0]) == {"r", "low", "high", "ceiling", "splits"}
    by_prompt = {r["prompt"]: r for r in report["rows"]}
    first = report["claims"][0]
    assert first["diff"] == by_prompt[first["row"]]["ndcg@10 diff"] and first["answer"] == verdict(first["diff"])
    personal_mean = by_prompt["PAP-REC 5 shared + 1 personal, mean of 2 seeds"]
    assert personal_mean["ndcg@10 diff vs shared-only"][0] == pytest.approx(
        personal_mean["ndcg@10"] - by_prompt["PAP-REC 5 shared, mean of 2 seeds"]["ndcg@10"], abs=1e-12)
    assert set(report["claims"][4]["judge_spearman"]) >= {"exact", "ndcg", "likelihood", "exact+h2", "ndcg+h2"}
    assert len(report["runs"]) == 10 and "## The paper's claims" in out.with_suffix(".md").read_text()


def test_verdicts() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from search_findings import verdict

    assert verdict([0.01, 0.002, 0.02, 0.01]) == "holds"
    assert verdict([-0.01, -0.02, -0.002, 0.01]).startswith("refuted")
    assert verdict([0.01, -0.002, 0.02, 0.3]).startswith("not shown")
    assert verdict(None) == "not measured"


def test_split_half_reliability_tells_signal_from_noise() -> None:
    import numpy as np

    from pap_rec_core.judge_study import split_half_reliability

    rng = np.random.default_rng(0)
    quality = np.linspace(0, 1, 30)[:, None]  # candidates that truly differ, measured on 800 noisy users
    strong = split_half_reliability(quality + rng.normal(size=(30, 800)), rng)
    noise = split_half_reliability(rng.normal(size=(30, 800)), rng)
    assert strong["r"] > 0.9 and strong["ceiling"] > 0.95 and strong["splits"] == 200
    assert noise["ceiling"] < 0.5 < strong["low"]
    assert np.isnan(split_half_reliability(np.ones((2, 10)), rng)["r"])  # too few candidates


def test_the_findings_rules_are_the_searchs() -> None:
    from pap_rec_core.findings import RULES
    from pap_rec_core.search.config import PERSONAL_RULES

    assert RULES == PERSONAL_RULES
