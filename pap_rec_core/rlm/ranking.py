"""Ranking items with an RLM, two ways, both feeding the one evaluator.

1. :func:`score_items` — exact full ranking of every item by its sequence log-likelihood
   ``log p(item tokens, </s> | prompt)``; the encoder runs once per prompt, the decoder is batched over
   (prompt, item) pairs. This is also the score that constrained beam search maximises (transformers
   masks disallowed tokens without renormalising), so both protocols order items alike.
   ``include_eos=False`` (single-token items only) keeps the first decoder step alone, renormalised over
   item tokens: one step ranks all items — the fast approximation used for model selection and the
   search; ``benchmarks/`` reports how closely it tracks the exact ranking on our RLMs.
   :func:`exact_scores_for_targets` gives the same target ranks for single-token items with the second
   step only for items above the target (what ``evaluate --method exact`` and the fast engine use).
2. :func:`beam_rank` — the paper's protocol: beam search (20 beams) returning the top-N item lists via
   ``generate``, constrained by a prefix trie to valid item ids.
"""

from __future__ import annotations

from typing import Sequence
from weakref import WeakKeyDictionary

import torch
import torch.nn.functional as F

from pap_rec_core.rlm.batching import EncodedBatch
from pap_rec_core.rlm.decoding import TrieTable, beam_search_sequences, first_step, trie_item_scores
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.tokenizer import EOS_ID, PAD_ID, RecTokenizer


def item_sequences(tokenizer: RecTokenizer) -> list[tuple[int, ...]]:
    """Decoder target (tokens + ``</s>``) of every item, in item-index order."""
    return [tokenizer.item_target_ids(i) for i in range(len(tokenizer.item_texts))]


_TRIES: "WeakKeyDictionary[RecTokenizer, dict]" = WeakKeyDictionary()


def trie_table(tokenizer: RecTokenizer, vocab: int) -> TrieTable:
    """The tokenizer's item-id trie as arrays (built once per tokenizer and model vocabulary size)."""
    built = _TRIES.setdefault(tokenizer, {})
    if vocab not in built:
        built[vocab] = TrieTable.build(item_sequences(tokenizer), vocab)
    return built[vocab]


def item_trie(tokenizer: RecTokenizer) -> "ItemTrie":
    """The tokenizer's :class:`ItemTrie` (built once per tokenizer)."""
    built = _TRIES.setdefault(tokenizer, {})
    if "trie" not in built:
        built["trie"] = ItemTrie(item_sequences(tokenizer))
    return built["trie"]


@torch.no_grad()
def score_items(model: RecLM, tokenizer: RecTokenizer, batch: EncodedBatch, include_eos: bool = True,
                item_chunk: int = 2048, candidates: torch.Tensor | None = None, trie: bool = True) -> torch.Tensor:
    """(B, I) log-likelihood of every item for every prompt (float32, on CPU); with ``candidates`` (a
    (B, C) tensor of item indices) only those items are scored and the result is (B, C) — the direct
    task ranks 100 candidates, so exact scoring need not run the decoder for every item. Digit-text
    items (every item, ``trie``): walked on the item-id trie (:func:`~pap_rec_core.rlm.decoding.trie_item_scores`,
    shared prefixes and encoder keys run once per prompt); ``trie=False`` or ``candidates``: teacher
    forcing of each item's tokens (the reference engine's way)."""
    device = next(model.parameters()).device
    batch = batch.to(device)
    hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)  # (B, T, D)
    bsz = hidden.shape[0]
    cands = None if candidates is None else torch.as_tensor(candidates, dtype=torch.long, device=device)
    if tokenizer.item_tokens:
        start, stop = tokenizer.item_token_range()
        step = first_step(model, hidden, batch.attention_mask)  # its cache serves the second steps
        scores = F.log_softmax(step.logits[:, -1].float(), dim=-1)[:, start:stop]  # (B, I)
        if not include_eos:
            scores = torch.log_softmax(scores, dim=-1)  # first step, renormalised over item tokens
            return (scores if cands is None else scores.gather(1, cands)).cpu()
        if cands is None:
            cands = torch.arange(stop - start, device=device).expand(bsz, -1)
        eos = _eos_after_items(model, hidden, batch.attention_mask, cands + start, item_chunk, first=step)
        return (scores.gather(1, cands) + eos).cpu()
    if cands is None and trie:
        return trie_item_scores(model, hidden, batch.attention_mask,
                                trie_table(tokenizer, model.t5.config.vocab_size)).cpu()
    sequences = item_sequences(tokenizer)
    if cands is None:
        return _score_sequences(model, hidden, batch.attention_mask, sequences, item_chunk).cpu()
    return torch.cat([_score_sequences(model, hidden[b : b + 1], batch.attention_mask[b : b + 1],
                                       [sequences[i] for i in cands[b].tolist()], item_chunk)
                      for b in range(bsz)]).cpu()


