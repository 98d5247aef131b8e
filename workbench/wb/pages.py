"""The workbench's pages. Each is a thin layer over ``pap_rec_core``: it reads settings from session
state (``state.py``), calls the library, and draws the results with ``pap_rec_core.viz`` figures."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from wb import resources, state as S

DEMO_BUILD = dict(n_shared=5, n_personal=1, iterations=2, max_users=200, surrogate="exact", seed=0,
                  personal_rule="likelihood-tiebreak")  # tokens visibly change: benchmarks/results/demo_settings_ml-100k.md


# ----------------------------------------------------------------------------------------------------
# Sidebar: navigation, what is loaded, the run and the user


def sidebar(bundle, split) -> None:
    with st.sidebar:
        st.radio("Page", S.PAGES, key=S.NAV)
        st.text_input("Model directory", key=S.MODEL_DIR, help="an RLM directory from `pap-rec train-rlm`")
        st.text_input("Runs directory", key=S.RUNS_DIR, help="search runs (one directory per run, with trace.jsonl)")
        st.text_input("Dataset location (optional)", key=S.DATASET,
                      help="where the model's dataset is now, if it moved (P5 directory, RecBole directory, "
                           "CSV/TSV/Parquet); empty: where the model records it")
        rows = [r for r in resources.runs(st.session_state[S.RUNS_DIR]) if not r["error"]]
        paths = [r["path"] for r in rows]
        job = st.session_state[S.JOB]
        if job is not None and str(job.run_dir) not in paths:  # just started: no trace on disk yet
            paths.insert(0, str(job.run_dir))
        if st.session_state[S.RUN] not in paths:
            st.session_state[S.RUN] = paths[0] if paths else None
        if paths:
            labels = {r["path"]: run_label(r, st.session_state[S.SESSION_TAG]) for r in rows}
            st.selectbox("Run", paths, key=S.RUN, format_func=lambda p: labels.get(p, f"{Path(p).name} (starting)"),
                         help="time of the last write · status · task and slots · surrogate · users searched · "
                              "the picked user · this session's runs")
        if split is not None:
            st.selectbox("User id", [str(u) for u in split.data.user_ids], key=S.USER, index=None,
                         placeholder="type or pick a user id", accept_new_options=True,
                         help="searchable; any id you type is checked against the dataset")


def run_label(row: dict, session_tag: str) -> str:
    """What tells runs apart in the run picker, most distinctive first (a closed picker shows the start):
    ``21:40:28 · running · sequential 5+1 exact · 200 users · user 42 · this session — <name>``."""
    parts = [time.strftime("%H:%M:%S", time.localtime(row["modified"])), row["status"],
             f"{row['task']} {row['shared']}+{row['personal']} {row['surrogate']}"]
    if row["status"] != "finished":
        parts[1] += f" ({row['iterations']})"
    parts.append(f"{row['users']:,} users")
    if row.get("first_user") is not None:
        parts.append(f"user {row['first_user']}")
    if str(row["name"]).split("/")[-1].startswith(f"{session_tag}-"):
        parts.append("this session")
    return " · ".join(parts) + f" — {row['name']}"


def selected_user(split) -> int | None:
    """Dense index of the selected user id, or None; an unknown id is reported (no traceback)."""
    from pap_rec_core.comparison import resolve_user
    from pap_rec_core.data.errors import UnknownUserError

    raw = st.session_state.get(S.USER)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        return resolve_user(split, str(raw))
    except UnknownUserError as err:
        st.error(str(err))
        return None


# ----------------------------------------------------------------------------------------------------
# Overview (and the cold start)


def cold_start_model(model_dir: str) -> None:
    st.warning(f"No RLM at `{model_dir}` yet. Point the sidebar to a model directory, or train the demo RLM "
               "(MovieLens-100k, `demo` preset, about 15 minutes on a 2-core CPU; resumable).")
    if st.button("Train the demo RLM", key="train_demo", type="primary"):
        from pap_rec_core.data import DatasetConfig
        from pap_rec_core.rlm.training import train_preset

        bar = st.progress(0.0, text="training the demo RLM…")

        def on_step(step: int, total: int, loss: float) -> None:
            if step % 10 == 0 or step == total:
                bar.progress(min(1.0, step / total), text=f"training the demo RLM: step {step}/{total}, loss {loss:.3f}")

        train_preset(DatasetConfig(), "demo", model_dir, progress=False, on_step=on_step)
        st.cache_resource.clear()
        st.rerun()


def build_demo_run(bundle, split, runs_dir: str) -> None:
    from pap_rec_core.search import SearchConfig, run_search

    config = SearchConfig(**DEMO_BUILD)
    run_dir = Path(runs_dir) / "demo"
    bar = st.progress(0.0, text="building the demo search run…")
    steps = [0]

    def on_event(event) -> None:
        if event.event in ("token_accepted", "slot_rejected", "personal_round"):
            steps[0] += 1
        if event.event in ("token_accepted", "slot_rejected", "personal_round", "iteration_finished"):
            done = getattr(event, "iteration", 0) + (1 if event.event == "iteration_finished" else 0)
            bar.progress(min(1.0, done / config.iterations),
                         text=f"demo search: iteration {done}/{config.iterations}, {steps[0]} decisions")

    run_search(bundle, split, config, run_dir, on_event=on_event)
    bar.progress(1.0, text="demo search finished")
    st.session_state[S.RUN] = str(run_dir)
    st.rerun()


def overview(bundle, split) -> None:
    st.title("PAP-REC Workbench")
    st.caption("Personalized automatic prompts for a frozen P5-style recommendation language model "
               "(Li et al., arXiv 2402.00284).")
    meta = bundle.metadata
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Dataset", split.data.name)
    c2.metric("Users", f"{split.data.n_users:,}")
    c3.metric("Items", f"{split.data.n_items:,}")
    c4.metric("Interactions", f"{split.data.n_interactions:,}")
    index = meta.get("item_index", {})
    st.markdown(
        f"**Model** `{bundle.path}` — {bundle.model.num_parameters():,} parameters, preset "
        f"`{meta.get('train_config', {}).get('preset', '?')}`, device `{next(bundle.model.parameters()).device}`  \n"
        f"**Item index** {index.get('mode', '?')} (seed {index.get('seed', '?')})"
        + (" — leaky (P5's sequential numbering)" if index.get("leaky") else "")
        + f"  \n**Split** leave-one-out, {len(split.eval_users):,} users with validation and test items")
    runs_dir = st.session_state[S.RUNS_DIR]
    rows = resources.runs(runs_dir)
    st.subheader("Search runs")
    if not rows:
        st.info(f"No search runs in `{runs_dir}` yet. Build the demo run (5 shared + 1 personal token, 2 "
                f"iterations, the first {DEMO_BUILD['max_users']} users; a few minutes on a CPU), or start "
                "one on the Search page.")
        if st.button("Build the demo search run", key="build_demo", type="primary"):
            build_demo_run(bundle, split, runs_dir)
        return
    frame = pd.DataFrame(rows)
    if "modified" in frame:
        frame["modified"] = pd.to_datetime(frame["modified"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    cols = [c for c in ["name", "status", "task", "shared", "personal", "surrogate", "users", "first_user",
                        "iterations", "value", "modified", "finished", "error"] if c in frame]
    st.dataframe(frame[cols], hide_index=True, key="runs_table")
    bad = [r for r in rows if r["error"]]
    if bad:
        st.warning(f"{len(bad)} run(s) could not be read: " + "; ".join(r["error"] for r in bad))


# ----------------------------------------------------------------------------------------------------
# User


def user_page(bundle, split) -> None:
    from pap_rec_core.comparison import user_history

    st.header("User")
    user = selected_user(split)
    if user is None:
        if st.session_state.get(S.USER) is None:
            st.info("Pick or type a user id in the sidebar.")
        return
    uid = split.data.user_ids[user]
    st.subheader(f"User {uid}")
    test = int(split.test_target[user])
    if test < 0:
        st.warning(f"User {uid} has too short a history for validation and test items.")
        return
    titles = split.data.item_titles()
    c1, c2 = st.columns([2, 1])
    with c1:
        st.markdown(f"**History** (last 20 of {len(split.history(user, 'test'))} items, oldest first)")
        st.dataframe(user_history(split, user, "test"), hide_index=True, key="user_history")
    with c2:
        st.markdown("**Ground truth (test) next item**")
        st.markdown(f"`{split.data.item_ids[test]}`" + (f" — {titles[test]}" if titles is not None else ""))
        run = st.session_state.get(S.RUN)
        if run:
            tl = resources.timeline(run)
            tok = bundle.tokenizer
            st.markdown("**Prompt tokens in the selected run**")
            shared = tl.shared_after(tl.n_steps)
            st.markdown("shared: " + " ".join(f"`{tok.token_text(t)}`" for t in shared))
            if tl.n_personal:
                if user in tl.users:
                    st.markdown("personal: " + " ".join(f"`{tok.token_text(t)}`" for t in tl.personal_after(tl.n_steps, user)))
                else:
                    st.caption(f"User {uid} was not among the {len(tl.users)} users this run searched.")


# ----------------------------------------------------------------------------------------------------
# Search: start / stop / resume in the background, live view, replay


def _new_job(bundle, split):
    from pap_rec_core.search import SearchConfig
    from pap_rec_core.search.background import BackgroundSearch
    from pap_rec_core.search.users import sample_user_ids

    ss = st.session_state
    picked = selected_user(split)
    if picked is not None and picked not in set(int(u) for u in split.eval_users):
        raise ValueError(f"user {split.data.user_ids[picked]} has no validation item (fewer than 3 interactions) "
                         "and cannot be searched; pick another user")
    if int(ss[S.HOLDOUT]) and ss[S.TASK] != "sequential":
        raise ValueError(f"held-out items need the sequential task (the {ss[S.TASK]} task has no held-out training "
                         "items); set Held-out items to 0")
    config = SearchConfig(task=ss[S.TASK], n_shared=int(ss[S.SHARED]), n_personal=int(ss[S.PERSONAL]),
                          surrogate=ss[S.SURROGATE], iterations=int(ss[S.ITERATIONS]), top_k=int(ss[S.TOP_K]),
                          personal_rule=ss[S.RULE], shared_holdout=int(ss[S.HOLDOUT]),
                          personal_holdout=int(ss[S.HOLDOUT]),
                          user_ids=sample_user_ids(split, picked, int(ss[S.MAX_USERS]), int(ss[S.SEED])),
                          seed=int(ss[S.SEED]))
    run_dir = Path(ss[S.RUNS_DIR]) / f"{ss[S.SESSION_TAG]}-{time.strftime('%Y%m%d-%H%M%S')}"
    return BackgroundSearch(bundle, split, config, run_dir)


def _start_search(bundle, split) -> None:
    """The form's callback: it runs before the widgets are drawn, so it may select the new run."""
    from pap_rec_core import PapRecError

    ss = st.session_state
    try:
        job = _new_job(bundle, split)
    except (ValueError, PapRecError) as err:
        ss[S.SEARCH_ERROR] = str(err)
        return
    job.start()
    ss[S.JOB], ss[S.RUN], ss[S.SEARCH_ERROR] = job, str(job.run_dir), None


