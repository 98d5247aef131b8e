"""The RLM's attention: transformers' SDPA, with a faster encoder self-attention for the fast engine.

With padding, transformers' SDPA path for T5 writes the relative position bias and the padding mask
into one ``(B, H, L, L)`` float mask per layer (``create_position_bias_mask``) before calling
``scaled_dot_product_attention``; for long prompts that mask, written and read once per layer, costs
more than the attention itself. Inside :func:`padded_keys_attention` the encoder's self-attention
instead moves the padding into the keys: one more head dimension, 1 for every query and 0 (real key) or
-1e30 (padding key) for the keys, so a padding key's score is -1e30 + bias and its softmax weight is
exactly 0, and the mask passed to SDPA is the ``(1, H, L, L)`` bias alone, shared by the batch. The
extra dimension adds exactly 0 to every real score, so the outputs are the default path's up to float
rounding (tested to 1e-6 on a toy model). On CUDA the extra block is 8 wide (zeros after the first
column) so that head sizes stay multiples of 8 for the fused kernels. On CPU, where a head size of
d + 1 costs about a third more than d (d = 16: 14.5 vs 9.6 ms for 64 prompts of 125 tokens), right-padded
rows instead go to the kernel by length, each length on its own keys with the bias's top-left block and
no padding at all (:func:`_by_length`). Everything else — the decoder, the
cross-attention, any call outside the context (the reference engine, training, ``generate``) — is
transformers' SDPA unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch

ATTENTION = "pap_rec_sdpa"  # the implementation name every RecLM is built with (RLMConfig.t5_config)
_PAD_SCORE = -1e30  # a padding key's extra-dimension score (fp16: half its lowest value): softmax weight 0
_padded_keys: contextvars.ContextVar[bool] = contextvars.ContextVar("pap_rec_padded_keys", default=False)


@contextlib.contextmanager
def padded_keys_attention() -> Iterator[None]:
    """Within the block (this thread / task only), encoder self-attention carries padding in the keys."""
    token = _padded_keys.set(True)
    try:
        yield
    finally:
        _padded_keys.reset(token)


def _attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
               is_causal=None, position_bias=None, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    self_attention = query.shape[-2] == key.shape[-2] and not getattr(module, "is_decoder", False)
    if (not _padded_keys.get() or not self_attention or attention_mask is None or attention_mask.dtype != torch.bool
            or attention_mask.shape[1] != 1 or position_bias is None or kwargs.get("softcap") is not None
            or not torch.equal(attention_mask[:, 0, 0, :], attention_mask[:, 0, -1, :])):  # not a padding mask
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, position_bias=position_bias, **kwargs)
    # query/key/value (B, H, L, D); attention_mask (B, 1, L or 1, L) True on real keys; position_bias (1, H, L, L).
    # The encoder's mask is a padding mask (sdpa_mask, bidirectional): every query row is the same (checked
    # above on the first and last rows), so any row says which keys are real.
    b, h, n, d = key.shape
    keys_ok = attention_mask[:, 0, 0, :]  # (B, L)
    scale = d ** -0.5 if scaling is None else scaling  # (T5: scaling 1)
    lengths = keys_ok.sum(-1)
    if query.device.type == "cpu" and dropout == 0.0 and bool(
            (keys_ok == (torch.arange(n, device=key.device) < lengths[:, None])).all()):  # right padding
        return _by_length(query, key, value, lengths, position_bias.to(query.dtype), scale), None
    width = 1 if query.device.type == "cpu" else 8 - d % 8  # CUDA: head sizes stay multiples of 8
    low = _PAD_SCORE if key.dtype != torch.float16 else torch.finfo(torch.float16).min / 2
    pad = torch.zeros((b, n), dtype=key.dtype, device=key.device).masked_fill_(~keys_ok, low)
    q_extra = query.new_zeros((*query.shape[:-1], width))
    q_extra[..., 0] = 1
    k_extra = key.new_zeros((b, h, n, width))
    k_extra[..., 0] = pad[:, None, :]
    q = torch.cat([query, q_extra], -1)
    k = torch.cat([key, k_extra], -1)
    v = torch.cat([value, value.new_zeros((*value.shape[:-1], width))], -1)
    out = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=position_bias.to(query.dtype), dropout_p=dropout, scale=scale)
    return out[..., :d].transpose(1, 2).contiguous(), None


def _by_length(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, lengths: torch.Tensor,
               bias: torch.Tensor, scale: float) -> torch.Tensor:
    """(B, L, H, d) self-attention of right-padded rows, the rows of each length ``n`` together on their
    first ``n`` keys alone (the bias's top-left ``n x n`` block; a padding query over the same keys):
    no padding key and no extra head dimension reach the kernel (on CPU a head size of d + 1 costs a
    third more than d at d = 16)."""
    sdpa = torch.nn.functional.scaled_dot_product_attention
    unsorted = len(lengths) > 1 and bool((lengths[1:] < lengths[:-1]).any())
    # unsorted rows, or a bias to differentiate (never in the search, whose parameters are frozen; _SortedRuns
    # gives the bias no gradient): each length's rows gathered, through SDPA and autograd
    if unsorted or bias.requires_grad:
        pieces, order = [], []
        for n in torch.unique(lengths).tolist():
            rows = torch.nonzero(lengths == n).flatten()
            pieces.append(_same_length(sdpa, query[rows], key[rows], value[rows], n, bias, scale))
            order.append(rows)
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces)[torch.argsort(torch.cat(order))]
        return out.transpose(1, 2).contiguous()
    # sorted (the fast engine's length-sorted batches): each length a run of rows, sliced, written in place
    values, counts = torch.unique_consecutive(lengths, return_counts=True)
    stops = torch.cumsum(counts, 0).tolist()
    runs = [(stop - count, stop, n) for n, count, stop in zip(values.tolist(), counts.tolist(), stops)]
    return _SortedRuns.apply(query, key, value, bias, runs, scale)


def _flash(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bias: torch.Tensor,
           scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The CPU flash-attention kernel SDPA runs here: ``(out, logsumexp)``."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, attn_mask=bias,
                                                                        scale=scale)[:2]


class _SortedRuns(torch.autograd.Function):
    """:func:`_by_length` of length-sorted rows: (B, L, H, d) outputs written run by run, and a backward
    that calls the kernel's own backward run by run into one gradient per input. (Autograd through the
    slices would give every run's slice a zero-filled gradient of the whole batch and add them up: a
    gradient batch of 64 prompts has 10-30 lengths.) The bias gets no gradient (frozen)."""

    @staticmethod
    def forward(ctx, query, key, value, bias, runs, scale):
        b, h, full, d = query.shape
        out = query.new_empty((b, full, h, d))
        heads_first = out.transpose(1, 2)
        saved = []
        for first, stop, n in runs:
            q, k, v = query[first:stop], key[first:stop, :, :n], value[first:stop, :, :n]
            o, lse = _flash(q[:, :, :n], k, v, bias[:, :, :n, :n], scale)
            heads_first[first:stop, :, :n] = o
            o_pad = lse_pad = None
            if n < full:  # padding queries (read by nothing, kept finite as transformers')
                o_pad, lse_pad = _flash(q[:, :, n:], k, v, bias[:, :, n:, :n], scale)
                heads_first[first:stop, :, n:] = o_pad
            saved.append((o, lse, o_pad, lse_pad))
        ctx.save_for_backward(query, key, value, bias)
        ctx.runs, ctx.scale, ctx.pieces = runs, scale, saved
        return out

    @staticmethod
    def backward(ctx, grad_out):
        backward = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward
        query, key, value, bias = ctx.saved_tensors
        full = query.shape[2]
        grad = grad_out.transpose(1, 2)  # (B, H, L, d)
        d_query = torch.empty_like(query)
        d_key, d_value = torch.zeros_like(key), torch.zeros_like(value)  # padding keys: weight 0, gradient 0
        for (first, stop, n), (o, lse, o_pad, lse_pad) in zip(ctx.runs, ctx.pieces):
            q, k, v = query[first:stop], key[first:stop, :, :n], value[first:stop, :, :n]
            g_q, g_k, g_v = backward(grad[first:stop, :, :n], q[:, :, :n], k, v, o, lse, 0.0, False,
                                     attn_mask=bias[:, :, :n, :n], scale=ctx.scale)
            if o_pad is not None:
                p_q, p_k, p_v = backward(grad[first:stop, :, n:], q[:, :, n:], k, v, o_pad, lse_pad, 0.0, False,
                                         attn_mask=bias[:, :, n:, :n], scale=ctx.scale)
                d_query[first:stop, :, n:] = p_q
                g_k, g_v = g_k + p_k, g_v + p_v
            d_query[first:stop, :, :n] = g_q
            d_key[first:stop, :, :n] = g_k
            d_value[first:stop, :, :n] = g_v
        return d_query, d_key, d_value, None, None, None


def _same_length(sdpa, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, n: int, bias: torch.Tensor,
                 scale: float) -> torch.Tensor:
    """(R, H, L, d) attention of rows of length ``n`` on their first ``n`` keys (padding queries over the
    same keys: their outputs are read by nothing but are kept finite, as transformers')."""
    k, v = key[:, :, :n], value[:, :, :n]
    out = sdpa(query[:, :, :n], k, v, attn_mask=bias[:, :, :n, :n], scale=scale)
    if n < query.shape[2]:
        out = torch.cat([out, sdpa(query[:, :, n:], k, v, attn_mask=bias[:, :, n:, :n], scale=scale)], dim=2)
    return out


def register() -> str:
    """Registers :data:`ATTENTION` with transformers (idempotent); returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, _attention)
    if ATTENTION not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    return ATTENTION
