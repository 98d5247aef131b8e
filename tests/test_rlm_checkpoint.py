"""Checkpoints: our directories, and P5 .pth state dicts (round trip against an independent T5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pap_rec_core.rlm import CheckpointMismatchError, RecLM, RecTokenizer, RLMConfig, load_p5_checkpoint, load_rlm, save_rlm
from pap_rec_core.rlm.checkpoint import infer_p5_config, p5_to_reclm_state_dict, reclm_to_p5_state_dict
from pap_rec_core.rlm.tokenizer import train_sentencepiece

CORPUS = ["Here is the purchase history list of user_ : try to recommend next item to the user"] * 20 + [
    str(i) for i in range(120)] * 3


@pytest.fixture(scope="module")
def sp_bytes() -> bytes:
    return train_sentencepiece(CORPUS, vocab_size=100)


def _tiny_t5(vocab: int):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(1)
    cfg = T5Config(vocab_size=vocab, d_model=16, d_ff=24, d_kv=8, num_heads=2, num_layers=2, num_decoder_layers=1,
                   feed_forward_proj="relu", tie_word_embeddings=True, dropout_rate=0.0, decoder_start_token_id=0,
                   pad_token_id=0, eos_token_id=1)
    return T5ForConditionalGeneration(cfg).eval()


def test_p5_round_trip_gives_identical_logits(sp_bytes, tmp_path) -> None:
    """A P5-format state dict (T5 keys + encoder.whole_word_embeddings, DataParallel 'module.' prefix)
    loads through the P5 path and gives exactly the logits of the source model computed P5's way."""
    tok = RecTokenizer(sp_bytes, None, None)
    vocab = tok.vocab_size + 28  # T5 pads its vocabulary beyond the tokenizer's
    t5 = _tiny_t5(vocab)
    wwe = nn.Embedding(512, 16)
    state = {f"module.{k}": v for k, v in t5.state_dict().items()}
    state["module.encoder.whole_word_embeddings.weight"] = wwe.weight.detach().clone()
    torch.save(state, tmp_path / "p5.pth")
    tok.save(tmp_path / "t5tok")
    (tmp_path / "t5tok" / "rec_tokenizer.json").unlink()

    bundle = load_p5_checkpoint(tmp_path / "p5.pth", tmp_path / "t5tok", item_texts=["12", "7"],
                                user_texts=["3"], device="cpu")
    assert bundle.model.config.num_layers == 2 and bundle.model.config.num_decoder_layers == 1
    enc = bundle.tokenizer.encode_parts(["Here is the purchase history list of user_3 : 12 , 7"])
    ids = torch.tensor([enc.input_ids])
    words = torch.tensor([enc.whole_word_ids])
    mask = torch.ones_like(ids)
    labels = torch.tensor([[5, 9, 1]])
    with torch.no_grad():
        # P5's JointEncoder: inputs_embeds = embed_tokens(ids) + whole_word_embeddings(whole_word_ids)
        source = t5(inputs_embeds=t5.shared(ids) + wwe(words), attention_mask=mask, labels=labels).logits
        loaded = bundle.model(mask, labels=labels, input_ids=ids, whole_word_ids=words).logits
    assert torch.equal(source, loaded)


def test_p5_mismatches_are_clear(sp_bytes, tmp_path) -> None:
    tok = RecTokenizer(sp_bytes, None, None)
    tok.save(tmp_path / "tok")
    (tmp_path / "tok" / "rec_tokenizer.json").unlink()
    small = _tiny_t5(tok.vocab_size - 10)  # fewer embeddings than the tokenizer has tokens
    state = dict(small.state_dict(), **{"encoder.whole_word_embeddings.weight": torch.zeros(512, 16)})
    torch.save(state, tmp_path / "small.pth")
    with pytest.raises(CheckpointMismatchError, match=r"has only \d+ embeddings"):
        load_p5_checkpoint(tmp_path / "small.pth", tmp_path / "tok", device="cpu")

    plain = _tiny_t5(tok.vocab_size)
    torch.save(plain.state_dict(), tmp_path / "plain.pth")
    with pytest.raises(CheckpointMismatchError, match="not a P5 checkpoint"):
        load_p5_checkpoint(tmp_path / "plain.pth", tmp_path / "tok", device="cpu")

    broken = dict(state)
    broken.pop("encoder.block.1.layer.1.DenseReluDense.wo.weight")
    torch.save({k: v for k, v in broken.items()}, tmp_path / "broken.pth")
    cfg = infer_p5_config(state)
    with pytest.raises(CheckpointMismatchError, match="DenseReluDense.wo"):
        load_p5_checkpoint(tmp_path / "broken.pth", tmp_path / "tok", config=RLMConfig(**{**cfg.to_dict(), "vocab_size": tok.vocab_size + 5}), device="cpu")

    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointMismatchError, match="cannot be read"):
        load_p5_checkpoint(tmp_path / "junk.pth", tmp_path / "tok", device="cpu")


def test_save_load_round_trip_and_vocab_mismatch(sp_bytes, tmp_path) -> None:
    tok = RecTokenizer(sp_bytes, ["1", "2", "3"], ["9"])
    torch.manual_seed(0)
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=24, d_kv=8, num_heads=2, num_layers=1,
                            num_decoder_layers=1)).eval()
    save_rlm(tmp_path / "m", model, tok, {"note": "x"})
    back = load_rlm(tmp_path / "m", device="cpu")
    assert back.metadata == {"note": "x"} and back.model.config == model.config
    ids = torch.tensor([[5, 6, tok.item_offset, 1]])
    mask, words, labels = torch.ones_like(ids), torch.tensor([[1, 1, 2, 0]]), torch.tensor([[tok.item_offset + 1, 1]])
    with torch.no_grad():
        assert torch.equal(model(mask, labels=labels, input_ids=ids, whole_word_ids=words).logits,
                           back.model(mask, labels=labels, input_ids=ids, whole_word_ids=words).logits)
    RecTokenizer(sp_bytes, ["1", "2"], ["9"]).save(tmp_path / "m" / "tokenizer")  # one item fewer
    with pytest.raises(CheckpointMismatchError, match="tokenizer has .* tokens but the model's vocab_size"):
        load_rlm(tmp_path / "m", device="cpu")
    with pytest.raises(CheckpointMismatchError, match="missing"):
        load_rlm(tmp_path / "nowhere")


def test_p5_key_mapping_round_trips(sp_bytes) -> None:
    tok = RecTokenizer(sp_bytes, None, None)
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=8, d_ff=8, d_kv=4, num_heads=2, num_layers=1,
                            num_decoder_layers=1))
    ours = model.state_dict()
    p5 = reclm_to_p5_state_dict(ours)
    assert "encoder.whole_word_embeddings.weight" in p5 and "shared.weight" in p5
    assert all(not k.startswith("t5.") for k in p5)
    back = p5_to_reclm_state_dict({f"module.{k}": v for k, v in p5.items()})
    assert back.keys() == ours.keys() and all(back[k] is ours[k] for k in ours)