def _attach(run: str | None) -> None:
    """Re-attach to the search of the selected run when this server runs it (a reload lost the session,
    or another session started it): its controls and live view come back."""
    from pap_rec_core.search.background import find_job

    ss = st.session_state
    if run and (ss[S.JOB] is None or str(ss[S.JOB].run_dir) != str(run)):
        found = find_job(run)
        if found is not None and found.running:
            ss[S.JOB] = found


def search_page(bundle, split) -> None:
    from pap_rec_core.search.runlock import holder

    st.header("Search")
    ss = st.session_state
    _attach(ss.get(S.RUN))
    job = ss[S.JOB]
    with st.expander("Start a search", expanded=job is None):
        with st.form("search_form"):
            c1, c2, c3, c4 = st.columns(4)
            tasks = ["sequential", "direct"] + (["explanation"] if split.data.reviews is not None else [])
            c1.selectbox("Task", tasks, key=S.TASK)
            c1.selectbox("Surrogate", ["exact", "beam", "likelihood"] + (["bleu-rouge"] if len(tasks) > 2 else []),
                         key=S.SURROGATE,
                         help="exact: NDCG@5+HR@5 from exact ranks; beam: the paper's 20-beam approximation; "
                              "likelihood: target log-likelihood; bleu-rouge (explanation): BLEU-4 + 0.1 ROUGE-L")
            c2.number_input("Shared tokens", 0, 20, key=S.SHARED)
            c2.number_input("Personal tokens", 0, 3, key=S.PERSONAL)
            c3.number_input("Iterations (budget)", 1, 50, key=S.ITERATIONS)
            c3.number_input("Users (0 = all)", 0, split.data.n_users, key=S.MAX_USERS,
                            help="how many users the search judges on: the picked user and others drawn with "
                                 "the seed")
            c4.number_input("Candidates per slot (top-k)", 1, 50, key=S.TOP_K)
            c4.number_input("Seed", 0, 2**31 - 1, key=S.SEED)
            c1.selectbox("Personal rule", ["strict", "likelihood-tiebreak"], key=S.RULE,
                         format_func=lambda r: {"strict": "strict (the paper)"}.get(r, "likelihood tie-break (ours)"),
                         help="strict: a user's token changes only when their surrogate improves (the paper; on "
                              "one validation item per user this is rare); likelihood tie-break: among equal "
                              "surrogate values, the higher target likelihood wins")
            c2.number_input("Held-out items", 0, 10, key=S.HOLDOUT,
                            help="judge shared and personal rounds also on each user's last N training items, "
                                 "kept out of the gradients (0: validation item only, the paper)")
            picked = selected_user(split)
            n = int(ss.get(S.MAX_USERS) or 0)
            who = f"user {split.data.user_ids[picked]}" if picked is not None else "no user picked"
            st.caption(f"Searches {who}" + (" and every other user" if not n else
                       f" + {n - (picked is not None)} others drawn with the seed" if picked is not None else
                       f": {n} users drawn with the seed") + ".")
            st.form_submit_button("Start search", type="primary", on_click=_start_search, args=(bundle, split))
        if ss.get(S.SEARCH_ERROR):
            st.error(f"Cannot start this search: {ss[S.SEARCH_ERROR]}")
    job = ss[S.JOB]
    if job is not None:
        c1, c2, c3 = st.columns([1, 1, 4])
        if c1.button("Stop", key="stop_search", disabled=not job.running):
            job.stop()
            job.join(30)
        if c2.button("Resume", key="resume_search", disabled=job.running or job.status == "finished"):
            job.start()
        c3.markdown(f"Search `{job.run_dir.name}` — **{job.status}**")
        if job.status == "failed":
            st.error(job.error)
    run = ss.get(S.RUN)
    running = job is not None and job.running and str(job.run_dir) == str(run)
    elsewhere = None if running or not run else holder(run)
    if elsewhere is not None:  # e.g. `pap-rec search` in a terminal: watch it live; it stops there
        running = True
        st.info(f"This run is being searched by process {elsewhere['pid']} on {elsewhere['host']}: the view "
                "follows it live; stop it where it was started.")
    if not run or not (running or (Path(run) / "trace.jsonl").exists()):
        st.info("No run selected: start a search above or pick a run in the sidebar.")
        return
    st.fragment(run_every=1.0 if running else None)(_live_view)(bundle, split, run, running)


