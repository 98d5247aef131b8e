"""transformers' beam search replayed without ``generate``'s per-beam copies (P5's digit-text items).

:func:`beam_search_sequences` follows transformers' vectorised beam search (5.x: top ``2 * beams``,
finished-beam merge, length penalty, early stopping), optionally held to the item-id trie as
``prefix_allowed_tokens_fn`` holds it, on the same tensors in the same order, so it returns ``generate``'s
sequences (tested); its decoder positions are :func:`~pap_rec_core.rlm.decoding.decoder_step`'s, and a
prompt stops decoding as soon as its finished hypotheses can no longer change. Two shortcuts keep the same
outputs at a fraction of the cost:

- the first step's ``beams`` copies of the start row: its log-softmax, trie mask and top ``2 * beams`` run
  on one row per prompt (every other copy starts at -1e9, so only the first can reach the top; a prompt
  where a tie or a short row makes that unsure runs its copies as transformers runs them);
- with ``targets`` (the search's judge), most prompts stop after the first step, so that step is
  :func:`~pap_rec_core.rlm.cross_attention.start_step_logits` (no encoder keys or values projected, equal up
  to float rounding) and the keys and values of the encoder states are projected for the prompts that go
  on only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pap_rec_core.rlm.cross_attention import start_step_logits
from pap_rec_core.rlm.decoding import TrieTable, decoder_step, first_step, start_caches
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.tokenizer import EOS_ID, PAD_ID


def cross_keys(model: RecLM, hidden: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per decoder layer, the cross-attention (keys, values) (B, H, T, d) of encoder states ``hidden``, as
    transformers' first step caches them."""
    bsz, length, _ = hidden.shape
    out = []
    for block in model.t5.decoder.block:
        att = block.layer[1].EncDecAttention
        out.append(tuple(proj(hidden).view(bsz, length, att.n_heads, att.key_value_proj_dim).transpose(1, 2)
                         for proj in (att.k, att.v)))
    return out


