"""Surrogate metrics: cheap per-user judgements of a prompt on validation.

``exact``: NDCG@5 + HR@5 from the target's rank among all items (history masked, as in evaluation);
``ndcg``: NDCG of that rank with no cut-off, 1 / log2(1 + rank) — smoother: a user whose target moves
from rank 40 to 12 counts, where NDCG@5 + HR@5 is 0 for both;
``beam``: the paper's — beam search (20 beams, 5 returned), NDCG@5 + HR@5 of the returned list;
``likelihood``: log p(target | prompt). Every kind also returns the target's log-likelihood under the
same scores, used as a tie-break by the ``likelihood-tiebreak`` personal rule. The explanation task:
``bleu-rouge`` (the paper's BLEU-4 + 0.1 · ROUGE-L of the greedy explanation, judged per pair with a
smoothed sentence BLEU: ``text_metrics.pair_surrogate``) or ``likelihood`` (mean token log-likelihood of
the reference explanation).
"""

from __future__ import annotations

import numpy as np
import torch

from pap_rec_core.evaluation.metrics import ranks_from_lists, ranks_from_scores
from pap_rec_core.rlm.batching import EncodedBatch, pad_labels
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.beams import beam_rank, first_step_beams, plain_beam_lists, replayed_beam_lists
from pap_rec_core.rlm.ranking import eos_after_pairs, exact_scores_for_targets, score_items
from pap_rec_core.rlm.tokenizer import RecTokenizer


def ndcg5_plus_hit5(ranks: np.ndarray) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks <= 5, 1.0 + 1.0 / np.log2(ranks + 1.0), 0.0)


def ndcg_all(ranks: np.ndarray) -> np.ndarray:
    """NDCG of one relevant item at ``ranks`` (1-based) with no cut-off."""
    return 1.0 / np.log2(np.asarray(ranks, dtype=np.float64) + 1.0)


def rank_value(kind: str, ranks: np.ndarray) -> np.ndarray:
    """The rank-based surrogates: ``exact`` (NDCG@5 + HR@5) and ``ndcg`` (no cut-off)."""
    return ndcg_all(ranks) if kind == "ndcg" else ndcg5_plus_hit5(ranks)


