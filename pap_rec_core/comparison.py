"""Manual vs automatic prompts of one search run: for the population (metrics with bootstrap CIs, paired
differences, per-user improvements) and for one user (the top-10 lists side by side).

The workbench's comparison page, ``pap-rec export-plots`` and the notebooks call these; the figures of
the results are in :mod:`pap_rec_core.viz`.

Example::

    bundle, split = load_rlm_with_split("models/ml-100k")
    cmp = compare_run(bundle, split, "runs/demo")          # manual / shared / personalised on test
    cmp.table()                                            # long table: system, metric, mean, CI
    user_recommendations(bundle, split, cmp.prompts["manual 2-3"], user=17)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from pap_rec_core.data.errors import UnknownUserError
from pap_rec_core.data.split import NO_TARGET, Split, Stage
from pap_rec_core.evaluation.evaluator import EvaluationConfig, EvaluationResult, compare
from pap_rec_core.evaluation.systems import manual_label, pap_rec_label
from pap_rec_core.prompts.templates import paper_templates
from pap_rec_core.rlm.batching import encode_batch
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.rlm.evaluate import PromptFn, evaluate_render
from pap_rec_core.rlm.ranking import score_items
from pap_rec_core.scoring import PromptSpec, prompt_fn, run_prompt_fn

def run_prompts(result, bundle: RLMBundle) -> dict[str, PromptFn]:
    """The prompts a run is compared on, by label: the manual template of its task, its shared tokens
    alone (when it also has personal ones), and the automatic prompt it found."""
    seen, _ = paper_templates(result.config.task)
    prompts = {manual_label(seen): prompt_fn(PromptSpec.parse(f"manual:{seen}"), bundle.tokenizer,
                                             result.config.max_history)}
    shared_label, full_label = run_labels(result.config)
    if result.config.n_personal and result.config.n_shared:
        prompts[shared_label] = run_prompt_fn(result, bundle.tokenizer, personal=False)
    prompts[full_label] = run_prompt_fn(result, bundle.tokenizer)
    return prompts


def run_labels(config) -> tuple[str, str]:
    """A run's two system names: its shared tokens alone, and the whole prompt it found."""
    return (pap_rec_label(config.n_shared), pap_rec_label(config.n_shared, config.n_personal))


@dataclass(frozen=True, eq=False)
class RunComparison:
    """Evaluation results of a run's prompts on the same users (the first one is the reference)."""

    run_dir: str
    task: str
    stage: str
    method: str
    results: dict[str, EvaluationResult]
    prompts: dict[str, PromptFn] = field(repr=False)

    @property
    def reference(self) -> str:
        return next(iter(self.results))

    def table(self) -> pd.DataFrame:
        """Long table: system, metric, mean, ci_low, ci_high (bootstrap 95% over users)."""
        return pd.concat([r.summary_with_ci() for r in self.results.values()], ignore_index=True)

    def paired(self) -> pd.DataFrame:
        """Each other system minus the reference per metric: difference, CI, p-value (paired bootstrap)."""
        ref = self.results[self.reference]
        rows = []
        for name, res in self.results.items():
            if name == self.reference:
                continue
            for d in compare(ref, res):
                rows.append({"system": name, "reference": self.reference, **d.to_dict()})
        return pd.DataFrame(rows)

    def per_user(self, user_ids: Sequence[str] | np.ndarray | None = None) -> pd.DataFrame:
        """One row per user and system: rank of the target and every metric."""
        return pd.concat([r.per_user_frame(user_ids) for r in self.results.values()], ignore_index=True)

    def improvement(self, system: str, metric: str = "ndcg@10") -> np.ndarray:
        """(E,) per-user ``metric`` of ``system`` minus the reference's."""
        return self.results[system].per_user[metric] - self.results[self.reference].per_user[metric]


