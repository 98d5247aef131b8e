"""The last-k Markov chain baseline: hand-checked scores, its validation grid, and the baseline runner."""

from __future__ import annotations

import numpy as np
import pytest

from pap_rec_core.data import SplitConfig, build_interactions, build_item_index, leave_one_out
from pap_rec_core.data.transitions import transition_counts
from pap_rec_core.evaluation.baselines import MarkovChain, fit_markov


def test_markov_scores_by_hand() -> None:
    # items a..e; training sequences give a->b twice, b->c, c->a, d->e
    seqs = {"u1": "a b c a b x y", "u2": "d e a b z w", "u3": "c a q r"}
    users, items = [], []
    for u, s in seqs.items():
        for i in s.split():
            users.append(u), items.append(i)
    split = leave_one_out(build_interactions(users, items, name="h", source="test"), SplitConfig(n_negatives=2))
    data = split.data
    ix = {name: data.item_index(name) for name in "abcdexyzwqr"}
    chain = MarkovChain(transition_counts(split.train, data.n_items), k=2, decay=0.5)
    u1 = int(np.flatnonzero(data.user_ids == "u1")[0])
    # u1's validation history is a b c a b: last two items (most recent first) b (weight 1), a (weight 0.5)
    scores = chain.scores(split, "valid", np.array([u1]))[0]
    c_counts = transition_counts(split.train, data.n_items).toarray()
    expected = c_counts[ix["b"]] + 0.5 * c_counts[ix["a"]]
    np.testing.assert_allclose(scores, expected)
    assert scores[ix["c"]] == 1.0 and scores[ix["b"]] == 0.5 * 3  # b->c once; a->b three times in training


def test_fit_markov_picks_the_grid_best_on_validation(toy_split) -> None:
    chain, valid, grid = fit_markov(toy_split, ks=(1, 3), decays=(0.5, 1.0))
    assert len(grid) == 4 and valid.stage.value == "valid"
    best = max(grid, key=lambda g: g["valid ndcg@10"])
    assert (chain.k, chain.decay) == (best["k"], best["decay"])
    assert valid.summary()["ndcg@10"] == pytest.approx(best["valid ndcg@10"])
    assert valid.summary()["hit@1"] > 0.9  # the toy users walk a cycle: the last item says the next


def test_markov_through_the_baseline_runner(toy_split) -> None:
    from pap_rec_core.evaluation.recbole_baselines import BaselineConfig, baselines_frame, train_baseline

    res = train_baseline(toy_split, build_item_index(toy_split.data), BaselineConfig("markov"))
    assert res.model == "Markov" and res.stop_reason == "single_pass"
    assert {"k", "decay", "grid"} <= set(res.recbole_settings)
    chain = MarkovChain(transition_counts(toy_split.train, toy_split.data.n_items), res.recbole_settings["k"],
                        res.recbole_settings["decay"])
    from pap_rec_core.evaluation import evaluate_scorer

    direct = evaluate_scorer(toy_split, "test", chain.scorer(toy_split, "test"), system="m")
    np.testing.assert_array_equal(direct.ranks, res.test.ranks)
    assert list(baselines_frame([res])["model"]) == ["Markov"]