@torch.no_grad()
def surrogate_values(kind: str, model: RecLM, tok: RecTokenizer, batch: EncodedBatch, targets: np.ndarray,
                     history_mask: np.ndarray | None, ranking: str = "first-token", generate: bool = True, *,
                     constrained: bool = True, likelihood: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(values, loglik)``, each (B,) float64, for prompts ``batch`` with validation ``targets``.
    ``generate=False`` (the fast engine) computes the beam surrogate without ``generate``
    (:func:`~pap_rec_core.rlm.beams.beam_top_items`, same lists; for single-token items, under the trie,
    the target's rank alone: :func:`beam_target_ranks`), the exact ranking of single-token items with second
    decoder steps only for items above the target (:func:`~pap_rec_core.rlm.ranking.exact_scores_for_targets`,
    same ranks) and that of digit-text items on the item trie (shared prefixes once); the reference engine
    (``generate=True``) calls ``generate`` and teacher-forces every item. ``constrained=False``: the
    beam search is plain ``generate`` over the whole vocabulary (the public code), not held to valid item
    ids, and a target's rank is its position among the 5 returned sequences (non-item outputs keep their
    places, as the public code compares each returned sequence with the target). ``likelihood=False``: the beam surrogate's likelihood is not computed when nothing uses it (the
    reference engine then returns zeros; the fast one gets it for free)."""
    if kind == "beam":
        if not generate and tok.item_tokens and constrained:
            ranks, lik = beam_target_ranks(model, tok, batch, targets, history_mask, num_beams=20, top_n=5)
            return ndcg5_plus_hit5(ranks), lik.astype(np.float64)
        none_missed = [False] * len(targets)
        places = not constrained  # plain beams rank the target among the 5 returned sequences, as the public code
        if generate:
            lists, missed = beam_rank(model, tok, batch, num_beams=20, top_n=5, constrained=constrained,
                                      keep_places=places), none_missed
        elif tok.item_tokens:  # plain beams of single-token items: the two-step replay, second step only where
            # the target is a running beam (elsewhere it cannot be listed)
            lists, missed = plain_beam_lists(model, tok, batch, 20, 5, keep_places=True, targets=targets)
        else:  # digit-text items: the replay, each prompt stopped once its target cannot be listed
            lists, missed = replayed_beam_lists(model, tok, batch, 20, 5, constrained, targets=targets,
                                                keep_places=places)
        exclude = None if history_mask is None else [set(np.flatnonzero(row).tolist()) for row in history_mask]
        ranks = np.where(missed, np.inf, ranks_from_lists(lists, targets, exclude))
        lik = (score_items(model, tok, batch, candidates=torch.as_tensor(targets)[:, None]).numpy()[:, 0]
               if likelihood else np.zeros(len(targets)))
        return ndcg5_plus_hit5(ranks), lik.astype(np.float64)
    if ranking == "exact" and tok.item_tokens and not generate and kind != "likelihood":
        # the fast engine: the same target ranks and likelihoods, second steps only for items above the target
        scores = exact_scores_for_targets(model, tok, batch, targets, history_mask).numpy()
    else:
        scores = score_items(model, tok, batch, include_eos=ranking == "exact", trie=not generate).numpy()
    lik = scores[np.arange(len(targets)), targets].astype(np.float64)
    if kind == "likelihood":
        return lik, lik
    return rank_value(kind, ranks_from_scores(scores, targets, history_mask)), lik


@torch.no_grad()
def direct_values(kind: str, model: RecLM, tok: RecTokenizer, batch: EncodedBatch, candidates: np.ndarray,
                  target_col: np.ndarray, ranking: str = "first-token") -> tuple[np.ndarray, np.ndarray]:
    """The direct task's ``(values, loglik)``: the target ranked among its row's candidates (``exact``:
    NDCG@5 + HR@5; ``likelihood``: the target's log-likelihood)."""
    if kind == "beam":
        raise ValueError("direct_values ranks among the candidates; the direct task's beam surrogate (beams over "
                         "its prompt, as the public code) is surrogate_values with the targets")
    scores = score_items(model, tok, batch, candidates=torch.as_tensor(candidates),
                         include_eos=ranking == "exact" or kind == "likelihood").numpy().astype(np.float64)
    lik = scores[np.arange(len(target_col)), target_col]
    if kind == "likelihood":
        return lik, lik
    return rank_value(kind, ranks_from_scores(scores, target_col)), lik


@torch.no_grad()
def beam_target_ranks(model: RecLM, tok: RecTokenizer, batch: EncodedBatch, targets: np.ndarray,
                      history_mask: np.ndarray | None, num_beams: int = 20,
                      top_n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """``(ranks, loglik)``: (B,) rank of each target in its beam-search list (top ``top_n`` of
    ``num_beams`` beams, history items then removed, as the evaluator does; ``inf`` when absent) and
    the target's sequence log-likelihood — for single-token items, without building the lists.

    Beam search keeps the ``num_beams`` items of highest first-step log-probability ``lp1`` and orders
    them by ``total = lp1 + log p(</s> | item)`` (see ``beam_top_items``). A target outside those beams
    is not listed — most users. Otherwise only items that can outrank it matter, and since
    ``total <= lp1`` those are the beams with ``lp1 >= total(target)``: the second step runs for every
    target (its likelihood is returned too) and for those beams alone. Ties are ordered as
    ``beam_top_items`` orders them (by first-step rank)."""
    batch, hidden, first, lp1, items, step = first_step_beams(model, tok, batch, num_beams)  # beams best first
    device, beams = hidden.device, items.shape[1]
    start, _ = tok.item_token_range()
    targets_t = torch.as_tensor(targets, device=device)
    everyone = torch.arange(len(targets), device=device)
    loglik = first[everyone, targets_t] + eos_after_pairs(model, hidden, batch.attention_mask, everyone,
                                                           targets_t + start, first=step)
    hit = items == targets_t[:, None]
    ranks = np.full(len(targets), np.inf)
    rows = torch.nonzero(hit.any(1)).flatten()
    if not len(rows):
        return ranks, loglik.cpu().numpy()
    t_pos = hit[rows].float().argmax(1)  # position of the target among the beams
    t_total = loglik[rows]
    # beams that may outrank the target: lp1 >= total(target), other than the target itself
    may = (lp1[rows] >= t_total[:, None]) & ~hit[rows]
    pr, pc = torch.nonzero(may, as_tuple=True)
    totals = torch.full((len(rows), beams), float("-inf"), device=device)
    totals[pr, pc] = lp1[rows][pr, pc] + eos_after_pairs(model, hidden, batch.attention_mask, rows[pr],
                                                         items[rows][pr, pc] + start, first=step)
    positions = torch.arange(beams, device=device)[None, :]
    above = (totals > t_total[:, None]) | ((totals == t_total[:, None]) & (positions < t_pos[:, None]))
    above = above.cpu().numpy()
    beam_items = items[rows].cpu().numpy()
    for k, r in enumerate(rows.tolist()):
        if above[k].sum() >= top_n:
            continue  # the target is not among the returned lists' top_n
        ahead = beam_items[k][above[k]]
        if history_mask is not None:
            ahead = ahead[~history_mask[r][ahead]]
        ranks[r] = 1 + len(ahead)
    return ranks, loglik.cpu().numpy()


@torch.no_grad()
def explanation_values(kind: str, model: RecLM, tok: RecTokenizer, batch: EncodedBatch, references: list[str],
                       max_new_tokens: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The explanation task's ``(values, loglik)`` for prompts ``batch`` with reference explanations:
    ``bleu-rouge`` scores the greedy explanation against its reference; ``loglik`` is the reference's mean
    token log-likelihood (teacher forced)."""
    from pap_rec_core.evaluation.text_metrics import pair_surrogate
    from pap_rec_core.rlm.explain import greedy_decode
    from pap_rec_core.search.hotflip import per_sample_loss

    if kind not in ("bleu-rouge", "likelihood"):
        raise ValueError(f"the explanation task takes the bleu-rouge or likelihood surrogate, not {kind!r}")
    device = next(model.parameters()).device
    labels = pad_labels([tok.text_target_ids(r) for r in references]).to(device)
    on_device = batch.to(device)
    out = model(on_device.attention_mask, labels=labels, input_ids=on_device.input_ids,
                whole_word_ids=on_device.whole_word_ids)
    lik = (-per_sample_loss(out.logits, labels)).double().cpu().numpy()
    if kind == "likelihood":
        return lik, lik
    hyps = greedy_decode(model, tok, batch, max_new_tokens)
    return np.asarray(pair_surrogate(hyps, references), dtype=np.float64), lik
