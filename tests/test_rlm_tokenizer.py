"""RecTokenizer: T5 ids, id tokens, P5 whole-word ids, digit-text mode, persistence."""

from __future__ import annotations

import pytest

from pap_rec_core.rlm.tokenizer import (
    EOS_ID,
    PAD_ID,
    UNK_ID,
    ItemRef,
    RecTokenizer,
    UserRef,
    train_sentencepiece,
    whole_word_ids_from_starts,
)

CORPUS = ["Here is the purchase history list of user_ : try to recommend next item to the user"] * 30 + [
    str(i) for i in range(200)] * 3 + ["Toy Story Animation Comedy", "GoldenEye Action Thriller"] * 10


@pytest.fixture(scope="module")
def sp_bytes() -> bytes:
    return train_sentencepiece(CORPUS, vocab_size=120)


@pytest.fixture(scope="module")
def tok(sp_bytes) -> RecTokenizer:
    return RecTokenizer(sp_bytes, item_texts=["17", "5", "230"], user_texts=["1", "2"])


def test_sentencepiece_is_deterministic_with_t5_special_ids(sp_bytes) -> None:
    assert train_sentencepiece(CORPUS, vocab_size=120) == sp_bytes
    t = RecTokenizer(sp_bytes, None, None)
    assert (t.sp.pad_id(), t.sp.eos_id(), t.sp.unk_id()) == (PAD_ID, EOS_ID, UNK_ID) == (0, 1, 2)
    assert t.vocab_size == t.sp_size and not t.item_tokens


def test_id_layout(tok) -> None:
    assert tok.item_offset == tok.sp_size
    assert tok.user_offset == tok.sp_size + 3
    assert tok.vocab_size == tok.sp_size + 5
    assert tok.item_token_range() == (tok.sp_size, tok.sp_size + 3)
    assert tok.item_target_ids(2) == (tok.sp_size + 2, EOS_ID)
    assert tok.token_text(tok.sp_size + 1) == "5" and tok.token_text(tok.user_offset + 1) == "user_2"


def test_encode_parts_whole_words(tok) -> None:
    enc = tok.encode_parts(["user_", UserRef(1), " : \n ", ItemRef(0), " , ", ItemRef(2)])
    ids, words = enc.input_ids, enc.whole_word_ids
    assert ids[-1] == EOS_ID and words[-1] == 0 and len(ids) == len(words)
    user_pos = ids.index(tok.user_offset + 1)
    item0, item2 = ids.index(tok.item_offset), ids.index(tok.item_offset + 2)
    # "user_" + the user token form one word (P5: user_23 is one word); each item starts a new word
    assert words[user_pos] == words[user_pos - 1] == words[0] == 1
    assert words[item0] > words[user_pos] and words[item2] > words[item0]
    assert words == tuple(sorted(words[:-1])) + (0,)  # non-decreasing, then 0 for </s>


def test_digit_mode_equals_plain_sentencepiece(sp_bytes) -> None:
    digits = RecTokenizer(sp_bytes, item_texts=["17", "5", "230"], user_texts=["1", "2"], item_tokens=False,
                          user_tokens=False)
    enc = digits.encode_parts(["user_", UserRef(1), " : \n ", ItemRef(0), " , ", ItemRef(2)])
    assert list(enc.input_ids[:-1]) == digits.sp.encode("user_2 : \n 17 , 230")
    assert digits.item_target_ids(2) == tuple(digits.sp.encode("230")) + (EOS_ID,)
    assert digits.vocab_size == digits.sp_size


@pytest.mark.parametrize("separator", [" , ", "", ",", " ", " ,"])
def test_item_lists_encode_as_their_parts_one_by_one(sp_bytes, separator) -> None:
    """A run of items (ItemRef, separator, ItemRef, ...) is written in one pass: the same ids and whole-word
    ids as when every part goes through the part-by-part loop (an empty text after each item breaks the run
    there and adds nothing to the text), for separators with and without whitespace, empty, and lists of
    one item; a slot and text around the list."""
    from pap_rec_core.prompts.parts import ITEM_SEPARATOR, TokenRef
    from pap_rec_core.prompts.render import item_list_parts

    t = RecTokenizer(sp_bytes, item_texts=["17", "5", "230"], user_texts=["1", "2"], item_separator=separator)
    for items in ([0], [2, 0], [1, 1, 2, 0, 2], []):
        listed = item_list_parts(items)
        assert listed == [p for i in items for p in (ITEM_SEPARATOR, ItemRef(i))][1:]
        for before, after in (([" : \n "], [" \n "]), ([], []), (["x"], ["y", TokenRef(5)])):
            parts = ["user_", UserRef(1), *before, *listed, *after]
            one_by_one = [q for p in parts for q in ((p, "") if isinstance(p, ItemRef) else (p,))]
            assert t.encode_parts(parts) == t.encode_parts(one_by_one)
            if items:
                assert t.encode_parts(parts).input_ids.count(t.item_offset + items[-1]) == items.count(items[-1])


def test_whole_word_numbering_caps_at_511() -> None:
    assert whole_word_ids_from_starts([True, False, True, True]) == [1, 1, 2, 3]
    assert whole_word_ids_from_starts([False, False]) == [1, 1]
    assert whole_word_ids_from_starts([True] * 600)[-1] == 511
    assert whole_word_ids_from_starts([False] + [True] * 600) == [1] + list(range(2, 512)) + [511] * 90
    assert whole_word_ids_from_starts([]) == []


def test_word_initial_mask_excludes_specials_and_id_tokens(tok) -> None:
    mask = tok.word_initial_mask()
    assert mask.shape == (tok.vocab_size,)
    assert not mask[[PAD_ID, EOS_ID, UNK_ID]].any() and not mask[tok.sp_size:].any()
    assert all(tok.sp.id_to_piece(int(i)).startswith("▁") for i in mask.nonzero()[0])


def test_decode_renders_item_tokens(tok) -> None:
    enc = tok.encode_parts(["try ", ItemRef(1)])
    assert tok.decode(enc.input_ids).endswith("5")


def test_save_load_round_trip_and_plain_t5_dir(tok, tmp_path) -> None:
    tok.save(tmp_path / "t")
    back = RecTokenizer.load(tmp_path / "t")
    parts = ["user_", UserRef(0), " : ", ItemRef(1)]
    assert back.encode_parts(parts) == tok.encode_parts(parts) and back.vocab_size == tok.vocab_size
    (tmp_path / "t" / "rec_tokenizer.json").unlink()  # what a T5 tokenizer directory looks like
    plain = RecTokenizer.load(tmp_path / "t", item_texts=["17", "5", "230"], user_texts=["1", "2"])
    assert not plain.item_tokens and plain.vocab_size == plain.sp_size
    with pytest.raises(FileNotFoundError, match="spiece.model"):
        RecTokenizer.load(tmp_path / "missing")