def compare_run(bundle: RLMBundle, split: Split, run, *, stage: Stage | str = Stage.TEST, method: str = "first-token",
                users: np.ndarray | None = None, config: EvaluationConfig = EvaluationConfig(),
                batch_size: int = 128, on_progress: Callable[[int, int], None] | None = None) -> RunComparison:
    """Evaluate a finished run's prompts (:func:`run_prompts`) on ``stage`` for the run's users (or
    ``users``, a subset of them). ``on_progress(done, total)`` follows the user rankings over all
    prompts (e.g. a progress bar: exact ranking takes minutes)."""
    from pap_rec_core.search.run import SearchResult

    result = run if isinstance(run, SearchResult) else SearchResult.from_run(run)
    if result.config.task == "explanation":
        raise ValueError(f"{result.run_dir} is an explanation search: its prompts are judged by BLEU/ROUGE; compare "
                         f"them with `pap-rec evaluate --prompt manual:3-1 --prompt run:{result.run_dir}` "
                         "(rlm.explain.compare_explanations)")
    searched = np.asarray(sorted(set(int(u) for u in result.users)), dtype=np.int64)
    eligible = np.intersect1d(searched, split.eval_users)
    users = eligible if users is None else np.asarray(users, dtype=np.int64)
    outside = np.setdiff1d(users, eligible)
    if outside.size:
        raise UnknownUserError(f"user index {int(outside[0])} was not searched in {result.run_dir}")
    prompts = run_prompts(result, bundle)
    total, done = len(users) * len(prompts), 0
    results = {}
    # in chunks, so that progress is seen between them; the direct task in one piece (its candidates'
    # shown order is drawn over the evaluated users in turn, so chunks would reorder them)
    chunk = len(users) if result.config.task == "direct" else batch_size
    for name, render in prompts.items():
        for start in range(0, len(users), max(chunk, 1)):
            part = users[start : start + chunk]
            res = evaluate_render(bundle, split, stage, render, result.config.task, system=name, method=method,
                                  batch_size=batch_size, users=part, config=config)
            results.setdefault(name, []).append(res)
            done += len(part)
            if on_progress is not None:
                on_progress(done, total)
        results[name] = _concat_results(results[name], users, config)
    return RunComparison(str(result.run_dir), result.config.task, Stage(stage).value, method, results, prompts)


def _concat_results(parts: list[EvaluationResult], users: np.ndarray, config: EvaluationConfig) -> EvaluationResult:
    """One result from the results of consecutive chunks of ``users``."""
    first = parts[0]
    if len(parts) == 1:
        return first
    return EvaluationResult(first.system, first.task, first.stage, np.asarray(users),
                            np.concatenate([p.ranks for p in parts]),
                            {k: np.concatenate([p.per_user[k] for p in parts]) for k in first.per_user}, config)


@dataclass(frozen=True)
class UserRecommendations:
    """One user's top-k under one prompt."""

    system: str
    user: int  # dense index
    target: int  # item index of the ground truth
    target_rank: float  # 1-based among the ranked items (history masked); inf if not ranked
    items: pd.DataFrame  # rank, item (raw id), title, hit


def user_recommendations(bundle: RLMBundle, split: Split, render: PromptFn, user: int, *, system: str = "",
                         task: str = "sequential", stage: Stage | str = Stage.TEST, k: int = 10,
                         exact: bool = False) -> UserRecommendations:
    """The top-``k`` items the RLM gives ``user`` (dense index) with ``render``'s prompt: all items with
    the user's history masked (sequential), or the user's 1 + n candidates (direct, shown in the user's
    seeded order, as the evaluator and the search's judge show them). ``exact``: sequence likelihood
    instead of the first decoder step."""
    stage = Stage(stage)
    if not 0 <= int(user) < split.data.n_users:
        raise UnknownUserError(f"user index {user} is outside 0..{split.data.n_users - 1}")
    target = int(split.targets(stage)[user])
    if target == NO_TARGET:
        raise UnknownUserError(f"user {split.data.user_ids[user]} has no {stage.value} item (too short a history)")
    hist = split.history(int(user), stage)
    tok = bundle.tokenizer
    if task == "direct":
        cands = split.candidates(stage, np.asarray([user]))[0]
        shown = split.shown_candidates(stage, np.asarray([user]))[0]
        scores = score_items(bundle.model, tok, encode_batch(tok, [render(int(user), hist, shown)]),
                             candidates=cands[None], include_eos=exact).numpy()[0]
        order_idx = np.argsort(-scores, kind="stable")
        ranked_items = cands[order_idx]
        target_rank = float(1 + np.sum(scores > scores[0]))
    else:
        scores = score_items(bundle.model, tok, encode_batch(tok, [render(int(user), hist, None)]),
                             include_eos=exact).numpy()[0].astype(np.float64)
        scores[split.history_mask(stage, [user])[0]] = -np.inf  # the evaluator's masking
        order_idx = np.argsort(-scores, kind="stable")
        ranked_items = order_idx
        target_rank = float(1 + np.sum(scores > scores[target])) if np.isfinite(scores[target]) else float("inf")
    top = [int(i) for i in ranked_items[:k]]
    titles = split.data.item_titles()
    items = pd.DataFrame({
        "rank": np.arange(1, len(top) + 1),
        "item": [str(split.data.item_ids[i]) for i in top],
        "title": [str(titles[i]) if titles is not None else "" for i in top],
        "hit": [i == target for i in top],
    })
    return UserRecommendations(system=system, user=int(user), target=target, target_rank=target_rank, items=items)