def _first_top(start: torch.Tensor, running_scores: torch.Tensor, trie: TrieTable | None,
               keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first step's top ``keep`` (values, flat indices into ``beams * V``) of the beams' continuations,
    from the start row ``start`` (n, V) of each prompt instead of its ``beams`` copies. Every copy but the
    first starts at -1e9 (``running_scores`` (n, beams)), below any finite log-probability, so where the
    first copy has ``keep`` finite values and no tie among its first ``keep + 1`` the top is that copy's
    alone (its flat indices are its token ids); the other prompts (a tie: the order between equal values
    is the kernel's; a short row) run their copies as transformers runs them."""
    n, vocab = start.shape
    log_probs = F.log_softmax(start, dim=-1)
    if trie is not None:  # every beam starts at the root: one mask row
        log_probs = log_probs + trie.allowed_mask(torch.zeros(1, dtype=torch.long, device=start.device), vocab)
    if vocab > keep:
        vals, idx = torch.topk(log_probs, keep + 1, dim=-1)
        sure = torch.isfinite(vals[:, :keep]).all(-1) & (vals[:, 1:] < vals[:, :-1]).all(-1)
        top_lp, top_idx = vals[:, :keep].contiguous(), idx[:, :keep].contiguous()
    else:
        sure = torch.zeros(n, dtype=torch.bool, device=start.device)
        top_lp = torch.empty((n, keep), device=start.device)
        top_idx = torch.empty((n, keep), dtype=torch.long, device=start.device)
    unsure = torch.nonzero(~sure).flatten()
    if len(unsure):
        copies = (log_probs[unsure][:, None, :] + running_scores[unsure][:, :, None]).reshape(len(unsure), -1)
        top_lp[unsure], top_idx[unsure] = torch.topk(copies, keep)
    return top_lp, top_idx


def _starts_with(seqs: torch.Tensor, tgt: torch.Tensor, n_tok: torch.Tensor) -> torch.Tensor:
    """(n, k) whether each of ``seqs`` (n, k, L) holds, after its start token, the first ``n_tok`` (n,)
    tokens of its row's ``tgt`` (n, L; ``tgt[:, 0]`` unused)."""
    pos = torch.arange(seqs.shape[-1], device=seqs.device)
    compared = (pos[None, :] >= 1) & (pos[None, :] <= n_tok[:, None])  # (n, L)
    return ((seqs == tgt[:, None, :]) | ~compared[:, None, :]).all(-1)


@torch.no_grad()
def beam_search_sequences(model: RecLM, hidden: torch.Tensor, mask: torch.Tensor, num_beams: int,
                          num_return: int, max_new_tokens: int, trie: TrieTable | None = None,
                          length_penalty: float = 1.0, targets: torch.Tensor | None = None):
    """(B, num_return, L) what ``generate`` returns for ``num_beams`` beams, ``early_stopping=True``, start
    and pad token 0, ``</s>`` 1, no sampling, ``prefix_allowed_tokens_fn`` = ``trie`` (None: the whole
    vocabulary), as transformers' vectorised beam search computes it (same tensors, same order of
    operations; an unused slot holds the start token then transformers' fill value, ``</s>``). Each step runs
    one :func:`decoder_step` for the prompts whose finished hypotheses can still change; a prompt leaves as
    soon as all its beams are finished or no running beam can beat them (transformers computes it on,
    without effect). ``num_beams`` >= 2 (one beam is greedy search in transformers).

    ``targets`` (B, L) token sequences ending in ``</s>`` (right-padded with -1): also return a (B,) bool
    mask of the prompts whose target cannot be among the ``num_return`` returned hypotheses, each of which
    left as soon as that was certain — no running beam starts with the target (a beam that ended with it
    and runs on as filler still counts: the reading stops at the first ``</s>``) and no hypothesis among the
    first ``num_return`` finished is it (finished hypotheses only move down). Those prompts' returned
    sequences are then not ``generate``'s; the others' are. With ``targets`` the first step's logits come from
    :func:`~pap_rec_core.rlm.cross_attention.start_step_logits` (equal to transformers' up to float rounding,
    not bit for bit) and the encoder keys and values are projected at the second step, for the prompts still
    decoding (:func:`cross_keys`)."""
    if num_beams < 2:
        raise ValueError("the beam search replay needs num_beams >= 2 (one beam is greedy search: use generate)")
    device, bsz, k = hidden.device, hidden.shape[0], num_beams
    max_length, keep = 1 + max_new_tokens, 2 * num_beams
    top_mask = torch.cat([torch.ones(k, dtype=torch.bool), torch.zeros(k, dtype=torch.bool)]).to(device)
    running = torch.full((bsz, k, max_length), EOS_ID, dtype=torch.long, device=device)
    running[:, :, 0] = PAD_ID
    sequences = running.clone()
    running_scores = torch.zeros((bsz, k), device=device)
    running_scores[:, 1:] = -1.0e9
    beam_scores = torch.full((bsz, k), -1.0e9, device=device)
    finished = torch.zeros((bsz, k), dtype=torch.bool, device=device)
    unsatisfied = torch.ones((bsz, 1), dtype=torch.bool, device=device)
    states = torch.zeros((bsz, k), dtype=torch.long, device=device)
    live = torch.arange(bsz, device=device)  # original rows still decoding
    out_sequences = sequences.clone()
    missed = torch.zeros(bsz, dtype=torch.bool, device=device)
    if targets is None:
        step = first_step(model, hidden, mask)
        start = step.logits[:, -1].float()  # (B, V)
        kv, cross = start_caches(step.cache, k)
    else:
        tgt = torch.full((bsz, max_length), -2, dtype=torch.long, device=device)  # -2 matches no token
        width = min(targets.shape[1], max_length - 1)
        tgt[:, 1 : 1 + width] = torch.as_tensor(targets, device=device)[:, :width]
        tgt_len = (tgt[:, 1:] >= 0).sum(1)  # tokens incl. </s>
        # most prompts leave after the first step: its cross-attention on the query side, keys projected later
        start, start_kv = start_step_logits(model, hidden, mask, with_keys=True)
        start = start.float()
        kv = [(kk.view(-1, kk.shape[1], 1, kk.shape[2])[:, None].expand(bsz, k, -1, -1, -1),
               vv.view(-1, vv.shape[1], 1, vv.shape[2])[:, None].expand(bsz, k, -1, -1, -1)) for kk, vv in start_kv]
        cross = None  # (cross_keys of the prompts still decoding, at their second step)
    enc_pad = mask == 0
    vocab = start.shape[-1]
    cur_len = 1
    left = False  # whether some prompt left early
    while True:
        n = len(live)
        if cur_len == 1:  # transformers runs k copies of the start row: one here (see _first_top)
            topk_lp, topk_idx = _first_top(start, running_scores, trie, keep)
        else:
            log_probs = F.log_softmax(logits, dim=-1)
            if trie is not None:
                log_probs = log_probs + trie.allowed_mask(states.reshape(-1), vocab).view(n, k, vocab)
            log_probs = (log_probs + running_scores[:, :, None]).reshape(n, -1)
            topk_lp, topk_idx = torch.topk(log_probs, keep)
        src, ids = topk_idx // vocab, topk_idx % vocab
        topk_seq = torch.take_along_dim(running, src[:, :, None], dim=1)
        topk_seq[:, :, cur_len] = ids
        hits = (ids == EOS_ID) | (cur_len + 1 >= max_length)
        # running beams for the next step
        run_lp = topk_lp + hits.to(torch.float32) * -1.0e9
        nxt = torch.topk(run_lp, k)[1]
        running = torch.take_along_dim(topk_seq, nxt[:, :, None], dim=1)
        running_scores = torch.take_along_dim(run_lp, nxt, dim=1)
        beam_src = torch.take_along_dim(src, nxt, dim=1)
        # finished hypotheses
        just = hits & top_mask[None, :]
        fin_lp = topk_lp / ((cur_len + 1 - 1) ** length_penalty)
        fin_lp = fin_lp + (torch.all(finished, dim=-1, keepdim=True)).to(torch.float32) * -1.0e9
        fin_lp = fin_lp + (~unsatisfied).to(torch.float32) * -1.0e9
        fin_lp = fin_lp + (~just) * -1.0e9
        merged_seq = torch.cat([sequences, topk_seq], dim=1)
        merged_scores = torch.cat([beam_scores, fin_lp], dim=1)
        merged_fin = torch.cat([finished, just], dim=1)
        best = torch.topk(merged_scores, k)[1]
        sequences = torch.take_along_dim(merged_seq, best[:, :, None], dim=1)
        beam_scores = torch.take_along_dim(merged_scores, best, dim=1)
        finished = torch.take_along_dim(merged_fin, best, dim=1)
        if trie is not None:
            states = trie.step(torch.take_along_dim(states, beam_src, dim=1), running[:, :, cur_len])
        cur_len += 1
        best_running = running_scores[:, :1] / ((cur_len - 1) ** length_penalty)
        worst_finished = torch.where(finished, torch.min(beam_scores, dim=1, keepdim=True)[0], -1.0e9)
        unsatisfied = unsatisfied & torch.any(best_running > worst_finished, dim=-1, keepdim=True)
        out_sequences[live] = sequences
        # a prompt whose finished hypotheses are final (all its beams finished, or none can be beaten) leaves;
        # while one stays, transformers goes on (it may improve and is not full) unless every continuation of
        # every prompt stopped: known for the prompts here, taken as not so for those that left (before the
        # length limit a prompt's 2 * beams continuations are all </s> only when it has that many valid ones)
        go = unsatisfied[:, 0] & ~torch.all(finished, dim=-1)
        if targets is not None:  # prompts whose target can no longer be returned leave
            t_live, n_tok = tgt[live], tgt_len[live]
            in_running = _starts_with(running, t_live, torch.clamp(n_tok, max=cur_len - 1)).any(-1)
            in_top = _starts_with(sequences[:, :num_return], t_live, n_tok).any(-1)
            out = ~in_running & ~in_top
            missed[live[out]] = True
            go &= ~out
        stay = torch.nonzero(go).flatten()
        if not len(stay) or cur_len >= max_length or (bool(hits.all()) and not left):
            break
        if len(stay) < n:  # the others' finished hypotheses are final
            left = True
            live, running, sequences = live[stay], running[stay], sequences[stay]
            running_scores, beam_scores, finished = running_scores[stay], beam_scores[stay], finished[stay]
            unsatisfied, states, beam_src = unsatisfied[stay], states[stay], beam_src[stay]
            kv = [(kk[stay], vv[stay]) for kk, vv in kv]
            cross = None if cross is None else [(kk[stay], vv[stay]) for kk, vv in cross]
            enc_pad = enc_pad[stay]
        kv = [(torch.take_along_dim(kk, beam_src[:, :, None, None, None], dim=1),
               torch.take_along_dim(vv, beam_src[:, :, None, None, None], dim=1)) for kk, vv in kv]
        if cross is None:
            cross = cross_keys(model, hidden[live])
        logits, kv = decoder_step(model, cross, enc_pad, kv, running[:, :, cur_len - 1])
        logits = logits.float()
    out = out_sequences[:, :num_return]
    return out if targets is None else (out, missed)
