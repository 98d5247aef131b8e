"""One evaluator for every row of every table: the RLM with any prompt and every baseline.

Protocol (fixed here, used by all systems):

* **sequential** — full ranking over the whole item catalogue. *Masking policy:* the items of the
  user's history before the target (training items; plus the validation item when evaluating on
  test) are excluded from the ranking, as RecBole's full-sort evaluation does; the target itself is
  never excluded, even when it repeats a history item. Set ``EvaluationConfig.mask_history=False``
  to rank over all items (then report it). Ranked lists (beam search output) get the same policy:
  history items are dropped from the list before the target's position is read.
* **direct** — the fixed candidate list of :meth:`Split.candidates` (target + the user's seeded
  negatives, drawn once), never resampled per evaluation.
* Ties are pessimistic (see :func:`ranks_from_scores`), so constant scores never earn hits.
* Metrics: ``hit@{1,5,10}``, ``ndcg@{5,10}``, ``mrr``, per user; summaries with bootstrap CIs over
  users, and paired bootstrap tests between systems evaluated on the same users.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pap_rec_core.choices import Task  # noqa: F401 (evaluation.Task: the one task enum)
from pap_rec_core.configs import known_fields
from pap_rec_core.data.split import NO_TARGET, Split, Stage
from pap_rec_core.evaluation.bootstrap import PairedDifference, bootstrap_mean, compare_systems
from pap_rec_core.evaluation.metrics import (
    DEFAULT_KS,
    MetricInputError,
    metrics_from_ranks,
    ranks_from_lists,
    ranks_from_scores,
)

ScoreFn = Callable[[np.ndarray], np.ndarray]  # (B,) user indices -> (B, n_items) scores


@dataclass(frozen=True)
class EvaluationConfig:
    ks: tuple[int, ...] = DEFAULT_KS
    mask_history: bool = True  # sequential: exclude history items from the ranking (target never)
    n_resamples: int = 2000  # bootstrap resamples for CIs and paired tests
    alpha: float = 0.05  # 1 - confidence level
    seed: int = 0  # bootstrap seed
    batch_users: int = 512  # users scored at once by evaluate_scorer

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvaluationConfig":
        return cls(**known_fields(cls, d))


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Per-user ranks and metrics of one system on one (task, stage) of a split."""

    system: str
    task: Task
    stage: Stage
    users: np.ndarray  # (E,) user indices
    ranks: np.ndarray  # (E,) 1-based, inf = not retrieved
    per_user: dict[str, np.ndarray]  # metric -> (E,)
    config: EvaluationConfig

    def summary(self) -> dict[str, float]:
        return {k: float(v.mean()) for k, v in self.per_user.items()}

    def summary_with_ci(self) -> pd.DataFrame:
        """One row per metric: mean, CI low/high (bootstrap over users)."""
        rows = []
        for key, values in self.per_user.items():
            iv = bootstrap_mean(values, n_resamples=self.config.n_resamples, alpha=self.config.alpha,
                                seed=self.config.seed)
            rows.append({"system": self.system, "metric": key, "mean": iv.estimate, "ci_low": iv.low,
                         "ci_high": iv.high})
        return pd.DataFrame(rows)

    def per_user_frame(self, user_ids: Sequence[str] | np.ndarray | None = None) -> pd.DataFrame:
        frame = pd.DataFrame({"user": self.users if user_ids is None else np.asarray(user_ids)[self.users],
                              "rank": self.ranks, **self.per_user})
        frame.insert(0, "system", self.system)
        return frame


def _eval_users(split: Split, stage: Stage, users: np.ndarray | None) -> np.ndarray:
    all_users = np.flatnonzero(split.targets(stage) != NO_TARGET)
    if users is None:
        return all_users
    users = np.asarray(users, dtype=np.int64)
    missing = np.setdiff1d(users, all_users)
    if missing.size:
        raise MetricInputError(f"{missing.size} requested users have no {stage.value} target (e.g. user index {missing[0]})")
    return users


def history_mask(split: Split, stage: Stage | str, users: np.ndarray) -> np.ndarray:
    """(B, n_items) bool, True on each user's history items before the stage's target
    (:meth:`Split.history_mask`)."""
    return split.history_mask(stage, users)


def evaluate_scorer(split: Split, stage: Stage | str, score_fn: ScoreFn, *, system: str,
                    config: EvaluationConfig = EvaluationConfig(), users: np.ndarray | None = None,
                    progress: bool = False) -> EvaluationResult:
    """Sequential task: ``score_fn(user_indices) -> (B, n_items)`` scores, called in user batches."""
    stage = Stage(stage)
    users = _eval_users(split, stage, users)
    targets = split.targets(stage)
    ranks = np.empty(len(users), dtype=np.float64)
    starts = range(0, len(users), config.batch_users)
    for start in tqdm(starts, desc=f"rank {system}", disable=not progress, unit="batch"):
        batch = users[start : start + config.batch_users]
        scores = np.asarray(score_fn(batch))  # (B, I)
        if scores.shape != (len(batch), split.data.n_items):
            raise MetricInputError(f"{system}: scorer returned shape {scores.shape}, expected "
                                   f"({len(batch)}, {split.data.n_items})")
        mask = history_mask(split, stage, batch) if config.mask_history else None
        ranks[start : start + len(batch)] = ranks_from_scores(scores, targets[batch], mask)
    return _result(system, Task.SEQUENTIAL, stage, users, ranks, config)


