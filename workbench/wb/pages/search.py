"""Search: start / stop / resume a search in the background, follow it live, replay any run."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from wb import resources, state as S
from wb.sidebar import selected_user


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


def render(bundle, split) -> None:
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
