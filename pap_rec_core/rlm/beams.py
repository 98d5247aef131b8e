"""Beam-search item lists, the paper's protocol: 20 beams, the top-N items, best first.

:func:`beam_rank` runs transformers' ``generate`` (constrained by a prefix trie to valid item ids, or
plain as the public PAP-REC code calls it) and reads its sequences; :func:`beam_top_items` gives the same
lists without ``generate`` (single-token items: one decoder step and the second step for the beams only;
:func:`plain_beam_lists` replays the unconstrained search; digit-text items:
:func:`replayed_beam_lists`). Scores of items (exact or first-token): :mod:`pap_rec_core.rlm.ranking`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from pap_rec_core.rlm.batching import EncodedBatch
from pap_rec_core.rlm.cross_attention import beam_second_step_logits, start_step_logits
from pap_rec_core.rlm.beam_replay import beam_search_sequences
from pap_rec_core.rlm.decoding import first_step
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.ranking import (
    eos_after_items,
    item_sequences,
    second_step_logits,
    tokenizer_tries,
    trie_table,
)
from pap_rec_core.rlm.tokenizer import EOS_ID, PAD_ID, RecTokenizer


def item_trie(tokenizer: RecTokenizer) -> "ItemTrie":
    """The tokenizer's :class:`ItemTrie` (built once per tokenizer)."""
    built = tokenizer_tries(tokenizer)
    if "trie" not in built:
        built["trie"] = ItemTrie(item_sequences(tokenizer))
    return built["trie"]


def first_step_beams(model: RecLM, tokenizer: RecTokenizer, batch: EncodedBatch, num_beams: int):
    """The first step of item beam search (single-token items): ``(batch on the model's device, encoder
    output, (B, I) first-step item log-probabilities (full-vocabulary normalised), (B, beams) their
    top values, (B, beams) the item indices, best first, the step itself (for the second steps))``."""
    device = next(model.parameters()).device
    batch = batch.to(device)
    hidden = model.encode_batch(batch)
    start, stop = tokenizer.item_token_range()
    step = first_step(model, hidden, batch.attention_mask)
    first = F.log_softmax(step.logits[:, -1].float(), dim=-1)[:, start:stop]
    lp1, items = torch.topk(first, min(num_beams, stop - start), dim=-1)
    return batch, hidden, first, lp1, items, step


@torch.no_grad()
def beam_top_items(model: RecLM, tokenizer: RecTokenizer, batch: EncodedBatch, num_beams: int = 20,
                   top_n: int = 10, constrained: bool = True, keep_places: bool = False) -> list[list[int]]:
    """What :func:`beam_rank` returns for single-token items, without running ``generate``.

    With single-token items beam search has two steps (``max_new_tokens`` is the longest item, 2).
    Constrained by the trie, the first keeps the ``num_beams`` items of highest ``log p(item)``
    (full-vocabulary log-softmax, disallowed tokens masked, not renormalised), the second can only
    emit ``</s>``; the returned hypotheses are those beams ordered by ``log p(item) + log p(</s> | item)``
    (every hypothesis has the same length, so the length penalty does not reorder them). Here: one
    decoder step, a top-``num_beams``, and the second step for those items only. ``constrained=False``
    (plain ``generate``, the public PAP-REC code) follows transformers' beam search over the whole
    vocabulary instead (:func:`plain_beam_lists`). Digit-text items: transformers' beam search replayed
    with shared encoder keys and per-beam decoder caches (:func:`~pap_rec_core.rlm.beam_replay.beam_search_sequences`).
    Tested to give ``beam_rank``'s lists (``keep_places``: see there)."""
    if not tokenizer.item_tokens:
        return replayed_beam_lists(model, tokenizer, batch, num_beams, top_n, constrained, keep_places=keep_places)[0]
    if not constrained:
        return plain_beam_lists(model, tokenizer, batch, num_beams, top_n, keep_places)[0]
    batch, hidden, first, lp1, items, step = first_step_beams(model, tokenizer, batch, num_beams)
    start, _ = tokenizer.item_token_range()
    total = lp1 + eos_after_items(model, hidden, batch.attention_mask, items + start, 2048, first=step)
    beams = items.shape[1]
    order = torch.sort(total, dim=-1, descending=True, stable=True).indices[:, : min(top_n, beams)]
    return items.gather(1, order).cpu().tolist()