def evaluate_scores(split: Split, stage: Stage | str, scores: np.ndarray, *, system: str,
                    config: EvaluationConfig = EvaluationConfig(), users: np.ndarray | None = None) -> EvaluationResult:
    """Sequential task from a precomputed ``(E, n_items)`` matrix (rows = ``users`` or all eval users)."""
    stage = Stage(stage)
    users = _eval_users(split, stage, users)
    scores = np.asarray(scores)
    if scores.shape[0] != len(users):
        raise MetricInputError(f"{system}: {scores.shape[0]} score rows for {len(users)} users")
    row_of = {int(u): r for r, u in enumerate(users)}
    return evaluate_scorer(split, stage, lambda b: scores[[row_of[int(u)] for u in b]], system=system,
                           config=config, users=users)


def evaluate_ranked_lists(split: Split, stage: Stage | str, ranked: Sequence[Sequence[int]], *, system: str,
                          config: EvaluationConfig = EvaluationConfig(), users: np.ndarray | None = None,
                          task: Task = Task.SEQUENTIAL) -> EvaluationResult:
    """Generated top-N item lists (item indices, best first; e.g. beam search) against each user's target:
    the sequential task, or the direct task judged as the public code does (the target among what its
    prompt generates)."""
    stage = Stage(stage)
    users = _eval_users(split, stage, users)
    if len(ranked) != len(users):
        raise MetricInputError(f"{system}: {len(ranked)} ranked lists for {len(users)} users")
    exclude = [set(split.history(int(u), stage).tolist()) for u in users] if config.mask_history else None
    ranks = ranks_from_lists(ranked, split.targets(stage)[users], exclude=exclude)
    return _result(system, Task(task), stage, users, ranks, config)


def evaluate_candidate_scores(split: Split, stage: Stage | str, scores: np.ndarray, *, system: str,
                              config: EvaluationConfig = EvaluationConfig(),
                              users: np.ndarray | None = None) -> EvaluationResult:
    """Direct task: ``(E, 1 + n_negatives)`` scores over :meth:`Split.candidates` (target = column 0)."""
    stage = Stage(stage)
    users = _eval_users(split, stage, users)
    scores = np.asarray(scores)
    expected = (len(users), 1 + split.config.n_negatives)
    if scores.shape != expected:
        raise MetricInputError(f"{system}: candidate scores of shape {scores.shape}, expected {expected}")
    ranks = ranks_from_scores(scores, np.zeros(len(users), dtype=np.int64))
    return _result(system, Task.DIRECT, stage, users, ranks, config)


def _result(system: str, task: Task, stage: Stage, users: np.ndarray, ranks: np.ndarray,
            config: EvaluationConfig) -> EvaluationResult:
    return EvaluationResult(system=system, task=task, stage=stage, users=users, ranks=ranks,
                            per_user=metrics_from_ranks(ranks, config.ks), config=config)


def compare(baseline: EvaluationResult, other: EvaluationResult) -> list[PairedDifference]:
    """Paired bootstrap of ``other - baseline`` per metric; both must cover the same users."""
    if baseline.task is not other.task or baseline.stage is not other.stage:
        raise MetricInputError(f"cannot compare {baseline.task.value}/{baseline.stage.value} with "
                               f"{other.task.value}/{other.stage.value}")
    if not np.array_equal(baseline.users, other.users):
        raise MetricInputError(f"{baseline.system} and {other.system} were evaluated on different users")
    cfg = baseline.config
    return compare_systems(baseline.per_user, other.per_user, n_resamples=cfg.n_resamples, alpha=cfg.alpha,
                           seed=cfg.seed)


def results_table(results: Sequence[EvaluationResult], reference: EvaluationResult | None = None,
                  metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Wide table: one row per system, ``metric`` and ``metric ci`` columns; with ``reference``, also
    the paired difference's p-value per metric (``metric p``)."""
    rows = []
    for res in results:
        keys = list(metrics or res.per_user)
        row: dict[str, Any] = {"system": res.system, "users": len(res.users)}
        ci = res.summary_with_ci().set_index("metric")
        diffs = {}
        if reference is not None and res is not reference:
            diffs = {d.metric: d for d in compare(reference, res)}
        for key in keys:
            row[key] = ci.loc[key, "mean"]
            row[f"{key} ci"] = f"[{ci.loc[key, 'ci_low']:.4f}, {ci.loc[key, 'ci_high']:.4f}]"
            if reference is not None:
                row[f"{key} p"] = diffs[key].p_value if key in diffs else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
