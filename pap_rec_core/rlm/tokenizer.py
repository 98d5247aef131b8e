"""``RecTokenizer``: T5-compatible SentencePiece ids plus optional single-token item and user ids.

Id layout (``vocab_size = sp_size + n_item_tokens + n_user_tokens``)::

    0 <pad>   1 </s>   2 <unk>   3 .. sp_size-1  SentencePiece pieces      (same ids as T5's spiece.model)
    sp_size .. sp_size+I-1                        one token per item       (when item_tokens)
    sp_size+I .. sp_size+I+U-1                    one token per user       (when user_tokens)

RLMs trained here use single-token items/users (faster and, in our calibration, better); P5
checkpoints use digit text ("user_23", "45 , 67"), which is plain SentencePiece text. Prompts are
given as *parts*: strings and :class:`ItemRef`/:class:`UserRef`, so that ids never have to be parsed
back out of text. Whole-word ids follow P5: a new word starts at every piece beginning with "▁" (and
at every id token preceded by whitespace), words are numbered from 1, ``</s>`` gets 0.
"""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pap_rec_core.prompts.parts import ItemRef, ListSeparator, Part, TokenRef, UserRef

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
MAX_WHOLE_WORDS = 512  # P5: nn.Embedding(512, d_model)
MAX_TEXT_TARGET = 64  # pieces of a text target (explanation) kept in training and search
SPIECE_FILE = "spiece.model"
TOKENIZER_FILE = "rec_tokenizer.json"


P5_ITEM_SEPARATOR = " , "  # P5 joins item ids with " , "
TEXT_CACHE_MAX_CHARS = 64  # text parts up to this length (template words, separators) are encoded once


@dataclass(frozen=True)
class Encoded:
    """Token ids (ending in ``</s>``) and their whole-word ids, same length; ``slots``: the positions
    of the prompt's :class:`TokenRef` parts, in order."""

    input_ids: tuple[int, ...]
    whole_word_ids: tuple[int, ...]
    slots: tuple[int, ...] = ()


