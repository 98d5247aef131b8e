"""Decoder steps whose cross-attention never projects the encoder states (the fast engine's judge and gradients).

T5's cross-attention has no biases and unscaled scores, so for a query ``q`` of head h the scores over the
encoder states ``hidden`` are ``hidden @ (W_k[h]^T q)`` and the output ``W_v[h] (softmax @ hidden)``: O(T D H)
per query row instead of the O(T D^2) of projecting every state to a key and a value. With one to a few
decoder positions per prompt (items of one token and ``</s>``; a beam's second step) that is most of the
decoder's cost saved. Each function equals transformers' own computation up to float rounding (tested).
"""

from __future__ import annotations

import torch

from pap_rec_core.rlm.decoding import decoder_output_logits
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.tokenizer import PAD_ID


@torch.no_grad()
def start_step_logits(model: RecLM, hidden: torch.Tensor, mask: torch.Tensor, *, with_keys: bool = False):
    """(B, V) the first step's next-token logits (``.logits[:, -1]`` of
    :func:`~pap_rec_core.rlm.decoding.first_step`, up to float rounding)
    without its cache, at a fraction of its cost. The start token is the same for every prompt, so each
    layer's self-attention (one key: weight 1) runs once; the cross-attention of the one query never projects
    the encoder states: its scores are ``hidden @ (W_k^T q)`` per head and its output
    ``W_v (softmax @ hidden)`` (T5: no biases, unscaled scores), O(T D H) per prompt instead of the keys' and
    values' O(T D^2). ``with_keys``: also each layer's self-attention (keys, values) of the start
    position, each (B or 1, H, d), for :func:`beam_second_step_logits`."""
    dec = model.t5.decoder
    bsz, _, d_model = hidden.shape
    x = dec.embed_tokens(torch.tensor([[PAD_ID]], device=hidden.device))  # (1, 1, D): every prompt's start
    pad = (mask == 0)[:, None, :]  # (B, 1, T)
    start_kv = []
    for block in dec.block:
        sa = block.layer[0]
        att = sa.SelfAttention
        h = sa.layer_norm(x)
        v = att.v(h)
        if with_keys:
            start_kv.append((att.k(h).view(h.shape[0], att.n_heads, -1), v.view(h.shape[0], att.n_heads, -1)))
        x = x + att.o(v)
        ca = block.layer[1]
        att = ca.EncDecAttention
        n_heads, d_kv = att.n_heads, att.key_value_proj_dim
        q = att.q(ca.layer_norm(x)).view(-1, n_heads, d_kv)  # (1 or B, H, d)
        qk = torch.einsum("bhd,hdm->bmh", q, att.k.weight.view(n_heads, d_kv, d_model)).expand(bsz, -1, -1)
        scores = torch.bmm(hidden, qk).transpose(1, 2).masked_fill(pad, float("-inf"))  # (B, H, T)
        context = torch.bmm(torch.softmax(scores, dim=-1), hidden)  # (B, H, D)
        out = torch.einsum("bhm,hdm->bhd", context, att.v.weight.view(n_heads, d_kv, d_model))
        x = x + att.o(out.reshape(bsz, 1, n_heads * d_kv))
        x = block.layer[-1](x)  # feed-forward with its layer norm and residual
    logits = decoder_output_logits(model, x[:, 0])
    return (logits, start_kv) if with_keys else logits


