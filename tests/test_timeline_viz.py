"""The trace as a timeline of decisions, the figures drawn from it, their export, and
``pap-rec export-plots``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pap_rec_core import viz
from pap_rec_core.exports import run_report, steps_frame
from pap_rec_core.search import SearchConfig, run_search
from pap_rec_core.search.events import Finished, PersonalRound, SlotRejected, TokenAccepted, TraceError, read_trace
from pap_rec_core.search.timeline import Timeline


@pytest.fixture(scope="module")
def toy_run(toy_rlm, toy_split, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    run_search(toy_rlm, toy_split, SearchConfig(n_shared=2, n_personal=1, iterations=2, top_k=3), run_dir)
    return run_dir


def test_timeline_replays_the_trace_decision_by_decision(toy_run):
    events = read_trace(toy_run)
    tl = Timeline.from_events(events)
    decisions = [e for e in events if isinstance(e, (TokenAccepted, SlotRejected, PersonalRound))]
    assert tl.n_steps == len(decisions) and tl.finished
    done = next(e for e in events if isinstance(e, Finished))
    assert tl.shared_after(tl.n_steps) == list(done.shared)
    for r, u in enumerate(tl.users):
        assert tl.personal_after(tl.n_steps, u) == list(done.personal[r])
    for i, (step, e) in enumerate(zip(tl.steps, decisions), start=1):
        if isinstance(e, TokenAccepted):  # the state after the step is the one the event records
            assert tl.shared_after(i) == list(e.shared)
            assert tl.changed_cells()[i, e.slot] == (e.before != e.after)
            assert step.candidates and step.candidates_text and len(step.candidate_values) == 3
        elif isinstance(e, SlotRejected):
            assert tl.shared_after(i) == tl.shared_after(i - 1) and not tl.changed_cells()[i].any()
        else:
            for u, (before, after) in e.changed.items():
                assert tl.personal_after(i - 1, int(u)) == [before] and tl.personal_after(i, int(u)) == [after]
    u = tl.users[0]
    grid = tl.slot_grid(user=u)
    assert grid.shape == (tl.n_steps + 1, 3)
    assert tl.slot_grid(user=u, upto=1).shape == (2, 3)
    with pytest.raises(KeyError, match="was not searched"):
        tl.row(10_000)
    with pytest.raises(IndexError):
        tl.shared_after(tl.n_steps + 1)


def test_timeline_of_a_running_search_and_of_a_non_trace(toy_run, tmp_path):
    lines = (toy_run / "trace.jsonl").read_text().splitlines(keepends=True)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "trace.jsonl").write_text("".join(lines[:4]) + lines[4][:10])  # torn last line, mid-run
    tl = Timeline.from_trace(partial)
    assert not tl.finished and tl.n_steps <= 2
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "trace.jsonl").write_text(lines[-1])  # no run_started
    with pytest.raises(TraceError, match="no run_started"):
        Timeline.from_trace(tmp_path / "x")


def test_token_grid_shows_tokens_changes_and_candidates(toy_run, toy_rlm):
    tl = Timeline.from_trace(toy_run)
    u = tl.users[0]
    fig = viz.token_grid(tl, user=u, token_text=toy_rlm.tokenizer.token_text)
    heat = fig.data[0]
    z = np.asarray(heat.z)
    text = np.asarray(heat.text)
    assert text.shape == (tl.n_steps + 1, 3)
    assert text[-1, 0] == toy_rlm.tokenizer.token_text(tl.shared_after(tl.n_steps)[0])
    assert ((z == 2) == tl.changed_cells(user=u)).all()
    shared_steps = [s for s in tl.steps if s.kind == "shared"]
    s = shared_steps[0]
    assert all(c in heat.customdata[s.index + 1][s.slot] for c in s.candidates_text)
    curve = viz.surrogate_curve(tl)
    assert sum(len(t.x) for t in curve.data if t.mode == "markers") == tl.n_steps + 1


def test_export_writes_every_format_and_html_survives_a_broken_kaleido(toy_run, tmp_path, monkeypatch):
    tl = Timeline.from_trace(toy_run)
    figures, tables = run_report(tl)
    assert set(figures) == {"token_grid", "surrogate_curve", "step_times"}
    assert "personal 1" not in steps_frame(tl).columns  # no user: the shared slots only
    frame = steps_frame(tl, user=tl.users[0])
    assert len(frame) == tl.n_steps + 1 and {"shared 1", "shared 2", "personal 1"} <= set(frame.columns)
    with pytest.raises(ValueError, match="unknown export format"):
        viz.export_figures(figures, tmp_path, ["gif"])
    import plotly.io as pio

    def broken(*a, **k):
        raise RuntimeError("no Chromium")

    monkeypatch.setattr(pio, "write_images", broken)
    report = viz.export_figures(figures, tmp_path / "x")
    assert not report.ok and "no Chromium" in report.errors["png"]
    assert report.problem().startswith("PNG/SVG/PDF not written: static images need Chromium")
    assert sorted(p.name for p in report.written) == ["step_times.html", "surrogate_curve.html", "token_grid.html"]
    assert b"plotly" in (tmp_path / "x" / "token_grid.html").read_bytes()[:200000]


def test_export_plots_cli(disk_rlm_dir, tmp_path, capsys, chromium):
    from pap_rec_core.cli import main
    from pap_rec_core.rlm.checkpoint import load_rlm_with_split

    bundle, split = load_rlm_with_split(disk_rlm_dir, device="cpu")
    run = tmp_path / "run"
    run_search(bundle, split, SearchConfig(n_shared=2, n_personal=1, iterations=1, top_k=2), run)
    out = tmp_path / "out"
    assert main(["export-plots", "--run", str(run), "--out", str(out), "--formats", "html,svg", "--user", "u2"]) == 0
    names = sorted(p.name for p in out.iterdir())
    for stem in ("token_grid_user-u2", "surrogate_curve", "step_times", "metrics", "improvement"):
        assert f"{stem}.html" in names and f"{stem}.svg" in names
    assert {"metrics.csv", "paired_differences.csv", "per_user.csv", "search_steps_user-u2.csv",
            "run_report_user-u2.zip"} <= set(names)
    per_user = (out / "per_user.csv").read_text().splitlines()
    assert per_user[0].startswith("system,user,rank") and len(per_user) == 1 + 3 * 24
    assert main(["export-plots", "--run", str(run), "--out", str(out), "--user", "nobody"]) == 2
    assert "unknown user id 'nobody'" in capsys.readouterr().err
    # a run still in progress: the search figures only, or a clear error for the comparison
    (tmp_path / "part").mkdir()
    lines = (run / "trace.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "part" / "trace.jsonl").write_text("".join(lines[:5]))
    assert main(["export-plots", "--run", str(tmp_path / "part"), "--out", str(tmp_path / "o2"), "--formats", "html",
                 "--no-compare"]) == 0
    assert main(["export-plots", "--run", str(tmp_path / "part"), "--out", str(tmp_path / "o3"), "--formats",
                 "html"]) == 2
    assert "has not finished" in capsys.readouterr().err
    assert json.loads(lines[0])["event"] == "run_started"


def test_charts_of_degenerate_data_do_not_mislead(toy_run):
    tl = Timeline.from_trace(toy_run)
    curve = viz.surrogate_curve(tl, at=2)
    values = [v for _, _, v in tl.surrogate_curve()]
    lo, hi = curve.layout.yaxis.range
    assert lo < min(values) and hi > max(values) and hi - lo < max(1.0, 3 * (max(values) - min(values)) + 0.2)
    assert any(shape.x0 == 2 for shape in curve.layout.shapes)  # the replay position
    # all-zero per-user differences: one thin bar at 0, not a block from -0.5 to 0.5
    hist = viz.improvement_histogram(np.zeros(30), "auto", "manual")
    assert hist.data[0].type == "bar" and list(hist.data[0].y) == [30]
    assert "same for 30" in hist.layout.title.subtitle.text
    assert viz.improvement_histogram(np.array([0.1, -0.2, 0.0]), "a", "m").data[0].type == "histogram"
    # ranks: a better rank is a longer bar, on a log scale (834 vs 859 close, 3 vs 30 apart)
    bars = viz.rank_comparison({"manual": 859.0, "auto": 834.0, "best": 3.0, "miss": float("inf")}).data[0]
    length = dict(zip(bars.y, bars.x))
    assert length["best"] > length["auto"] > length["manual"] > length["miss"] == 0
    assert length["auto"] - length["manual"] < 0.05 * length["best"]
    assert list(bars.text) == ["rank 859", "rank 834", "rank 3", "not ranked"]


def test_a_flat_surrogate_curve_says_so():
    from types import SimpleNamespace

    flat = SimpleNamespace(surrogate_curve=lambda: [(-1, "initial", 0.0715), (0, "shared", 0.0715)])
    fig = viz.surrogate_curve(flat)
    assert "flat: every step kept the value 0.0715" in fig.layout.title.subtitle.text
    lo, hi = fig.layout.yaxis.range
    assert 0.06 < lo < 0.0715 < hi < 0.08


def test_stop_reason_and_tied_slots(toy_run):
    import dataclasses

    tl = Timeline.from_trace(toy_run)
    assert tl.finished and ("finished its budget" in tl.stop_reason or "changed no token" in tl.stop_reason)
    short = dataclasses.replace(tl, iterations_done=1, config={**tl.config, "iterations": 3})
    assert short.stop_reason == "stopped after iteration 1 of 3: iteration 1 changed no token"
    assert "not finished" in dataclasses.replace(tl, finished=False).stop_reason
    shared = next(s for s in tl.steps if s.kind == "shared")
    tie = dataclasses.replace(shared, candidate_values=(shared.value_before,) * 3, accepted=False)
    spread = dataclasses.replace(shared, candidate_values=(shared.value_before, shared.value_before + 0.1))
    assert dataclasses.replace(tl, steps=(tie, spread)).tied_steps() == [tie]