@torch.no_grad()
def replayed_beam_lists(model: RecLM, tokenizer: RecTokenizer, batch: EncodedBatch, num_beams: int = 20,
                        top_n: int = 10, constrained: bool = True, targets=None,
                        keep_places: bool = False) -> tuple[list[list[int]], list[bool]]:
    """``(lists, missed)``: :func:`beam_rank`'s lists by the replay of transformers' beam search (any items;
    :func:`~pap_rec_core.rlm.beam_replay.beam_search_sequences`). With ``targets`` (B,) item indices, a prompt
    stops as soon as its target cannot be listed: ``missed[b]`` is then True and ``lists[b]`` is not the
    full list (only that the target is not in it is known)."""
    device = next(model.parameters()).device
    batch = batch.to(device)
    hidden = model.encode_batch(batch)
    table = trie_table(tokenizer, model.t5.config.vocab_size)
    per, longest = min(top_n, num_beams), int(table.depth.max())
    target_seqs = None
    if targets is not None:
        target_seqs = torch.full((len(targets), longest), -1, dtype=torch.long)
        for row, item in enumerate(targets):
            seq = tokenizer.item_target_ids(int(item))
            target_seqs[row, : len(seq)] = torch.tensor(seq)
    out = beam_search_sequences(model, hidden, batch.attention_mask, num_beams, per, longest,
                                table if constrained else None, targets=target_seqs)
    seqs, missed = out if targets is not None else (out, torch.zeros(hidden.shape[0], dtype=torch.bool))
    lists = _read_lists(item_trie(tokenizer), seqs.reshape(-1, seqs.shape[-1]).tolist(), hidden.shape[0], per,
                        keep_places)
    return lists, missed.cpu().tolist()


@torch.no_grad()
def plain_beam_lists(model: RecLM, tokenizer: RecTokenizer, batch: EncodedBatch, num_beams: int = 20,
                     top_n: int = 10, keep_places: bool = False,
                     targets=None) -> tuple[list[list[int]], list[bool]]:
    """``(lists, missed)`` of unconstrained ``generate`` (``num_beams`` beams, ``max_new_tokens`` 2, early
    stopping, length penalty 1) of single-token items, as transformers' vectorised beam search computes it: step 1 keeps
    the top ``2 * num_beams`` tokens; an ``</s>`` among the first ``num_beams`` of them finishes (score
    ``log p / 1``), the best ``num_beams`` others run on; step 2 takes the top ``2 * num_beams``
    continuations of all running beams, of which the first ``num_beams`` finish at the length limit
    (score ``sum / 2``); the best ``num_beams`` finished hypotheses, best first, give the lists (an item
    token followed by ``</s>`` or by nothing is that item; every other output is dropped, as
    :func:`beam_rank` drops it, or keeps its place with ``keep_places``). ``num_beams`` >= 2 (with one
    beam ``generate`` runs greedy search). With ``targets`` (B,) item indices, a prompt whose target is not
    among the beams still running after the first step cannot list it (every listed item is such a beam's
    token), so its second step is skipped: ``missed[b]`` is then True and ``lists[b]`` is empty."""
    if num_beams < 2:
        raise ValueError("the plain beam replay needs num_beams >= 2 (one beam is greedy search: use beam_rank)")
    device = next(model.parameters()).device
    batch = batch.to(device)
    hidden = model.encode_batch(batch)
    bsz = hidden.shape[0]
    if targets is None:
        first = first_step(model, hidden, batch.attention_mask)
        step1 = first.logits[:, -1]
    else:  # most prompts stop after step 1: no encoder keys or values projected (rlm.decoding)
        first, (step1, start_kv) = None, start_step_logits(model, hidden, batch.attention_mask, with_keys=True)
    lp1 = F.log_softmax(step1.float(), dim=-1)  # (B, V)
    keep = 2 * num_beams
    top1, tok1 = torch.topk(lp1, keep, dim=-1)  # (B, 2k), best first
    eos1 = tok1 == EOS_ID
    running_scores = torch.where(eos1, top1 - 1.0e9, top1)
    run_scores, run_pos = torch.topk(running_scores, num_beams, dim=-1)  # (B, k)
    run_tok = tok1.gather(1, run_pos)
    start, stop = tokenizer.item_token_range()
    live = torch.ones(bsz, dtype=torch.bool, device=device)
    if targets is not None:  # a target no running beam holds cannot be listed: skip that prompt's second step
        live = (run_tok == torch.as_tensor(targets, device=device)[:, None] + start).any(1)
    kept = torch.nonzero(live).flatten()
    full, bsz = bsz, len(kept)
    if not bsz:  # no prompt can list its target
        return [[] for _ in range(full)], [True] * full
    top1, eos1, run_scores, run_tok = top1[kept], eos1[kept], run_scores[kept], run_tok[kept]
    if first is None:  # the prompts still running, their beams' second step by the same cross-attention
        kv = [(k[kept] if len(k) > 1 else k, v[kept] if len(v) > 1 else v) for k, v in start_kv]
        logits2 = beam_second_step_logits(model, hidden[kept], batch.attention_mask[kept], kv, run_tok)
        logits2 = logits2.reshape(bsz * num_beams, -1).float()
    else:
        logits2 = second_step_logits(model, first.cache, batch.attention_mask, kept.repeat_interleave(num_beams),
                                     run_tok.reshape(-1)).float()
    acc = (F.log_softmax(logits2, dim=-1) + run_scores.reshape(-1, 1)).view(bsz, -1)  # (B, k * V)
    top2, idx2 = torch.topk(acc, keep, dim=-1)
    vocab = logits2.shape[-1]
    beam2, tok2 = idx2 // vocab, idx2 % vocab
    # finished hypotheses: step 1's </s> among its first k candidates, step 2's first k candidates
    fin1_score = torch.where(eos1[:, :num_beams], top1[:, :num_beams], torch.full_like(top1[:, :num_beams], -1.0e9))
    scores = torch.cat([torch.full((bsz, num_beams), -1.0e9, device=device), fin1_score, top2[:, :num_beams] / 2], dim=1)
    best = torch.topk(scores, num_beams, dim=-1).indices[:, : min(top_n, num_beams)].cpu()
    run_tok, beam2, tok2, eos_first = run_tok.cpu(), beam2.cpu(), tok2.cpu(), eos1[:, :num_beams].cpu()
    ranked: list[list[int]] = []
    for b in range(bsz):
        items: list[int] = []
        for place, j in enumerate(best[b].tolist()):
            if j < num_beams or (j < 2 * num_beams and not eos_first[b, j - num_beams]):
                continue  # an unused slot (-1e9: never above the k finite step-2 scores)
            item = None
            if j >= 2 * num_beams:  # step 1's </s> (num_beams <= j < 2 num_beams) is no item
                c = j - 2 * num_beams
                toks = [t for t in (int(run_tok[b, beam2[b, c]]), int(tok2[b, c])) if t != PAD_ID]  # beam_rank's reading
                if not toks or toks[-1] != EOS_ID:
                    toks.append(EOS_ID)
                if len(toks) == 2 and start <= toks[0] < stop and (toks[0] - start) not in items:
                    item = toks[0] - start
            if item is not None:
                items.append(item)
            elif keep_places:
                items.append(NOT_AN_ITEM - place)
        ranked.append(items)
    lists: list[list[int]] = [[] for _ in range(full)]
    for b, row in enumerate(kept.tolist()):
        lists[row] = ranked[b]
    return lists, (~live).cpu().tolist()