@torch.no_grad()
def beam_second_step_logits(model: RecLM, hidden: torch.Tensor, mask: torch.Tensor, start_kv: list,
                            tokens: torch.Tensor) -> torch.Tensor:
    """(B, K, V) next-token logits at decoder position 1 of K beams per prompt holding ``tokens`` (B, K)
    after the start token, from :func:`start_step_logits`'s ``start_kv`` (the rows of these B prompts), with
    its cross-attention (no keys or values of ``hidden`` projected). The logits of
    :func:`~pap_rec_core.rlm.decoding.first_step`
    followed by :func:`~pap_rec_core.rlm.ranking.second_step_logits` up to float rounding (tested)."""
    dec = model.t5.decoder
    bsz, n_beams = tokens.shape
    d_model = hidden.shape[-1]
    first_attn = dec.block[0].layer[0].SelfAttention
    bias = first_attn.compute_bias(1, 2, device=hidden.device, past_seen_tokens=1)[0, :, 0]  # (H, 2)
    pad = (mask == 0)[:, None, :]  # (B, 1, T)
    x = dec.embed_tokens(tokens)  # (B, K, D)
    for block, (k0, v0) in zip(dec.block, start_kv):
        sa = block.layer[0]
        att = sa.SelfAttention
        n_heads, d_kv = att.n_heads, att.key_value_proj_dim
        h = sa.layer_norm(x)
        q, k, v = (proj(h).view(bsz, n_beams, n_heads, d_kv) for proj in (att.q, att.k, att.v))
        scores = torch.stack([(q * k0[:, None]).sum(-1), (q * k).sum(-1)], dim=-1) + bias  # (B, K, H, 2)
        w = torch.softmax(scores, dim=-1)
        x = x + att.o((w[..., :1] * v0[:, None] + w[..., 1:] * v).reshape(bsz, n_beams, n_heads * d_kv))
        ca = block.layer[1]
        att = ca.EncDecAttention
        q = att.q(ca.layer_norm(x)).view(bsz, n_beams, n_heads, d_kv)
        qk = torch.einsum("bkhd,hdc->bkhc", q, att.k.weight.view(n_heads, d_kv, d_model)).reshape(bsz, -1, d_model)
        scores = torch.bmm(qk, hidden.transpose(1, 2)).masked_fill(pad, float("-inf"))  # (B, K * H, T)
        context = torch.bmm(torch.softmax(scores, dim=-1), hidden).view(bsz, n_beams, n_heads, d_model)
        out = torch.einsum("bkhc,hdc->bkhd", context, att.v.weight.view(n_heads, d_kv, d_model))
        x = x + att.o(out.reshape(bsz, n_beams, n_heads * d_kv))
        x = block.layer[-1](x)
    return decoder_output_logits(model, x)


def teacher_forced_logits(model: RecLM, hidden: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, M, V) the decoder's logits teacher-forced on ``labels`` (B, M) (-100 on padding), as
    ``model.t5(encoder_outputs=..., labels=labels).logits`` up to float rounding, differentiable, with the
    cross-attention of :func:`start_step_logits` (scores ``hidden @ (W_k^T q)``, output
    ``W_v (softmax @ hidden)``): no keys or values of the encoder states are projected, forward or
    backward. T5's decoder in eval mode: causal self-attention with the first block's relative bias."""
    t5 = model.t5
    dec = t5.decoder
    bsz, _, d_model = hidden.shape
    inputs = t5._shift_right(labels)
    m = inputs.shape[1]
    first_attn = dec.block[0].layer[0].SelfAttention
    future = torch.ones((m, m), dtype=torch.bool, device=hidden.device).triu(1)
    bias = first_attn.compute_bias(m, m, device=hidden.device).masked_fill(future, float("-inf"))  # (1, H, M, M)
    pad = (mask == 0)[:, None, None, :]  # (B, 1, 1, T)
    x = dec.embed_tokens(inputs)  # (B, M, D)
    for block in dec.block:
        sa = block.layer[0]
        att = sa.SelfAttention
        n_heads, d_kv = att.n_heads, att.key_value_proj_dim
        h = sa.layer_norm(x)
        q, k, v = (proj(h).view(bsz, m, n_heads, d_kv).transpose(1, 2) for proj in (att.q, att.k, att.v))
        w = torch.softmax(q @ k.transpose(2, 3) + bias, dim=-1)
        x = x + att.o((w @ v).transpose(1, 2).reshape(bsz, m, n_heads * d_kv))
        ca = block.layer[1]
        att = ca.EncDecAttention
        q = att.q(ca.layer_norm(x)).view(bsz, m, n_heads, d_kv)
        qk = torch.einsum("bmhd,hdc->bhmc", q, att.k.weight.view(n_heads, d_kv, d_model))
        scores = torch.einsum("bhmc,btc->bhmt", qk, hidden).masked_fill(pad, float("-inf"))
        context = torch.einsum("bhmt,btc->bhmc", torch.softmax(scores, dim=-1), hidden)
        out = torch.einsum("bhmc,hdc->bmhd", context, att.v.weight.view(n_heads, d_kv, d_model))
        x = x + att.o(out.reshape(bsz, m, n_heads * d_kv))
        x = block.layer[-1](x)
    return decoder_output_logits(model, x)
