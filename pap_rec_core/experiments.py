"""The paper's experiments as library calls: what each notebook in ``notebooks/`` runs, cell by cell, and
what ``pap-rec reproduce`` runs for every notebook. A notebook is a sequence of these calls plus
``viz`` figures; no result exists only in a notebook.

Example::

    exp = Experiment(model_dir=None, results_dir="results/ml-100k", budget="smoke")   # embedded model
    table = exp.sequential_table()            # manual vs automatic vs personalised prompts, with CIs
    exp.save_table("sequential", table)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from pap_rec_core.data.split import Stage
from pap_rec_core.evaluation.evaluator import EvaluationConfig, EvaluationResult, results_table
from pap_rec_core.evaluation.metrics import PAPER_METRICS
from pap_rec_core.evaluation.systems import manual_label, pap_rec_label
from pap_rec_core.findings import FindingsConfig
from pap_rec_core.judge_study import shared_prompts_scored, surrogate_correlation
from pap_rec_core.prompts.templates import paper_templates
from pap_rec_core.report_tables import published_reference, table_markdown

METRICS = PAPER_METRICS


@dataclass(frozen=True)
class Budget:
    """How much work one reproduction does. ``smoke`` checks that everything runs (CI); ``full`` is what
    the README's tables come from."""

    name: str
    users: int | None  # evaluation and search users: the first N evaluation users (None: all)
    iterations: int  # search iterations (shared + personal round each)
    personal_counts: tuple[int, ...]  # PAP-REC + n personal tokens (0: shared only)
    shared: int = 5
    top_k: int = 5
    surrogate: str = "exact"
    baselines: tuple[str, ...] = ("Pop", "Markov")
    baseline_epochs: int = 1
    baseline_max_seconds: float | None = 60.0
    ablation_shared: tuple[int, ...] = (1, 3)
    resamples: int = 200  # bootstrap resamples
    max_candidates: int = 6  # candidate prompts in the surrogate-vs-test correlation
    figure_formats: tuple[str, ...] = ("html",)
    # the findings report (claims 1-4): its searches, rows and judges; baselines name run_baselines.py JSONs
    # under benchmarks/results ({dataset} is the dataset's name; missing files are left out)
    findings: FindingsConfig = FindingsConfig(personal=(0, 1), iterations=1, users=40, max_candidates=6,
                                              resamples=200)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


BUDGETS: dict[str, Budget] = {
    "smoke": Budget("smoke", users=40, iterations=1, personal_counts=(0, 1)),
    "full": Budget("full", users=None, iterations=5, personal_counts=(0, 1, 2, 3),
                   baselines=("Pop", "Markov", "BPR", "GRU4Rec", "Caser", "SASRec", "BERT4Rec"), baseline_epochs=200,
                   baseline_max_seconds=300.0, ablation_shared=(1, 3, 5, 10), resamples=2000, max_candidates=40,
                   figure_formats=("html", "png"),
                   findings=FindingsConfig(  # = the committed benchmarks/results/findings_<dataset> reports
                       personal=(0, 1, 2, 3), iterations=5, variants=(("likelihood-tiebreak", 0), ("strict", 3)),
                       direct=True, judge_holdouts=(0, 3), max_candidates=90, seeds=(0, 1, 2),
                       baselines=("baselines_{dataset}.json", "baselines_sasrec_converged_{dataset}.json"))),
}


def get_budget(budget: str | Budget, **overrides: Any) -> Budget:
    if isinstance(budget, Budget):
        return replace(budget, **overrides)
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; use {' or '.join(BUDGETS)}")
    return replace(BUDGETS[budget], **overrides)


def leak_signature(split, index) -> float:
    """Share of evaluated users whose test item's textual id is the largest id of their history + 1 —
    what a model can exploit under P5's sequential numbering (0 under a random index, up to noise)."""
    ids = np.array([int(t) for t in index.texts])
    targets = split.targets("test")
    return float(np.mean([ids[targets[u]] == ids[split.history(int(u), "test")].max() + 1 for u in split.eval_users]))


def subset(result: EvaluationResult, users: np.ndarray) -> EvaluationResult:
    """The rows of ``result`` for ``users`` (all must be in it), in that order."""
    row = {int(u): r for r, u in enumerate(result.users)}
    missing = [int(u) for u in users if int(u) not in row]
    if missing:
        raise ValueError(f"{result.system}: user index {missing[0]} was not evaluated")
    idx = np.array([row[int(u)] for u in users], dtype=np.int64)
    return EvaluationResult(system=result.system, task=result.task, stage=result.stage, users=np.asarray(users),
                            ranks=result.ranks[idx], per_user={k: v[idx] for k, v in result.per_user.items()},
                            config=result.config)


