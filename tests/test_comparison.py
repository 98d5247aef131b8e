"""Manual vs automatic prompts of a run: the population comparison and one user's top-10 agree with the
one evaluator; the run listing."""

from __future__ import annotations

import numpy as np
import pytest

from pap_rec_core.comparison import compare_run, resolve_user, run_prompts, user_recommendations
from pap_rec_core.data.errors import UnknownUserError
from pap_rec_core.scoring import evaluate_rlm
from pap_rec_core.search import SearchConfig, run_search
from pap_rec_core.search.run import list_runs


@pytest.fixture(scope="module")
def runs(toy_rlm, toy_split, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    seq = run_search(toy_rlm, toy_split, SearchConfig(n_shared=2, n_personal=1, iterations=1, top_k=2, max_users=12),
                     root / "seq")
    direct = run_search(toy_rlm, toy_split, SearchConfig(task="direct", n_shared=2, iterations=1, top_k=2),
                        root / "direct")
    return root, seq, direct


def test_population_comparison_matches_the_evaluator(toy_rlm, toy_split, runs):
    root, seq, _ = runs
    cmp = compare_run(toy_rlm, toy_split, seq)
    assert list(cmp.results) == ["manual 2-3", "PAP-REC 2 shared", "PAP-REC 2 shared + 1 personal"]
    users = cmp.results["manual 2-3"].users
    assert sorted(users) == sorted(seq.users)  # the run's 12 users
    manual = evaluate_rlm(toy_rlm, toy_split, "test", "manual:2-3", method="first-token", users=users)
    np.testing.assert_array_equal(cmp.results["manual 2-3"].ranks, manual.ranks)
    auto = evaluate_rlm(toy_rlm, toy_split, "test", f"run:{root / 'seq'}", method="first-token", users=users)
    np.testing.assert_array_equal(cmp.results["PAP-REC 2 shared + 1 personal"].ranks, auto.ranks)
    table = cmp.table()
    assert set(table.system) == set(cmp.results) and (table.ci_low <= table["mean"]).all()
    paired = cmp.paired()
    assert set(paired.system) == {"PAP-REC 2 shared", "PAP-REC 2 shared + 1 personal"}
    np.testing.assert_allclose(cmp.improvement("PAP-REC 2 shared + 1 personal"),
                               auto.per_user["ndcg@10"] - manual.per_user["ndcg@10"])
    with pytest.raises(UnknownUserError, match="was not searched"):
        compare_run(toy_rlm, toy_split, seq, users=np.array([int(toy_split.eval_users[-1])]))


def test_one_users_top10_agrees_with_the_evaluator(toy_rlm, toy_split, runs):
    _, seq, direct = runs
    for result, task in ((seq, "sequential"), (direct, "direct")):
        cmp = compare_run(toy_rlm, toy_split, result)
        for name, render in run_prompts(result, toy_rlm).items():
            res = cmp.results[name]
            for row in (0, len(res.users) - 1):
                u = int(res.users[row])
                rec = user_recommendations(toy_rlm, toy_split, render, u, task=task, k=5)
                assert rec.target_rank == res.ranks[row], (name, u)
                assert len(rec.items) == 5 and list(rec.items["rank"]) == [1, 2, 3, 4, 5]
                assert rec.items["hit"].sum() == (rec.target_rank <= 5)
                if task == "sequential":  # history items are masked, as in the evaluator
                    hist = {str(toy_split.data.item_ids[i]) for i in toy_split.history(u, "test")}
                    assert not hist & set(rec.items["item"])


def test_resolve_user_and_run_listing(toy_split, runs, tmp_path):
    assert resolve_user(toy_split, " u3 ") == toy_split.data.user_index("u3")
    with pytest.raises(UnknownUserError, match="did you mean"):
        resolve_user(toy_split, "u300")
    root, _, _ = runs
    listed = {r["name"]: r for r in list_runs(root)}
    assert listed["seq"]["finished"] and listed["seq"]["personal"] == 1 and listed["seq"]["users"] == 12
    assert listed["direct"]["task"] == "direct"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "trace.jsonl").write_text('{"schema": 1, "event": "nonsense"}\n')
    (bad,) = list_runs(tmp_path)
    assert "trace.jsonl:1" in bad["error"]
    assert list_runs(tmp_path / "none") == []


def test_personal_token_effects_name_the_users_moved_most(toy_rlm, toy_split, runs):
    from pap_rec_core import viz
    from pap_rec_core.comparison import personal_token_effects

    _, result, direct = runs
    cmp = compare_run(toy_rlm, toy_split, result)
    frame = personal_token_effects(cmp, toy_rlm, toy_split, result, n=2)
    delta = cmp.improvement("PAP-REC 2 shared + 1 personal") - cmp.improvement("PAP-REC 2 shared")
    assert len(frame) == min(2, (delta > 0).sum()) + min(2, (delta < 0).sum())
    for r in frame.itertuples(index=False):
        u = toy_split.data.user_index(r.user)
        i = list(cmp.results["PAP-REC 2 shared"].users).index(u)
        assert r[4] == pytest.approx(delta[i])  # Δ ndcg@10, personalised minus shared-only
        row = list(result.users).index(u)
        assert r[1] == " ".join(toy_rlm.tokenizer.token_text(t) for t in result.personal[row])
        assert 0 <= r[5] <= 10
        genres = toy_split.data.item_genre_sets()
        if genres is not None:  # the test item's genres, one by one (the data's own genre parser)
            assert r[6] == ", ".join(genres[int(toy_split.targets("test")[u])])
    assert len(frame) >= 1 and (frame.iloc[:, 4] != 0).all()  # on the toy run some users moved
    fig = viz.personal_token_effects(frame)
    assert len(fig.data) == 2 and len(fig.layout.annotations) == len(frame)
    assert personal_token_effects(compare_run(toy_rlm, toy_split, direct), toy_rlm, toy_split, direct).empty


def test_progress_follows_the_rankings_and_chunking_changes_nothing(toy_rlm, toy_split, runs):
    _, seq, direct = runs
    for result in (seq, direct):
        seen = []
        chunked = compare_run(toy_rlm, toy_split, result, batch_size=5, on_progress=lambda d, t: seen.append((d, t)))
        whole = compare_run(toy_rlm, toy_split, result, batch_size=1000)
        total = len(next(iter(whole.results.values())).users) * len(whole.results)
        assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)
        if result is seq:
            assert len(seen) > len(whole.results)  # several chunks per prompt: the bar moves within one
        for name in whole.results:
            np.testing.assert_array_equal(chunked.results[name].users, whole.results[name].users)
            np.testing.assert_array_equal(chunked.results[name].ranks, whole.results[name].ranks)


def test_system_names_follow_one_scheme() -> None:
    from pap_rec_core.evaluation.systems import manual_label, pap_rec_label

    assert manual_label("2-3") == "manual 2-3"
    assert manual_label("2-13", unseen=True) == "manual 2-13 (unseen)"
    assert manual_label("5-7", task="direct") == "manual 5-7, direct task"
    assert pap_rec_label(5) == "PAP-REC 5 shared"
    assert pap_rec_label(5, 1) == "PAP-REC 5 shared + 1 personal"
    assert pap_rec_label(5, 1, rule="likelihood-tiebreak", seeds=3) == \
        "PAP-REC 5 shared + 1 personal (likelihood-tiebreak), mean of 3 seeds"
    assert pap_rec_label(5, 1, rule="strict", holdout=3, task="direct", seed=2) == \
        "PAP-REC 5 shared + 1 personal (strict, holdout 3), direct task, seed 2"
