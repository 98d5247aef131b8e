"""Compare: manual vs automatic prompts for the population and one user; what the personal tokens did;
export every figure and table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from wb import resources, state as S
from wb.sidebar import selected_user


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


def render(bundle, split) -> None:
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
                                           exact=cmp.method == "exact")
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
