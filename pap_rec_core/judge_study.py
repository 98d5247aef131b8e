"""How well each judge on validation predicts the test metric, over the candidate prompts a search scored.

:func:`surrogate_correlation` (claim 4 of :mod:`pap_rec_core.findings`, notebook 05): each judge's value on
validation against test NDCG@10, Spearman with a bootstrap CI over the candidates, and
:func:`split_half_reliability`, how well the test metric itself orders them (the ceiling no judge can
pass).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pap_rec_core.evaluation import EvaluationConfig


def surrogate_correlation(bundle, split, run, users: np.ndarray, max_candidates: int,
                          config: "EvaluationConfig | None" = None,
                          holdouts: tuple[int, ...] = (0,), n_resamples: int = 2000,
                          judges: tuple[str, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Over the candidate shared prompts a shared-only search scored (at most ``max_candidates``): each
    judge on validation (the run's users) and test NDCG@10 on ``users``, and their Spearman
    correlations with a bootstrap 95% CI over the candidates (NaN with fewer than 3 candidates).
    ``run`` may be a list of shared-only runs that differ only in their seed: their candidates are
    pooled (taken in turn from each run, duplicates once), which gives the correlation more prompts
    than one search scores. A judge is a surrogate (exact, ndcg, beam, likelihood) on the validation
    item, plus, for each N > 0 in ``holdouts``, on the validation item and each user's last N training
    items (``kind+hN``: the judge of ``shared_holdout=N``). ``judges`` names them explicitly instead
    (e.g. ``("exact", "likelihood+h10")``)."""
    import torch

    from pap_rec_core.data.split import Stage
    from pap_rec_core.evaluation import EvaluationConfig
    from pap_rec_core.rlm.evaluate import evaluate_render
    from pap_rec_core.search import PapRecSearch, SearchConfig
    from pap_rec_core.search.events import RunTrace

    config = config or EvaluationConfig()
    runs = list(run) if isinstance(run, (list, tuple)) else [run]
    run = runs[0]
    if any(r.config.n_personal for r in runs):
        raise ValueError("the correlation is over shared prompts: pass shared-only runs")
    base = {k: v for k, v in run.config.to_dict().items() if k != "seed"}
    for other in runs[1:]:
        if {k: v for k, v in other.config.to_dict().items() if k != "seed"} != base:
            raise ValueError(f"{other.run_dir}: its search config differs from {run.run_dir}'s in more than the "
                             "seed; pool candidates only over seeds of one configuration")
    per_run = [RunTrace.read(r.run_dir).shared_prompts_scored(r.config.n_shared) for r in runs]
    prompts, seen = [], set()
    for i in range(max((len(p) for p in per_run), default=0)):
        for scored in per_run:
            if i < len(scored) and tuple(scored[i]) not in seen:
                seen.add(tuple(scored[i]))
                prompts.append(scored[i])
    prompts = prompts[:max_candidates]
    layout = run.config.layout
    frame = pd.DataFrame({"candidate": range(len(prompts)),
                          "tokens": [" ".join(bundle.tokenizer.token_text(t) for t in p) for p in prompts]})
    per_user = np.stack([evaluate_render(
        bundle, split, Stage.TEST, lambda u, h, c, p=p: layout.parts(u, h, c, shared=p), run.config.task,
        system="candidate", method="first-token", batch_size=128, users=users, config=config).per_user["ndcg@10"]
        for p in prompts]) if prompts else np.zeros((0, len(users)))  # (C, U)
    frame["test ndcg@10"] = per_user.mean(axis=1)
    rng = np.random.default_rng(config.seed)
    frame.attrs["test_reliability"] = split_half_reliability(per_user, rng)
    draws = rng.integers(0, len(prompts), size=(n_resamples, len(prompts))) if len(prompts) >= 3 else None
    if not judges:
        judges = tuple(kind + (f"+h{holdout}" if holdout else "") for holdout in holdouts
                       for kind in ("exact", "ndcg", "beam", "likelihood")
                       if not ((run.config.task == "direct" or holdout) and kind == "beam"))
        # (beam lists on the held-out rows too would double a slow column)
    rows = []
    for name in judges:
        kind, _, hold = name.partition("+h")
        if not hold.isdigit() and hold:
            raise ValueError(f"cannot read the judge {name!r}; write SURROGATE or SURROGATE+hN (e.g. likelihood+h10)")
        holdout = int(hold or 0)
        search = PapRecSearch(bundle, split, SearchConfig(**{**run.config.to_dict(), "surrogate": kind,
                                                             "shared_holdout": holdout}))
        frame[f"valid {name}"] = [float(search.values(torch.tensor(p).expand(len(search.users), -1),
                                                      search.shared_valid)[0].mean()) for p in prompts]
        rho, low, high = _spearman_ci(frame[f"valid {name}"].to_numpy(), frame["test ndcg@10"].to_numpy(), draws)
        rows.append({"surrogate": name, "spearman vs test ndcg@10": rho, "low": low, "high": high,
                     "candidates": len(prompts)})
    return frame, pd.DataFrame(rows)


