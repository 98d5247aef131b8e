"""Pure helpers of the experiments layer: budgets, result subsets, markdown tables, published numbers,
the leak signature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pap_rec_core.experiments import (
    get_budget,
    leak_signature,
    published_reference,
    subset,
    table_markdown,
)


def test_budgets():
    assert get_budget("smoke").users == 40 and get_budget("full").users is None
    assert get_budget("full", iterations=2).iterations == 2
    with pytest.raises(ValueError, match="unknown budget"):
        get_budget("huge")


def test_subset_keeps_rows_in_the_given_order(toy_split):
    from pap_rec_core.evaluation import evaluate_scores, popularity_scores

    users = toy_split.eval_users
    res = evaluate_scores(toy_split, "test", np.tile(popularity_scores(toy_split), (len(users), 1)), system="Pop")
    pick = users[[3, 0]]
    sub = subset(res, pick)
    assert list(sub.users) == list(pick)
    np.testing.assert_array_equal(sub.ranks, res.ranks[[3, 0]])
    np.testing.assert_array_equal(sub.per_user["ndcg@10"], res.per_user["ndcg@10"][[3, 0]])
    with pytest.raises(ValueError, match="was not evaluated"):
        subset(res, np.array([10_000]))


def test_table_markdown_formats_floats_only():
    md = table_markdown(pd.DataFrame({"n": [1, 20], "x": [0.12345, np.nan], "s": ["a", "b"]}))
    assert md.splitlines() == ["| n | x | s |", "|---|---|---|", "| 1 | 0.1235 | a |", "| 20 |  | b |"]


def test_published_reference_reads_only_what_is_given(tmp_path):
    assert published_reference("sequential", tmp_path / "none.csv").empty
    path = tmp_path / "p.csv"
    path.write_text("source,dataset,task,system,hit@5,ndcg@5,hit@10,ndcg@10\n"
                    "paper,Beauty,sequential,X,0.1,0.2,0.3,0.4\npaper,Beauty,direct,Y,0.5,0.6,0.7,0.8\n")
    seq = published_reference("sequential", path)
    assert list(seq.system) == ["X"] and seq.comparable.iloc[0].startswith("no")
    (tmp_path / "bad.csv").write_text("source,task\nx,sequential\n")
    with pytest.raises(ValueError, match="missing columns"):
        published_reference("sequential", tmp_path / "bad.csv")
    shipped = published_reference("sequential")  # the repository's file: header only, no numbers
    assert shipped.empty


def test_leak_signature_by_hand():
    from pap_rec_core.data import SplitConfig, build_interactions, build_item_index, leave_one_out

    # P5's sequential ids follow first appearance: a1 b2 c3 d4 (u1), e5 f6 (u3)
    seqs = {"u1": "abcd", "u2": "dcba", "u3": "eabf"}
    data = build_interactions([u for u, s in seqs.items() for _ in s], [i for s in seqs.values() for i in s],
                              name="hand", source="test")
    split = leave_one_out(data, SplitConfig(n_negatives=1))
    # test items: u1 d = max(a, b, c) + 1 (yes); u2 a (no); u3 f = max(e, a, b) + 1 (yes)
    assert leak_signature(split, build_item_index(data, "sequential")) == pytest.approx(2 / 3)


def test_dataset_config_for_path(tmp_path):
    from pap_rec_core.data import SourceKind, dataset_config_for_path

    (tmp_path / "p5").mkdir()
    (tmp_path / "p5" / "sequential_data.txt").write_text("1 2 3\n")
    (tmp_path / "user_sequence.txt").write_text("1 2 3\n")
    (tmp_path / "t.csv").write_text("user_id,item_id\n")
    assert dataset_config_for_path(tmp_path / "p5").kind is SourceKind.P5
    assert dataset_config_for_path(tmp_path / "user_sequence.txt").kind is SourceKind.OPENP5
    assert dataset_config_for_path(tmp_path / "t.csv", user_col="u").user_col == "u"
    assert dataset_config_for_path(tmp_path / "t.csv").kind is SourceKind.TABLE
    assert dataset_config_for_path("ml-100k").kind is SourceKind.RECBOLE


def test_surrogate_correlation_scores_each_judge_on_its_own_rows(toy_rlm, toy_split, tmp_path):
    import torch

    from pap_rec_core.experiments import shared_prompts_scored, surrogate_correlation
    from pap_rec_core.search import PapRecSearch, SearchConfig, run_search
    from pap_rec_core.search.events import read_trace

    cfg = SearchConfig(n_shared=2, top_k=3, iterations=2)
    run = run_search(toy_rlm, toy_split, cfg, tmp_path / "r")
    frame, corr = surrogate_correlation(toy_rlm, toy_split, run, toy_split.eval_users, 5, holdouts=(0, 2))
    assert corr.surrogate.tolist() == ["exact", "ndcg", "beam", "likelihood", "exact+h2", "ndcg+h2", "likelihood+h2"]
    assert len(frame) == 5 and corr.candidates.eq(5).all()
    search = PapRecSearch(toy_rlm, toy_split, SearchConfig(**{**cfg.to_dict(), "surrogate": "ndcg",
                                                              "shared_holdout": 2}))
    prompt = shared_prompts_scored(read_trace(run.run_dir), 2)[0]
    expected = float(search.values(torch.tensor(prompt).expand(len(search.users), -1), search.shared_valid)[0].mean())
    assert frame["valid ndcg+h2"][0] == pytest.approx(expected)
    assert frame["valid ndcg+h2"][0] != pytest.approx(frame["valid ndcg"][0])  # more rows: another value
    # judges named explicitly: the same columns for the same names, in the order given
    named, ncorr = surrogate_correlation(toy_rlm, toy_split, run, toy_split.eval_users, 5, judges=("ndcg+h2", "exact"))
    assert ncorr.surrogate.tolist() == ["ndcg+h2", "exact"]
    assert named["valid ndcg+h2"].tolist() == frame["valid ndcg+h2"].tolist()
    with pytest.raises(ValueError, match=r"cannot read the judge 'exact\+hx'"):
        surrogate_correlation(toy_rlm, toy_split, run, toy_split.eval_users, 5, judges=("exact+hx",))