class RecTokenizer:
    """SentencePiece text + id tokens. See the module docstring for the id layout.

    Example::

        tok = RecTokenizer.load("models/ml-100k-demo/tokenizer")
        enc = tok.encode_parts(["user_", UserRef(3), " : \\n ", ItemRef(10), " , ", ItemRef(7)])
        enc.input_ids, enc.whole_word_ids
    """

    def __init__(self, sp_model: bytes, item_texts: Sequence[str] | None, user_texts: Sequence[str] | None,
                 item_tokens: bool = True, user_tokens: bool = True, item_separator: str = P5_ITEM_SEPARATOR):
        import sentencepiece as spm

        self.item_separator = str(item_separator)
        self._pieces_of: dict[str, list[int]] = {}  # short texts (template words) -> pieces

        self._sp_bytes = sp_model
        self.sp = spm.SentencePieceProcessor(model_proto=sp_model)
        if (self.sp.pad_id(), self.sp.eos_id(), self.sp.unk_id()) != (PAD_ID, EOS_ID, UNK_ID):
            raise ValueError(f"SentencePiece model must use T5 ids pad=0, eos=1, unk=2; has pad={self.sp.pad_id()}, "
                             f"eos={self.sp.eos_id()}, unk={self.sp.unk_id()}")
        self.item_texts = tuple(item_texts or ())
        self.user_texts = tuple(user_texts or ())
        self.item_tokens = item_tokens and bool(self.item_texts)
        self.user_tokens = user_tokens and bool(self.user_texts)
        self.sp_size = self.sp.get_piece_size()
        self.item_offset = self.sp_size
        self.user_offset = self.sp_size + (len(self.item_texts) if self.item_tokens else 0)
        self.vocab_size = self.user_offset + (len(self.user_texts) if self.user_tokens else 0)
        starts = np.zeros(self.vocab_size, dtype=bool)
        for i in range(self.sp_size):
            starts[i] = self.sp.id_to_piece(i).startswith("▁")
        starts[[PAD_ID, EOS_ID, UNK_ID]] = False
        self._piece_starts_word = starts

    # -- ids ------------------------------------------------------------------------------------
    def item_token(self, item: int) -> int:
        if not self.item_tokens:
            raise ValueError("this tokenizer writes items as text (no item tokens)")
        return self.item_offset + item

    def item_token_range(self) -> tuple[int, int]:
        """[start, stop) of item token ids."""
        return (self.item_offset, self.item_offset + len(self.item_texts)) if self.item_tokens else (0, 0)

    def word_initial_mask(self) -> np.ndarray:
        """(vocab,) True for SentencePiece pieces starting with "▁" (the search's allowed vocabulary)."""
        mask = self._piece_starts_word.copy()
        mask[self.sp_size:] = False
        return mask

    def item_target_ids(self, item: int) -> tuple[int, ...]:
        """Decoder target of one item: its token(s) then ``</s>``."""
        if self.item_tokens:
            return (self.item_token(item), EOS_ID)
        return tuple(self.sp.encode(self.item_texts[item])) + (EOS_ID,)

    def text_target_ids(self, text: str, max_tokens: int = MAX_TEXT_TARGET) -> tuple[int, ...]:
        """Decoder target of a text (an explanation, a rating): its first ``max_tokens`` pieces, ``</s>``."""
        return tuple(self.sp.encode(text or "")[:max_tokens]) + (EOS_ID,)

    # -- encoding -------------------------------------------------------------------------------
    def encode_text(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_parts(self, parts: Iterable[Part], max_length: int | None = None) -> Encoded:
        """Encode prompt parts and append ``</s>``. A prompt longer than ``max_length`` is an error: callers
        shorten *histories* before rendering, so that key info and template words always survive."""
        ids: list[int] = []
        starts: list[bool] = []
        slots: list[int] = []
        text_buf: list[str] = []
        prev_text = ""

        def flush() -> None:
            nonlocal prev_text
            if text_buf:
                text = "".join(text_buf)
                pieces = self._pieces(text)
                ids.extend(pieces)
                starts.extend(bool(self._piece_starts_word[p]) for p in pieces)
                prev_text = text
                text_buf.clear()

        parts = parts if isinstance(parts, (list, tuple)) else list(parts)
        n_parts, at = len(parts), 0
        while at < n_parts:
            part = parts[at]
            at += 1
            if self.item_tokens and type(part) is ItemRef:  # a list of items: ItemRef (ListSeparator ItemRef)*
                flush()
                stop = at
                while stop + 1 < n_parts and type(parts[stop]) is ListSeparator and type(parts[stop + 1]) is ItemRef:
                    stop += 2
                starts.append(prev_text == "" or prev_text[-1].isspace())
                self._extend_item_run(ids, starts, part.item, parts, at, stop)
                at, prev_text = stop, "x"
                continue
            if isinstance(part, str):
                text_buf.append(part)
            elif isinstance(part, ListSeparator):
                text_buf.append(self.item_separator)
            elif isinstance(part, ItemRef):
                if self.item_tokens:
                    flush()
                    ids.append(self.item_offset + part.item)
                    starts.append(prev_text == "" or prev_text[-1].isspace())
                    prev_text = "x"  # an id token: the next text continues after it
                else:
                    text_buf.append(self.item_texts[part.item])
            elif isinstance(part, UserRef):
                if self.user_tokens:
                    flush()
                    ids.append(self.user_offset + part.user)
                    starts.append(prev_text == "" or prev_text[-1].isspace())
                    prev_text = "x"
                else:
                    text_buf.append(self.user_texts[part.user])
            elif isinstance(part, TokenRef):
                if not 0 <= part.token < self.vocab_size:
                    raise ValueError(f"token id {part.token} outside the vocabulary (size {self.vocab_size})")
                flush()
                slots.append(len(ids))
                ids.append(int(part.token))
                starts.append(bool(self._piece_starts_word[part.token]) or prev_text == "" or prev_text[-1].isspace())
                prev_text = "x"
            else:
                raise TypeError(f"prompt part of unexpected type {type(part).__name__}")
        flush()
        if max_length is not None and len(ids) + 1 > max_length:
            raise ValueError(f"prompt of {len(ids) + 1} tokens exceeds max_length={max_length}")
        words = whole_word_ids_from_starts(starts)
        return Encoded(tuple(ids) + (EOS_ID,), tuple(words) + (0,), tuple(slots))

    def _extend_item_run(self, ids: list[int], starts: list[bool], first: int, parts: Sequence[Part], begin: int,
                         stop: int) -> None:
        """Appends item token ``first`` and, for every (separator, item) pair in ``parts[begin:stop]``, the
        separator's pieces and the item's token, to ``ids`` and the word starts of all but ``first`` to
        ``starts``: what the part-by-part loop of :meth:`encode_parts` writes for them (a separator is text
        flushed before the next id token, after which that token starts a word if the separator ends in
        whitespace or is empty), in one pass over the run."""
        sep = self.item_separator
        sep_ids = self._pieces(sep)
        sep_starts = [bool(self._piece_starts_word[p]) for p in sep_ids]
        offset = self.item_offset
        ids.append(offset + first)
        n = (stop - begin) // 2
        if not n:
            return
        items = [offset + parts[k].item for k in range(begin + 1, stop, 2)]
        item_start = sep == "" or sep[-1].isspace()
        if sep_ids:
            width = len(sep_ids) + 1
            run = [0] * (n * width)
            for j, p in enumerate(sep_ids):
                run[j::width] = [p] * n
            run[width - 1 :: width] = items
            ids.extend(run)
            starts.extend((sep_starts + [item_start]) * n)
        else:
            ids.extend(items)
            starts.extend([item_start] * n)

    def _pieces(self, text: str) -> list[int]:
        """SentencePiece ids of ``text``; short texts are encoded once (prompts repeat their template
        words and separators thousands of times in training)."""
        if len(text) > TEXT_CACHE_MAX_CHARS:
            return self.sp.encode(text)
        pieces = self._pieces_of.get(text)
        if pieces is None:
            pieces = self._pieces_of[text] = self.sp.encode(text)
        return pieces

    def decode(self, ids: Sequence[int]) -> str:
        out: list[str] = []
        buf: list[int] = []
        for i in ids:
            i = int(i)
            if i in (PAD_ID, EOS_ID):
                continue
            if i < self.sp_size:
                buf.append(i)
                continue
            if buf:
                out.append(self.sp.decode(buf))
                buf = []
            out.append(self.token_text(i))
        if buf:
            out.append(self.sp.decode(buf))
        return " ".join(s for s in out if s)

    def token_text(self, token_id: int) -> str:
        """Human-readable form of one token: a piece, ``item:<id>`` or ``user:<id>``."""
        if token_id < self.sp_size:
            return self.sp.id_to_piece(int(token_id))
        if token_id < self.user_offset:
            return self.item_texts[token_id - self.item_offset]
        return "user_" + self.user_texts[token_id - self.user_offset]

    # -- persistence ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / SPIECE_FILE).write_bytes(self._sp_bytes)
        meta = {"item_tokens": self.item_tokens, "user_tokens": self.user_tokens, "item_separator": self.item_separator,
                "item_texts": list(self.item_texts), "user_texts": list(self.user_texts),
                "vocab_size": self.vocab_size, "sp_size": self.sp_size}
        (directory / TOKENIZER_FILE).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, item_texts: Sequence[str] | None = None,
             user_texts: Sequence[str] | None = None) -> "RecTokenizer":
        """Our saved tokenizer, or a plain T5 tokenizer directory (``spiece.model`` only: P5 checkpoints,
        ids as digit text; pass the dataset's ``item_texts``/``user_texts`` to render them)."""
        directory = Path(directory)
        model_path = directory / SPIECE_FILE
        if not model_path.is_file():
            raise FileNotFoundError(f"no {SPIECE_FILE} in tokenizer directory {directory}")
        meta_path = directory / TOKENIZER_FILE
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            tok = cls(model_path.read_bytes(), meta["item_texts"], meta["user_texts"], meta["item_tokens"],
                      meta["user_tokens"], meta.get("item_separator", P5_ITEM_SEPARATOR))
            if tok.vocab_size != meta["vocab_size"]:
                raise ValueError(f"{meta_path}: vocab_size {meta['vocab_size']} recorded, {tok.vocab_size} rebuilt")
            return tok
        return cls(model_path.read_bytes(), item_texts, user_texts, item_tokens=False, user_tokens=False)


def whole_word_ids_from_starts(starts: Sequence[bool]) -> list[int]:
    """P5's whole-word numbering: a counter bumped at each word start; capped at MAX_WHOLE_WORDS-1."""
    if not len(starts):
        return []
    words = list(itertools.accumulate(starts[1:], initial=1))  # the first piece opens word 1 either way
    if words[-1] >= MAX_WHOLE_WORDS:
        words = [min(w, MAX_WHOLE_WORDS - 1) for w in words]
    return words


def train_sentencepiece(corpus: Iterable[str], vocab_size: int = 2000) -> bytes:
    """Train a unigram SentencePiece model with T5's special ids (pad 0, eos 1, unk 2); returns its bytes.

    ``vocab_size`` is an upper bound (small corpora yield fewer pieces). Single-threaded on an unshuffled
    corpus, so the same corpus gives the same model.
    """
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(corpus)), model_writer=buf, vocab_size=vocab_size, model_type="unigram",
        pad_id=PAD_ID, eos_id=EOS_ID, unk_id=UNK_ID, bos_id=-1, hard_vocab_limit=False,
        character_coverage=1.0, num_threads=1, minloglevel=2,
        input_sentence_size=0, shuffle_input_sentence=False,
    )
    return buf.getvalue()
