"""Every figure of the project (plotly), shared by the workbench, the notebooks and ``pap-rec export-plots``,
and their export to HTML (always) and PNG / SVG / PDF (kaleido driving the system Chromium).

Example::

    tl = Timeline.from_trace("runs/demo")
    fig = token_grid(tl, user=17, token_text=bundle.tokenizer.token_text)
    export_figures({"token_grid": fig}, "exports/")      # token_grid.html/.png/.svg/.pdf
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from pap_rec_core.evaluation.metrics import PAPER_METRICS
from pap_rec_core.search.timeline import Timeline, slot_labels

FORMATS = ("html", "png", "svg", "pdf")
KIND_COLORS = {"initial": "#7f7f7f", "shared": "#1f77b4", "personal": "#ff7f0e"}
SYSTEM_COLORS = ["#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
METRICS = PAPER_METRICS


def _go():
    import plotly.graph_objects as go  # imported on use: no heavy work on import

    return go


def token_grid(timeline: Timeline, user: int | None = None, upto: int | None = None,
               token_text: Callable[[int], str] | None = None, title: str | None = None,
               user_label: str | None = None):
    """Step × slot grid of the prompt tokens: row 0 the initial prompt, row i the prompt after decision i.
    Cells whose token changed at that step are highlighted; the slot a shared step decided on (and
    rejected) is shaded; hovering shows the candidates scored with their surrogate values."""
    go = _go()
    grid = timeline.slot_grid(user if timeline.n_personal else None, upto)
    n_rows, n_cols = grid.shape
    labels = slot_labels(timeline.n_shared, grid.shape[1] - timeline.n_shared)
    z = np.zeros(grid.shape)  # 0 unchanged, 1 decided but kept, 2 changed
    hover = np.full(grid.shape, "", dtype=object)
    z[timeline.changed_cells(user if timeline.n_personal else None, upto)] = 2
    text = np.vectorize(lambda t: timeline.text(t, token_text), otypes=[object])(grid) if grid.size else grid
    for r in range(n_rows):
        step = timeline.steps[r - 1] if r else None
        for c in range(n_cols):
            head = f"step {r}" + (f" (iteration {step.iteration}, {step.kind})" if step else " (initial)")
            hover[r, c] = f"{head}<br>{labels[c]}: <b>{html.escape(str(text[r, c]))}</b>"
        if step is None:
            continue
        if step.kind == "shared" and step.slot < n_cols:
            if z[r, step.slot] == 0:
                z[r, step.slot] = 1
            cands = "<br>".join(f"{html.escape(t)}: {v:.4f}" for t, v in zip(step.candidates_text, step.candidate_values))
            hover[r, step.slot] += (f"<br>{'accepted' if step.accepted else 'rejected'}; surrogate "
                                    f"{step.value_before:.4f} → {step.value_after:.4f}<br>candidates:<br>{cands}")
        elif step.kind == "personal":
            c = step.slot
            if user is not None and c < n_cols and z[r, c] == 0:
                z[r, c] = 1
            if c < n_cols:
                hover[r, c] += (f"<br>personal round: {step.users_changed} users changed; mean surrogate "
                                f"{step.value_before:.4f} → {step.value_after:.4f}")
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=list(range(n_rows)), text=text, texttemplate="%{text}", customdata=hover,
        hovertemplate="%{customdata}<extra></extra>", zmin=0, zmax=2, showscale=False,
        colorscale=[[0, "#f7f7f7"], [0.5, "#dbe9f6"], [1, "#fdae6b"]], xgap=2, ygap=2))
    fig.update_yaxes(autorange="reversed", title="step (0 = initial prompt)", dtick=1 if n_rows <= 30 else None)
    fig.update_xaxes(side="top", title=None)
    who = "" if user is None or not timeline.n_personal else f", user {user_label or f'index {user}'}"
    fig.update_layout(title=title or f"Prompt tokens per step{who} (orange: changed, blue: decided, kept)",
                      height=max(280, 60 + 26 * n_rows), margin=dict(l=60, r=20, t=90, b=30),
                      template="plotly_white")
    return fig


def _value_range(values: Sequence[float], floor: float = 1e-3) -> list[float]:
    """A y-axis range around ``values`` that shows a flat series as flat (plotly draws a constant series
    on an arbitrary -0.5..1-wide axis) and small moves at their scale."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = max((hi - lo) * 0.15, abs(hi) * 0.05, floor)
    return [lo - pad, hi + pad]


