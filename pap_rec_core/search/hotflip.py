"""Gradient-guided candidate tokens for prompt slots (HotFlip / AutoPrompt, as PAP-REC uses them).

For a slot currently holding token ``c`` with input-embedding gradient ``g`` (of the training loss),
replacing it by token ``v`` changes the loss by about ``g · (e_v - e_c)`` (first order). So the
candidates for the slot are the allowed tokens with the largest ``-g · e_v`` (the paper's
``grad · Eᵀ``, sign chosen so that larger is better); the current token itself is never a candidate.
Gradients are taken with respect to the full encoder input (token + whole-word embedding), which is
the same as the gradient with respect to the token embedding, since the two are added.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pap_rec_core.rlm.batching import EncodedBatch
from pap_rec_core.rlm.cross_attention import teacher_forced_logits
from pap_rec_core.rlm.model import RecLM
from pap_rec_core.rlm.slot_encoder import encoder_from_first_attention, first_layer_attention


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) mean token cross-entropy of each sample (``labels`` -100 on padding)."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16/fp16 up, fp64 kept
    tok = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none", ignore_index=-100)  # (B, L)
    return tok.sum(1) / (labels != -100).sum(1).clamp(min=1)


def slot_gradients(model: RecLM, batch: EncodedBatch, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(grads, losses)``: (B, S, D) gradient of each sample's loss with respect to the input embedding
    at each of its slots (``batch.slots``), and the (B,) losses. Samples do not interact (no batch norm),
    so one backward pass of the summed loss gives every sample's own gradient."""
    if batch.slots is None:
        raise ValueError("the batch has no slots (render prompts with TokenRef parts)")
    device = next(model.parameters()).device
    batch, labels = batch.to(device), labels.to(device)
    embeds = model.embed(batch.input_ids, batch.whole_word_ids).detach().requires_grad_(True)
    out = model(batch.attention_mask, inputs_embeds=embeds, labels=labels)
    losses = per_sample_loss(out.logits, labels)
    losses.sum().backward(inputs=[embeds])  # only the input embeddings get a gradient
    grad = embeds.grad
    index = batch.slots.unsqueeze(-1).expand(-1, -1, grad.shape[-1])
    return grad.gather(1, index), losses.detach()


def slot_gradients_sharing_first_layer(model: RecLM, batch: EncodedBatch,
                                       labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`slot_gradients` with the first layer's attention differentiated at the slots alone.

    Autograd runs from the first layer's attention output and its residual input up; the attention's own
    backward is needed only at the slot positions (their query, key and value), which the softmax
    outputs and log-normalisers of the forward pass give in O(T d) per slot instead of the full
    O(T^2 d) backward and the projections' backward at every position; the decoder runs as
    :func:`~pap_rec_core.rlm.cross_attention.teacher_forced_logits`. Equal to :func:`slot_gradients`
    up to float rounding (tested). CPU fp32 (:func:`~pap_rec_core.rlm.slot_encoder.shares_first_layer`)."""
    if batch.slots is None:
        raise ValueError("the batch has no slots (render prompts with TokenRef parts)")
    first = model.t5.encoder.block[0].layer[0]
    att = first.SelfAttention
    n_heads, d_kv = att.n_heads, att.key_value_proj_dim
    keys_ok = batch.attention_mask.bool()
    with torch.no_grad():
        x = model.embed(batch.input_ids, batch.whole_word_ids)
        q, k, v, out, lse, bias = first_layer_attention(model, x, ~keys_ok)
    n, length, _ = x.shape
    x.requires_grad_(True)
    attn = out.transpose(1, 2).reshape(n, length, n_heads * d_kv).requires_grad_(True)
    hidden = encoder_from_first_attention(model, x, attn, keys_ok, bias)
    logits = teacher_forced_logits(model, hidden, batch.attention_mask, labels)  # no keys/values of the states
    losses = per_sample_loss(logits, labels)
    losses.sum().backward(inputs=[x, attn])  # (not autograd.grad: FLOP counters hook the backward)
    g_x, g_attn = x.grad, attn.grad
    with torch.no_grad():
        d_out = g_attn.view(n, length, n_heads, d_kv).transpose(1, 2)  # (B, H, T, d)
        delta = (d_out * out).sum(-1)  # (B, H, T)
        b = torch.arange(n)[:, None]
        pos = batch.slots  # (B, S)
        q_s, k_s, v_s = q[b, :, pos], k[b, :, pos], v[b, :, pos]  # (B, S, H, d)
        # the slot's key and value: every query's weight on them
        w = torch.exp(torch.einsum("bhtd,bshd->bsht", q, k_s) + bias.permute(2, 0, 1)[pos] - lse[:, None])
        d_v = torch.einsum("bsht,bhtd->bshd", w, d_out)
        d_scores = w * (torch.einsum("bhtd,bshd->bsht", d_out, v_s) - delta[:, None])
        d_k = torch.einsum("bsht,bhtd->bshd", d_scores, q)
        # the slot's query: its row over every key
        w = torch.exp(torch.einsum("bshd,bhtd->bsht", q_s, k) + bias.permute(1, 0, 2)[pos] - lse[b, :, pos][..., None])
        w = w.masked_fill(~keys_ok[:, None, None, :], 0.0)
        d_scores = w * (torch.einsum("bshd,bhtd->bsht", d_out[b, :, pos], v) - delta[b, :, pos][..., None])
        d_q = torch.einsum("bsht,bhtd->bshd", d_scores, k)
        d_h = sum(g.reshape(n, -1, n_heads * d_kv) @ proj.weight for g, proj in ((d_q, att.q), (d_k, att.k), (d_v, att.v)))
    x_s = x.detach()[b, pos].requires_grad_(True)  # the layer norm's backward at the slots
    first.layer_norm(x_s).backward(d_h, inputs=[x_s])
    return g_x[b, pos] + x_s.grad, losses.detach()


def candidate_scores(grad: torch.Tensor, embedding: torch.Tensor, allowed: torch.Tensor,
                     current: torch.Tensor | None = None) -> torch.Tensor:
    """(..., V) first-order score ``-grad · e_v`` of every token for every slot (larger = lower loss);
    disallowed tokens and each slot's ``current`` token (same leading shape as ``grad`` without D) get
    ``-inf``."""
    dtype = torch.promote_types(torch.promote_types(grad.dtype, embedding.dtype), torch.float32)
    scores = -(grad.to(dtype) @ embedding.to(dtype).T)
    scores = scores.masked_fill(~allowed.to(scores.device), float("-inf"))
    if current is not None:
        scores = scores.scatter(-1, current.to(scores.device).unsqueeze(-1).long(), float("-inf"))
    return scores


def top_candidates(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(..., k) the ``k`` best tokens per slot, best first; ties broken by the smaller token id, so the
    choice does not depend on the device or the backend's sort."""
    n_ok = int(torch.isfinite(scores).sum(-1).min())
    if n_ok < k:
        raise ValueError(f"only {n_ok} allowed tokens for a slot, {k} candidates asked for")
    order = torch.sort(-scores.double(), dim=-1, stable=True).indices  # stable: equal scores keep id order
    return order[..., :k]
