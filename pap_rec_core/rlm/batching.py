"""Batches for the RLM: encoded prompts right-padded into tensors (``EncodedBatch``, ``collate``,
``encode_batch``) and decoder labels (``pad_labels``). Used by training, ranking, the search and the
explanation task alike."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from pap_rec_core.prompts.parts import Part
from pap_rec_core.rlm.tokenizer import PAD_ID, Encoded, RecTokenizer


@dataclass(frozen=True)
class EncodedBatch:
    input_ids: torch.Tensor  # (B, T)
    whole_word_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    slots: torch.Tensor | None = None  # (B, S) positions of the prompts' TokenRef slots (same S for all)
    # (B, T, D) the encoder's states of these prompts when the caller computed them (the fast engine's
    # candidates: rlm.slot_encoder); RecLM.encode_batch returns them instead of running the encoder
    hidden: torch.Tensor | None = None

    def to(self, device: torch.device) -> "EncodedBatch":
        return EncodedBatch(self.input_ids.to(device), self.whole_word_ids.to(device), self.attention_mask.to(device),
                            None if self.slots is None else self.slots.to(device),
                            None if self.hidden is None else self.hidden.to(device))


def pad_labels(targets: Sequence[Sequence[int]]) -> torch.Tensor:
    """(B, L) decoder labels, right-padded with -100 (ignored by the loss)."""
    labels = torch.full((len(targets), max(len(t) for t in targets)), -100, dtype=torch.long)
    for row, target in enumerate(targets):
        labels[row, : len(target)] = torch.as_tensor(target, dtype=torch.long)
    return labels


def collate(encoded: Sequence[Encoded]) -> EncodedBatch:
    """Right-pad a list of encodings."""
    lengths = np.fromiter((len(e.input_ids) for e in encoded), dtype=np.int64, count=len(encoded))
    real = np.arange(int(lengths.max())) < lengths[:, None]  # (B, T) row-major: the rows' tokens in order
    ids = np.full(real.shape, PAD_ID, dtype=np.int64)
    words = np.zeros(real.shape, dtype=np.int64)
    total = int(lengths.sum())
    ids[real] = np.fromiter(itertools.chain.from_iterable(e.input_ids for e in encoded), dtype=np.int64, count=total)
    words[real] = np.fromiter(itertools.chain.from_iterable(e.whole_word_ids for e in encoded), dtype=np.int64,
                              count=total)
    ids, words, mask = torch.from_numpy(ids), torch.from_numpy(words), torch.from_numpy(real.astype(np.int64))
    n_slots = {len(e.slots) for e in encoded}
    if len(n_slots) > 1:
        raise ValueError(f"prompts of one batch must have the same number of slots; got {sorted(n_slots)}")
    slots = torch.tensor([e.slots for e in encoded], dtype=torch.long) if n_slots != {0} else None
    return EncodedBatch(ids, words, mask, slots)


def encode_batch(tokenizer: RecTokenizer, prompts: Sequence[Sequence[Part]]) -> EncodedBatch:
    return collate([tokenizer.encode_parts(p) for p in prompts])