@torch.no_grad()
def exact_scores_for_targets(model: RecLM, tokenizer: RecTokenizer, batch: EncodedBatch, targets,
                             exclude=None, pair_chunk: int = 2048) -> torch.Tensor:
    """(B, I) scores that rank each row's target exactly as :func:`score_items` (``include_eos=True``) does,
    for single-token items, at a fraction of its cost.

    An item's exact score is ``log p(item) + log p(</s> | item)`` and the second term is <= 0, so an item
    whose first-step log-probability is already below the target's exact score cannot rank at or above
    the target. Only the items at or above that bound (and not in ``exclude``, a (B, I) bool mask of items
    left out of the ranking, e.g. the history) get their second decoder step. Their entries and the
    target's hold the exact score; every other entry holds its first-step value, an upper bound strictly
    below the target's exact score. So the target's rank (pessimistic ties, ``exclude`` honoured) equals
    the rank in the full exact matrix, and so does every list of top items down to the target (bit for bit
    on the CPU in float32; on a GPU or in bf16 the batch shape can move the last bits of a second step, so
    exact ties may break differently). Cost: one second step per item ranked above the target instead of one
    per item."""
    if not tokenizer.item_tokens:
        raise ValueError("exact_scores_for_targets needs single-token items; use score_items for digit-text items")
    device = next(model.parameters()).device
    batch = batch.to(device)
    hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
    bsz = hidden.shape[0]
    start, stop = tokenizer.item_token_range()
    step = first_step(model, hidden, batch.attention_mask)  # its cache serves both second-step calls
    first = F.log_softmax(step.logits[:, -1].float(), dim=-1)[:, start:stop]  # (B, I)
    tgt = torch.as_tensor(targets, dtype=torch.long, device=device)
    rows = torch.arange(bsz, device=device)
    target_score = first[rows, tgt] + eos_after_pairs(model, hidden, batch.attention_mask, rows, tgt + start,
                                                      pair_chunk, first=step)
    need = first >= target_score[:, None]  # the others score at most first < target_score
    if exclude is not None:
        need &= ~torch.as_tensor(exclude, dtype=torch.bool, device=device)
    need[rows, tgt] = False
    pair_rows, pair_items = need.nonzero(as_tuple=True)
    scores = first.clone()
    scores[pair_rows, pair_items] += eos_after_pairs(model, hidden, batch.attention_mask, pair_rows,
                                                     pair_items + start, pair_chunk, first=step)
    scores[rows, tgt] = target_score
    return scores.cpu()


def _decoder_logprobs(model: RecLM, hidden: torch.Tensor, mask: torch.Tensor, dec_in: torch.Tensor) -> torch.Tensor:
    """(N, L, V) log-probabilities of the next token at each decoder position."""
    out = model.t5(encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=dec_in, use_cache=False)
    return F.log_softmax(out.logits.float(), dim=-1)


def _eos_after_items(model: RecLM, hidden, mask, item_tokens: torch.Tensor, pair_chunk: int,
                     first=None) -> torch.Tensor:
    """(B, C) log p(</s> | start, item) for single-token items (``item_tokens``: (B, C) token ids)."""
    bsz, n_items = item_tokens.shape
    rows = torch.arange(bsz, device=hidden.device).repeat_interleave(n_items)
    return eos_after_pairs(model, hidden, mask, rows, item_tokens.reshape(-1), pair_chunk,
                           first=first).view(bsz, n_items)