@dataclass
class Experiment:
    """One model (with its dataset), one results directory, one budget. Searches go to
    ``results_dir/runs/`` and resume when rerun; tables and figures to ``tables/`` and ``figures/``."""

    model_dir: str | None = None  # None: the embedded ml-100k RLM
    results_dir: str | Path = "results/ml-100k"
    budget: str | Budget = "smoke"
    seed: int = 0
    device: str = "auto"
    dataset: str | None = None  # another location of the model's dataset (moved files), else as recorded
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.budget = get_budget(self.budget)
        self.results_dir = Path(self.results_dir)

    # ------------------------------------------------------------------------------------------------
    # What is loaded

    @cached_property
    def loaded(self):
        from pap_rec_core.rlm.checkpoint import embedded_model_dir, load_rlm_with_split

        model_dir = self.model_dir or str(embedded_model_dir())
        from pap_rec_core.data import dataset_config_for_path

        dcfg = dataset_config_for_path(self.dataset) if self.dataset else None
        return load_rlm_with_split(model_dir, dcfg, device=self.device)

    @property
    def bundle(self):
        return self.loaded[0]

    @property
    def split(self):
        return self.loaded[1]

    @property
    def users(self) -> np.ndarray:
        users = self.split.eval_users
        return users if self.budget.users is None else users[: self.budget.users]

    @property
    def eval_config(self) -> EvaluationConfig:
        return EvaluationConfig(n_resamples=self.budget.resamples, seed=self.seed)

    def describe(self) -> dict[str, Any]:
        meta = self.bundle.metadata
        return {"dataset": self.split.data.name, "model": self.bundle.path, "parameters": self.bundle.model.num_parameters(),
                "item_index": meta.get("item_index", {}).get("mode"), "budget": self.budget.name,
                "users": len(self.users), "seed": self.seed, "results_dir": str(self.results_dir)}

    # ------------------------------------------------------------------------------------------------
    # Saving

    def save_table(self, name: str, frame: pd.DataFrame) -> Path:
        path = self.results_dir / "tables" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        return path

    def save_figure(self, name: str, fig) -> list[Path]:
        from pap_rec_core.viz import export_figures

        report = export_figures({name: fig}, self.results_dir / "figures", self.budget.figure_formats)
        return report.written

    def save_json(self, name: str, payload: Mapping[str, Any]) -> Path:
        path = self.results_dir / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str))
        return path

    # ------------------------------------------------------------------------------------------------
    # 01: data and the RLM

    def dataset_table(self) -> pd.DataFrame:
        from pap_rec_core.data.stats import dataset_stats

        return dataset_stats(self.split.data).to_frame()

    def leak_table(self) -> pd.DataFrame:
        """The model-free leak signature under P5's sequential index vs a random one (same data)."""
        from pap_rec_core.data import build_item_index

        rows = []
        for mode in ("sequential", "random"):
            index = build_item_index(self.split.data, mode, seed=self.seed)
            rows.append({"item index": mode, "leaky": index.mode.leaky,
                         "test item id = max history id + 1": leak_signature(self.split, index)})
        return pd.DataFrame(rows)

    def training_curve(self) -> pd.DataFrame:
        """The RLM's validation NDCG@10 and training loss per validation step (from its metadata)."""
        curve = self.bundle.metadata.get("train_report", {}).get("curve", [])
        return pd.DataFrame(curve, columns=["step", "loss", "valid_ndcg@10", "elapsed_s"])

    # ------------------------------------------------------------------------------------------------
    # Evaluating prompts

    def evaluate(self, spec_or_render, task: str = "sequential", label: str | None = None) -> EvaluationResult:
        """Test metrics of a prompt spec (``manual:2-3``, ``run:DIR``, ...) or a prompt function on
        :attr:`users` (first-token ranking for single-token items, history masked)."""
        from pap_rec_core.rlm.evaluate import evaluate_render
        from pap_rec_core.scoring import PromptSpec, prompt_fn

        if isinstance(spec_or_render, str):
            spec = PromptSpec.parse(spec_or_render)
            render, task, label = prompt_fn(spec, self.bundle.tokenizer), spec.task.value, label or str(spec)
        else:
            render = spec_or_render
        return evaluate_render(self.bundle, self.split, Stage.TEST, render, task, system=label or "prompt",
                               method="first-token", batch_size=128, users=self.users, config=self.eval_config)

    def search(self, task: str = "sequential", n_shared: int | None = None, n_personal: int = 0, **overrides: Any):
        """A PAP-REC search on :attr:`users` (validation), resumed if its run directory exists."""
        from pap_rec_core.search import SearchConfig, run_search

        b = self.budget
        n_shared = b.shared if n_shared is None else n_shared
        settings = dict(top_k=b.top_k, surrogate=b.surrogate, iterations=b.iterations, max_users=b.users,
                        seed=self.seed)
        config = SearchConfig(task=task, n_shared=n_shared, n_personal=n_personal, **{**settings, **overrides})
        name = self.run_name(task, n_shared, n_personal, **overrides)
        t0 = time.perf_counter()
        result = run_search(self.bundle, self.split, config, self.results_dir / "runs" / name)
        self.timings[name] = time.perf_counter() - t0
        return result

    def run_name(self, task: str, n_shared: int, n_personal: int, **overrides: Any) -> str:
        """The run directory name of a search (under ``results_dir/runs``), also the key of its timing."""
        name = f"{task}-s{n_shared}p{n_personal}-{self.budget.name}-seed{self.seed}"
        if overrides:
            name += "-" + "-".join(f"{k}{v}" for k, v in sorted(overrides.items()))
        return name

    def prompt_results(self, task: str = "sequential") -> dict[str, EvaluationResult]:
        """Manual (seen and unseen template) and PAP-REC prompts (shared only, + n personal) on test."""
        from pap_rec_core.scoring import run_prompt_fn

        seen, unseen = paper_templates(task)
        results = {manual_label(seen): self.evaluate(f"manual:{seen}", label=manual_label(seen)),
                   manual_label(unseen, unseen=True): self.evaluate(f"manual:{unseen}",
                                                                    label=manual_label(unseen, unseen=True))}
        for n in self.budget.personal_counts:
            run = self.search(task, n_personal=n)
            label = pap_rec_label(run.config.n_shared, n)
            results[label] = self.evaluate(run_prompt_fn(run, self.bundle.tokenizer), task, label)
        return results

    def baseline_results(self, task: str = "sequential") -> dict[str, EvaluationResult]:
        """Baselines on the same users: RecBole models (sequential; trained on our split) or popularity
        over the fixed candidates (direct)."""
        if task == "direct":
            from pap_rec_core.evaluation import evaluate_candidate_scores, popularity_scores

            cands = self.split.candidates(Stage.TEST, self.users)
            scores = popularity_scores(self.split)[cands]
            return {"Pop": evaluate_candidate_scores(self.split, Stage.TEST, scores, system="Pop",
                                                     config=self.eval_config, users=self.users)}
        from pap_rec_core.data import build_item_index
        from pap_rec_core.evaluation.recbole_baselines import run_baselines

        b = self.budget
        index = build_item_index(self.split.data, self.bundle.metadata.get("item_index", {}).get("mode", "random"),
                                 seed=self.bundle.metadata.get("item_index", {}).get("seed", self.seed))
        t0 = time.perf_counter()
        trained = run_baselines(self.split, index, b.baselines, epochs=b.baseline_epochs, seed=self.seed,
                                progress=False, device=self.device, max_seconds=b.baseline_max_seconds,
                                eval_config=self.eval_config)
        self.timings["baselines"] = time.perf_counter() - t0
        out = {}
        for res in trained:
            stopped = res.stop_reason in ("epoch_cap", "time_limit")  # not converged: a lower bound
            label = res.model + (f" ({res.epochs_run} epochs, {res.stop_reason})" if stopped else "")
            out[label] = replace(subset(res.test, self.users), system=label)
        return out

    def results_table(self, results: Mapping[str, EvaluationResult], reference: str) -> pd.DataFrame:
        """Wide table with 95% CIs and paired-bootstrap p-values against ``reference``."""
        return results_table(list(results.values()), reference=results[reference], metrics=METRICS)

    @staticmethod
    def long_table(results: Mapping[str, EvaluationResult]) -> pd.DataFrame:
        """Long table (system, metric, mean, ci_low, ci_high) for ``viz.metric_bars``."""
        frame = pd.concat([r.summary_with_ci() for r in results.values()], ignore_index=True)
        return frame[frame.metric.isin(METRICS)].reset_index(drop=True)

    # ------------------------------------------------------------------------------------------------
    # 04: explanation

    def explanation_status(self) -> pd.DataFrame:
        data = self.split.data
        has = data.reviews is not None
        return pd.DataFrame([{"dataset": data.name, "has_reviews": has,
                              "reviews": 0 if not has else len(data.reviews),
                              "held-out (test) reviews": 0 if not has else int((data.reviews["split"] == "test").sum())}])

    def explanation_table(self, templates: tuple[str, ...] = ("3-1", "3-3")) -> pd.DataFrame:
        """BLEU-1/4, ROUGE-1/2/L of greedy explanations on the held-out reviews, per explanation template
        (at most ``budget.users`` × 5 pairs under the smoke budget)."""
        from pap_rec_core.rlm.explain import evaluate_explanations

        max_rows = None if self.budget.users is None else 5 * self.budget.users
        rows = [evaluate_explanations(self.bundle, self.split.data, t, max_rows=max_rows, seed=self.seed)
                for t in templates]
        return pd.DataFrame([{k: v for k, v in r.items() if k != "pair_surrogate"} for r in rows])

    def explanation_search_table(self, personal_counts: tuple[int, ...] | None = None) -> pd.DataFrame:
        """PAP-REC on the explanation task (surrogate BLEU-4 + 0.1 ROUGE-L on the val reviews): manual 3-1
        and 3-3 against the found prompts (shared only, + n personal) on the test reviews of the searched
        users — corpus BLEU/ROUGE and the per-pair surrogate's paired bootstrap vs manual 3-1."""
        from pap_rec_core.scoring import compare_explanation_prompts

        counts = self.budget.personal_counts if personal_counts is None else personal_counts
        prompts: dict[str, Any] = {"manual 3-1": "3-1", "manual 3-3": "3-3"}
        users = None
        for n in counts:
            result = self.search("explanation", n_personal=n, surrogate="bleu-rouge")
            users = list(result.users)
            prompts["PAP-REC shared" if n == 0 else f"PAP-REC +{n} personal"] = result
        return compare_explanation_prompts(self.bundle, self.split.data, prompts, users=users, seed=self.seed,
                                           n_resamples=self.budget.resamples)

    # ------------------------------------------------------------------------------------------------
    # 05: search dynamics

    def findings(self) -> dict[str, Any]:
        """The findings report at this budget (``pap_rec_core.findings.compute_findings``, the same computation
        as ``benchmarks/search_findings.py``): searches under ``results_dir/runs/findings`` (resumed), the
        report cached in ``results_dir/findings.json`` and reused while its model and settings match."""
        from pap_rec_core.findings import compute_findings
        from pap_rec_core.rlm.checkpoint import embedded_model_dir

        cfg = self.budget.findings
        files = [RESULTS_DIR / f.format(dataset=self.split.data.name) for f in cfg.baselines]
        cfg = replace(cfg, baselines=tuple(str(f) for f in files if f.is_file()))
        model_dir = str(self.model_dir or embedded_model_dir())
        cache = self.results_dir / "findings.json"
        if cache.is_file():
            report = json.loads(cache.read_text())
            if report.get("search") == json.loads(json.dumps(cfg.to_dict())) and report.get("model") == model_dir:
                return report
        report = compute_findings(self.bundle, self.split, cfg, self.results_dir / "runs" / "findings",
                                  model_dir=model_dir, log=lambda line: None)
        self.save_json("findings", report)
        return report

    def convergence(self, run) -> pd.DataFrame:
        """One row per decision of a run: kind, slot, accepted, surrogate before/after, seconds."""
        from pap_rec_core.exports import steps_frame
        from pap_rec_core.search.timeline import Timeline

        return steps_frame(Timeline.from_trace(run.run_dir), self.bundle.tokenizer.token_text)

    def surrogate_correlation(self, run) -> tuple[pd.DataFrame, pd.DataFrame]:
        """:func:`surrogate_correlation` on :attr:`users`, at most ``budget.max_candidates`` prompts."""
        return surrogate_correlation(self.bundle, self.split, run, self.users, self.budget.max_candidates,
                                     self.eval_config)

    def length_ablation(self, task: str = "sequential") -> pd.DataFrame:
        """Shared-only searches with 1/3/5/10 slots (the budget's list): validation surrogate, test
        metrics, time."""
        from pap_rec_core.scoring import run_prompt_fn

        rows = []
        for n in self.budget.ablation_shared:
            run = self.search(task, n_shared=n)
            res = self.evaluate(run_prompt_fn(run, self.bundle.tokenizer), task, f"{n} shared")
            name = self.run_name(task, n, 0)
            rows.append({"shared tokens": n, "valid surrogate": run.value, **{k: res.summary()[k] for k in METRICS},
                         "iterations": run.iterations, "seconds (this call)": self.timings.get(name, np.nan),
                         "tokens": " ".join(self.bundle.tokenizer.token_text(t) for t in run.shared)})
        return pd.DataFrame(rows)


RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"  # committed benchmark results


__all__ = ["BUDGETS", "Budget", "Experiment", "METRICS", "get_budget", "leak_signature", "published_reference",
           "shared_prompts_scored", "subset", "surrogate_correlation", "table_markdown"]