def surrogate_curve(timeline: Timeline, title: str = "Validation surrogate per step", at: int | None = None):
    """The surrogate after each decision (shared steps: the shared surrogate; personal steps: the mean
    over users of the personal rounds' judge). ``at``: the replay position (a step), marked by a line.
    A run whose value never moved says so in the subtitle."""
    go = _go()
    pts = timeline.surrogate_curve()
    fig = go.Figure()
    for kind in ("initial", "shared", "personal"):
        xs = [i + 1 for i, k, _ in pts if k == kind]
        ys = [v for _, k, v in pts if k == kind]
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=kind,
                                     marker=dict(color=KIND_COLORS[kind], size=8)))
    fig.add_trace(go.Scatter(x=[i + 1 for i, _, _ in pts], y=[v for _, _, v in pts], mode="lines",
                             line=dict(color="#bbbbbb"), showlegend=False, hoverinfo="skip"))
    values = [v for _, _, v in pts if v is not None and np.isfinite(v)]
    flat = bool(values) and max(values) == min(values)
    fig.update_layout(title=dict(text=title, subtitle=dict(
                          text=f"flat: every step kept the value {values[0]:.4f}" if flat else "")),
                      xaxis_title="step (0 = initial)", yaxis_title="surrogate", template="plotly_white", height=360)
    if values:
        fig.update_yaxes(range=_value_range(values))
    if at is not None:
        fig.add_vline(x=at, line=dict(color="#444444", dash="dot"), annotation_text=f"replay: step {at}")
    return fig


def round_times(timeline: Timeline, title: str = "Time per decision"):
    """Seconds per step (gradient + candidate scoring), coloured by round kind."""
    go = _go()
    fig = go.Figure()
    for kind in ("shared", "personal"):
        steps = [s for s in timeline.steps if s.kind == kind]
        if steps:
            fig.add_trace(go.Bar(x=[s.index + 1 for s in steps], y=[s.seconds for s in steps], name=kind,
                                 marker_color=KIND_COLORS[kind]))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="seconds", template="plotly_white", height=320)
    return fig


def metric_bars(table: pd.DataFrame, metrics: Sequence[str] = METRICS, title: str = "Test metrics (95% CI)"):
    """Grouped bars with bootstrap CIs from a long table (system, metric, mean, ci_low, ci_high)."""
    go = _go()
    fig = go.Figure()
    for i, (system, rows) in enumerate(table.groupby("system", sort=False)):
        rows = rows.set_index("metric").reindex([m for m in metrics if m in set(rows["metric"])])
        fig.add_trace(go.Bar(
            x=list(rows.index), y=rows["mean"], name=str(system), marker_color=SYSTEM_COLORS[i % len(SYSTEM_COLORS)],
            error_y=dict(type="data", symmetric=False, array=rows["ci_high"] - rows["mean"],
                         arrayminus=rows["mean"] - rows["ci_low"])))
    fig.update_layout(barmode="group", title=title, yaxis_title="mean over users", template="plotly_white", height=380)
    return fig


def improvement_histogram(deltas: np.ndarray, system: str, reference: str, metric: str = "ndcg@10"):
    """Distribution of per-user ``metric`` differences (system − reference)."""
    go = _go()
    deltas = np.asarray(deltas, dtype=float)
    better, worse = int(np.sum(deltas > 0)), int(np.sum(deltas < 0))
    same = len(deltas) - better - worse
    if better + worse == 0:  # all zero: one bar at 0 (a histogram draws a block from -0.5 to 0.5)
        fig = go.Figure(go.Bar(x=[0.0], y=[same], width=[0.002], marker_color=KIND_COLORS["shared"]))
        fig.update_xaxes(range=[-0.05, 0.05])
    else:
        fig = go.Figure(go.Histogram(x=deltas, nbinsx=41, marker_color=KIND_COLORS["shared"]))
    fig.update_layout(title=dict(text=f"Per-user Δ {metric}: {system} − {reference}",
                                 subtitle=dict(text=f"better for {better} users, worse for {worse}, same for {same}")),
                      xaxis_title=f"Δ {metric}", yaxis_title="users",
                      template="plotly_white", height=340)
    return fig


def rank_comparison(ranks: Mapping[str, float], title: str = "Rank of the ground-truth item"):
    """One user's target rank under each prompt, as horizontal bars on a log axis with rank 1 at the
    right-hand end: a longer bar is a better rank, and 834 vs 859 look as close as they are while 3 vs 30
    stand apart. ``inf`` is drawn as 'not ranked' (the shortest bar)."""
    go = _go()
    names = list(ranks)
    finite = [r for r in ranks.values() if np.isfinite(r)]
    worst = (max(finite) if finite else 1) * 2
    ys = [r if np.isfinite(r) else worst for r in ranks.values()]
    # bar length = log10(worst / rank): rank 1 longest, 'not ranked' 0
    fig = go.Figure(go.Bar(y=names, x=[np.log10(worst / r) for r in ys], orientation="h",
                           text=[f"rank {int(r)}" if np.isfinite(r) else "not ranked" for r in ranks.values()],
                           textposition="outside", marker_color=SYSTEM_COLORS[: len(names)],
                           customdata=ys, hovertemplate="%{y}: %{text}<extra></extra>"))
    ticks = [t for t in (1, 3, 10, 30, 100, 300, 1000, 3000, 10000) if t < worst]
    fig.update_xaxes(tickvals=[np.log10(worst / t) for t in ticks], ticktext=[str(t) for t in ticks],
                     title="rank of the ground truth (right = better; log scale)",
                     range=[0, np.log10(worst) * 1.15])
    fig.update_layout(title=title, template="plotly_white", height=120 + 50 * len(names), yaxis=dict(autorange="reversed"))
    return fig


