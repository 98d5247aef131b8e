"""Every notebook executed with papermill at the smoke budget (through `pap-rec reproduce`), its tables
and figures checked, the resume path, and the notebooks' numbers against the CLI's."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pandas as pd
import pytest

from pap_rec_core.cli import main
from pap_rec_core.reproduce import NOTEBOOKS, Target, reproduce

EXPECTED = {  # notebook -> (tables, figures) it must write
    "01_data_and_rlm": (["dataset_stats", "index_leak", "training_curve", "manual_prompts"], ["training_curve"]),
    "02_sequential": (["sequential_prompts", "sequential", "findings_claims", "findings_rows"], ["sequential_metrics"]),
    "03_direct": (["direct"], ["direct_metrics"]),
    "04_explanation": (["explanation_status"], []),
    "05_search_dynamics": (["convergence", "personal_token_effects", "surrogate_candidates", "surrogate_correlation",
                            "findings_judges", "length_ablation"], ["convergence", "personal_token_effects", "round_times"]),
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    logs: list[str] = []
    manifest = reproduce(out, "smoke", [Target("ml-100k")], log=logs.append)
    return out, manifest, logs


def test_every_notebook_runs_and_writes_its_tables_and_figures(smoke):
    out, manifest, _ = smoke
    assert set(manifest["runs"]) == {f"ml-100k/{n}" for n in NOTEBOOKS}
    for name, (tables, figures) in EXPECTED.items():
        nb = nbformat.read(out / "ml-100k" / "notebooks" / f"{name}.ipynb", as_version=4)
        assert nb.metadata["papermill"]["parameters"]["budget"] == "smoke"
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, (name, errors[:1])
        for t in tables:
            frame = pd.read_csv(out / "ml-100k" / "tables" / f"{t}.csv")
            assert len(frame), (name, t)
        for f in figures:
            assert (out / "ml-100k" / "figures" / f"{f}.html").stat().st_size > 10_000, (name, f)
    seq = pd.read_csv(out / "ml-100k" / "tables" / "sequential.csv")
    assert list(seq.system[:1]) == ["Pop"] and {"manual 2-3", "PAP-REC 5 shared + 1 personal"} <= set(seq.system)
    assert (seq.users == 40).all()
    assert "ndcg@10 ci" in seq and "ndcg@10 p" in seq
    readme = (out / "README.md").read_text()
    assert "### Sequential recommendation (test)" in readme and "| manual 2-3 | 40 |" in readme
    status = pd.read_csv(out / "ml-100k" / "tables" / "explanation_status.csv")
    assert not status.has_reviews.iloc[0] and not (out / "ml-100k" / "tables" / "explanation.csv").exists()


def test_a_second_run_resumes_by_skipping_finished_notebooks(smoke):
    out, _, _ = smoke
    logs: list[str] = []
    reproduce(out, "smoke", [Target("ml-100k")], log=logs.append)
    assert logs == [f"ml-100k/{n}: done before, skipped" for n in NOTEBOOKS]
    with pytest.raises(ValueError, match="unknown notebook"):
        reproduce(out, "smoke", [Target("ml-100k")], notebooks=["99_nothing"])


def test_notebook_numbers_match_the_cli(smoke, capsys):
    out, _, _ = smoke
    seq = pd.read_csv(out / "ml-100k" / "tables" / "sequential.csv").set_index("system")
    run = out / "ml-100k" / "runs" / "sequential-s5p1-smoke-seed0"
    capsys.readouterr()
    assert main(["-q", "evaluate", "--model", "models/ml-100k", "--prompt", "manual:2-3", "--prompt", f"run:{run}",
                 "--method", "first-token", "--users", "40", "--resamples", "200", "--json"]) == 0
    rows = {r["system"]: r for r in json.loads(capsys.readouterr().out)}
    for ours, cli in (("manual 2-3", "manual:2-3"), ("PAP-REC 5 shared + 1 personal", f"run:{run}")):
        for m in ("hit@5", "ndcg@5", "hit@10", "ndcg@10"):
            # the CLI's JSON carries 10 significant digits
            assert seq.loc[ours, m] == pytest.approx(rows[cli][m], abs=1e-9), (ours, m)


def test_the_notebooks_findings_equal_the_findings_cli(smoke, tmp_path):
    """Notebook 02's claims and rows and notebook 05's judges are the CLI's report on the same searches."""
    import sys
    from pathlib import Path

    from pap_rec_core.experiments import BUDGETS
    from pap_rec_core.findings_report import claims_frame, judges_frame, rows_frame

    out, _, _ = smoke
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from search_findings import main as findings_main

    cfg = BUDGETS["smoke"].findings
    findings_main(["--users", str(cfg.users), "--iterations", str(cfg.iterations), "--personal", "0,1", "--seeds", "0",
                   "--max-candidates", str(cfg.max_candidates), "--resamples", str(cfg.resamples),
                   "--runs-dir", str(out / "ml-100k" / "runs" / "findings"), "--out", str(tmp_path / "f"),
                   "--device", "cpu"])
    report = json.loads((tmp_path / "f.json").read_text())
    tables = out / "ml-100k" / "tables"
    for name, frame in (("findings_claims", claims_frame(report)), ("findings_rows", rows_frame(report)),
                        ("findings_judges", judges_frame(report))):
        saved = pd.read_csv(tables / f"{name}.csv")
        assert len(saved) == len(frame) and len(frame), name
        pd.testing.assert_frame_equal(saved, pd.read_csv(__import__("io").StringIO(frame.to_csv(index=False))),
                                      check_exact=False, rtol=1e-12, atol=1e-12)
    assert [c[:3] for c in claims_frame(report)["claim"]] == ["1. ", "2. ", "3. ", "4. "]


def test_a_p5_dataset_target_gets_its_own_rlm(make_p5_dir, tmp_path):
    from pap_rec_core.reproduce import prepare_p5_target
    from pap_rec_core.rlm.checkpoint import load_rlm_with_split

    rng = np.random.default_rng(0)
    seqs = {u: [int(i) for i in rng.choice(np.arange(1, 41), size=8, replace=False)] for u in range(1, 21)}
    p5 = make_p5_dir(seqs, name="p5toy")
    target = prepare_p5_target(p5, tmp_path / "out", preset="tiny", max_steps=5, direct_candidates=6,
                               sequential_candidates=4, negatives=5, device="cpu", progress=False)
    assert target.label == "p5toy" and target.model_dir == str(tmp_path / "out" / "models" / "p5toy")
    bundle, split = load_rlm_with_split(target.model_dir, device="cpu")
    assert split.data.n_users == 20 and split.data.name == "p5toy"
