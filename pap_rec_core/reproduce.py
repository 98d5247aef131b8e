"""One-command reproduction: every notebook of ``notebooks/`` executed with papermill at a budget, for
the embedded ml-100k RLM and any further datasets, into one results directory.

    pap-rec reproduce --budget full --out results                     # (make reproduce)
    pap-rec reproduce --budget full --out results --p5-dir ../shared/data/p5_beauty

Layout of ``out``: ``<dataset>/notebooks/NN_name.ipynb`` (executed), ``<dataset>/tables/*.csv``,
``<dataset>/figures/*``, ``<dataset>/runs/`` (resumable searches), ``README.md`` (the headline tables)
and ``manifest.json``. Interrupted, it resumes: a notebook that finished with the same parameters is
skipped (``<dataset>/done/NN_name.json``), searches continue from their traces, and a second dataset's
RLM (trained here with the ``demo`` preset) resumes from its checkpoint.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from pap_rec_core.evaluation.metrics import PAPER_METRICS

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ("01_data_and_rlm", "02_sequential", "03_direct", "04_explanation", "05_search_dynamics")
HEADLINE_TABLES = (("findings_claims", "The paper's claims, answered"),
                   ("sequential", "Sequential recommendation (test)"), ("direct", "Direct recommendation (test)"),
                   ("findings_judges", "Judges on validation vs test NDCG@10 (the findings report)"),
                   ("surrogate_correlation", "Surrogate on validation vs test NDCG@10"),
                   ("length_ablation", "Prompt length (shared tokens)"))


@dataclass(frozen=True)
class Target:
    """One dataset to reproduce on: a label, a model directory (None: the embedded RLM)."""

    label: str
    model_dir: str | None = None


def notebook_from_source(name: str):
    """The ``.ipynb`` object of ``notebooks/<name>.py`` (jupytext ``py:percent``)."""
    import jupytext

    path = NOTEBOOK_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"notebook source {path} is missing")
    return jupytext.read(path)


def run_notebook(name: str, out_dir: Path, parameters: dict, kernel_name: str = "python3") -> Path:
    """Execute one notebook with papermill (parameters injected after its ``parameters`` cell)."""
    import nbformat
    import papermill as pm

    nb_dir = out_dir / "notebooks"
    nb_dir.mkdir(parents=True, exist_ok=True)
    source, executed = nb_dir / f"{name}.source.ipynb", nb_dir / f"{name}.ipynb"
    nbformat.write(notebook_from_source(name), source)
    pm.execute_notebook(str(source), str(executed), parameters=parameters, kernel_name=kernel_name,
                        cwd=str(NOTEBOOK_DIR.parent), progress_bar=False)
    source.unlink()
    return executed


def prepare_p5_target(p5_dir: str | Path, out: Path, seed: int = 0, progress: bool = True, preset: str = "demo",
                      **overrides) -> Target:
    """A P5-format dataset directory: train (or resume) an RLM (``demo`` preset) on it under ``out/models``."""
    from pap_rec_core.data import DatasetConfig, SourceKind
    from pap_rec_core.rlm.checkpoint import CONFIG_FILE
    from pap_rec_core.rlm.training import train_preset

    p5_dir = Path(p5_dir)
    label = p5_dir.name
    model_dir = out / "models" / label
    if not (model_dir / CONFIG_FILE).is_file() or (model_dir / "train_state.pt").is_file():
        train_preset(DatasetConfig(kind=SourceKind.P5, path=str(p5_dir)), preset, model_dir, seed=seed,
                     progress=progress, **overrides)
    return Target(label, str(model_dir))


def reproduce(out: str | Path, budget: str = "full", targets: Sequence[Target] = (Target("ml-100k"),),
              notebooks: Sequence[str] = NOTEBOOKS, seed: int = 0, kernel_name: str = "python3",
              log: Callable[[str], None] = print) -> dict:
    """Run the notebooks for every target (see the module docstring); returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(notebooks) - set(NOTEBOOKS)
    if unknown:
        raise ValueError(f"unknown notebook(s) {sorted(unknown)}; known: {', '.join(NOTEBOOKS)}")
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"runs": {}}
    manifest.update(budget=budget, seed=seed, machine=f"{platform.machine()}, {platform.platform()}")
    for target in targets:
        tdir = out / target.label
        for name in notebooks:
            params = {"model_dir": target.model_dir, "budget": budget, "seed": seed,
                      "results_dir": str(tdir.resolve())}
            done = tdir / "done" / f"{name}.json"
            if done.is_file() and json.loads(done.read_text()).get("parameters") == params:
                log(f"{target.label}/{name}: done before, skipped")
                continue
            log(f"{target.label}/{name}: running ({budget})")
            t0 = time.perf_counter()
            run_notebook(name, tdir, params, kernel_name)
            seconds = time.perf_counter() - t0
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps({"parameters": params, "seconds": seconds,
                                        "finished": time.strftime("%Y-%m-%d %H:%M:%S")}))
            manifest["runs"][f"{target.label}/{name}"] = {"seconds": round(seconds, 1),
                                                          "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
            manifest_path.write_text(json.dumps(manifest, indent=2))
            log(f"{target.label}/{name}: {seconds:.0f} s")
    manifest_path.write_text(json.dumps(manifest, indent=2))
    write_results_readme(out, [t.label for t in targets], manifest)
    return manifest


def write_results_readme(out: Path, labels: Sequence[str], manifest: dict) -> Path:
    """``out/README.md``: the headline tables of every target, with date, machine, budget, durations."""
    from pap_rec_core.report_tables import table_markdown

    total = sum(r["seconds"] for r in manifest["runs"].values())
    lines = ["# PAP-REC reproduction", "",
             f"Budget `{manifest['budget']}`, seed {manifest['seed']}, machine {manifest['machine']}; "
             f"notebook time {total / 60:.1f} min in all; regenerate with "
             f"`pap-rec reproduce --budget {manifest['budget']} --out {out}` (resumes).", ""]
    for label in labels:
        lines += [f"## {label}", ""]
        for stem, title in HEADLINE_TABLES:
            path = out / label / "tables" / f"{stem}.csv"
            if path.is_file():
                frame = pd.read_csv(path)
                if "tokens" in frame:
                    frame = frame.drop(columns=["tokens"])
                if "ndcg@10 ci" in frame:  # the headline: means, the NDCG@10 CI and paired p-value
                    keep = ["system", "users", *PAPER_METRICS, "ndcg@10 ci", "ndcg@10 p"]
                    frame = frame[[c for c in keep if c in frame]]
                lines += [f"### {title}", "", table_markdown(frame), ""]
        lines += ["Notebooks: " + ", ".join(f"`{label}/notebooks/{n}.ipynb`" for n in NOTEBOOKS
                                            if (out / label / "notebooks" / f"{n}.ipynb").is_file()), ""]
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path
