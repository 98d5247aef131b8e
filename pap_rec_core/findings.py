"""The paper's findings, measured: manual vs automatic vs personalised prompts, the RLM against the
baselines, how well each judge on validation predicts the test metric, and what a search costs.

One computation (the markdown and the notebooks' frames are ``findings_report.py``, the judge study
``judge_study.py``), three clients: ``benchmarks/search_findings.py`` (the CLI that writes
``benchmarks/results/findings_<dataset>.{json,md}``), ``Experiment.findings`` (notebooks 02 and 05,
``pap-rec reproduce``) and the README's findings section, which quotes the committed report.

Arms: for each personal-slot count in ``FindingsConfig.personal`` a sequential search with ``n_shared``
shared slots under the main personal rule; each of ``variants`` (a rule and a personal holdout) with one
personal slot; with ``direct`` a shared-only search of the direct task. Every arm runs once per search
seed into ``runs_dir`` (resumable: rerunning skips finished searches). Every prompt — manual 2-3, unseen
manual 2-13, manual 5-7 (direct), each search's — and the Pop and Markov baselines (Markov's k and decay
chosen on validation) are evaluated on test on the searched users (first-token ranking over all items,
history masked; direct: the fixed 1+99 candidates), with paired bootstrap 95% CIs against the task's
manual prompt. With several seeds, an arm is also given as the per-user mean over its seeds (the search
procedure's expected effect). RecBole baselines from ``baselines`` JSONs (``benchmarks/run_baselines.py``)
are shown unpaired. The four claims are answered from these rows: (1) auto beats manual (and 1b on the
direct task), (2) personal tokens help (the main rule's 1-slot arm vs the shared-only arm; every personal
arm listed), (3) the RLM with its searched prompt beats the baselines (paired against Markov; against the
best converged RecBole model, unpaired), (4) efficiency (seconds per search iteration on all searched
users) and, over the candidate prompts of the seeds' shared-only searches (pooled, at most
``max_candidates``), the Spearman correlation (bootstrap CI over candidates) of each judge on validation
(exact, ndcg, beam, likelihood; ``+hN``: also on each user's last N training items) with test NDCG@10.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from pap_rec_core.configs import known_fields
from pap_rec_core.evaluation.metrics import PAPER_METRICS
from pap_rec_core.evaluation.systems import manual_label, pap_rec_label
from pap_rec_core.judge_study import surrogate_correlation
from pap_rec_core.prompts.templates import paper_templates

if TYPE_CHECKING:
    from pap_rec_core.evaluation import EvaluationConfig

KEYS = list(PAPER_METRICS)
# = search.config.PERSONAL_RULES (tested): not imported, since importing search loads torch and the budgets
# build FindingsConfigs when pap_rec_core.experiments is imported
RULES = ("strict", "likelihood-tiebreak")


@dataclass(frozen=True)
class FindingsConfig:
    """What one findings report searches and measures (see the module docstring)."""

    n_shared: int = 5
    personal: tuple[int, ...] = (0, 1, 2, 3)
    iterations: int = 5
    surrogate: str = "exact"
    personal_rule: str = "strict"
    personal_holdout: int = 0
    shared_holdout: int = 0
    variants: tuple[tuple[str, int], ...] = ()  # (rule, personal holdout) searched with 1 personal slot
    direct: bool = False
    judge_holdouts: tuple[int, ...] = (0,)
    judges: tuple[str, ...] = ()  # the judges by name instead (e.g. exact, likelihood+h10); () = from judge_holdouts
    users: int | None = None  # the first N validation users (None: all)
    max_candidates: int = 40
    seeds: tuple[int, ...] = (0,)
    baselines: tuple[str, ...] = ()  # run_baselines.py JSONs; a later file's model replaces an earlier one's
    resamples: int = 2000

    def __post_init__(self) -> None:
        for name in ("personal", "judge_holdouts", "judges", "seeds", "baselines"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "variants", tuple((str(r), int(h)) for r, h in self.variants))
        for rule, _ in ((self.personal_rule, 0),) + self.variants:
            if rule not in RULES:
                raise ValueError(f"unknown personal rule {rule!r}; use one of {', '.join(RULES)}")
        if not self.seeds or not self.personal:
            raise ValueError("a findings report needs at least one search seed and one personal-slot count")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FindingsConfig":
        return cls(**known_fields(cls, d))

    def arms(self) -> list["Arm"]:
        arms = [Arm("sequential", n, self.personal_rule, self.personal_holdout if n else 0) for n in self.personal]
        arms += [Arm("sequential", 1, rule, hold) for rule, hold in self.variants
                 if Arm("sequential", 1, rule, hold) not in arms]
        if self.direct:
            arms.append(Arm("direct", 0))
        return arms

    def search_config(self, arm: "Arm", seed: int):
        from pap_rec_core.search import SearchConfig

        direct = arm.task == "direct"
        return SearchConfig(task=arm.task, n_shared=self.n_shared, n_personal=arm.n_personal, iterations=self.iterations,
                            surrogate="exact" if direct and self.surrogate == "beam" else self.surrogate,
                            personal_rule=arm.rule, max_users=self.users, personal_holdout=arm.holdout,
                            shared_holdout=0 if direct else self.shared_holdout, seed=seed)


def parse_variants(text: str) -> tuple[tuple[str, int], ...]:
    """``likelihood-tiebreak,strict:h3`` -> (("likelihood-tiebreak", 0), ("strict", 3))."""
    out = []
    for part in filter(None, (x.strip() for x in text.split(","))):
        rule, _, hold = part.partition(":")
        if rule not in RULES or (hold and not (hold[:1] == "h" and hold[1:].isdigit())):
            raise ValueError(f"cannot read the personal-rule variant {part!r}; write RULE or RULE:hN, RULE one of "
                             "strict, likelihood-tiebreak (e.g. likelihood-tiebreak,strict:h3)")
        out.append((rule, int(hold[1:]) if hold else 0))
    return tuple(out)


def run_name(n_shared: int, n_personal: int, rule: str, holdout: int, surrogate: str = "exact",
             shared_holdout: int = 0, seed: int = 0) -> str:
    """``s5p1`` for the paper's rule and the exact surrogate, seed 0; ``s5p1-tiebreak-h3`` for another
    rule / a personal holdout, ``-sh3`` for a shared holdout, ``-ndcg`` for another surrogate, ``-seed1``."""
    name = f"s{n_shared}p{n_personal}"
    if n_personal and rule != "strict":
        name += "-tiebreak"
    if n_personal and holdout:
        name += f"-h{holdout}"
    if shared_holdout:
        name += f"-sh{shared_holdout}"
    if surrogate != "exact":
        name += f"-{surrogate}"
    if seed:
        name += f"-seed{seed}"
    return name


def verdict(diff: list[float] | None) -> str:
    """``holds`` / ``refuted`` / ``not shown`` from a [diff, low, high, p] paired difference."""
    if not diff:
        return "not measured"
    return "holds" if diff[1] > 0 else "refuted (the opposite holds)" if diff[2] < 0 else "not shown (CI spans 0)"


@dataclass(frozen=True)
class Arm:
    """One searched configuration (all seeds): task, personal slots and the personal rule."""

    task: str
    n_personal: int
    rule: str = "strict"
    holdout: int = 0

    def label(self, n_shared: int, **seeds) -> str:
        """The arm's system name (``seed=`` one seed, ``seeds=`` the mean of that many)."""
        qualified = self.n_personal and (self.rule != "strict" or self.holdout)
        return pap_rec_label(n_shared, self.n_personal, rule=self.rule if qualified else None,
                             holdout=self.holdout if qualified else 0, task=self.task, **seeds)

    @property
    def base(self) -> "Arm":
        """The shared-only arm of the same task (what personal tokens are measured against)."""
        return Arm(self.task, 0)


