"""Overview: the model, the dataset and the search runs; the cold start (train the demo RLM, build the
demo search run)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from wb import resources, state as S

DEMO_BUILD = dict(n_shared=5, n_personal=1, iterations=2, max_users=200, surrogate="exact", seed=0,
                  personal_rule="likelihood-tiebreak")  # tokens visibly change: benchmarks/results/demo_settings_ml-100k.md


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
    """Start the demo search in the background, like every other search, and follow it on the Search page."""
    from pap_rec_core.search import SearchConfig
    from pap_rec_core.search.background import BackgroundSearch

    job = BackgroundSearch(bundle, split, SearchConfig(**DEMO_BUILD), Path(runs_dir) / "demo")
    job.start()
    ss = st.session_state
    ss[S.JOB], ss[S.RUN], ss[S.NAV] = job, str(job.run_dir), "Search"
    st.rerun()


def render(bundle, split) -> None:
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
                f"iterations, the first {DEMO_BUILD['max_users']} users; a few minutes on a CPU, in the background: the "
                "Search page follows it), or start one on the Search page.")
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
