"""Ranking with an RLM: exact scores against hand computations, beam search against exact scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pap_rec_core.rlm import EOS_ID, PAD_ID, ItemRef, RecLM, RecTokenizer, RLMConfig, UserRef
from pap_rec_core.rlm.batching import encode_batch
from pap_rec_core.rlm.beams import ItemTrie, beam_rank
from pap_rec_core.rlm.ranking import score_items
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
    from pap_rec_core.rlm.beams import beam_top_items

    tok = RecTokenizer(sp_bytes, ITEMS, ["1", "2"])
    model = _model(tok.vocab_size, seed=seed)
    batch = encode_batch(tok, _prompts())
    for beams, top in ((4, 3), (6, 5), (3, 3)):
        assert beam_top_items(model, tok, batch, num_beams=beams, top_n=top) == beam_rank(
            model, tok, batch, num_beams=beams, top_n=top)
    digit = RecTokenizer(sp_bytes, ITEMS, ["1", "2"], item_tokens=False, user_tokens=False)
    digit_model, digit_batch = _model(digit.vocab_size, seed=seed), encode_batch(digit, _prompts())
    for constrained in (True, False):
        assert beam_top_items(digit_model, digit, digit_batch, num_beams=6, top_n=5, constrained=constrained) == \
            beam_rank(digit_model, digit, digit_batch, num_beams=6, top_n=5, constrained=constrained)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_scores_for_targets_rank_every_target_as_the_full_exact_matrix(sp_bytes, seed) -> None:
    import numpy as np

    from pap_rec_core.evaluation.metrics import ranks_from_scores
    from pap_rec_core.rlm.ranking import exact_scores_for_targets

    items = [str(i) for i in range(40)]
    tok = RecTokenizer(sp_bytes, items, ["1", "2"])
    model = _model(tok.vocab_size, seed=seed)
    batch = encode_batch(tok, _prompts())
    full = score_items(model, tok, batch, include_eos=True).numpy()
    pruned_somewhere = False
    rng = np.random.default_rng(seed)
    for target in range(len(items)):
        targets = np.array([target, (target + 7) % len(items)])
        for exclude in (None, rng.random((2, len(items))) < 0.3):
            got = exact_scores_for_targets(model, tok, batch, targets, exclude).numpy()
            np.testing.assert_array_equal(ranks_from_scores(got, targets, exclude),
                                          ranks_from_scores(full, targets, exclude))
            for b, t in enumerate(targets):
                ranked = np.ones(len(items), dtype=bool) if exclude is None else ~exclude[b]
                ranked[t] = True
                at_or_above = (full[b] >= full[b, t]) & ranked  # exact where it can matter
                np.testing.assert_allclose(got[b, at_or_above], full[b, at_or_above], atol=1e-5)
                assert (got[b, ~at_or_above & ranked] < full[b, t]).all()  # bounds stay below the target
                pruned_somewhere |= bool((np.abs(got[b] - full[b]) > 1e-4).any())
    assert pruned_somewhere, "some items must skip their second step"
    digit = RecTokenizer(sp_bytes, ITEMS, ["1", "2"], item_tokens=False, user_tokens=False)
    with pytest.raises(ValueError, match="single-token"):
        exact_scores_for_targets(_model(digit.vocab_size), digit, encode_batch(digit, _prompts()), [0, 1])


@pytest.mark.parametrize("layers", [1, 3])
def test_eos_after_pairs_equals_transformers_decoder_on_start_and_item(sp_bytes, layers) -> None:
    from pap_rec_core.rlm.ranking import eos_after_pairs

    tok = RecTokenizer(sp_bytes, [str(i) for i in range(30)], ["1", "2"])
    torch.manual_seed(layers)
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=2,
                            num_decoder_layers=layers, dropout_rate=0.0)).eval()
    batch = encode_batch(tok, _prompts() + [["history of user_", UserRef(1), " : ", ItemRef(7), " , ", ItemRef(8),
                                             " , ", ItemRef(9), " recommend next item please"]])
    assert (batch.attention_mask == 0).any(), "prompts of different lengths: the padding mask matters"
    start, _ = tok.item_token_range()
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(0, 3, (40,), generator=gen)  # unsorted, repeated rows
    items = torch.randint(0, 30, (40,), generator=gen) + start
    with torch.no_grad():
        hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
        got = eos_after_pairs(model, hidden, batch.attention_mask, rows, items, pair_chunk=7)
        dec = torch.stack([torch.full_like(items, PAD_ID), items], dim=1)
        out = model.t5(encoder_outputs=(hidden[rows],), attention_mask=batch.attention_mask[rows],
                       decoder_input_ids=dec)
        expected = torch.log_softmax(out.logits[:, 1].float(), -1)[:, EOS_ID]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layers,heads", [(1, 2), (3, 4)])
def test_start_and_beam_second_step_logits_equal_transformers_steps(sp_bytes, layers, heads) -> None:
    from pap_rec_core.rlm.cross_attention import start_step_logits
    from pap_rec_core.rlm.decoding import first_step

    tok = RecTokenizer(sp_bytes, [str(i) for i in range(30)], ["1", "2"])
    torch.manual_seed(layers)
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=32, d_kv=6, num_heads=heads, num_layers=2,
                            num_decoder_layers=layers, dropout_rate=0.0)).eval()
    batch = encode_batch(tok, _prompts() + [["history of user_", UserRef(1), " : ", ItemRef(7), " , ", ItemRef(8),
                                             " recommend next item please"]])
    assert (batch.attention_mask == 0).any(), "prompts of different lengths: the padding mask matters"
    with torch.no_grad():
        hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
        expected = first_step(model, hidden, batch.attention_mask).logits[:, -1]
        got = start_step_logits(model, hidden, batch.attention_mask)
        assert not torch.allclose(got[0], got[-1]), "the prompts' logits differ: the cross-attention is exercised"
        from pap_rec_core.rlm.cross_attention import beam_second_step_logits
        from pap_rec_core.rlm.ranking import second_step_logits

        _, start_kv = start_step_logits(model, hidden, batch.attention_mask, with_keys=True)
        beams = torch.randint(3, tok.vocab_size, (len(hidden), 4), generator=torch.Generator().manual_seed(layers))
        second = beam_second_step_logits(model, hidden, batch.attention_mask, start_kv, beams)
        cache = first_step(model, hidden, batch.attention_mask).cache
        expected2 = second_step_logits(model, cache, batch.attention_mask,
                                       torch.arange(len(hidden)).repeat_interleave(4), beams.reshape(-1))
        short = int(batch.attention_mask.sum(1).argmin())
        hidden[short, int(batch.attention_mask[short].sum()):] = 1e3  # padding states must not count
        again = start_step_logits(model, hidden, batch.attention_mask)
        again2 = beam_second_step_logits(model, hidden, batch.attention_mask, start_kv, beams)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again, got)
    torch.testing.assert_close(second.reshape(-1, second.shape[-1]), expected2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again2, second)


@pytest.mark.parametrize("seed", [0, 3, 5, 8, 11])
def test_unconstrained_beam_top_items_give_the_lists_of_plain_generate(sp_bytes, seed) -> None:
    from pap_rec_core.evaluation.metrics import ranks_from_lists
    from pap_rec_core.rlm.beams import NOT_AN_ITEM, beam_top_items, plain_beam_lists

    tok = RecTokenizer(sp_bytes, [str(i) for i in range(25)], ["1", "2"])
    model = _model(tok.vocab_size, seed=seed)
    batch = encode_batch(tok, _prompts())
    start, stop = tok.item_token_range()
    # an output bias towards items and </s>, so that plain beams mix items, </s> at step 1, item-item and
    # word outputs (a random model alone emits words, and every list would be empty)
    bias = torch.zeros(tok.vocab_size)
    bias[start:stop], bias[EOS_ID] = 3.0, 5.0 + 0.5 * (seed % 3)  # lists of 0-5 items, </s> and junk among them
    model.t5.lm_head.weight = torch.nn.Parameter(model.t5.lm_head.weight.detach().clone())  # untied
    model.t5.lm_head.bias = torch.nn.Parameter(bias)
    lengths, places, skipped = [], 0, 0
    for beams, top in ((20, 5), (6, 5), (4, 3), (3, 3)):
        fast = beam_top_items(model, tok, batch, num_beams=beams, top_n=top, constrained=False)
        assert fast == beam_rank(model, tok, batch, num_beams=beams, top_n=top, constrained=False), (beams, top)
        lengths += [len(x) for x in fast]
        placed = beam_top_items(model, tok, batch, num_beams=beams, top_n=top, constrained=False, keep_places=True)
        assert placed == beam_rank(model, tok, batch, num_beams=beams, top_n=top, constrained=False,
                                   keep_places=True), (beams, top)
        for items, kept in zip(fast, placed):  # every returned sequence has its place; items in the same order
            assert len(kept) == top and [i for i in kept if i >= 0] == items
            assert all(kept[p] == NOT_AN_ITEM - p for p in range(top) if kept[p] < 0)
        listed = [next((i for i in kept if i >= 0), 0) for kept in placed]  # a listed item (or 0) per prompt
        unlisted = [next(i for i in range(25) if i not in kept) for kept in placed]
        for targets in (listed, unlisted):  # the second step only where the target is a running beam: same ranks
            lists, missed = plain_beam_lists(model, tok, batch, beams, top, keep_places=True, targets=targets)
            np.testing.assert_array_equal(np.where(missed, np.inf, ranks_from_lists(lists, targets, None)),
                                          ranks_from_lists(placed, targets, None))
            assert all(lists[b] == placed[b] for b, gone in enumerate(missed) if not gone)
        skipped += sum(plain_beam_lists(model, tok, batch, beams, top, targets=unlisted)[1])
        places += sum(any(i < 0 for i in kept[: last]) for kept in placed  # a non-item before an item
                      for last in [max((p for p, i in enumerate(kept) if i >= 0), default=0)])
    assert max(lengths) > 0, "the lists hold items: the comparison is not between empty lists"
    assert places > 0, "non-item outputs come before items: keeping their places moves ranks"
    assert skipped > 0, "some prompts skip their second step: the shortcut is exercised"


# ----------------------------------------------------------------------------------------------------
# Digit-text items (P5 checkpoints): the item trie and the beam search replay

DIGIT_SP_CORPUS = ["history of user_ : recommend next item"] * 20 + [str(i) for i in range(10)] * 5


@pytest.fixture(scope="module")
def digit_sp() -> bytes:
    """A SentencePiece model with few number pieces: item ids of 1-3 digits are 1-4 pieces + </s>."""
    return train_sentencepiece(DIGIT_SP_CORPUS, vocab_size=45)


def _digit_setup(digit_sp, n_items: int, seed: int, layers: int = 2):
    tok = RecTokenizer(digit_sp, [str(13 * i + 3) for i in range(n_items)], ["1", "2", "3"], item_tokens=False,
                       user_tokens=False)
    torch.manual_seed(seed)
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=layers,
                            num_decoder_layers=layers, dropout_rate=0.0)).eval()
    prompts = [["history of user_", UserRef(u % 3), " : ", ItemRef(1 + u), " , ", ItemRef(2)]
               + [" , ", ItemRef(3)] * u + [" recommend next item"] for u in range(5)]  # padded to different lengths
    return tok, model, encode_batch(tok, prompts)


@pytest.mark.parametrize("layers", [1, 3])
def test_trie_scores_equal_teacher_forcing_of_every_item(digit_sp, layers) -> None:
    from pap_rec_core.rlm.decoding import TrieTable, trie_item_scores
    from pap_rec_core.rlm.ranking import item_sequences

    tok, model, batch = _digit_setup(digit_sp, 150, seed=layers, layers=layers)
    lengths = {len(s) for s in item_sequences(tok)}
    assert len(lengths) >= 3, "items of several lengths: prefixes are shared and items end at several depths"
    teacher = score_items(model, tok, batch, trie=False)
    assert torch.allclose(score_items(model, tok, batch), teacher, atol=1e-5)
    with torch.no_grad():  # prompts split into groups of one
        hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
        grouped = trie_item_scores(model, hidden, batch.attention_mask,
                                   TrieTable.build(item_sequences(tok), tok.vocab_size), row_budget=1)
    assert torch.allclose(grouped, teacher, atol=1e-5)


@pytest.mark.parametrize(("n_items", "beams", "constrained"),
                         [(6, 20, True), (6, 3, False), (150, 20, True), (150, 20, False), (150, 2, True),
                          (40, 5, True), (40, 5, False)])
@pytest.mark.parametrize("seed", [0, 1])
def test_beam_search_replay_returns_generates_sequences(digit_sp, n_items, beams, constrained, seed) -> None:
    """The replay equals transformers' beam search token for token, with the trie and without, on
    catalogues smaller than the beams (where transformers fills slots with junk) and larger."""
    from transformers.modeling_outputs import BaseModelOutput

    from pap_rec_core.rlm.beam_replay import beam_search_sequences
    from pap_rec_core.rlm.decoding import TrieTable
    from pap_rec_core.rlm.ranking import item_sequences

    tok, model, batch = _digit_setup(digit_sp, n_items, seed)
    seqs = item_sequences(tok)
    trie, longest, ret = ItemTrie(seqs), max(len(s) for s in seqs), min(beams, 10)
    with torch.no_grad():
        hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids)
        ref = model.t5.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=batch.attention_mask,
            num_beams=beams, num_return_sequences=ret, max_new_tokens=longest, early_stopping=True, do_sample=False,
            prefix_allowed_tokens_fn=(lambda b, ids: trie.allowed(ids.tolist()[1:])) if constrained else None,
            decoder_start_token_id=PAD_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID).view(5, ret, -1)
        got = beam_search_sequences(model, hidden, batch.attention_mask, beams, ret, longest,
                                    TrieTable.build(seqs, tok.vocab_size) if constrained else None)
    assert torch.equal(got[:, :, : ref.shape[2]], ref)
    assert (got[:, :, ref.shape[2]:] == EOS_ID).all()  # (transformers cuts the fill after the longest output)


@pytest.mark.parametrize("constrained", [True, False])
def test_first_beam_step_from_one_start_row_equals_the_copies_top(constrained) -> None:
    """The replay's first step takes the top ``2 * beams`` from one start row per prompt; it must equal the
    top of transformers' ``beams`` copies (the others at -1e9) value for value and index for index, on
    prompts with a tie in the top, with fewer allowed tokens than the top needs, and plain ones."""
    import torch.nn.functional as F

    from pap_rec_core.rlm.beam_replay import _first_top
    from pap_rec_core.rlm.decoding import TrieTable

    beams, keep, vocab = 4, 8, 60
    gen = torch.Generator().manual_seed(0)
    start = torch.randn((6, vocab), generator=gen)
    start[1, 7] = start[1, 9] = start[1].max() + 1.0  # a tie at the top
    seqs = [(t, 1) for t in range(2, 40)] + [(40, 41, 1)]
    table = TrieTable.build(seqs, vocab) if constrained else None
    running = torch.zeros((6, beams))
    running[:, 1:] = -1.0e9
    got_lp, got_idx = _first_top(start, running, table, keep)
    copies = F.log_softmax(start[:, None].expand(-1, beams, -1), dim=-1)
    if table is not None:
        copies = copies + table.allowed_mask(torch.zeros(6 * beams, dtype=torch.long), vocab).view(6, beams, vocab)
    want_lp, want_idx = torch.topk((copies + running[:, :, None]).reshape(6, -1), keep)
    assert torch.equal(got_lp, want_lp) and torch.equal(got_idx, want_idx)
    short = TrieTable.build([(t, 1) for t in range(2, 6)], vocab)  # 4 allowed tokens: the copies fill the top
    got_lp, got_idx = _first_top(start, running, short, keep)
    copies = F.log_softmax(start[:, None].expand(-1, beams, -1), dim=-1) + short.allowed_mask(
        torch.zeros(6 * beams, dtype=torch.long), vocab).view(6, beams, vocab)
    want_lp, want_idx = torch.topk((copies + running[:, :, None]).reshape(6, -1), keep)
    assert torch.equal(got_lp, want_lp) and torch.equal(got_idx, want_idx)
    assert (got_idx >= vocab).any(), "with 4 allowed tokens the top reaches the other copies"


def test_beam_lists_keep_items_shorter_than_the_longest_output(digit_sp) -> None:
    """transformers fills a hypothesis shorter than the longest returned one with </s>: the reading stops at
    the first </s>, so short items are not dropped (20 beams over 150 valid items: 5 items per list)."""
    from pap_rec_core.rlm.beams import beam_top_items
    from pap_rec_core.rlm.ranking import item_sequences

    tok, model, batch = _digit_setup(digit_sp, 150, seed=0)
    lists = beam_rank(model, tok, batch, num_beams=20, top_n=5)
    assert all(len(items) == 5 for items in lists)
    lengths = {len(item_sequences(tok)[i]) for items in lists for i in items}
    assert len(lengths) > 1, "the lists mix item lengths"
    assert beam_top_items(model, tok, batch, num_beams=20, top_n=5) == lists


def test_trie_table_steps_and_masks_as_the_item_trie() -> None:
    from pap_rec_core.rlm.decoding import INVALID, TrieTable

    seqs = [(5, 6, 1), (5, 7, 1), (8, 1)]
    table, trie = TrieTable.build(seqs, vocab=10), ItemTrie(seqs)
    for prefix in ([], [5], [5, 6], [5, 6, 1], [8, 1], [9], [5, 9, 1], [8, 1, 0]):
        node = torch.zeros(1, dtype=torch.long)
        for t in prefix:
            node = table.step(node, torch.tensor([t]))
        allowed = torch.nonzero(table.allowed_mask(node, 10)[0] == 0).flatten().tolist()
        assert allowed == sorted(trie.allowed(prefix)), prefix
    assert table.step(torch.tensor([0]), torch.tensor([9])).item() == INVALID
    for item, seq in enumerate(seqs):  # each item's </s> node is where its tokens lead
        node = torch.zeros(1, dtype=torch.long)
        for t in seq:
            node = table.step(node, torch.tensor([t]))
        assert table.item_leaf[item] == node.item() and table.depth[node.item()] == len(seq)


def test_replayed_lists_with_targets_stop_early_and_keep_every_listed_target(digit_sp) -> None:
    """A prompt whose target cannot be listed stops early; every other prompt's list is generate's, so the
    target's rank is the same as in generate's list for every prompt (under the trie; plain beams of a
    random model list no items, so there the ranks are compared only)."""
    from pap_rec_core.evaluation.metrics import ranks_from_lists
    from pap_rec_core.rlm.beams import replayed_beam_lists

    tok, model, batch = _digit_setup(digit_sp, 150, seed=3)
    reference = beam_rank(model, tok, batch, num_beams=20, top_n=5)
    assert all(len(items) == 5 for items in reference)
    listed = [items[b] for b, items in enumerate(reference)]  # ranks 1..5
    unlisted = [next(i for i in range(150) if i not in items) for items in reference]
    for targets in (listed, unlisted):
        lists, missed = replayed_beam_lists(model, tok, batch, 20, 5, True, targets=targets)
        ranks = np.where(missed, np.inf, ranks_from_lists(lists, targets, None))
        np.testing.assert_array_equal(ranks, ranks_from_lists(reference, targets, None))
        for b, gone in enumerate(missed):
            assert gone or lists[b] == reference[b]
        assert (not any(missed)) if targets is listed else sum(missed) >= 3, "prompts stop early when out"
    plain = beam_rank(model, tok, batch, num_beams=20, top_n=5, constrained=False)
    lists, missed = replayed_beam_lists(model, tok, batch, 20, 5, False, targets=unlisted)
    np.testing.assert_array_equal(np.where(missed, np.inf, ranks_from_lists(lists, unlisted, None)),
                                  ranks_from_lists(plain, unlisted, None))
    placed, _ = replayed_beam_lists(model, tok, batch, 20, 5, False, keep_places=True)  # the public code's places
    assert placed == beam_rank(model, tok, batch, num_beams=20, top_n=5, constrained=False, keep_places=True)
    assert all(len(kept) == 5 for kept in placed)


@pytest.mark.parametrize("layers,lengths", [(1, (2, 2, 2)), (3, (4, 2, 3))])
def test_teacher_forced_logits_and_their_gradients_equal_transformers(sp_bytes, layers, lengths) -> None:
    from pap_rec_core.rlm.batching import pad_labels
    from pap_rec_core.rlm.cross_attention import teacher_forced_logits

    tok = RecTokenizer(sp_bytes, [str(i) for i in range(30)], ["1", "2"])
    torch.manual_seed(layers)
    model = RecLM(RLMConfig(vocab_size=tok.vocab_size, d_model=16, d_ff=32, d_kv=6, num_heads=3, num_layers=1,
                            num_decoder_layers=layers, dropout_rate=0.0)).eval()
    batch = encode_batch(tok, _prompts() + [["history of user_", UserRef(1), " : ", ItemRef(7), " recommend"]])
    assert (batch.attention_mask == 0).any()
    labels = pad_labels([[5 + i for i in range(n - 1)] + [EOS_ID] for n in lengths])  # -100 padding when lengths differ
    hidden = model.encode(batch.attention_mask, batch.input_ids, batch.whole_word_ids).detach()
    grads = []
    for run in ("transformers", "ours"):
        h = hidden.clone().requires_grad_(True)
        logits = (model.t5(encoder_outputs=(h,), attention_mask=batch.attention_mask, labels=labels).logits
                  if run == "transformers" else teacher_forced_logits(model, h, batch.attention_mask, labels))
        (torch.log_softmax(logits, -1)[..., EOS_ID] * (labels != -100)).sum().backward()
        grads.append((logits.detach(), h.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[1][1], grads[0][1], atol=1e-6, rtol=1e-5)
    assert grads[0][1].abs().sum() > 0