def compute_findings(bundle, split, config: FindingsConfig, runs_dir: str | Path, *, model_dir: str = "",
                     command: str = "", log: Callable[[str], None] = print) -> dict[str, Any]:
    """Search every arm for every seed (resuming), evaluate every prompt and baseline on test, answer the
    claims; returns the report (what ``findings_<dataset>.json`` holds). ``command`` is how to regenerate it."""
    import torch

    from pap_rec_core.evaluation import EvaluationConfig, evaluate_scorer, paired_bootstrap
    from pap_rec_core.evaluation.baselines import fit_markov, popularity_scores
    from pap_rec_core.scoring import evaluate_rlm
    from pap_rec_core.search import run_search
    from pap_rec_core.search.events import RunTrace

    runs_dir = Path(runs_dir)
    seeds, arms = list(config.seeds), config.arms()
    recbole = recbole_rows([Path(x) for x in config.baselines], split)
    t_start = time.perf_counter()
    runs = {}  # (arm, seed) -> (run_dir, result, seconds)
    changed = {}  # run_dir -> users changed per personal round
    for seed in seeds:
        for arm in arms:
            direct = arm.task == "direct"
            search = config.search_config(arm, seed)
            name = run_name(config.n_shared, arm.n_personal, arm.rule, arm.holdout, search.surrogate,
                            search.shared_holdout, seed)
            run_dir = runs_dir / (f"direct-{name}" if direct else name)
            t0 = time.perf_counter()
            result = run_search(bundle, split, search, run_dir)
            trace = RunTrace.read(run_dir)  # (its own seconds: a resumed or skipped search took less here)
            seconds = float(trace.finished.seconds) if trace.finished else time.perf_counter() - t0
            changed[run_dir] = trace.users_changed
            runs[arm, seed] = (run_dir, result, seconds)
            log(f"search {run_dir.name}: value {result.value:.4f}, {result.iterations} iterations, "
                  f"{seconds:.0f} s")

    users = np.asarray(next(iter(runs.values()))[1].users)
    econf = EvaluationConfig(n_resamples=config.resamples, seed=0)
    (seen, unseen), (direct_seen, _) = paper_templates("sequential"), paper_templates("direct")
    manual = {"sequential": f"manual:{seen}", "direct": f"manual:{direct_seen}"}
    specs = [f"manual:{seen}", f"manual:{unseen}"] + ([f"manual:{direct_seen}"] if config.direct else [])
    results = {s: evaluate_rlm(bundle, split, "test", s, method="first-token", users=users, config=econf)
               for s in specs}
    results.update({f"run:{d}": evaluate_rlm(bundle, split, "test", f"run:{d}", method="first-token", users=users,
                                             config=econf) for d, _, _ in runs.values()})
    chain, _, _ = fit_markov(split)
    pop = popularity_scores(split)
    results["Pop"] = evaluate_scorer(split, "test", lambda b: np.tile(pop, (len(b), 1)), system="Pop",
                                     config=econf, users=users)
    results["Markov"] = evaluate_scorer(split, "test", chain.scorer(split, "test"), system=chain.name,
                                        config=econf, users=users)
    labels = {f"manual:{seen}": manual_label(seen), f"manual:{unseen}": manual_label(unseen, unseen=True),
              f"manual:{direct_seen}": manual_label(direct_seen, task="direct"), "Pop": "Pop", "Markov": chain.name}
    task_of = {f"manual:{direct_seen}": "direct"}
    for (arm, seed), (d, _, _) in runs.items():
        labels[f"run:{d}"] = arm.label(config.n_shared, seed=seed)
        task_of[f"run:{d}"] = arm.task

    per_user = {k: r.per_user for k, r in results.items()}  # metric -> (U,) per system
    mean_key = {}
    for arm in arms:  # the search procedure over seeds: each user's mean over the seeds' prompts
        if len(seeds) > 1:
            key = f"mean:{arm.task}:p{arm.n_personal}:{arm.rule}:h{arm.holdout}"
            per_user[key] = {m: np.mean([results[f"run:{runs[arm, s][0]}"].per_user[m] for s in seeds], axis=0)
                             for m in KEYS}
            labels[key] = arm.label(config.n_shared, seeds=len(seeds))
            task_of[key], mean_key[arm] = arm.task, key

    def diff(a: str, b: str, metric: str = "ndcg@10") -> list[float]:
        d = paired_bootstrap(per_user[a][metric], per_user[b][metric], metric, n_resamples=config.resamples, seed=0)
        return [d.diff, d.low, d.high, d.p_value]

    def arm_key(arm: Arm, seed: int | None = None) -> str | None:
        if seed is None:
            return mean_key.get(arm) or (f"run:{runs[arm, seeds[0]][0]}" if (arm, seeds[0]) in runs else None)
        return f"run:{runs[arm, seed][0]}" if (arm, seed) in runs else None

    searched = {f"run:{d}": (arm, seed) for (arm, seed), (d, _, _) in runs.items()}
    searched.update({k: (arm, None) for arm, k in mean_key.items()})
    order = [k for k in per_user if k not in ("Pop", "Markov")] + ["Pop", "Markov"]  # baselines last
    rows = []
    for key in order:
        task = task_of.get(key, "sequential")
        row = {"prompt": labels[key], "spec": key, "task": task, **{m: float(per_user[key][m].mean()) for m in KEYS}}
        if key != manual[task]:
            row["ndcg@10 diff"] = diff(manual[task], key)
        if key in searched:
            arm, seed = searched[key]
            if task == "sequential":
                row["ndcg@10 diff vs Markov"] = diff("Markov", key)
            base = arm_key(arm.base, seed)
            if arm.n_personal and base in per_user:
                row["ndcg@10 diff vs shared-only"] = diff(base, key)
        rows.append(row)
    rows += recbole
    by_spec = {r["spec"]: r for r in rows}

    # judges on validation vs test over the candidates of the seeds' shared-only searches, pooled
    correlations = {}
    shared_runs = [runs[Arm("sequential", 0), s][1] for s in seeds if (Arm("sequential", 0), s) in runs]
    if shared_runs:
        frame, corr = surrogate_correlation(bundle, split, shared_runs, users, config.max_candidates, econf,
                                            config.judge_holdouts, judges=config.judges)
        if len(frame) >= 3:
            for row in corr.itertuples(index=False):
                correlations[row.surrogate] = {"spearman": float(row[1]), "ci": [float(row.low), float(row.high)],
                                               "valid": list(frame[f"valid {row.surrogate}"])}
            correlations["test_ndcg@10"] = list(frame["test ndcg@10"])
            correlations["tokens"] = list(frame["tokens"])
            correlations["test_reliability"] = [frame.attrs["test_reliability"]]  # (a list: not a judge)

    claims = _claims(config, by_spec, arm_key, arms, runs, recbole, correlations)
    report = {"model": model_dir, "dataset": split.data.name, "users": len(users), "split": "test, leave-one-out",
              "ranking": "first-token (direct task: exact over the fixed 1+99 candidates)",
              "search": config.to_dict(), "command": command,
              "runs": {f"{d.name}": {"run_dir": str(d), "task": arm.task, "n_personal": arm.n_personal,
                                     "rule": arm.rule, "holdout": arm.holdout, "seed": s, "valid_value": r.value,
                                     "iterations": r.iterations, "seconds": sec,
                                     "seconds_per_iteration": sec / max(r.iterations, 1),
                                     "users_changed_per_personal_round": changed[d],
                                     "shared_text": [bundle.tokenizer.token_text(t) for t in r.shared]}
                       for (arm, s), (d, r, sec) in runs.items()},
              "rows": rows, "claims": claims, "surrogate_vs_test": correlations,
              "seconds": time.perf_counter() - t_start, "threads": torch.get_num_threads(),
              "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads", "date": time.strftime("%Y-%m-%d")}
    return report