def _live_view(bundle, split, run: str, running: bool) -> None:
    from pap_rec_core import viz
    from pap_rec_core.search.events import TraceError
    from pap_rec_core.search.timeline import slot_labels

    from pap_rec_core.search.runlock import holder

    job = st.session_state[S.JOB]
    mine = job is not None and str(job.run_dir) == str(run)
    if running and ((mine and not job.running) or (not mine and holder(run) is None)):
        st.rerun()  # the search ended: redraw the controls too
    if not (Path(run) / "trace.jsonl").exists():
        st.caption("The search is starting…")
        return
    try:
        tl = resources.timeline(run)
    except TraceError as err:
        st.warning(str(err))
        return
    user = selected_user(split)
    shown_user = user if (tl.n_personal and user is not None and user in tl.users) else (
        tl.users[0] if tl.n_personal and tl.users else None)
    if user is not None and user not in tl.users:
        st.warning(f"This run did not search user {split.data.user_ids[user]}"
                   + (f": showing the personal slots of user {split.data.user_ids[shown_user]}." if shown_user is not None
                      else ".") + " Start a search with that user picked to follow its tokens.")
    st.caption(f"{Path(run).name}: {tl.n_steps} decisions, {tl.iterations_done}/{tl.config.get('iterations')} "
               f"iterations, {tl.seconds:.0f} s{' — running' if running else ''}"
               + ("" if shown_user is None else f"; personal slots of user {split.data.user_ids[shown_user]}"))
    key, ss = S.REPLAY, st.session_state
    at_end = ss.get(key, 0) >= ss.get(S.REPLAY_MAX, 0)  # the slider sits at the last step: keep it there
    if ss.get(S.REPLAY_RUN) != run or at_end or ss.get(key, 0) > tl.n_steps:
        ss[key] = tl.n_steps
    ss[S.REPLAY_RUN], ss[S.REPLAY_MAX] = run, tl.n_steps
    step = st.slider("Replay: step", 0, max(tl.n_steps, 1), key=key, disabled=tl.n_steps == 0,
                     help="scrub through the decisions of the search (0 = the initial prompt)")
    step = min(step, tl.n_steps)
    tok = bundle.tokenizer
    st.plotly_chart(viz.token_grid(tl, user=shown_user, upto=step, token_text=tok.token_text,
                                   user_label=None if shown_user is None else str(split.data.user_ids[shown_user])),
                    key="token_grid_chart")
    shared = tl.shared_after(step)
    personal = tl.personal_after(step, shown_user) if shown_user is not None else []
    st.markdown("**Prompt at this step:** " + " ".join(f"`{tok.token_text(t)}`" for t in shared + personal))
    if not running:
        tied = tl.tied_steps()
        st.caption(f"The run {tl.stop_reason}." + (
            f" In {len(tied)} of {sum(s.kind == 'shared' for s in tl.steps)} shared decisions every candidate tied "
            "with the current token (the surrogate could not tell them apart)." if tied else ""))
    if step:
        s = tl.steps[step - 1]
        detail = (f"{'accepted' if s.accepted else 'rejected'}: surrogate {s.value_before:.4f} → {s.value_after:.4f}"
                  if s.kind == "shared" else f"{s.users_changed} users changed their token; mean surrogate "
                                              f"{s.value_before:.4f} → {s.value_after:.4f}")
        if s in tl.tied_steps():
            detail += f" — all {len(s.candidate_values)} candidates tied at {s.value_before:.4f}"
        st.caption(f"step {step}: iteration {s.iteration}, {slot_labels(tl.n_shared, tl.n_personal)[s.slot]} — {detail}")
    c1, c2 = st.columns(2)
    c1.plotly_chart(viz.surrogate_curve(tl, at=step), key="surrogate_chart")
    c2.plotly_chart(viz.round_times(tl), key="times_chart")


