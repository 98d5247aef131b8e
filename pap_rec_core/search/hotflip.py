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
from pap_rec_core.rlm.model import RecLM


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
