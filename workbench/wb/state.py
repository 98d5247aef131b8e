"""Every session-state key of the workbench, in one place (tests set and read them by these names)."""

from __future__ import annotations

import uuid

import streamlit as st

NAV = "nav"  # the page shown
MODEL_DIR = "model_dir"  # model directory (text input)
RUNS_DIR = "runs_dir"  # runs directory (text input)
DATASET = "dataset_dir"  # the model's dataset at another location (text input; empty: as recorded)
RUN = "run"  # selected run directory (path as str)
USER = "user"  # selected raw user id (str)
SESSION_TAG = "session_tag"  # names this browser session's runs, so two sessions never share one
JOB = "job"  # the BackgroundSearch this session started
REPLAY = "replay_step"  # replay slider position
REPLAY_RUN, REPLAY_MAX = "replay_run", "replay_max"  # the run and last step the slider was drawn for
STAGE = "compare_stage"
METHOD = "compare_method"
EXPORT = "export_report"  # the last ExportReport of this session
SEARCH_ERROR = "search_error"  # why the last search could not start
# search form
TASK, SHARED, PERSONAL, SURROGATE, ITERATIONS, MAX_USERS, TOP_K, SEED = (
    "search_task", "search_shared", "search_personal", "search_surrogate", "search_iterations",
    "search_max_users", "search_top_k", "search_seed")

PAGES = ("Overview", "User", "Search", "Compare")


def init(model_dir: str, runs_dir: str) -> None:
    """Initialise the keys once per session (values set before the first run, e.g. by tests, are kept)."""
    defaults = {NAV: PAGES[0], MODEL_DIR: model_dir, RUNS_DIR: runs_dir, DATASET: "", RUN: None, USER: None,
                SESSION_TAG: uuid.uuid4().hex[:8], JOB: None, STAGE: "test", METHOD: "first-token", EXPORT: None,
                SEARCH_ERROR: None,
                TASK: "sequential", SHARED: 5, PERSONAL: 1, SURROGATE: "exact", ITERATIONS: 2, MAX_USERS: 200,
                TOP_K: 5, SEED: 0}
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value