# ----------------------------------------------------------------------------------------------------
# Compare: manual vs automatic, population and user; export


def _explanation_compare(run: str) -> None:
    """An explanation run: BLEU/ROUGE of the manual and the searched prompts' explanations."""
    ss = st.session_state
    st.radio("Split", ["test", "valid"], key=S.STAGE, horizontal=True)
    try:
        table = resources.explanation_comparison(ss[S.MODEL_DIR], run, ss[S.STAGE], ss[S.DATASET])
    except ValueError as err:
        st.error(str(err))
        return
    st.subheader(f"Explanations: {int(table['pairs'].iloc[0])} held-out review pairs ({ss[S.STAGE]})")
    st.caption("BLEU / ROUGE over all pairs; pair surrogate = smoothed sentence BLEU-4 + 0.1 ROUGE-L per pair "
               "(the search's judge); Δ with a paired bootstrap 95% CI against manual 3-1.")
    st.dataframe(table, hide_index=True)


def compare_page(bundle, split) -> None:
    from pap_rec_core import viz
    from pap_rec_core.comparison import user_recommendations
    from pap_rec_core.exports import export_run_report, run_report

    st.header("Compare manual and automatic prompts")
    ss = st.session_state
    run = ss.get(S.RUN)
    if not run:
        st.info("No run selected: build the demo run on the Overview page or start a search.")
        return
    tl = resources.timeline(run)
    if not tl.finished:
        st.info(f"`{Path(run).name}` has not finished; the comparison needs its final tokens (resume it on the "
                "Search page).")
        return
    if tl.config.get("task") == "explanation":
        _explanation_compare(run)
        return
    c1, c2 = st.columns(2)
    c1.radio("Split", ["test", "valid"], key=S.STAGE, horizontal=True)
    c2.radio("Ranking", ["first-token", "exact"], key=S.METHOD, horizontal=True,
             help="first-token: one decoder step over single-token items (fast); exact: sequence likelihood")
    cmp = resources.comparison(ss[S.MODEL_DIR], run, ss[S.STAGE], ss[S.METHOD], ss[S.DATASET])
    table = cmp.table()
    wide = pd.DataFrame({"system": list(cmp.results)})
    for m in viz.METRICS:
        sub = table[table.metric == m].set_index("system")
        wide[m] = [sub.loc[s, "mean"] for s in wide.system]
        wide[f"{m} 95% CI"] = [f"[{sub.loc[s, 'ci_low']:.4f}, {sub.loc[s, 'ci_high']:.4f}]" for s in wide.system]
    users_n = len(next(iter(cmp.results.values())).users)
    st.subheader(f"Population: {users_n} searched users, {cmp.stage}")
    st.dataframe(wide, hide_index=True, key="comparison_table")
    paired = cmp.paired()
    if len(paired):
        st.caption("Paired bootstrap against " + cmp.reference + ": " + "; ".join(
            f"{r.system} {r.metric} {r.diff:+.4f} [{r.low:+.4f}, {r.high:+.4f}]"
            for r in paired[paired.metric == "ndcg@10"].itertuples()))
    user = selected_user(split)
    figures, tables = run_report(tl, cmp, token_text=bundle.tokenizer.token_text,
                                 user=user if (user is not None and user in tl.users) else None,
                                 user_ids=split.data.user_ids)
    c1, c2 = st.columns(2)
    c1.plotly_chart(figures["metrics"], key="metrics_chart")
    c2.plotly_chart(figures["improvement"], key="improvement_chart")

    st.subheader("One user")
    if user is None:
        st.info("Pick a user id in the sidebar to see their top-10 lists side by side.")
    elif user not in tl.users:
        st.warning(f"User {split.data.user_ids[user]} was not among the users this run searched.")
    else:
        recs = {name: user_recommendations(bundle, split, render, user, system=name, task=cmp.task, stage=cmp.stage,
                                           exact=cmp.method == "exact", eval_users=cmp.results[name].users)
                for name, render in cmp.prompts.items()}
        cols = st.columns(len(recs))
        for col, (name, rec) in zip(cols, recs.items()):
            rank = "not ranked" if not np.isfinite(rec.target_rank) else f"{int(rec.target_rank)}"
            col.markdown(f"**{name}** — ground truth at rank **{rank}**")
            frame = rec.items.assign(hit=rec.items["hit"].map({True: "✔", False: ""}))
            col.dataframe(frame, hide_index=True, key=f"top10_{name}")
        figures["user_ranks"] = viz.rank_comparison({n: r.target_rank for n, r in recs.items()},
                                                    title=f"Rank of user {split.data.user_ids[user]}'s "
                                                          f"ground-truth item")
        st.plotly_chart(figures["user_ranks"], key="user_rank_chart")
        tables["user_top10"] = pd.concat([r.items.assign(system=n) for n, r in recs.items()], ignore_index=True)

    if tl.n_personal and tl.n_shared:
        from pap_rec_core.comparison import personal_token_effects

        st.subheader("What the personal tokens did")
        from pap_rec_core.search.run import SearchResult

        effects = personal_token_effects(cmp, bundle, split, SearchResult.from_run(run), n=3)
        if effects.empty:
            st.info("The personal tokens changed no user's rank of the test item.")
        else:
            st.caption("The users whose test rank the personal tokens improved and worsened most (against the "
                       "shared tokens alone), with their tokens, the test item's genres and their history's.")
            st.dataframe(effects, hide_index=True, key="personal_effects")
            figures["personal_effects"] = viz.personal_token_effects(effects)
            st.plotly_chart(figures["personal_effects"], key="personal_effects_chart")
            tables["personal_effects"] = effects

    st.subheader("Export")
    out = Path(run) / "exports"
    st.caption(f"Every figure above as PNG, SVG, PDF and standalone HTML, and the tables as CSV, into `{out}` "
               f"(the same files as `pap-rec export-plots --run {run} --out {out}`).")
    if st.button("Export figures and tables", key="export"):
        with st.spinner("Exporting (static images go through Chromium)…"):
            searched = user is not None and user in tl.users
            ss[S.EXPORT] = export_run_report(figures, tables, out,
                                             user_id=str(split.data.user_ids[user]) if searched else None)
    report = ss.get(S.EXPORT)
    if report is not None:
        if report.errors:
            st.warning(report.problem())
        files = [Path(p) for p in report.written if Path(p).is_file()]
        archive = next((p for p in files if p.suffix == ".zip"), None)
        if archive is not None:
            st.download_button(f"Download everything ({archive.name}, {len(files) - 1} files)", archive.read_bytes(),
                               file_name=archive.name, mime="application/zip", key="dl_zip", on_click="ignore",
                               type="primary")
        with st.expander("Single files"):
            cols = st.columns(4)
            singles = sorted((p for p in files if p.suffix != ".zip"), key=lambda p: (p.suffix, p.name))
            for i, path in enumerate(singles):
                cols[i % 4].download_button(path.name, path.read_bytes(), file_name=path.name,
                                            mime=viz.MIME.get(path.suffix[1:], "application/octet-stream"),
                                            key=f"dl_{path.name}", on_click="ignore")
