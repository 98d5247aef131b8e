"""Every session-state key of the workbench, in one place (tests set and read them by these names)."""

from __future__ import annotations

import uuid

import streamlit as st

NAV = "nav"  # the page shown; set it to go to another page (follow_navigation switches)
SHOWN = "nav_shown"  # the page the last run drew
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
RULE, HOLDOUT = "search_personal_rule", "search_holdout"

PAGES = ("Overview", "User", "Search", "Compare")


URL_KEYS = {"page": NAV, "user": USER, "run": RUN}  # query parameter -> session key: a reload keeps them


def init(model_dir: str, runs_dir: str) -> None:
    """Initialise the keys once per session (values set before the first run, e.g. by tests, are kept).
    A new session (a reload, a shared link) starts from the page, user and run in the URL."""
    for param, key in URL_KEYS.items():
        value = st.query_params.get(param)
        if key not in st.session_state and value:
            if key == NAV and value not in PAGES:
                continue
            st.session_state[key] = value
    defaults = {NAV: PAGES[0], MODEL_DIR: model_dir, RUNS_DIR: runs_dir, DATASET: "", RUN: None, USER: None,
                SESSION_TAG: uuid.uuid4().hex[:8], JOB: None, STAGE: "test", METHOD: "first-token", EXPORT: None,
                SEARCH_ERROR: None,
                TASK: "sequential", SHARED: 5, PERSONAL: 1, SURROGATE: "exact", ITERATIONS: 2, MAX_USERS: 200,
                TOP_K: 5, SEED: 0, RULE: "likelihood-tiebreak", HOLDOUT: 0}
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def sync_url() -> None:
    """Write the page, user and run into the URL (``st.query_params``) so that a reload re-opens them."""
    for param, key in URL_KEYS.items():
        value = st.session_state.get(key)
        if value in (None, ""):
            if param in st.query_params:
                del st.query_params[param]
        elif st.query_params.get(param) != str(value):
            st.query_params[param] = str(value)


def follow_navigation(current: str, pages: dict) -> None:
    """Keep ``NAV`` and the page ``st.navigation`` runs in step. A page link the user clicked wins (``NAV``
    follows it); ``NAV`` set by code or by the URL's ``page=`` (a button, a test, an old link) switches
    to that page. ``pages`` maps each title to its ``st.Page``."""
    ss = st.session_state
    wanted = ss.get(NAV)
    if wanted != current and wanted != ss.get(SHOWN) and wanted in pages:
        ss[SHOWN] = wanted
        st.switch_page(pages[wanted])  # reruns on that page
    ss[NAV] = ss[SHOWN] = current