def eos_after_pairs(model: RecLM, hidden, mask, rows: torch.Tensor, item_tokens: torch.Tensor,
                    pair_chunk: int = 4096, first=None) -> torch.Tensor:
    """(P,) log p(</s> | start, item) for (prompt row, item token) pairs.

    The first decoder step runs once per prompt with transformers' cache; the second step of every pair is
    T5's decoder applied by hand to the one new position (:func:`_second_step_logits`), so the pairs of a
    prompt share its cached cross-attention keys and values instead of each getting a copy. The
    full-vocabulary normaliser of the second step remains the dominant cost. Tested equal to running
    transformers' decoder on ``[start, item]``. ``first``: that first step (:func:`~pap_rec_core.rlm.decoding.first_step`) when the
    caller has it already.
    """
    out = torch.empty(len(rows), device=hidden.device)
    if not len(rows):
        return out
    first = first if first is not None else first_step(model, hidden, mask)
    rows = torch.as_tensor(rows, device=hidden.device)
    order = torch.argsort(rows, stable=True)  # row-major: a prompt's pairs are contiguous
    rows_sorted, tokens_sorted = rows[order], torch.as_tensor(item_tokens, device=hidden.device)[order]
    sorted_out = torch.empty(len(rows), device=hidden.device)
    for p0 in range(0, len(rows), pair_chunk):
        sel = slice(p0, min(len(rows), p0 + pair_chunk))
        logits = _second_step_logits(model, first.cache, mask, rows_sorted[sel], tokens_sorted[sel]).float()
        sorted_out[sel] = logits[:, EOS_ID] - torch.logsumexp(logits, dim=-1)
    out[order] = sorted_out
    return out


def _second_step_logits(model: RecLM, cache, mask: torch.Tensor, rows: torch.Tensor,
                        tokens: torch.Tensor) -> torch.Tensor:
    """(P, V) next-token logits at decoder position 1 for pairs (``rows`` sorted) whose position 0 is
    the start token cached in ``cache`` (transformers' ``EncoderDecoderCache`` of a first step over the
    prompts) and whose position 1 holds ``tokens``. T5's layers in eval mode, as transformers computes
    them: RMS layer norms, unscaled attention, the first block's relative position bias for query
    position 1 over keys 0 and 1, the encoder padding mask in cross-attention."""
    t5 = model.t5
    dec = t5.decoder
    self_cache, cross_cache = cache.self_attention_cache.layers, cache.cross_attention_cache.layers
    first_attn = dec.block[0].layer[0].SelfAttention
    bias = first_attn.compute_bias(1, 2, device=tokens.device, past_seen_tokens=1)  # (1, H, 1, 2)
    n_heads, d_kv = first_attn.n_heads, first_attn.key_value_proj_dim
    n = len(tokens)
    x = dec.embed_tokens(tokens)[:, None, :]  # (P, 1, D)
    enc_pad = (mask == 0)  # (B, T)
    starts = torch.searchsorted(rows, torch.unique_consecutive(rows))
    bounds = torch.cat([starts, torch.tensor([n], device=rows.device)]).tolist()
    segment_rows = rows[starts].tolist()

    def heads(t: torch.Tensor) -> torch.Tensor:  # (P, 1, H*d) -> (P, H, 1, d)
        return t.view(n, 1, n_heads, d_kv).transpose(1, 2)

    for i, block in enumerate(dec.block):
        sa = block.layer[0]
        att = sa.SelfAttention
        h = sa.layer_norm(x)
        k = torch.cat([self_cache[i].keys[rows], heads(att.k(h))], dim=2)  # (P, H, 2, d)
        v = torch.cat([self_cache[i].values[rows], heads(att.v(h))], dim=2)
        w = torch.softmax(heads(att.q(h)) @ k.transpose(2, 3) + bias, dim=-1)
        x = x + att.o((w @ v).transpose(1, 2).reshape(n, 1, n_heads * d_kv))
        ca = block.layer[1]
        att = ca.EncDecAttention
        q = att.q(ca.layer_norm(x)).view(n, n_heads, d_kv)  # (P, H, d)
        keys, values = cross_cache[i].keys, cross_cache[i].values  # (B, H, T, d): shared by a prompt's pairs
        o = torch.empty_like(q)
        for b, lo, hi in zip(segment_rows, bounds[:-1], bounds[1:]):
            scores = torch.einsum("phd,htd->pht", q[lo:hi], keys[b])
            scores = scores.masked_fill(enc_pad[b][None, None, :], torch.finfo(scores.dtype).min)
            o[lo:hi] = torch.einsum("pht,htd->phd", torch.softmax(scores, dim=-1), values[b])
        x = x + att.o(o.reshape(n, 1, n_heads * d_kv))
        x = block.layer[-1](x)  # feed-forward with its layer norm and residual
    x = dec.final_layer_norm(x)[:, 0]
    if getattr(t5.config, "scale_decoder_outputs", t5.config.tie_word_embeddings):
        x = x * (t5.config.d_model ** -0.5)
    return t5.lm_head(x)


