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

    out = tmp_path / "findings"
    main(["--model", str(disk_rlm_dir), "--users", "12", "--iterations", "1", "--personal", "0,1", "--seeds", "0,1",
          "--max-candidates", "4", "--judge-holdouts", "0,2", "--runs-dir", str(tmp_path / "runs"), "--out", str(out),
          "--device", "cpu"])
    report = json.loads(out.with_suffix(".json").read_text())
    prompts = [r["prompt"] for r in report["rows"]]
    assert prompts[0] == "manual 2-3" and prompts[-2:] == ["Pop", report["rows"][-1]["prompt"]]
    assert report["rows"][-1]["prompt"].startswith("Markov (last ")
    assert sum("mean of 2 seeds" in p for p in prompts) == 2 and sum(", seed " in p for p in prompts) == 4
    assert [c["claim"][:2] for c in report["claims"]] == ["1.", "2.", "3.", "4."]
    by_prompt = {r["prompt"]: r for r in report["rows"]}
    first = report["claims"][0]
    assert first["diff"] == by_prompt[first["row"]]["ndcg@10 diff"] and first["answer"] == verdict(first["diff"])
    personal_mean = by_prompt["auto, 5 shared + 1 personal, mean of 2 seeds"]
    assert personal_mean["ndcg@10 diff vs shared-only"][0] == pytest.approx(
        personal_mean["ndcg@10"] - by_prompt["auto, 5 shared + 0 personal, mean of 2 seeds"]["ndcg@10"], abs=1e-12)
    assert set(report["claims"][3]["judge_spearman"]) >= {"exact", "ndcg", "likelihood", "exact+h2", "ndcg+h2"}
    assert len(report["runs"]) == 4 and "## The paper's claims" in out.with_suffix(".md").read_text()


def test_verdicts() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from search_findings import verdict

    assert verdict([0.01, 0.002, 0.02, 0.01]) == "holds"
    assert verdict([-0.01, -0.02, -0.002, 0.01]).startswith("refuted")
    assert verdict([0.01, -0.002, 0.02, 0.3]).startswith("not shown")
    assert verdict(None) == "not measured"
