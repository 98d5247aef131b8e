"""Ranking with an RLM: exact scores against hand computations, beam search against exact scores."""

from __future__ import annotations

import pytest
import torch

from pap_rec_core.rlm import EOS_ID, PAD_ID, ItemRef, RecLM, RecTokenizer, RLMConfig, UserRef
from pap_rec_core.rlm.batching import encode_batch
from pap_rec_core.rlm.ranking import ItemTrie, beam_rank, score_items
from pap_rec_core.rlm.tokenizer import train_sentencepiece

CORPUS = ["history of user_ : recommend next item"] * 20 + [str(i) for i in range(60)] * 3
ITEMS = ["3", "14", "15", "9", "26", "53"]


@pytest.fixture(scope="module")
def sp_bytes() -> bytes:
    return train_sentencepiece(CORPUS, vocab_size=80)


def _model(vocab: int, seed: int = 0) -> RecLM:
    torch.manual_seed(seed)
    return RecLM(RLMConfig(vocab_size=vocab, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1,
                           num_decoder_layers=1, dropout_rate=0.0)).eval()


def _prompts():
    return [["history of user_", UserRef(0), " : ", ItemRef(1), " , ", ItemRef(2), " recommend next item"],
            ["history of user_", UserRef(1), " : ", ItemRef(4), " recommend next item"]]


def _logprobs(model, batch, dec):
    with torch.no_grad():
        out = model(batch.attention_mask.repeat_interleave(len(dec) // batch.input_ids.shape[0], 0),
                    input_ids=batch.input_ids.repeat_interleave(len(dec) // batch.input_ids.shape[0], 0),
                    whole_word_ids=batch.whole_word_ids.repeat_interleave(len(dec) // batch.input_ids.shape[0], 0),
                    decoder_input_ids=dec)
    return torch.log_softmax(out.logits, -1)


def test_item_token_scores_match_hand_computation(sp_bytes) -> None:
    tok = RecTokenizer(sp_bytes, ITEMS, ["1", "2"])
    model = _model(tok.vocab_size)
    batch = encode_batch(tok, _prompts())
    start, stop = tok.item_token_range()
    first = _logprobs(model, batch, torch.full((2, 1), PAD_ID))[:, 0]  # (B, V)
    constrained = score_items(model, tok, batch, include_eos=False)
    assert torch.allclose(constrained, torch.log_softmax(first[:, start:stop], -1), atol=1e-5)
    full = score_items(model, tok, batch, include_eos=True, item_chunk=5)  # chunks cross prompt boundaries
    for b in range(2):
        for i in range(len(ITEMS)):
            dec = torch.tensor([[PAD_ID, start + i]])
            lp = _logprobs(model, type(batch)(batch.input_ids[b:b + 1], batch.whole_word_ids[b:b + 1],
                                             batch.attention_mask[b:b + 1]), dec)
            expected = lp[0, 0, start + i] + lp[0, 1, EOS_ID]
            assert full[b, i].item() == pytest.approx(expected.item(), abs=1e-4)


def test_digit_items_scored_by_teacher_forcing(sp_bytes) -> None:
    tok = RecTokenizer(sp_bytes, ITEMS, ["1", "2"], item_tokens=False, user_tokens=False)
    model = _model(tok.vocab_size)
    batch = encode_batch(tok, _prompts())
    scores = score_items(model, tok, batch, item_chunk=4)
    assert scores.shape == (2, len(ITEMS))
    for i in (0, 5):
        target = list(tok.item_target_ids(i))
        dec = torch.tensor([[PAD_ID] + target[:-1]] * 2)
        lp = _logprobs(model, batch, dec)
        expected = lp[:, torch.arange(len(target)), torch.tensor(target)].sum(-1)
        assert torch.allclose(scores[:, i], expected, atol=1e-4)


@pytest.mark.parametrize(("item_tokens", "include_eos"), [(True, True), (True, False), (False, True)])
def test_candidate_scores_are_the_full_scores_of_those_items(sp_bytes, item_tokens, include_eos) -> None:
    tok = RecTokenizer(sp_bytes, ITEMS, ["1", "2"], item_tokens=item_tokens, user_tokens=item_tokens)
    model = _model(tok.vocab_size, seed=2)
    batch = encode_batch(tok, _prompts())
    cands = torch.tensor([[5, 0, 3], [2, 4, 1]])
    full = score_items(model, tok, batch, include_eos=include_eos)
    subset = score_items(model, tok, batch, include_eos=include_eos, candidates=cands, item_chunk=4)
    assert subset.shape == (2, 3)
    assert torch.allclose(subset, full.gather(1, cands), atol=1e-5)


def test_beam_search_agrees_with_exact_ranking(sp_bytes) -> None:
    tok = RecTokenizer(sp_bytes, ITEMS, ["1", "2"])
    model = _model(tok.vocab_size, seed=3)
    batch = encode_batch(tok, _prompts())
    ranked = beam_rank(model, tok, batch, num_beams=6, top_n=4)
    exact = score_items(model, tok, batch)
    for b, items in enumerate(ranked):
        assert len(items) == 4 and len(set(items)) == 4
        assert items == torch.topk(exact[b], 4).indices.tolist()


def test_beam_search_on_digit_items_returns_valid_items(sp_bytes) -> None:
    tok = RecTokenizer(sp_bytes, ITEMS, ["1", "2"], item_tokens=False, user_tokens=False)
    model = _model(tok.vocab_size, seed=4)
    ranked = beam_rank(model, tok, encode_batch(tok, _prompts()), num_beams=6, top_n=6)
    for items in ranked:
        assert items and all(0 <= i < len(ITEMS) for i in items) and len(set(items)) == len(items)


def test_trie_allows_only_item_continuations() -> None:
    trie = ItemTrie([(5, 6, 1), (5, 7, 1), (8, 1)])
    assert sorted(trie.allowed([])) == [5, 8]
    assert sorted(trie.allowed([5])) == [6, 7]
    assert trie.allowed([5, 6]) == [1]
    assert trie.item_of[(5, 7, 1)] == 1


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_beam_top_items_gives_the_lists_of_beam_search(sp_bytes, seed) -> None:
    from pap_rec_core.rlm.ranking import beam_top_items

    tok = RecTokenizer(sp_bytes, ITEMS, ["1", "2"])
    model = _model(tok.vocab_size, seed=seed)
    batch = encode_batch(tok, _prompts())
    for beams, top in ((4, 3), (6, 5), (3, 3)):
        assert beam_top_items(model, tok, batch, num_beams=beams, top_n=top) == beam_rank(
            model, tok, batch, num_beams=beams, top_n=top)
    digit = RecTokenizer(sp_bytes, ITEMS, ["1", "2"], item_tokens=False, user_tokens=False)
    with pytest.raises(ValueError, match="single-token"):
        beam_top_items(_model(digit.vocab_size), digit, encode_batch(digit, _prompts()))
