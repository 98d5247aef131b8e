"""Ranking items with an RLM by their scores (beam-search lists: :mod:`pap_rec_core.rlm.beams`); both
feed the one evaluator.

:func:`score_items` — exact full ranking of every item by its sequence log-likelihood
   ``log p(item tokens, </s> | prompt)``; the encoder runs once per prompt, the decoder is batched over
   (prompt, item) pairs. This is also the score that constrained beam search maximises (transformers
   masks disallowed tokens without renormalising), so both protocols order items alike.
   ``include_eos=False`` (single-token items only) keeps the first decoder step alone, renormalised over
   item tokens: one step ranks all items — the fast approximation used for model selection and the
   search; ``benchmarks/`` reports how closely it tracks the exact ranking on our RLMs.
   :func:`exact_scores_for_targets` gives the same target ranks for single-token items with the second
   step only for items above the target (what ``evaluate --method exact`` and the fast engine use).
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

import torch
import torch.nn.functional as F

from pap_rec_core.rlm.batching import EncodedBatch
from pap_rec_core.rlm.decoding import TrieTable, decoder_output_logits, first_step, trie_item_scores
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.tokenizer import EOS_ID, PAD_ID, RecTokenizer


def item_sequences(tokenizer: RecTokenizer) -> list[tuple[int, ...]]:
    """Decoder target (tokens + ``</s>``) of every item, in item-index order."""
    return [tokenizer.item_target_ids(i) for i in range(len(tokenizer.item_texts))]


_TRIES: "WeakKeyDictionary[RecTokenizer, dict]" = WeakKeyDictionary()


def tokenizer_tries(tokenizer: RecTokenizer) -> dict:
    """The tries built for ``tokenizer`` (kept while it lives): one per model vocabulary size, and
    ``"trie"`` (:func:`pap_rec_core.rlm.beams.item_trie`)."""
    return _TRIES.setdefault(tokenizer, {})


def trie_table(tokenizer: RecTokenizer, vocab: int) -> TrieTable:
    """The tokenizer's item-id trie as arrays (built once per tokenizer and model vocabulary size)."""
    built = tokenizer_tries(tokenizer)
    if vocab not in built:
        built[vocab] = TrieTable.build(item_sequences(tokenizer), vocab)
    return built[vocab]


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
    hidden = model.encode_batch(batch)  # (B, T, D)
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
        eos = eos_after_items(model, hidden, batch.attention_mask, cands + start, item_chunk, first=step)
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
    hidden = model.encode_batch(batch)
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


def eos_after_items(model: RecLM, hidden, mask, item_tokens: torch.Tensor, pair_chunk: int,
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
    T5's decoder applied by hand to the one new position (:func:`second_step_logits`), so the pairs of a
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
        logits = second_step_logits(model, first.cache, mask, rows_sorted[sel], tokens_sorted[sel]).float()
        sorted_out[sel] = logits[:, EOS_ID] - torch.logsumexp(logits, dim=-1)
    out[order] = sorted_out
    return out


def second_step_logits(model: RecLM, cache, mask: torch.Tensor, rows: torch.Tensor,
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
    return decoder_output_logits(model, x[:, 0])


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
