"""The slot-candidate encoder (first-layer attention shared by a prompt's candidates) against the encoder."""

from __future__ import annotations

import pytest
import torch

from pap_rec_core.rlm import ItemRef, RecLM, RecTokenizer, RLMConfig, TokenRef, UserRef
from pap_rec_core.rlm.attention import padded_keys_attention
from pap_rec_core.rlm.batching import EncodedBatch, encode_batch
from pap_rec_core.rlm.slot_encoder import encode_slot_candidates, shares_first_layer
from pap_rec_core.rlm.tokenizer import train_sentencepiece

CORPUS = ["history of user_ : recommend next item please"] * 20 + [str(i) for i in range(60)] * 3


@pytest.fixture(scope="module")
def tok() -> RecTokenizer:
    return RecTokenizer(train_sentencepiece(CORPUS, vocab_size=80), [str(i) for i in range(30)], ["1", "2", "3"])


def _prompts(first: int):
    return [["history of user_", UserRef(0), " : ", ItemRef(1), " , ", ItemRef(2), " ", TokenRef(first), TokenRef(first + 1),
             " recommend next item"],
            ["history of user_", UserRef(1), " : ", ItemRef(4), " ", TokenRef(first + 2), TokenRef(first), " next"],
            ["user_", UserRef(2), " : ", ItemRef(7), " , ", ItemRef(8), " , ", ItemRef(9), " ", TokenRef(first + 3),
             TokenRef(first + 4), " recommend next item please"]]


@pytest.mark.parametrize("layers,whole_words", [(1, True), (3, False)])
def test_candidates_get_the_encoder_states_of_their_filled_prompts(tok, layers, whole_words) -> None:
    torch.manual_seed(layers)
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=32, d_kv=6, num_heads=3, num_layers=layers,
                            num_decoder_layers=1, dropout_rate=0.0, whole_word_embeddings=whole_words)).eval()
    assert shares_first_layer(model)
    batch = encode_batch(tok, _prompts(5))
    assert (batch.attention_mask == 0).any(), "prompts of different lengths: padding is exercised"
    candidates = torch.tensor([[5, 9, 31], [40, 7, 7], [12, 33, 8]])  # includes a prompt's current slot token
    for slot in (0, 1):
        with padded_keys_attention():
            got = encode_slot_candidates(model, batch, slot, candidates)
        ids = batch.input_ids.repeat_interleave(3, 0)
        ids[torch.arange(9), batch.slots[:, slot].repeat_interleave(3)] = candidates.reshape(-1)
        mask = batch.attention_mask.repeat_interleave(3, 0)
        with torch.no_grad():
            expected = model.encode(mask, ids, batch.whole_word_ids.repeat_interleave(3, 0))
        real = mask.bool()
        torch.testing.assert_close(got[real], expected[real], atol=2e-5, rtol=2e-5)
        assert not torch.allclose(got[0], got[1]), "the candidates change the states"


def test_a_batch_carrying_encoder_states_is_not_encoded_again(tok) -> None:
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1,
                            num_decoder_layers=1)).eval()
    batch = encode_batch(tok, _prompts(5))
    states = torch.randn(*batch.input_ids.shape, 16)
    carried = EncodedBatch(batch.input_ids, batch.whole_word_ids, batch.attention_mask, batch.slots, states)
    assert model.encode_batch(carried) is states
    assert model.encode_batch(carried.to(torch.device("cpu"))).equal(states)
    with torch.no_grad():
        assert model.encode_batch(batch).equal(model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids))


@pytest.mark.parametrize("layers", [1, 3])
def test_slot_gradients_with_the_first_layer_at_the_slots_alone_equal_autograds(tok, layers) -> None:
    from pap_rec_core.rlm.batching import pad_labels
    from pap_rec_core.search.hotflip import slot_gradients, slot_gradients_sharing_first_layer

    torch.manual_seed(10 + layers)
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=32, d_kv=6, num_heads=3, num_layers=layers,
                            num_decoder_layers=2, dropout_rate=0.0)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    batch = encode_batch(tok, _prompts(5))  # two slots a prompt, padding in the batch
    labels = pad_labels([tok.item_target_ids(i) for i in (3, 11, 0)])
    expected, expected_loss = slot_gradients(model, batch, labels)
    with padded_keys_attention():
        got, loss = slot_gradients_sharing_first_layer(model, batch, labels)
    assert got.shape == expected.shape == (3, 2, 16)
    torch.testing.assert_close(loss, expected_loss)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert (expected.norm(dim=-1) > 1e-3).all(), "every slot has a gradient: the comparison is not between zeros"