def personal_token_effects(cmp: RunComparison, bundle: RLMBundle, split: Split, result, n: int = 3,
                           metric: str = "ndcg@10") -> pd.DataFrame:
    """What the personal tokens of a run did for the users they moved most: the ``n`` users they helped
    most and the ``n`` they hurt most (by ``metric``, personalised minus shared-only), each with its
    personal tokens, the target's rank under both prompts, how many of the shared prompt's top-10 items
    stayed in the top-10, the test item's genres and the user's most frequent history genres (where the
    dataset has genres). Empty for a run without both shared and personal slots."""
    shared_label, full_label = run_labels(result.config)
    if not result.config.n_personal or shared_label not in cmp.results or full_label not in cmp.results:
        return pd.DataFrame()
    shared, personal = cmp.results[shared_label], cmp.results[full_label]
    delta = personal.per_user[metric] - shared.per_user[metric]
    order = np.argsort(-delta, kind="stable")
    picks = [i for i in order[:n] if delta[i] > 0] + [i for i in order[::-1][:n] if delta[i] < 0]
    row_of = {int(u): r for r, u in enumerate(result.users)}
    tok = bundle.tokenizer
    genre_sets = split.data.item_genre_sets() or [()] * split.data.n_items

    rows = []
    for i in picks:
        u = int(shared.users[i])
        top = {name: user_recommendations(bundle, split, cmp.prompts[name], u, system=name, task=cmp.task,
                                          stage=cmp.stage, exact=cmp.method == "exact").items["item"].tolist()
               for name in (shared_label, full_label)}
        hist = split.history(u, cmp.stage)
        counts: dict[str, int] = {}
        for item in hist:
            for g in genre_sets[int(item)]:
                counts[g] = counts.get(g, 0) + 1
        rows.append({
            "user": str(split.data.user_ids[u]),
            "personal tokens": " ".join(tok.token_text(t) for t in result.personal[row_of[u]]),
            "rank (shared only)": shared.ranks[i], "rank (with personal)": personal.ranks[i],
            f"Δ {metric}": float(delta[i]),
            "top-10 kept": len(set(top[shared_label]) & set(top[full_label])),
            "test item genres": ", ".join(genre_sets[int(split.targets(cmp.stage)[u])]),
            "history's top genres": ", ".join(g for g, _ in sorted(counts.items(), key=lambda x: -x[1])[:3]),
        })
    return pd.DataFrame(rows)


def user_history(split: Split, user: int, stage: Stage | str = Stage.TEST, last: int | None = 20) -> pd.DataFrame:
    """The user's items before the stage's target, oldest first (the last ``last`` of them)."""
    hist = split.history(int(user), stage)
    if last is not None:
        hist = hist[-last:]
    titles = split.data.item_titles()
    return pd.DataFrame({"item": [str(split.data.item_ids[i]) for i in hist],
                         "title": [str(titles[i]) if titles is not None else "" for i in hist]})


def resolve_user(split: Split, user_id: str) -> int:
    """Dense index of a raw user id; a clear ``UnknownUserError`` (with close ids) when absent."""
    import difflib

    try:
        return split.data.user_index(str(user_id).strip())
    except UnknownUserError:
        close = difflib.get_close_matches(str(user_id).strip(), [str(u) for u in split.data.user_ids], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownUserError(f"unknown user id {user_id!r} in {split.data.name} "
                               f"({split.data.n_users} users){hint}") from None


__all__ = ["RunComparison", "UserRecommendations", "compare_run", "personal_token_effects",
           "resolve_user", "run_prompts", "user_history", "user_recommendations"]
