"""PAP-REC Workbench — the Streamlit app.

    streamlit run workbench/app.py                     # embedded ml-100k RLM, runs in ./runs
    streamlit run workbench/app.py -- --model DIR --runs DIR

A thin client of ``pap_rec_core``: pick a user, watch the prompt tokens evolve per step of a search
running in the background (live or replayed from any trace), compare manual vs automatic prompts for
the user and for the population, and export every figure (PNG/SVG/PDF/HTML) and table (CSV).

One file per page under ``wb/pages/`` (``render(bundle, split)`` each), joined by ``st.navigation``
here; the sidebar is ``wb/sidebar.py``; every session-state key is in ``wb/state.py``.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # `wb` lives beside this file (AppTest and `streamlit run` alike)
    sys.path.insert(0, _HERE)

import streamlit as st  # noqa: E402

from wb import resources, state as S  # noqa: E402
from wb.pages import compare, overview, search, user  # noqa: E402
from wb.sidebar import sidebar  # noqa: E402

PAGES = {"Overview": overview.render, "User": user.render, "Search": search.render, "Compare": compare.render}
assert tuple(PAGES) == S.PAGES


def main() -> None:
    st.set_page_config(page_title="PAP-REC Workbench", layout="wide")
    S.init(*resources.default_dirs())
    model_dir = st.session_state[S.MODEL_DIR]
    if not resources.model_present(model_dir):
        sidebar(None, None)
        st.title("PAP-REC Workbench")
        overview.cold_start_model(model_dir)
        return
    from pap_rec_core import PapRecError

    try:
        bundle, split = resources.load_model(model_dir, st.session_state[S.DATASET])
    except (PapRecError, FileNotFoundError, ValueError) as err:
        sidebar(None, None)
        st.title("PAP-REC Workbench")
        st.error(f"Cannot load the model at `{model_dir}`: {err}")
        return
    pages = {title: st.Page(partial(render, bundle, split), title=title, url_path=title.lower(),
                            default=title == S.PAGES[0])
             for title, render in PAGES.items()}
    current = st.navigation(list(pages.values()))
    S.follow_navigation(current.title, pages)
    sidebar(bundle, split)
    S.sync_url()
    current.run()


main()
