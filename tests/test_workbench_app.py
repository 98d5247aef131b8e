"""The Streamlit workbench driven by AppTest (streamlit.testing.v1): cold start, user picking, a search
started from the app and run to completion, the replay slider, the comparison page and every export."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "workbench" / "app.py")
MAGIC = {".png": b"\x89PNG", ".pdf": b"%PDF", ".svg": b"<svg", ".html": b"<html", ".csv": b"system"}


def make_app(model_dir: Path, runs_dir: Path, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["model_dir"] = str(model_dir)
    at.session_state["runs_dir"] = str(runs_dir)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "title", "header", "subheader", "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def demo_runs(disk_rlm_dir, tmp_path_factory) -> Path:
    """A runs directory holding the demo run, built through the app's cold-start button."""
    runs = tmp_path_factory.mktemp("runs")
    at = make_app(disk_rlm_dir, runs)
    assert not at.exception
    assert "No search runs" in texts(at)
    at.button(key="build_demo").click().run()
    assert not at.exception, at.exception
    job = at.session_state["job"]  # the demo search runs in the background, like every other search
    assert at.session_state["nav"] == "Search" and job.join(300), "the demo search did not finish in 5 minutes"
    assert job.status == "finished", job.error
    assert (runs / "demo" / "trace.jsonl").is_file()
    return runs


def test_cold_start_without_a_model_offers_to_train(tmp_path):
    at = make_app(tmp_path / "missing-model", tmp_path / "runs")
    assert not at.exception
    assert "No RLM at" in texts(at)
    assert at.button(key="train_demo").label == "Train the demo RLM"


def test_cold_start_builds_the_demo_run_and_lists_it(disk_rlm_dir, demo_runs):
    at = make_app(disk_rlm_dir, demo_runs)
    assert not at.exception
    shown = texts(at)
    assert "toy" in [m.value for m in at.metric] or "toy" in shown
    runs_table = at.dataframe[0].value
    assert list(runs_table["name"]) == ["demo"] and bool(runs_table["finished"].iloc[0])
    assert at.sidebar.selectbox(key="run").value == str(demo_runs / "demo")


def test_picking_a_user_shows_history_truth_and_tokens(disk_rlm_dir, demo_runs):
    at = make_app(disk_rlm_dir, demo_runs, nav="User")
    at.sidebar.selectbox(key="user").set_value("u3").run()
    assert not at.exception
    shown = texts(at)
    assert "User u3" in shown and "Ground truth" in shown and "Toy Movie" in shown
    history = at.dataframe[0].value
    # the test history is the user's first 7 items (the 8th is the test item), one step apart on the cycle
    first = int(history["item"].iloc[0][1:])
    assert list(history["item"]) == [f"i{(first + t) % 30}" for t in range(7)]
    assert list(history["title"]) == [f"Toy Movie {(first + t) % 30}" for t in range(7)]
    assert f"`i{(first + 7) % 30}` — Toy Movie {(first + 7) % 30}" in shown
    assert "personal:" in shown  # the demo run has one personal token per user


def test_unknown_user_id_is_a_clear_message(disk_rlm_dir, demo_runs):
    # a typed id the picker does not list (accept_new_options); AppTest cannot type into a selectbox,
    # so the session starts with it
    at = make_app(disk_rlm_dir, demo_runs, nav="User", user="u999")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and "unknown user id 'u999'" in errors[0] and "did you mean" in errors[0]


def test_a_search_started_in_the_app_runs_to_completion_and_replays(disk_rlm_dir, demo_runs, tmp_path):
    runs = tmp_path / "runs"
    at = make_app(disk_rlm_dir, runs, nav="Search", search_shared=2, search_personal=1, search_iterations=1,
                  search_max_users=0, search_top_k=2)
    assert not at.exception
    at.button[0].click()  # the form's submit button
    at.run()
    assert not at.exception, at.exception
    job = at.session_state["job"]
    assert job.run_dir.parent == runs and job.run_dir.name.startswith(at.session_state["session_tag"])
    deadline = time.time() + 120
    while job.running and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    assert job.status == "finished", job.error
    assert "finished" in texts(at)
    assert at.get("plotly_chart"), "the token-evolution figure is drawn"
    n_steps = at.slider(key="replay_step").value
    assert n_steps >= 3  # 2 shared decisions + 1 personal round
    at.slider(key="replay_step").set_value(1).run()
    assert not at.exception
    assert "step 1: iteration 0, shared " in texts(at)
    at.slider(key="replay_step").set_value(0).run()
    assert "step 1:" not in texts(at)


