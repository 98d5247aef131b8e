"""Prompt layout with trigger slots, and HotFlip candidate scoring against brute-force first-order sums."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pap_rec_core.prompts.layout import PromptLayout
from pap_rec_core.rlm import EOS_ID, RecLM, RecTokenizer, RLMConfig, TokenRef
from pap_rec_core.rlm.batching import encode_batch
from pap_rec_core.rlm.tokenizer import train_sentencepiece
from pap_rec_core.search import candidate_scores, per_sample_loss, slot_gradients, top_candidates

CORPUS = ["history of user_ : recommend next item to the user please"] * 20 + [str(i) for i in range(40)] * 3
ITEMS = ["3", "14", "15", "9", "26", "53", "7"]


@pytest.fixture(scope="module")
def tok() -> RecTokenizer:
    return RecTokenizer(train_sentencepiece(CORPUS, vocab_size=70), ITEMS, ["1", "2", "3"])


@pytest.fixture(scope="module")
def model(tok) -> RecLM:
    torch.manual_seed(0)
    return RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1,
                           num_decoder_layers=1, dropout_rate=0.0)).double().eval()


def _words(tok: RecTokenizer) -> list[int]:
    return [int(i) for i in np.flatnonzero(tok.word_initial_mask())]


def test_layout_places_slots_after_the_key_info(tok) -> None:
    words = _words(tok)
    layout = PromptLayout(n_shared=3, n_personal=1)
    parts = layout.parts(1, np.array([0, 2, 5]), shared=words[:3], personal=[words[3]])
    enc = tok.encode_parts(parts)
    assert len(enc.slots) == 4 and [enc.input_ids[p] for p in enc.slots] == words[:4]
    assert enc.slots == tuple(range(len(enc.input_ids) - 5, len(enc.input_ids) - 1))  # just before </s>
    assert enc.input_ids[-1] == EOS_ID
    key = tok.encode_parts(layout.key_info(1, np.array([0, 2, 5]), None))
    assert enc.input_ids[: len(key.input_ids) - 1] == key.input_ids[:-1]
    words_of_slots = [enc.whole_word_ids[p] for p in enc.slots]
    assert words_of_slots == sorted(set(words_of_slots))  # each slot token is a word of its own
    prefix = tok.encode_parts(PromptLayout(n_shared=3, n_personal=1, position="prefix").parts(
        1, np.array([0, 2, 5]), shared=words[:3], personal=[words[3]]))
    assert prefix.slots == (0, 1, 2, 3)


def test_layout_rejects_wrong_slot_counts_and_direct_without_candidates() -> None:
    with pytest.raises(ValueError, match="2 shared"):
        PromptLayout(n_shared=2).parts(0, np.array([1]), shared=[5])
    with pytest.raises(ValueError, match="candidate list"):
        PromptLayout(task="direct").parts(0, np.array([1]), shared=[5] * 5)
    with pytest.raises(ValueError, match="choose at least one shared or personal token"):
        PromptLayout(n_shared=0)
    with pytest.raises(ValueError, match="cannot be negative"):
        PromptLayout(n_shared=-1, n_personal=2)
    assert PromptLayout.from_dict(PromptLayout(n_personal=2, position="prefix").to_dict()) == PromptLayout(
        n_personal=2, position="prefix")


def test_token_ref_outside_vocabulary_is_an_error(tok) -> None:
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode_parts(["user_", TokenRef(tok.vocab_size)])


def _batch(tok, shared):
    layout = PromptLayout(n_shared=len(shared))
    prompts = [layout.parts(0, np.array([0, 1]), shared=shared), layout.parts(2, np.array([3, 4, 6]), shared=shared)]
    batch = encode_batch(tok, prompts)
    labels = torch.tensor([tok.item_target_ids(2), tok.item_target_ids(5)])
    return batch, labels


def _loss_with(model, batch, labels, row, pos, vector):
    embeds = model.embed(batch.input_ids, batch.whole_word_ids).detach().clone()
    embeds[row, pos] = vector + model.whole_word_embeddings.weight[batch.whole_word_ids[row, pos]]
    with torch.no_grad():
        out = model(batch.attention_mask, inputs_embeds=embeds, labels=labels)
    return per_sample_loss(out.logits, labels)[row]


def test_hotflip_scores_are_the_first_order_loss_change(tok, model) -> None:
    words = _words(tok)
    shared = words[:3]
    batch, labels = _batch(tok, shared)
    grads, losses = slot_gradients(model, batch, labels)
    assert grads.shape == (2, 3, 16) and losses.shape == (2,)
    emb = model.token_embeddings.weight.detach()
    allowed = torch.as_tensor(tok.word_initial_mask())
    for row in range(2):
        for s, pos in enumerate(batch.slots[row].tolist()):
            scores = candidate_scores(grads[row, s], emb, allowed, current=torch.tensor(shared[s]))
            base = _loss_with(model, batch, labels, row, pos, emb[shared[s]])
            assert base.item() == pytest.approx(losses[row].item(), abs=1e-10)
            eps = 1e-3  # T5's layer norm keeps its variance in float32: central differences, not tiny steps
            for v in words:
                if v == shared[s]:
                    assert scores[v] == float("-inf")
                    continue
                step = eps * (emb[v] - emb[shared[s]])
                up = _loss_with(model, batch, labels, row, pos, emb[shared[s]] + step)
                down = _loss_with(model, batch, labels, row, pos, emb[shared[s]] - step)
                directional = (up - down).item() / (2 * eps)  # brute force: d loss along e_v - e_c
                expected = -scores[v].item() - float(grads[row, s] @ emb[shared[s]])
                assert directional == pytest.approx(expected, rel=1e-3, abs=1e-4)
            assert torch.isinf(scores[~allowed]).all()


def test_top_candidates_best_first_ties_by_token_id() -> None:
    scores = torch.tensor([[0.5, 2.0, float("-inf"), 2.0, 1.0]])
    assert top_candidates(scores, 3).tolist() == [[1, 3, 4]]
    with pytest.raises(ValueError, match="only 4 allowed"):
        top_candidates(scores, 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_target_ranks_equal_the_ranks_in_beam_lists(tok, seed) -> None:
    from pap_rec_core.evaluation.metrics import ranks_from_lists
    from pap_rec_core.rlm.beams import beam_rank
    from pap_rec_core.rlm.ranking import score_items
    from pap_rec_core.search.surrogate import beam_target_ranks

    torch.manual_seed(seed)
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1,
                            num_decoder_layers=1, dropout_rate=0.0)).eval()
    with torch.no_grad():  # make </s> after an item uncertain, so that the second step reorders beams
        model.t5.shared.weight[EOS_ID] *= 0.2
    words = _words(tok)
    layout = PromptLayout(n_shared=2)
    rng = np.random.default_rng(seed)
    prompts = [layout.parts(int(rng.integers(3)), rng.choice(7, size=3, replace=False), shared=words[:2])
               for _ in range(12)]
    batch = encode_batch(tok, prompts)
    mask = rng.random((12, 7)) < 0.3
    for beams, top in ((4, 2), (5, 3), (7, 5)):
        lists = beam_rank(model, tok, batch, num_beams=beams, top_n=top)
        for targets in (np.array([lst[0] for lst in lists]), np.array([lst[-1] for lst in lists]),
                        rng.integers(7, size=12)):
            mask_t = mask.copy()
            mask_t[np.arange(12), targets] = False
            expected = ranks_from_lists(lists, targets, [set(np.flatnonzero(m)) for m in mask_t])
            got, loglik = beam_target_ranks(model, tok, batch, targets, mask_t, num_beams=beams, top_n=top)
            assert np.array_equal(got, expected), (beams, top)
            exact = score_items(model, tok, batch, candidates=torch.as_tensor(targets)[:, None])[:, 0]
            assert np.allclose(loglik, exact.numpy(), atol=1e-5)


def test_filling_slots_equals_tokenising_the_prompt(tok) -> None:
    from pap_rec_core.search.slots import SlotPrompts

    words = _words(tok)
    layout = PromptLayout(n_shared=2, n_personal=1)
    users, hists = [0, 2, 1], [np.array([0, 1]), np.array([3, 4, 6, 2]), np.array([5])]
    prompts = SlotPrompts.build(tok, layout, users, hists, [2, 5, 0])
    tokens = torch.tensor([[words[3], words[6], words[1]], [words[5], words[2], words[6]], [words[0], words[0], words[4]]])
    filled = prompts.fill(tokens)
    for r in range(3):
        enc = tok.encode_parts(layout.parts(users[r], hists[r], shared=tokens[r, :2].tolist(),
                                            personal=tokens[r, 2:].tolist()))
        n = len(enc.input_ids)
        assert filled.input_ids[r, :n].tolist() == list(enc.input_ids)
        assert filled.whole_word_ids[r, :n].tolist() == list(enc.whole_word_ids)
        assert filled.attention_mask[r].sum() == n and filled.slots[r].tolist() == list(enc.slots)
    assert filled.input_ids.shape[1] == int(prompts.lengths().max())  # trimmed to the longest prompt
    rows = np.array([2, 0])
    sub = prompts.fill(tokens[rows], rows)
    width = int(prompts.lengths()[rows].max())  # a subset is trimmed to its own longest prompt
    assert sub.input_ids.shape[1] == width
    assert torch.equal(sub.input_ids, filled.input_ids[rows, :width])
    assert torch.equal(sub.attention_mask, filled.attention_mask[rows, :width])
    assert not filled.attention_mask[rows, width:].any()  # only padding was cut
    with pytest.raises(ValueError, match="word-initial"):
        SlotPrompts.build(tok, layout, users, hists, [2, 5, 0], placeholder=int(np.flatnonzero(~tok.word_initial_mask())[3]))


def test_allowed_vocabulary_mask(tok) -> None:
    from pap_rec_core.data import build_interactions
    from pap_rec_core.search.vocab import allowed_token_mask

    data = build_interactions(["a", "a", "b"], ["x", "y", "x"], name="t", source="test")
    loose = allowed_token_mask(tok, data, exclude_untrained=False)
    assert loose.tolist() == tok.word_initial_mask().tolist()
    assert not loose[[0, 1, 2]].any() and not loose[tok.sp_size :].any()  # specials, items and users
    strict = allowed_token_mask(tok, data)
    assert (strict <= loose).all() and strict.sum() < loose.sum()  # pieces absent from the training texts go
    assert strict[tok.encode_text(" user")[0]]  # template words stay
