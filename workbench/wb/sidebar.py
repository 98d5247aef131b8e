"""The sidebar shared by every page: what is loaded, the run and the user (the page links above it come
from ``st.navigation`` in ``app.py``)."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from wb import resources, state as S


def sidebar(bundle, split) -> None:
    with st.sidebar:
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
