"""Explanation generation: BLEU / ROUGE against hand-computed values, and greedy explanations of an RLM
scored on the held-out (test) reviews only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pap_rec_core.evaluation.text_metrics import bleu, explanation_metrics, rouge_l, rouge_n


def test_bleu_by_hand():
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"], 4) == pytest.approx(1.0)
    # clipped unigrams: the 1/2, cat 1/2 -> 2/4; bigrams: "the cat" 1 of 3; no brevity penalty (4 > 3)
    assert bleu(["the cat the cat"], ["the cat sat"], 1) == pytest.approx(0.5)
    assert bleu(["the cat the cat"], ["the cat sat"], 2) == pytest.approx((0.5 * 1 / 3) ** 0.5)
    # brevity penalty: hypothesis of 2 tokens against 4 -> exp(1 - 4/2)
    assert bleu(["a b"], ["a b c d"], 1) == pytest.approx(np.exp(-1.0))
    assert bleu(["x y z w"], ["a b c d"], 4) == 0.0
    with pytest.raises(ValueError, match="hypotheses"):
        bleu(["a"], ["a", "b"])


def test_rouge_by_hand():
    assert rouge_l(["a b c d"], ["a c d e"]) == pytest.approx(0.75)  # LCS a c d
    assert rouge_n(["a b c"], ["a b d"], 2) == pytest.approx(0.5)
    assert rouge_n(["A B"], ["a b"], 1) == pytest.approx(1.0)  # lower-cased
    m = explanation_metrics(["a b c d"], ["a c d e"])
    assert m["surrogate"] == pytest.approx(m["bleu-4"] + 0.1 * m["rouge-l"])


def test_metrics_are_the_packages_own(tmp_path):
    """On plain lower-case words (where our whitespace tokens are the packages' own), BLEU equals sacrebleu's
    default corpus BLEU and ROUGE equals rouge-score's default scorer: the definitions researchers compare
    against, not ours."""
    import sacrebleu
    from rouge_score import rouge_scorer

    from pap_rec_core.evaluation.text_metrics import pair_surrogate, sentence_bleu

    hyps = ["the acting is great and the plot is fun", "a good movie", "boring plot bad actors", "great fun"]
    refs = ["the plot is fun and the acting is great", "a very good movie indeed", "bad actors", "fun fun great"]
    assert bleu(hyps, refs, 4) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score / 100, abs=1e-12)
    assert bleu(hyps, refs, 1) == pytest.approx(
        sacrebleu.metrics.BLEU(max_ngram_order=1).corpus_score(hyps, [refs]).score / 100, abs=1e-12)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    scores = [scorer.score(r, h) for h, r in zip(hyps, refs)]
    for ours, kind in ((rouge_n(hyps, refs, 1), "rouge1"), (rouge_n(hyps, refs, 2), "rouge2"),
                       (rouge_l(hyps, refs), "rougeL")):
        assert ours == pytest.approx(np.mean([s[kind].fmeasure for s in scores]), abs=1e-12)
    # the per-pair surrogate: sacrebleu's add-one smoothed sentence BLEU (Lin & Och) + 0.1 ROUGE-L
    smoothed = sacrebleu.metrics.BLEU(smooth_method="add-k", effective_order=False)
    for h, r, value in zip(hyps, refs, pair_surrogate(hyps, refs)):
        assert sentence_bleu(h, r) == pytest.approx(smoothed.sentence_score(h, [r]).score / 100, abs=1e-12)
        assert value == pytest.approx(sentence_bleu(h, r) + 0.1 * scorer.score(r, h)["rougeL"].fmeasure, abs=1e-12)
    assert sentence_bleu("", "a b") == 0.0 and sentence_bleu("x y", "a b") == 0.0


def test_explanations_are_generated_and_scored_on_held_out_reviews(toy_rlm, toy_split):
    from pap_rec_core.rlm.explain import evaluate_explanations, held_out_reviews

    data = toy_split.data
    rows = [(u, int(toy_split.train[u][0]), 4.0, f"great movie number {u}", None, s)
            for u, s in zip(range(12), ["train", "test"] * 6)]
    reviews = pd.DataFrame(rows, columns=["user", "item", "rating", "text", "feature", "split"])
    titled = replace(data, reviews=reviews,
                     item_info=pd.DataFrame({"title": [f"Toy {i}" for i in range(data.n_items)]}))
    held = held_out_reviews(titled)
    assert list(held.split.unique()) == ["test"] and len(held) == 6
    res = evaluate_explanations(toy_rlm, titled, "3-1")
    assert res["pairs"] == 6 and res["template"] == "3-1"
    for k in ("bleu-1", "bleu-4", "rouge-1", "rouge-2", "rouge-l"):
        assert 0.0 <= res[k] <= 1.0
    assert evaluate_explanations(toy_rlm, titled, "3-1", max_rows=2)["pairs"] == 2
    with pytest.raises(ValueError, match="no review text"):
        held_out_reviews(data)
    with pytest.raises(ValueError, match="not an explanation template"):
        evaluate_explanations(toy_rlm, titled, "2-3")