def split_half_reliability(per_user: np.ndarray, rng: np.random.Generator, splits: int = 200) -> dict[str, float]:
    """How reliably the test metric itself orders the candidates: over random halves of the users, the
    Spearman correlation of the candidates' mean on one half with their mean on the other, Spearman-Brown
    corrected to all users (``r``, with the 2.5/97.5 percentiles over the splits). No judge can correlate
    with the observed test metric much above ``sqrt(r)`` (``ceiling``): the rest is the test items' own
    noise. ``per_user``: (candidates, users)."""
    from scipy.stats import spearmanr

    n_cand, n_users = per_user.shape
    if n_cand < 3 or n_users < 4:
        return {"r": np.nan, "low": np.nan, "high": np.nan, "ceiling": np.nan, "splits": 0}
    rhos = []
    for _ in range(splits):
        half = rng.permutation(n_users) < n_users // 2
        a, b = per_user[:, half].mean(axis=1), per_user[:, ~half].mean(axis=1)
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            rhos.append(spearmanr(a, b).statistic)
    if not rhos:
        return {"r": np.nan, "low": np.nan, "high": np.nan, "ceiling": np.nan, "splits": 0}

    def brown(rho: float) -> float:  # Spearman-Brown: from half the users to all of them
        rho = max(float(rho), -0.99)
        return 2 * rho / (1 + rho)

    r = brown(np.mean(rhos))
    low, high = (brown(x) for x in np.percentile(rhos, [2.5, 97.5]))
    return {"r": r, "low": low, "high": high, "ceiling": float(np.sqrt(max(r, 0.0))), "splits": len(rhos)}


def _spearman_ci(x: np.ndarray, y: np.ndarray, draws: np.ndarray | None) -> tuple[float, float, float]:
    """Spearman's rho of ``x`` and ``y`` with a percentile bootstrap 95% CI over ``draws`` (rows of
    resampled indices); NaNs with fewer than 3 points. Resamples where either side is constant are
    left out (rho undefined); NaNs too when either side is constant."""
    from scipy.stats import spearmanr

    if draws is None or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan, np.nan  # (a constant side: every candidate tied, no ranking to correlate)
    rho = float(spearmanr(x, y).statistic)
    boot = []
    for idx in draws:
        xs, ys = x[idx], y[idx]
        if np.ptp(xs) > 0 and np.ptp(ys) > 0:
            boot.append(spearmanr(xs, ys).statistic)
    if not boot:
        return rho, np.nan, np.nan
    low, high = np.nanpercentile(boot, [2.5, 97.5])
    return rho, float(low), float(high)


def shared_prompts_scored(events, n_shared: int) -> list[list[int]]:
    """Every shared-token list a search scored as a candidate, in order (``RunTrace.shared_prompts_scored``
    of a list of events)."""
    from pap_rec_core.search.events import RunTrace

    return RunTrace(Path("."), tuple((0, e) for e in events)).shared_prompts_scored(n_shared)
