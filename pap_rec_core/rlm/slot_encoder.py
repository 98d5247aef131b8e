"""The encoder of one prompt with several tokens tried in one slot: the first layer's attention shared.

The search scores each of a slot's candidates on every user's prompt; the candidate prompts of a prompt
differ in one position. In the first encoder layer every other position keeps its layer-norm input, its
query, key and value, and its scores against every other key; what a candidate changes is one key and
one value (for every query) and one query row. :func:`encode_slot_candidates` therefore runs the first
layer's attention once per prompt with the slot's key left out — softmax outputs ``O`` and their
log-normalisers ``lse`` from the fused CPU kernel — and adds each candidate's key and value back to every
query row exactly (two-part softmax: ``(e^lse O + e^z v_c) / (e^lse + e^z)``, ``z`` the candidate key's
score), computing only the slot's own query row in full. The candidate's first-layer output projection,
feed-forward and every later layer run as transformers runs them. The result equals
:meth:`~pap_rec_core.rlm.model.RecLM.encode` of the filled prompts up to float rounding (tested); it saves
the first layer's norm, projections and attention of all but one position per candidate (about 40% of
the small embedded model's encoder).

CPU only (the log-normalisers come from ``_scaled_dot_product_flash_attention_for_cpu``); the caller falls
back to the plain encoder elsewhere (:func:`shares_first_layer`).
"""

from __future__ import annotations

import torch

from pap_rec_core.rlm.batching import EncodedBatch
from pap_rec_core.rlm.model import RecLM

_LEFT_OUT = -1e30  # a left-out key's extra-dimension score: softmax weight 0


def shares_first_layer(model: RecLM) -> bool:
    """Whether :func:`encode_slot_candidates` runs for this model where it is (fp32 on CPU)."""
    weight = model.t5.encoder.block[0].layer[0].SelfAttention.q.weight
    return weight.device.type == "cpu" and weight.dtype == torch.float32


