"""PAP-REC Workbench — the Streamlit app.

    streamlit run workbench/app.py                     # embedded ml-100k RLM, runs in ./runs
    streamlit run workbench/app.py -- --model DIR --runs DIR

A thin client of ``pap_rec_core``: pick a user, watch the prompt tokens evolve per step of a search
running in the background (live or replayed from any trace), compare manual vs automatic prompts for
the user and for the population, and export every figure (PNG/SVG/PDF/HTML) and table (CSV).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # `wb` lives beside this file (AppTest and `streamlit run` alike)
    sys.path.insert(0, _HERE)

import streamlit as st  # noqa: E402

from wb import pages, resources, state as S  # noqa: E402


def main() -> None:
    st.set_page_config(page_title="PAP-REC Workbench", layout="wide")
    S.init(*resources.default_dirs())
    model_dir = st.session_state[S.MODEL_DIR]
    if not resources.model_present(model_dir):
        pages.sidebar(None, None)
        st.title("PAP-REC Workbench")
        pages.cold_start_model(model_dir)
        return
    from pap_rec_core import PapRecError

    try:
        bundle, split = resources.load_model(model_dir, st.session_state[S.DATASET])
    except (PapRecError, FileNotFoundError, ValueError) as err:
        pages.sidebar(None, None)
        st.title("PAP-REC Workbench")
        st.error(f"Cannot load the model at `{model_dir}`: {err}")
        return
    pages.sidebar(bundle, split)
    S.sync_url()
    page = {"Overview": pages.overview, "User": pages.user_page, "Search": pages.search_page,
            "Compare": pages.compare_page}[st.session_state[S.NAV]]
    page(bundle, split)


main()
