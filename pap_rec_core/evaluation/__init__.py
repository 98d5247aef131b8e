"""Evaluation: ranking metrics from scores or ranked lists, paired bootstrap comparisons, and the one
evaluator (``evaluator``) that scores every system on the same split with the same masking policy."""

from __future__ import annotations

from pap_rec_core.evaluation.bootstrap import (
    Interval,
    PairedDifference,
    bootstrap_mean,
    compare_systems,
    paired_bootstrap,
)
from pap_rec_core.evaluation.baselines import popularity_scores
from pap_rec_core.evaluation.evaluator import (
    EvaluationConfig,
    EvaluationResult,
    Task,
    compare,
    evaluate_candidate_scores,
    evaluate_ranked_lists,
    evaluate_scorer,
    evaluate_scores,
    history_mask,
    results_table,
)
from pap_rec_core.evaluation.metrics import (
    DEFAULT_KS,
    MetricInputError,
    metrics_from_ranks,
    per_user_frame,
    ranks_from_lists,
    ranks_from_scores,
    summarize,
)

__all__ = [
    "DEFAULT_KS",
    "EvaluationConfig",
    "EvaluationResult",
    "Task",
    "compare",
    "evaluate_candidate_scores",
    "evaluate_ranked_lists",
    "evaluate_scorer",
    "evaluate_scores",
    "history_mask",
    "popularity_scores",
    "results_table",
    "Interval",
    "MetricInputError",
    "PairedDifference",
    "bootstrap_mean",
    "compare_systems",
    "metrics_from_ranks",
    "paired_bootstrap",
    "per_user_frame",
    "ranks_from_lists",
    "ranks_from_scores",
    "summarize",
]