def test_the_picked_user_is_searched_and_shown(disk_rlm_dir, tmp_path):
    from pap_rec_core.rlm.checkpoint import load_rlm_with_split

    _, split = load_rlm_with_split(disk_rlm_dir, device="cpu")
    last = str(split.data.user_ids[split.eval_users[-1]])  # outside the first 3 users in file order
    at = make_app(disk_rlm_dir, tmp_path / "runs", nav="Search", search_shared=1, search_personal=1,
                  search_iterations=1, search_max_users=3, search_top_k=2, user=last)
    assert not at.exception
    assert f"Searches user {last} + 2 others drawn with the seed" in texts(at)
    at.button[0].click()
    at.run()
    job = at.session_state["job"]
    deadline = time.time() + 120
    while job.running and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    assert job.status == "finished", job.error
    assert job.result.config.user_ids[0] == last and len(job.result.users) == 3
    # the form's rule and held-out items reach the search (our tie-break by default; the paper's strict selectable)
    assert job.result.config.personal_rule == "likelihood-tiebreak" and job.result.config.personal_holdout == 0
    assert f"personal slots of user {last}" in texts(at)
    assert "did not search user" not in texts(at)
    other = next(str(split.data.user_ids[u]) for u in split.eval_users if int(u) not in job.result.users)
    at.sidebar.selectbox(key="user").set_value(other).run()
    assert f"This run did not search user {other}" in texts(at)


def test_stop_and_resume_reach_the_tokens_of_an_uninterrupted_run(disk_rlm_dir, tmp_path):
    from pap_rec_core.search import SearchConfig, run_search
    from pap_rec_core.search.background import BackgroundSearch
    from pap_rec_core.rlm.checkpoint import load_rlm_with_split

    bundle, split = load_rlm_with_split(disk_rlm_dir, device="cpu")
    config = SearchConfig(n_shared=2, n_personal=1, iterations=2, top_k=2)
    stops = []

    def stop_after_first_decision(event):
        if event.event in ("token_accepted", "slot_rejected") and not stops:
            stops.append(event)
            job.stop()

    job = BackgroundSearch(bundle, split, config, tmp_path / "stopped", on_event=stop_after_first_decision)
    job.start()
    assert job.join(120) and job.status == "stopped"
    job.start()
    assert job.join(120) and job.status == "finished", job.error
    whole = run_search(bundle, split, config, tmp_path / "whole")
    assert (job.result.shared, job.result.personal) == (whole.shared, whole.personal)


def test_comparison_page_and_every_export(disk_rlm_dir, demo_runs, chromium):
    at = make_app(disk_rlm_dir, demo_runs, nav="Compare")
    assert not at.exception, at.exception
    table = at.dataframe[0].value  # the comparison table comes first
    assert list(table["system"]) == ["manual 2-3", "PAP-REC 5 shared", "PAP-REC 5 shared + 1 personal"]
    assert {"ndcg@10", "ndcg@10 95% CI"} <= set(table.columns)
    at.sidebar.selectbox(key="user").set_value("u5").run()
    assert not at.exception, at.exception
    manual = at.dataframe[1].value  # then the top-10 lists, manual first
    assert len(manual) == 10 and manual["title"].str.startswith("Toy Movie").all()
    assert "ground truth at rank" in texts(at)
    at.button(key="export").click().run()
    assert not at.exception, at.exception
    out = demo_runs / "demo" / "exports"
    for stem in ("token_grid_user-u5", "surrogate_curve", "step_times", "metrics", "improvement", "user_ranks_user-u5"):
        for ext in (".html", ".png", ".svg", ".pdf"):
            path = out / f"{stem}{ext}"
            assert path.is_file() and path.stat().st_size > 100, path
            head = path.read_bytes()[:4096]
            assert MAGIC[ext] in head, (path, head[:40])
    for stem in ("metrics", "paired_differences", "per_user", "search_steps_user-u5", "user_top10_user-u5"):
        assert (out / f"{stem}.csv").stat().st_size > 20
    labels = {b.label for b in at.get("download_button")}
    assert {"token_grid_user-u5.png", "metrics.svg", "improvement.pdf", "user_ranks_user-u5.html",
            "per_user.csv"} <= labels
    zipped = next(b for b in at.get("download_button") if b.label.startswith("Download everything"))
    import zipfile

    with zipfile.ZipFile(out / "run_report_user-u5.zip") as zf:  # one zip of every file written
        names = set(zf.namelist())
    assert len(names) == 29 and {"token_grid_user-u5.png", "per_user.csv"} <= names
    assert "run_report_user-u5.zip, 29 files" in zipped.label


