"""Tables for reports and notebooks: published numbers to show beside ours, and markdown rendering."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pap_rec_core.evaluation.metrics import PAPER_METRICS as METRICS

PUBLISHED_FILE = Path(__file__).resolve().parents[1] / "notebooks" / "reference" / "published.csv"


def published_reference(task: str, path: str | Path = PUBLISHED_FILE) -> pd.DataFrame:
    """Published numbers to show beside ours, labelled as not comparable: rows of ``path`` (columns
    source, dataset, task, system, hit@5, ndcg@5, hit@10, ndcg@10) for ``task``. We ship the file with
    its header only: the papers' tables could not be verified offline here, and a number we cannot
    check is not one we print."""
    cols = ["source", "dataset", "task", "system", *METRICS]
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=cols)
    frame = pd.read_csv(path)
    missing = set(cols) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    out = frame[frame.task == task][cols].reset_index(drop=True)
    out.insert(0, "comparable", "no (other data, model and item index)")
    return out


def table_markdown(frame: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """A DataFrame as a GitHub markdown table (float columns formatted, the rest as text)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    floats = {c for c in cols if pd.api.types.is_float_dtype(frame[c])}
    for row in frame.itertuples(index=False):
        cells = [("" if pd.isna(v) else format(v, floatfmt)) if c in floats else str(v) for c, v in zip(cols, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