def _score_sequences(model: RecLM, hidden, mask, sequences: list[tuple[int, ...]], item_chunk: int) -> torch.Tensor:
    """(B, I) teacher-forced log-likelihood of variable-length item sequences (digit-text items)."""
    device = hidden.device
    length = max(len(s) for s in sequences)
    targets = torch.full((len(sequences), length), -1, dtype=torch.long, device=device)
    for i, s in enumerate(sequences):
        targets[i, : len(s)] = torch.tensor(s, device=device)
    dec_in = torch.cat([torch.full((len(sequences), 1), PAD_ID, device=device), targets[:, :-1].clamp(min=0)], dim=1)
    out = torch.empty((hidden.shape[0], len(sequences)), device=device)
    for b in range(hidden.shape[0]):
        for i0 in range(0, len(sequences), item_chunk):
            i1 = min(len(sequences), i0 + item_chunk)
            n = i1 - i0
            lp = _decoder_logprobs(model, hidden[b : b + 1].expand(n, -1, -1), mask[b : b + 1].expand(n, -1), dec_in[i0:i1])
            tgt = targets[i0:i1]
            tok_lp = lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * (tgt >= 0)
            out[b, i0:i1] = tok_lp.sum(dim=1)
    return out


def first_step_beams(model: RecLM, tokenizer: RecTokenizer, batch: EncodedBatch, num_beams: int):
    """The first step of item beam search (single-token items): ``(batch on the model's device, encoder
    output, (B, I) first-step item log-probabilities (full-vocabulary normalised), (B, beams) their
    top values, (B, beams) the item indices, best first, the step itself (for the second steps))``."""
    device = next(model.parameters()).device
    batch = batch.to(device)
    hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
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
    with shared encoder keys and per-beam decoder caches (:func:`~pap_rec_core.rlm.decoding.beam_search_sequences`).
    Tested to give ``beam_rank``'s lists (``keep_places``: see there)."""
    if not tokenizer.item_tokens:
        return replayed_beam_lists(model, tokenizer, batch, num_beams, top_n, constrained, keep_places=keep_places)[0]
    if not constrained:
        return plain_beam_lists(model, tokenizer, batch, num_beams, top_n, keep_places)[0]
    batch, hidden, first, lp1, items, step = first_step_beams(model, tokenizer, batch, num_beams)
    start, _ = tokenizer.item_token_range()
    total = lp1 + _eos_after_items(model, hidden, batch.attention_mask, items + start, 2048, first=step)
    beams = items.shape[1]
    order = torch.sort(total, dim=-1, descending=True, stable=True).indices[:, : min(top_n, beams)]
    return items.gather(1, order).cpu().tolist()


@torch.no_grad()
def replayed_beam_lists(model: RecLM, tokenizer: RecTokenizer, batch: EncodedBatch, num_beams: int = 20,
                        top_n: int = 10, constrained: bool = True, targets=None,
                        keep_places: bool = False) -> tuple[list[list[int]], list[bool]]:
    """``(lists, missed)``: :func:`beam_rank`'s lists by the replay of transformers' beam search (any items;
    :func:`~pap_rec_core.rlm.decoding.beam_search_sequences`). With ``targets`` (B,) item indices, a prompt
    stops as soon as its target cannot be listed: ``missed[b]`` is then True and ``lists[b]`` is not the
    full list (only that the target is not in it is known)."""
    device = next(model.parameters()).device
    batch = batch.to(device)
    hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
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
    hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
    bsz = hidden.shape[0]
    first = first_step(model, hidden, batch.attention_mask)
    lp1 = F.log_softmax(first.logits[:, -1].float(), dim=-1)  # (B, V)
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
    rows = kept.repeat_interleave(num_beams)
    logits2 = _second_step_logits(model, first.cache, batch.attention_mask, rows, run_tok.reshape(-1)).float()
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
    hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
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