NOT_AN_ITEM = -1  # keep_places: a returned sequence that is no (new) item at position p is NOT_AN_ITEM - p


class ItemTrie:
    """Prefix trie over item token sequences (ending in ``</s>``) for constrained decoding."""

    def __init__(self, sequences: Sequence[tuple[int, ...]]):
        self.root: dict = {}
        self.item_of: dict[tuple[int, ...], int] = {}
        for item, seq in enumerate(sequences):
            node = self.root
            for tok in seq:
                node = node.setdefault(tok, {})
            self.item_of[tuple(seq)] = item

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        node = self.root
        for tok in prefix:
            node = node.get(int(tok))
            if node is None:
                return [EOS_ID]  # a finished or invalid beam: only allow ending (pads follow)
        return list(node.keys()) or [PAD_ID]


@torch.no_grad()
def beam_rank(model: RecLM, tokenizer: RecTokenizer, batch: EncodedBatch, num_beams: int = 20, top_n: int = 10,
              constrained: bool = True, keep_places: bool = False) -> list[list[int]]:
    """Per prompt, up to ``top_n`` item indices from beam search (best first); invalid outputs (not an item,
    or an item already listed) dropped — or, with ``keep_places``, kept as distinct negative ids
    (``NOT_AN_ITEM - position``) so that each item keeps its position among the returned sequences, as the
    public PAP-REC code ranks them (a target behind a non-item output is not moved up)."""
    from transformers.modeling_outputs import BaseModelOutput

    device = next(model.parameters()).device
    batch = batch.to(device)
    hidden = model.encode_batch(batch)
    sequences = item_sequences(tokenizer)
    trie = ItemTrie(sequences)
    max_len = max(len(s) for s in sequences)

    def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        return trie.allowed(input_ids.tolist()[1:])  # drop the decoder start token

    out = model.t5.generate(
        encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=batch.attention_mask,
        num_beams=num_beams, num_return_sequences=min(top_n, num_beams), max_new_tokens=max_len,
        prefix_allowed_tokens_fn=allowed if constrained else None, early_stopping=True, do_sample=False,
        decoder_start_token_id=PAD_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
    )
    return _read_lists(trie, out.tolist(), hidden.shape[0], min(top_n, num_beams), keep_places)


def _read_lists(trie: ItemTrie, sequences: list[list[int]], n_prompts: int, per: int,
                keep_places: bool = False) -> list[list[int]]:
    """Item lists from ``generate``'s output rows (``per`` per prompt, best first): a row's tokens after the
    start token up to its first ``</s>`` (pads dropped; transformers fills a hypothesis shorter than the
    longest with ``</s>``) are an item if the trie knows them; invalid outputs and repeats are dropped (or,
    with ``keep_places``, kept as ``NOT_AN_ITEM - position``)."""
    ranked: list[list[int]] = []
    for b in range(n_prompts):
        items: list[int] = []
        for place, seq in enumerate(sequences[b * per : (b + 1) * per]):
            toks = [t for t in seq[1:] if t != PAD_ID]
            toks = toks[: toks.index(EOS_ID) + 1] if EOS_ID in toks else toks + [EOS_ID]
            item = trie.item_of.get(tuple(toks))
            if item is not None and item not in items:
                items.append(item)
            elif keep_places:
                items.append(NOT_AN_ITEM - place)
        ranked.append(items)
    return ranked
