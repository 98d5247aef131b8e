"""The fast engine's encoder self-attention (padding carried in the keys) against transformers' SDPA path."""

from __future__ import annotations

import pytest
import torch

from pap_rec_core.rlm import RecLM, RLMConfig
from pap_rec_core.rlm import attention
from pap_rec_core.rlm.attention import ATTENTION, padded_keys_attention
from pap_rec_core.search import per_sample_loss


@pytest.fixture(scope="module")
def model() -> RecLM:
    torch.manual_seed(0)
    return RecLM(RLMConfig(vocab_size=60, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2,
                           num_decoder_layers=2, dropout_rate=0.0)).eval()


UNSORTED, SORTED = [23, 9, 17, 1, 23], [1, 9, 17, 23, 23]  # the fast engine's batches are sorted by length


def _padded_batch(seed: int = 0, lengths=UNSORTED) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros_like(ids)
    for r, n in enumerate(lengths):
        mask[r, :n] = 1
    ids = ids * mask  # right-padded with the pad id 0, as collate gives
    labels = torch.randint(5, 60, (len(lengths), 3), generator=g)
    return ids, mask, labels


class _SdpaSpy:
    """Records the batch size of each attention mask SDPA receives, then calls SDPA."""

    def __init__(self):
        self.mask_batches: list[int | None] = []
        self._sdpa = torch.nn.functional.scaled_dot_product_attention

    def __call__(self, *args, **kwargs):
        mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
        self.mask_batches.append(None if mask is None else mask.shape[0])
        return self._sdpa(*args, **kwargs)


def test_models_are_built_with_the_house_attention(model) -> None:
    assert model.t5.config._attn_implementation == ATTENTION


@pytest.mark.parametrize("lengths", [UNSORTED, SORTED])
def test_encoder_outputs_equal_transformers_sdpa(model, lengths) -> None:
    ids, mask, _ = _padded_batch(lengths=lengths)
    with torch.no_grad():
        plain = model.encode(mask, input_ids=ids)
        with padded_keys_attention():
            fast = model.encode(mask, input_ids=ids)
    torch.testing.assert_close(fast, plain, rtol=1e-6, atol=1e-6)  # padding positions too (read by nothing)
    # a padded batch gives each prompt what it gets alone (no padding at all): padding is really masked
    row = lengths.index(9)
    with torch.no_grad(), padded_keys_attention():
        alone = model.encode(mask[row : row + 1, :9], input_ids=ids[row : row + 1, :9])
    torch.testing.assert_close(fast[row, :9], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lengths", [UNSORTED, SORTED])
def test_slot_gradients_and_losses_equal_transformers_sdpa(model, lengths) -> None:
    ids, mask, labels = _padded_batch(1, lengths=lengths)

    def grads():
        embeds = model.embed(ids, None).detach().requires_grad_(True)
        losses = per_sample_loss(model(mask, inputs_embeds=embeds, labels=labels).logits, labels)
        losses.sum().backward(inputs=[embeds])
        return embeds.grad, losses.detach()

    g_plain, l_plain = grads()
    with padded_keys_attention():
        g_fast, l_fast = grads()
    torch.testing.assert_close(l_fast, l_plain, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(g_fast[mask.bool()], g_plain[mask.bool()], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("lengths", [UNSORTED, SORTED])
def test_only_encoder_self_attention_inside_the_context_changes_path(model, monkeypatch, lengths) -> None:
    ids, mask, labels = _padded_batch(2, lengths=lengths)
    spy = _SdpaSpy()
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    flash = attention._flash  # sorted rows (by-length runs) call the kernel itself: counted as SDPA calls

    def flash_spy(query, key, value, bias, scale):
        spy.mask_batches.append(bias.shape[0])
        return flash(query, key, value, bias, scale)

    monkeypatch.setattr(attention, "_flash", flash_spy)
    with torch.no_grad():
        model(mask, input_ids=ids, labels=labels)
    outside = list(spy.mask_batches)
    spy.mask_batches.clear()
    with torch.no_grad(), padded_keys_attention():
        model(mask, input_ids=ids, labels=labels)
    inside = list(spy.mask_batches)
    layers, decoder = model.t5.config.num_layers, 2 * model.t5.config.num_decoder_layers
    assert len(outside) == layers + decoder
    # outside: every encoder layer gets the (B, H, L, L) bias-and-padding mask; inside (CPU): per layer one
    # call per prompt length (4: 1, 9, 17, 23) and one for the padding queries of each shorter length (3),
    # each with a block of the shared (1, H, L, L) bias; the decoder's calls are the same in both
    assert outside[:layers] == [len(ids)] * layers
    assert inside[:-decoder] == [1] * (7 * layers)
    assert inside[-decoder:] == outside[layers:]


def test_a_mask_that_is_not_a_padding_mask_takes_transformers_path(model, monkeypatch) -> None:
    """A 4-D boolean mask whose query rows differ (not what the encoder builds) is left to transformers."""
    from pap_rec_core.rlm.attention import _attention

    spy = _SdpaSpy()
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    layer = model.t5.encoder.block[0].layer[0].SelfAttention
    q = k = v = torch.randn(2, 4, 5, 8)
    causal = torch.tril(torch.ones(5, 5, dtype=torch.bool)).expand(2, 1, 5, 5)
    bias = torch.zeros(1, 4, 5, 5)
    with padded_keys_attention():
        out, _ = _attention(layer, q, k, v, causal, scaling=1.0, position_bias=bias)
    assert spy.mask_batches == [2] and out.shape == (2, 5, 4, 8)


@pytest.mark.parametrize("lengths", [[3, 3, 5, 8, 8, 8], [8, 3, 5, 3]])
def test_by_length_outputs_and_gradients_equal_each_row_on_its_own_keys(lengths) -> None:
    """:func:`_by_length` (sorted rows: runs written in place, the kernel's own backward run by run; unsorted:
    gathered by length) against each row's queries — padding queries too — attending to its first n keys,
    with a gradient arriving at every output (padding outputs included)."""
    from pap_rec_core.rlm.attention import _by_length

    g = torch.Generator().manual_seed(3)
    b, h, full, d = len(lengths), 2, max(lengths), 4
    q, k, v = (torch.randn(b, h, full, d, generator=g, requires_grad=True) for _ in range(3))
    bias = torch.randn(1, h, full, full, generator=g)
    upstream = torch.randn(b, full, h, d, generator=g)
    out = _by_length(q, k, v, torch.tensor(lengths), bias, 0.7)
    out.backward(upstream)
    expected = torch.stack([
        torch.nn.functional.scaled_dot_product_attention(q[r], k[r, :, :n], v[r, :, :n], attn_mask=bias[0, :, :, :n],
                                                         scale=0.7) for r, n in enumerate(lengths)]).transpose(1, 2)
    grads = torch.autograd.grad(expected, [q, k, v], upstream)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    for got, want in zip((q.grad, k.grad, v.grad), grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    row = lengths.index(3)
    assert float(k.grad[row, :, 3:].abs().max()) == 0.0 < float(k.grad[row, :, :3].abs().max())  # padding keys: none
