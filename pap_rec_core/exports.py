"""The figures and tables of one search run, as the workbench shows them and ``pap-rec export-plots``
writes them (one code path, so the files are the same).

Example::

    figures, tables = run_report(Timeline.from_trace(run), comparison=compare_run(bundle, split, run))
    export_run_report(figures, tables, "exports/")
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from pap_rec_core import viz
from pap_rec_core.search.timeline import Timeline, slot_labels


def steps_frame(timeline: Timeline, token_text: Callable[[int], str] | None = None,
                user: int | None = None) -> pd.DataFrame:
    """One row per step (row 0 = initial prompt): kind, slot, accepted, surrogate, seconds, and the token
    in every slot (the given user's personal slots)."""
    grid = timeline.slot_grid(user if timeline.n_personal else None)
    labels = slot_labels(timeline.n_shared, grid.shape[1] - timeline.n_shared)
    rows = []
    for r in range(grid.shape[0]):
        s = timeline.steps[r - 1] if r else None
        row = {"step": r, "iteration": s.iteration if s else None, "kind": s.kind if s else "initial",
               "slot": labels[s.slot] if s and s.slot < len(labels) else None, "accepted": s.accepted if s else None,
               "value_before": s.value_before if s else None, "value_after": s.value_after if s else None,
               "users_changed": s.users_changed if s and s.kind == "personal" else None,
               "seconds": s.seconds if s else None}
        row.update({lab: timeline.text(t, token_text) for lab, t in zip(labels, grid[r])})
        rows.append(row)
    return pd.DataFrame(rows)


def run_report(timeline: Timeline, comparison=None, *, token_text: Callable[[int], str] | None = None,
               user: int | None = None, user_ids: Sequence[str] | None = None,
               metric: str = "ndcg@10") -> tuple[dict[str, object], dict[str, pd.DataFrame]]:
    """``(figures, tables)`` by file stem: the search's token grid, surrogate curve and step times; with
    a :class:`~pap_rec_core.comparison.RunComparison`, also the metric bars with CIs, the per-user
    improvement histogram and the comparison tables."""
    figures: dict[str, object] = {
        "token_grid": viz.token_grid(timeline, user=user, token_text=token_text,
                                     user_label=None if user is None or user_ids is None else str(user_ids[user])),
        "surrogate_curve": viz.surrogate_curve(timeline),
        "step_times": viz.round_times(timeline),
    }
    tables: dict[str, pd.DataFrame] = {"search_steps": steps_frame(timeline, token_text, user)}
    if comparison is not None:
        table = comparison.table()
        figures["metrics"] = viz.metric_bars(table, title=f"{comparison.stage.capitalize()} metrics, "
                                                          f"{len(next(iter(comparison.results.values())).users)} users (95% CI)")
        best = list(comparison.results)[-1]
        figures["improvement"] = viz.improvement_histogram(comparison.improvement(best, metric), best,
                                                          comparison.reference, metric)
        tables["metrics"] = table
        tables["paired_differences"] = comparison.paired()
        tables["per_user"] = comparison.per_user(user_ids)
    return figures, tables


# what depends on the picked user (its personal slots, its ranks and top-10): these files carry the user id
PER_USER_STEMS = ("token_grid", "search_steps", "user_ranks", "user_top10")


def user_suffix(user_id: str) -> str:
    """``_user-<id>`` with characters unsafe in file names replaced by ``_``."""
    return "_user-" + re.sub(r"[^A-Za-z0-9._-]", "_", str(user_id))


def export_run_report(figures: Mapping[str, object], tables: Mapping[str, pd.DataFrame], out_dir: str | Path,
                      formats: Sequence[str] = viz.FORMATS, user_id: str | None = None) -> viz.ExportReport:
    """Write figures (``viz.export_figures``) and tables (CSV) into ``out_dir``, and one zip of all of them
    (``run_report[_user-<id>].zip``, last in ``written``). With ``user_id`` (the figures show that user's
    personal slots) the per-user files are named ``<stem>_user-<id>.*``, so that exporting another user
    does not overwrite them."""
    if user_id is not None:
        rename = lambda stem: stem + user_suffix(user_id) if stem in PER_USER_STEMS else stem  # noqa: E731
        figures = {rename(k): v for k, v in figures.items()}
        tables = {rename(k): v for k, v in tables.items()}
    report = viz.export_figures(figures, out_dir, formats)
    report.written.extend(viz.export_tables(tables, out_dir))
    archive = Path(out_dir) / f"run_report{'' if user_id is None else user_suffix(user_id)}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in report.written:
            zf.write(path, arcname=Path(path).name)
    report.written.append(archive)
    return report