@torch.no_grad()
def first_layer_attention(model: RecLM, x: torch.Tensor, left_out: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The encoder's first self-attention of input embeddings ``x`` (B, T, D) with the keys ``left_out``
    (B, T) given no weight: ``(q, k, v, out, lse, bias)``, q/k/v/out (B, H, T, d), the log-normalisers
    ``lse`` (B, H, T) of each query's softmax, the relative position bias (H, T, T). The left-out keys ride
    in one extra head dimension (as :mod:`~pap_rec_core.rlm.attention`'s padded keys), so the bias alone is
    the kernel's mask."""
    first = model.t5.encoder.block[0].layer[0]
    att = first.SelfAttention
    n_heads, d_kv = att.n_heads, att.key_value_proj_dim
    n, length, _ = x.shape
    h = first.layer_norm(x)
    q, k, v = (proj(h).view(n, length, n_heads, d_kv).transpose(1, 2) for proj in (att.q, att.k, att.v))
    bias = att.compute_bias(length, length, device=x.device)[0]  # (H, T, T)
    extra = torch.zeros((n, length), dtype=x.dtype, device=x.device).masked_fill_(left_out, _LEFT_OUT)
    q_aug = torch.cat([q, q.new_ones((*q.shape[:-1], 1))], -1)
    k_aug = torch.cat([k, extra[:, None, :, None].expand(-1, n_heads, -1, 1)], -1)
    v_aug = torch.cat([v, v.new_zeros((*v.shape[:-1], 1))], -1)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        q_aug, k_aug, v_aug, attn_mask=bias[None], scale=1.0)[:2]
    return q, k, v, out[..., :d_kv], lse, bias


@torch.no_grad()
def encode_slot_candidates(model: RecLM, batch: EncodedBatch, slot: int, candidates: torch.Tensor) -> torch.Tensor:
    """(R * C, T, D) encoder states of ``batch``'s R prompts with slot ``slot`` holding each of their
    ``candidates`` (R, C) token ids; row ``r * C + c`` is prompt r with candidate c."""
    if batch.slots is None:
        raise ValueError("the batch has no slots (render prompts with TokenRef parts)")
    enc = model.t5.encoder
    first = enc.block[0].layer[0]
    att = first.SelfAttention
    n_heads, d_kv = att.n_heads, att.key_value_proj_dim
    n_prompts, length = batch.input_ids.shape
    n_cand = candidates.shape[1]
    rows = torch.arange(n_prompts)
    where = batch.slots[:, slot]  # (R,) the slot's position in each prompt
    keys_ok = batch.attention_mask.bool()

    x = model.embed(batch.input_ids, batch.whole_word_ids)  # (R, T, D)
    cand_ids = candidates.long()
    cand_x = model.embed(cand_ids, batch.whole_word_ids[rows, where][:, None].expand(-1, n_cand))  # (R, C, D)

    def heads(t: torch.Tensor) -> torch.Tensor:  # (..., H * d) -> (..., H, d)
        return t.view(*t.shape[:-1], n_heads, d_kv)

    # the prompts' first-layer attention without the slot's key: outputs and log-normalisers
    left_out = ~keys_ok
    left_out[rows, where] = True
    q, k, v, out, lse, bias = first_layer_attention(model, x, left_out)

    # each candidate's key and value added back for every query
    hc = first.layer_norm(cand_x)
    qc, kc, vc = (heads(proj(hc)) for proj in (att.q, att.k, att.v))  # (R, C, H, d)
    column = bias.permute(2, 0, 1)[where]  # (R, H, T): bias of every query to the slot's key
    z = torch.einsum("rhtd,rchd->rcht", q, kc) + column[:, None]  # (R, C, H, T)
    top = torch.maximum(z, lse[:, None])
    w_rest, w_cand = torch.exp(lse[:, None] - top), torch.exp(z - top)
    mixed = (w_rest[..., None] * out[:, None] + w_cand[..., None] * vc[:, :, :, None, :]) / (w_rest + w_cand)[..., None]

    # the slot's own query row, in full (its key and value are the candidate's)
    row_bias = bias.permute(1, 0, 2)[where]  # (R, H, T): bias of the slot's query to every key
    scores = torch.einsum("rchd,rhtd->rcht", qc, k) + row_bias[:, None]
    own = (qc * kc).sum(-1) + row_bias[rows, :, where][:, None]  # (R, C, H)
    scores[rows, :, :, where] = own
    scores = scores.masked_fill(~keys_ok[:, None, None, :], float("-inf"))
    p = torch.softmax(scores, dim=-1)  # (R, C, H, T)
    slot_out = torch.einsum("rcht,rhtd->rchd", p, v) + p[rows, :, :, where][..., None] * (vc - v[rows, :, where][:, None])
    mixed[rows, :, :, where] = slot_out

    attn = mixed.permute(0, 1, 3, 2, 4).reshape(n_prompts * n_cand, length, n_heads * d_kv)
    xc = x[:, None].repeat(1, n_cand, 1, 1)
    xc[rows, :, where] = cand_x
    xc = xc.view(n_prompts * n_cand, length, -1)
    return encoder_from_first_attention(model, xc, attn, keys_ok.repeat_interleave(n_cand, 0), bias)


def encoder_from_first_attention(model: RecLM, x: torch.Tensor, attn: torch.Tensor, keys_ok: torch.Tensor,
                                 bias: torch.Tensor) -> torch.Tensor:
    """(B, T, D) encoder states from the first layer's input ``x`` and its attention output ``attn``
    (B, T, H * d) before the output projection: the rest of the first layer and every later layer as
    transformers runs them (``keys_ok`` (B, T) the real keys, ``bias`` (H, T, T) the position bias)."""
    enc = model.t5.encoder
    first = enc.block[0].layer[0]
    hidden = enc.block[0].layer[-1](x + first.dropout(first.SelfAttention.o(attn)))  # with its feed-forward
    mask = None if bool(keys_ok.all()) else keys_ok[:, None, None, :]
    for block in enc.block[1:]:
        hidden = block(hidden, mask, bias[None])[0]
    return enc.dropout(enc.final_layer_norm(hidden))