def personal_token_effects(frame: pd.DataFrame, title: str = "What the personal tokens did (test rank, log scale)"):
    """For each user of :func:`pap_rec_core.comparison.personal_token_effects`: the target's rank with the
    shared tokens alone and with the user's personal tokens (an arrow from one to the other), labelled
    with the personal tokens."""
    go = _go()
    fig = go.Figure()
    if frame.empty:
        fig.update_layout(title=dict(text=title, subtitle=dict(text="no personal tokens in this run")))
        return fig
    labels = [f"{u}: {t}" for u, t in zip(frame["user"], frame["personal tokens"])]
    worst = float(np.nanmax(np.where(np.isfinite(frame[["rank (shared only)", "rank (with personal)"]].to_numpy()),
                                     frame[["rank (shared only)", "rank (with personal)"]].to_numpy(), 1))) * 2
    cap = lambda r: r if np.isfinite(r) else worst  # noqa: E731
    for name, col, color in (("shared only", "rank (shared only)", KIND_COLORS["shared"]),
                             ("with personal tokens", "rank (with personal)", KIND_COLORS["personal"])):
        fig.add_trace(go.Scatter(x=[cap(r) for r in frame[col]], y=labels, mode="markers", name=name,
                                 marker=dict(size=12, color=color)))
    for lab, a, b in zip(labels, frame["rank (shared only)"], frame["rank (with personal)"]):
        fig.add_annotation(x=np.log10(cap(b)), y=lab, ax=np.log10(cap(a)), ay=lab, xref="x", yref="y", axref="x",
                           ayref="y", showarrow=True, arrowhead=2, arrowcolor="#888888", text="")
    fig.update_xaxes(type="log", autorange="reversed", title="rank of the test item (right = better)")
    fig.update_layout(title=title, template="plotly_white", height=140 + 45 * len(frame),
                      yaxis=dict(autorange="reversed"))
    return fig


# ----------------------------------------------------------------------------------------------------
# Export


@dataclass
class ExportReport:
    written: list[Path] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # format -> why it failed (static formats only)

    @property
    def ok(self) -> bool:
        return not self.errors

    def problem(self) -> str | None:
        """One line for the user when static formats failed (None when every format was written)."""
        if not self.errors:
            return None
        fmts = "/".join(f.upper() for f in self.errors)
        why = next(iter(self.errors.values()))
        return (f"{fmts} not written: static images need Chromium (apt-get install -y chromium); "
                f"HTML and CSV were written ({why})")


def export_figures(figures: Mapping[str, object], out_dir: str | Path, formats: Sequence[str] = FORMATS,
                   scale: float = 2.0) -> ExportReport:
    """Write each figure as ``<name>.<format>``. HTML is standalone (plotly.js inlined) and always works;
    PNG/SVG/PDF go through kaleido, which needs a Chromium (``apt-get install chromium``): when it fails
    the report says why and the HTML files are still there."""
    import plotly.io as pio

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export format(s) {sorted(unknown)}; use {', '.join(FORMATS)}")
    report = ExportReport()
    for name, fig in figures.items():
        if "html" in formats:
            path = out / f"{name}.html"
            fig.write_html(path, include_plotlyjs=True, full_html=True)
            report.written.append(path)
    static = [f for f in formats if f != "html"]
    if static and figures:
        figs = [fig for fig in figures.values() for _ in static]
        paths = [out / f"{name}.{fmt}" for name in figures for fmt in static]
        try:
            pio.write_images(figs, paths, format=[p.suffix[1:] for p in paths], scale=scale)
            report.written.extend(paths)
        except Exception as exc:  # kaleido/Chromium missing or broken: HTML is still written
            for fmt in static:
                report.errors[fmt] = f"{type(exc).__name__}: {exc}"
    return report


def export_tables(tables: Mapping[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in tables.items():
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


MIME = {"html": "text/html", "png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf", "csv": "text/csv"}


def training_curve(curve: pd.DataFrame, title: str = "RLM training: validation NDCG@10 and loss"):
    """Validation NDCG@10 (left axis) and running training loss (right axis) per validation step."""
    go = _go()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=curve["step"], y=curve["valid_ndcg@10"], mode="lines+markers", name="valid NDCG@10",
                             line=dict(color=KIND_COLORS["shared"])))
    fig.add_trace(go.Scatter(x=curve["step"], y=curve["loss"], mode="lines", name="training loss", yaxis="y2",
                             line=dict(color=KIND_COLORS["personal"], dash="dot")))
    fig.update_layout(title=title, xaxis_title="step", yaxis=dict(title="valid NDCG@10"),
                      yaxis2=dict(title="loss", overlaying="y", side="right"), template="plotly_white", height=360)
    return fig
