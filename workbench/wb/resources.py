"""Cached resources: the model with its split (``st.cache_resource``, shared by all sessions), run
listings and comparisons. Keys include file modification times so that a rebuilt model or a grown
trace is re-read."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import streamlit as st

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_dirs(argv: list[str] | None = None) -> tuple[str, str]:
    """Model and runs directories: ``streamlit run workbench/app.py -- --model DIR --runs DIR``, else the
    environment (``PAPREC_MODEL``, ``PAPREC_RUNS``), else the embedded model and ``runs/``."""
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--model")
    p.add_argument("--runs")
    args, _ = p.parse_known_args(argv)
    model = args.model or os.environ.get("PAPREC_MODEL") or str(REPO_ROOT / "models" / "ml-100k")
    runs = args.runs or os.environ.get("PAPREC_RUNS") or str(REPO_ROOT / "runs")
    return model, runs


def model_present(model_dir: str) -> bool:
    from pap_rec_core.rlm.checkpoint import CONFIG_FILE

    return (Path(model_dir) / CONFIG_FILE).is_file()


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_resource(show_spinner="Loading the RLM and its dataset…", max_entries=4)
def _load(model_dir: str, stamp: float, dataset: str = ""):
    from pap_rec_core.data import dataset_config_for_path
    from pap_rec_core.rlm.checkpoint import load_rlm_with_split

    return load_rlm_with_split(model_dir, dataset_config_for_path(dataset) if dataset else None)


def load_model(model_dir: str, dataset: str = ""):
    """``(bundle, split)`` of a model directory (its dataset as recorded, or at ``dataset``), cached
    across reruns and sessions."""
    return _load(str(Path(model_dir).resolve()), _weights_mtime(model_dir), dataset.strip())


def runs(runs_dir: str) -> list[dict]:
    """The run listing, re-read only when a trace appears, grows or disappears; the status (running /
    stopped / finished) is checked on every call (a process may have ended without writing)."""
    from pap_rec_core.search.runlock import run_status

    traces = sorted(Path(runs_dir).glob("**/trace.jsonl")) if Path(runs_dir).is_dir() else []
    rows = _runs(str(runs_dir), tuple((str(t), _mtime(t), _size(t)) for t in traces))
    return [r if r["error"] else {**r, "status": run_status(r["path"], r["finished"])} for r in rows]


@st.cache_data(max_entries=8, show_spinner=False)
def _runs(runs_dir: str, stamp: tuple) -> list[dict]:
    from pap_rec_core.search.run import list_runs

    return list_runs(runs_dir)


def timeline(run_dir: str):
    """The run's :class:`~pap_rec_core.search.timeline.Timeline`, re-read when its trace grows."""
    return _timeline(str(run_dir), _mtime(Path(run_dir) / "trace.jsonl"), _size(Path(run_dir) / "trace.jsonl"))


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@st.cache_resource(max_entries=16)
def _timeline(run_dir: str, stamp: float, size: int):
    from pap_rec_core.search.timeline import Timeline

    return Timeline.from_trace(run_dir)


@st.cache_resource(show_spinner=False, max_entries=8)
def _comparison(model_dir: str, model_stamp: float, run_dir: str, run_stamp: float, stage: str, method: str,
                dataset: str = ""):
    from pap_rec_core.comparison import compare_run

    bundle, split = load_model(model_dir, dataset)
    bar = st.progress(0.0, text="Evaluating the manual and automatic prompts on every searched user…")
    start = time.perf_counter()

    def on_progress(done: int, total: int) -> None:
        spent = time.perf_counter() - start
        left = spent / done * (total - done) if done else float("nan")
        bar.progress(min(1.0, done / total), text=f"Evaluating the manual and automatic prompts: {done:,}/{total:,} "
                     f"user rankings, {spent:.0f} s" + (f", about {left:.0f} s left" if done else ""))

    result = compare_run(bundle, split, run_dir, stage=stage, method=method, on_progress=on_progress)
    bar.empty()
    return result


@st.cache_resource(show_spinner="Generating explanations with the manual and the searched prompts…", max_entries=8)
def _explanation_comparison(model_dir: str, model_stamp: float, run_dir: str, run_stamp: float, stage: str,
                            dataset: str = ""):
    from pap_rec_core.scoring import compare_explanation_prompts, search_render
    from pap_rec_core.search.run import SearchResult

    bundle, split = load_model(model_dir, dataset)
    result = SearchResult.from_run(run_dir)
    prompts = {"manual 3-1": "3-1", "PAP-REC": result}
    if result.config.n_shared and result.config.n_personal:
        prompts["PAP-REC shared only"] = search_render(result, split.data, bundle.tokenizer, personal=False)
    return compare_explanation_prompts(bundle, split.data, prompts, users=list(result.users), stage=stage)


def explanation_comparison(model_dir: str, run_dir: str, stage: str, dataset: str = ""):
    """manual 3-1 vs the run's prompts: BLEU/ROUGE on the held-out reviews of the run's users."""
    return _explanation_comparison(str(Path(model_dir).resolve()), _weights_mtime(model_dir), str(run_dir),
                                   _mtime(Path(run_dir) / "trace.jsonl"), stage, dataset.strip())


def comparison(model_dir: str, run_dir: str, stage: str, method: str, dataset: str = ""):
    return _comparison(str(Path(model_dir).resolve()), _weights_mtime(model_dir), str(run_dir),
                       _mtime(Path(run_dir) / "trace.jsonl"), stage, method, dataset.strip())


def _weights_mtime(model_dir: str) -> float:
    from pap_rec_core.rlm.checkpoint import WEIGHTS_FILE

    return _mtime(Path(model_dir) / WEIGHTS_FILE)
