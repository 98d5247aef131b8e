"""Prompts with trigger slots, tokenised once and re-filled by id.

Allowed slot tokens are word-initial pieces, so a slot always starts a word of its own and the
prompt's whole-word ids do not depend on which token fills it. Each prompt is therefore encoded once
with placeholder tokens; trying a candidate is a tensor write at the slot positions, not a new
tokenisation (``SlotPrompts.fill``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from pap_rec_core.prompts.layout import PromptLayout
from pap_rec_core.rlm.batching import EncodedBatch, collate
from pap_rec_core.rlm.tokenizer import RecTokenizer


@dataclass(frozen=True)
class SlotPrompts:
    """A fixed set of prompts (one per row) with ``layout.n_slots`` slots each."""

    base: EncodedBatch  # placeholders in the slots; ``base.slots`` (N, S)
    users: np.ndarray  # (N,) user of each row
    targets: np.ndarray  # (N,) target item of each row (or -1)
    texts: tuple[str, ...] | None = None  # explanation task: each row's reference explanation

    @classmethod
    def build(cls, tokenizer: RecTokenizer, layout: PromptLayout, users: Sequence[int],
              histories: Sequence[np.ndarray | None], targets: Sequence[int],
              candidates: Sequence[np.ndarray | None] | None = None, placeholder: int | None = None, *,
              items: Sequence[int] | None = None, titles: Sequence[str | None] | None = None,
              texts: Sequence[str] | None = None, memo: dict | None = None) -> "SlotPrompts":
        """One prompt per row. The explanation task gives ``items`` (and ``titles``) for the key info
        and ``texts``, the reference explanations (its ``targets`` are then -1). ``memo``: a dict kept by
        the caller across calls with the same tokenizer, layout and placeholder; a prompt encoded before
        (same user, history, candidates, item and title) is taken from it."""
        mask = tokenizer.word_initial_mask()
        placeholder = int(np.flatnonzero(mask)[0]) if placeholder is None else placeholder
        if not mask[placeholder]:
            raise ValueError("the placeholder must be a word-initial piece")
        none = [None] * len(users)
        cands = candidates if candidates is not None else none
        items_, titles_ = items if items is not None else none, titles if titles is not None else none
        def encode(u, h, c, i, t):
            return tokenizer.encode_parts(layout.parts(int(u), h, c, shared=[placeholder] * layout.n_shared,
                                                       personal=[placeholder] * layout.n_personal, item=i, title=t))

        rows = zip(users, histories, cands, items_, titles_)
        if memo is None:
            encoded = [encode(*row) for row in rows]
        else:
            encoded = []
            for u, h, c, i, t in rows:
                key = (int(u), None if h is None else np.asarray(h).tobytes(),
                       None if c is None else np.asarray(c).tobytes(), i, t)
                if key not in memo:
                    memo[key] = encode(u, h, c, i, t)
                encoded.append(memo[key])
        return cls(collate(encoded), np.asarray(users, dtype=np.int64), np.asarray(targets, dtype=np.int64),
                   None if texts is None else tuple(str(x) for x in texts))

    def __len__(self) -> int:
        return len(self.users)

    def fill(self, tokens: torch.Tensor, rows: np.ndarray | slice | None = None) -> EncodedBatch:
        """The prompts of ``rows`` with their slots holding ``tokens`` ((S,) for every row, or (R, S))."""
        rows = slice(None) if rows is None else (torch.as_tensor(rows) if isinstance(rows, np.ndarray) else rows)
        base = self.base
        ids = base.input_ids[rows].clone()
        slots = base.slots[rows]
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        if tokens.ndim == 1:
            tokens = tokens.expand(slots.shape[0], -1)
        ids.scatter_(1, slots, tokens)
        mask = base.attention_mask[rows]
        width = int(mask.sum(1).max()) if len(mask) else 0  # right-padded: the columns after it are padding
        return EncodedBatch(ids[:, :width], base.whole_word_ids[rows][:, :width], mask[:, :width], slots)

    def lengths(self) -> np.ndarray:
        """(N,) tokens of each prompt (its slots included)."""
        return self.base.attention_mask.sum(1).numpy()