def recbole_rows(files: list[Path], split) -> list[dict]:
    """Test rows of run_baselines.py JSONs (unpaired: per-user values are not stored), checked against the
    split; Pop is left out (it is scored here, paired)."""
    models = {}
    for path in files:
        data = json.loads(path.read_text())
        users = data.get("dataset", {}).get("eval_users")
        if data.get("dataset", {}).get("name") != split.data.name:
            raise ValueError(f"{path}: baselines of {data.get('dataset', {}).get('name')!r}, not {split.data.name!r}")
        for m in data["models"]:
            if m["model"] != "Pop":
                models[m["model"]] = (path, m, users)
    rows = []
    for name, (path, m, users) in models.items():
        stop = m.get("stop_reason", "")
        converged = "converged" if stop in ("early_stopping", "epoch_cap") else f"not converged ({stop})" if stop else ""
        rows.append({"prompt": f"{name} (RecBole{', ' + converged if converged else ''}; unpaired)",
                     "spec": f"recbole:{name}", "task": "sequential", "unpaired": True, "source": str(path),
                     "converged": converged == "converged", "eval_users": users,
                     **{k: float(m["test"][k]) for k in KEYS}})
    return rows


def _claims(config: FindingsConfig, by_spec, arm_key, arms, runs, recbole, correlations) -> list[dict]:
    """The paper's four claims with the measured answer and the row that answers each. Claim 2's headline
    is the main rule's 1-personal-slot arm (fixed before looking; every other personal arm is listed
    under ``all``); claim 3 takes the best sequential arm (the reading most favourable to the paper)."""
    seq = [a for a in arms if a.task == "sequential"]
    shared_arm = next((a for a in seq if a.n_personal == 0), None)
    shared_only = by_spec.get(arm_key(shared_arm)) if shared_arm else None
    personal = [a for a in seq if a.n_personal]
    claims = []
    if shared_only:
        d = shared_only["ndcg@10 diff"]
        claims.append({"claim": "1. automatic prompts beat manual ones", "row": shared_only["prompt"],
                       "vs": manual_label(paper_templates('sequential')[0]), "diff": d, "answer": verdict(d)})
    direct = next((a for a in arms if a.task == "direct"), None)
    if direct and by_spec.get(arm_key(direct)):
        row = by_spec[arm_key(direct)]
        claims.append({"claim": "1b. ... on the direct task", "row": row["prompt"], "vs": manual_label(paper_templates('direct')[0], task="direct"),
                       "diff": row["ndcg@10 diff"], "answer": verdict(row["ndcg@10 diff"])})
    if personal and shared_only:
        head = next((a for a in personal if a.n_personal == 1 and a.rule == config.personal_rule
                     and a.holdout == config.personal_holdout), personal[0])
        top = by_spec[arm_key(head)]
        d = top.get("ndcg@10 diff vs shared-only")
        claims.append({"claim": "2. personalised tokens help", "row": top["prompt"], "vs": shared_only["prompt"],
                       "diff": d, "answer": verdict(d),
                       "all": {by_spec[arm_key(a)]["prompt"]: by_spec[arm_key(a)].get("ndcg@10 diff vs shared-only")
                               for a in personal}})
    best = max((by_spec[arm_key(a)] for a in seq), key=lambda r: r["ndcg@10"])
    d = best["ndcg@10 diff vs Markov"]
    c3 = {"claim": "3. the RLM with its searched prompt beats the baselines", "row": best["prompt"],
          "vs": "Markov (paired)", "diff": d, "answer": verdict(d)}
    converged = [r for r in recbole if r["converged"]]
    if converged:
        top = max(converged, key=lambda r: r["ndcg@10"])
        c3["best_recbole"] = {"model": top["prompt"], "ndcg@10": top["ndcg@10"],
                              "diff (unpaired)": best["ndcg@10"] - top["ndcg@10"]}
        if top["ndcg@10"] > best["ndcg@10"]:
            c3["answer"] += f"; below {top['prompt'].split(' (')[0]} ({top['ndcg@10']:.4f}, unpaired)"
    claims.append(c3)
    import torch

    per_it = [sec / max(r.iterations, 1) for (arm, s), (d_, r, sec) in runs.items() if arm.task == "sequential"]
    claims.append({"claim": "4. efficiently (surrogate metrics)", "seconds_per_iteration": [min(per_it), max(per_it)],
                   "judge_spearman": {k: v["spearman"] for k, v in correlations.items() if isinstance(v, dict)},
                   "judge_spearman_ci": {k: v["ci"] for k, v in correlations.items() if isinstance(v, dict)},
                   "answer": f"{min(per_it):.0f}-{max(per_it):.0f} s per iteration on all searched users, "
                             f"{torch.get_num_threads()} CPU thread(s)"})
    return claims