def test_two_sessions_searching_at_once_keep_their_own_runs(disk_rlm_dir, tmp_path):
    runs = tmp_path / "runs"
    sessions = [make_app(disk_rlm_dir, runs, nav="Search", search_shared=1, search_personal=p, search_iterations=1,
                         search_max_users=0, search_top_k=2) for p in (0, 1)]
    for at in sessions:
        at.button[0].click()
        at.run()
        assert not at.exception, at.exception
    jobs = [at.session_state["job"] for at in sessions]
    assert jobs[0].run_dir != jobs[1].run_dir
    assert all(job.join(120) for job in jobs) and [j.status for j in jobs] == ["finished", "finished"]
    for at, job, personal in zip(sessions, jobs, (0, 1)):
        at.run()
        assert at.session_state["run"] == str(job.run_dir)  # each page shows its own run
        assert job.result.config.n_personal == personal


def test_the_models_dataset_at_another_location(disk_rlm_dir, tmp_path, toy_recbole):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(disk_rlm_dir.parent / "toy", moved)
    at = make_app(disk_rlm_dir, tmp_path / "runs", dataset_dir=str(moved))
    assert not at.exception and not at.error
    assert "24" in [m.value for m in at.metric]
    other = toy_recbole(tmp_path / "other", n_users=25)  # not the data the model was trained on
    at = make_app(disk_rlm_dir, tmp_path / "runs", dataset_dir=str(other))
    assert not at.exception
    assert "Cannot load the model" in at.error[0].value and "fingerprint" in at.error[0].value


def test_the_url_keeps_page_user_and_run_and_a_reload_reattaches_to_the_running_search(disk_rlm_dir, tmp_path):
    import threading

    from pap_rec_core.rlm import load_rlm_with_split
    from pap_rec_core.search import SearchConfig
    from pap_rec_core.search.background import BackgroundSearch
    from pap_rec_core.search.run import list_runs

    bundle, split = load_rlm_with_split(disk_rlm_dir, device="cpu")
    gate, box = threading.Event(), {}

    def held(event):  # keep the search running until the test (or the page's Stop) lets it go
        while not gate.is_set() and box["job"].status != "stopping":
            time.sleep(0.02)

    runs = tmp_path / "runs"
    job = BackgroundSearch(bundle, split, SearchConfig(n_shared=1, n_personal=1, iterations=2, top_k=2),
                           runs / "elsewhere", on_event=held)
    box["job"] = job
    job.start()
    try:
        deadline = time.time() + 60
        while not (runs / "elsewhere" / "trace.jsonl").exists() and time.time() < deadline:
            time.sleep(0.05)
        (row,) = list_runs(runs)
        assert row["status"] == "running" and not row["finished"]
        # a reload: a new session whose URL names the page, the user and the run
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state["model_dir"], at.session_state["runs_dir"] = str(disk_rlm_dir), str(runs)
        at.query_params.update(page="Search", user="u3", run=str(runs / "elsewhere"))
        at.run()
        assert not at.exception, at.exception
        assert at.session_state["nav"] == "Search" and at.session_state["user"] == "u3"
        assert at.session_state["job"] is job  # re-attached: the page drives the running search
        stop = at.button(key="stop_search")
        assert not stop.disabled
        assert "running" in at.sidebar.selectbox(key="run").format_func(str(runs / "elsewhere"))
        stop.click().run()
        assert not at.exception, at.exception
        assert job.join(60) and job.status == "stopped"
        (row,) = list_runs(runs)
        assert row["status"] == "stopped"
        at.run()
        assert at.query_params["page"] == "Search" and at.query_params["run"] == str(runs / "elsewhere")
    finally:
        gate.set()
        job.join(60)


def test_held_out_items_on_the_direct_task_are_refused_in_words(disk_rlm_dir, tmp_path):
    at = make_app(disk_rlm_dir, tmp_path / "runs", nav="Search", search_task="direct", search_holdout=2,
                  search_personal_rule="strict")
    assert not at.exception
    at.button[0].click()
    at.run()
    assert at.session_state["job"] is None
    assert any("held-out items need the sequential task" in e.value for e in at.error), [e.value for e in at.error]
