"""Text-generation metrics for the explanation task, through the maintained packages researchers compare
against: corpus BLEU-n from ``sacrebleu`` (Papineni et al., brevity penalty, no smoothing) and ROUGE-N /
ROUGE-L F1 from Google's ``rouge-score``, averaged over pairs. Both on whitespace tokens, lower-cased (no
further tokenization: the texts are P5's already tokenized reviews). The search's explanation surrogate is
BLEU-4 + 0.1 · ROUGE-L (the paper's); judged per pair (``pair_surrogate``: the personal rounds need one
value per user) its BLEU-4 is ``sacrebleu``'s sentence BLEU with add-one smoothing of the 2- to 4-gram
precisions (``smooth_method="add-k"``: Lin & Och 2004), since unsmoothed sentence BLEU-4 is 0 for every
short sentence without a 4-gram match.

Example::

    bleu(["the cat sat"], ["the cat sat down"], n=2)     # corpus BLEU-2 in [0, 1]
    rouge_l(["the cat sat"], ["the cat sat down"])       # mean ROUGE-L F1
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence


def tokens(text: str) -> list[str]:
    return str(text).lower().split()


class _WhitespaceLower:
    """rouge-score's tokenizer interface: our tokens (its default also strips punctuation)."""

    def tokenize(self, text: str) -> list[str]:
        return tokens(text)


def _check(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    if not hyps:
        raise ValueError("no text pairs to score")


@lru_cache(maxsize=None)
def _bleu(n: int, smooth: str):
    from sacrebleu.metrics import BLEU

    return BLEU(max_ngram_order=n, tokenize="none", lowercase=True, smooth_method=smooth, force=True)


@lru_cache(maxsize=None)
def _rouge(kind: str):
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer([kind], use_stemmer=False, tokenizer=_WhitespaceLower())


def _clean(text: str) -> str:
    return " ".join(str(text).split())  # (sacrebleu splits on single spaces)


def bleu(hyps: Sequence[str], refs: Sequence[str], n: int = 4) -> float:
    """Corpus BLEU-n (uniform weights up to ``n``) of hypotheses against one reference each; 0 when any
    order has no matching n-gram (unsmoothed, as corpus BLEU)."""
    _check(hyps, refs)
    return _bleu(n, "none").corpus_score([_clean(h) for h in hyps], [[_clean(r) for r in refs]]).score / 100


def _mean_f1(kind: str, hyps: Sequence[str], refs: Sequence[str]) -> float:
    _check(hyps, refs)
    scorer = _rouge(kind)
    return sum(scorer.score(str(r), str(h))[kind].fmeasure for h, r in zip(hyps, refs)) / len(hyps)


def rouge_n(hyps: Sequence[str], refs: Sequence[str], n: int = 1) -> float:
    """Mean ROUGE-N F1 over pairs."""
    return _mean_f1(f"rouge{n}", hyps, refs)


def rouge_l(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean ROUGE-L F1 (longest common subsequence) over pairs."""
    return _mean_f1("rougeL", hyps, refs)


def explanation_metrics(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """BLEU-1/4, ROUGE-1/2/L and the search surrogate BLEU-4 + 0.1 · ROUGE-L."""
    b4, rl = bleu(hyps, refs, 4), rouge_l(hyps, refs)
    return {"bleu-1": bleu(hyps, refs, 1), "bleu-4": b4, "rouge-1": rouge_n(hyps, refs, 1),
            "rouge-2": rouge_n(hyps, refs, 2), "rouge-l": rl, "surrogate": b4 + 0.1 * rl}


def sentence_bleu(hyp: str, ref: str, n: int = 4) -> float:
    """Sentence BLEU-n with add-one smoothing of the 2..n-gram precisions (Lin & Och 2004); 0 when no
    unigram matches or the hypothesis is empty."""
    if not tokens(hyp):
        return 0.0
    # (a corpus of one pair: the same statistics as sacrebleu's sentence_score, without its warning about
    # effective_order, which would change the definition)
    return _bleu(n, "add-k").corpus_score([_clean(hyp)], [[_clean(ref)]]).score / 100


def pair_surrogate(hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
    """Per pair: smoothed sentence BLEU-4 + 0.1 · ROUGE-L F1 (the search's explanation surrogate)."""
    _check(hyps, refs)
    scorer = _rouge("rougeL")
    return [sentence_bleu(h, r, 4) + 0.1 * scorer.score(str(r), str(h))["rougeL"].fmeasure for h, r in zip(hyps, refs)]
