"""Textual item ids: how items are written in prompts.

P5's preprocessing numbered items consecutively while walking user sequences, so that the next item is
often "the largest id seen so far + 1" — a leak of the answer (P5 PR #3; Hua et al., "How to Index Item
IDs"). We default to a seeded random index; ``sequential`` reproduces P5's scheme and is labelled leaky.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pap_rec_core.data.errors import DataFormatError
from pap_rec_core.data.interactions import InteractionData


class IndexMode(str, Enum):
    RANDOM = "random"  # seeded permutation of 1..I (default; no leakage)
    SEQUENTIAL = "sequential"  # P5's consecutive numbering along user sequences (LEAKY)
    GIVEN = "given"  # the ids as written in the source file

    @property
    def leaky(self) -> bool:
        return self is IndexMode.SEQUENTIAL


@dataclass(frozen=True, eq=False)
class ItemIndex:
    """Maps dense item indices to textual ids (``texts[i]``) and back.

    Example::

        index = build_item_index(data, IndexMode.RANDOM, seed=0)
        index.text_of(0)          # e.g. "1187"
        index.item_of("1187")     # 0
    """

    mode: IndexMode
    seed: int | None
    texts: tuple[str, ...]  # (I,) textual id of each dense item index
    dataset_fingerprint: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", IndexMode(self.mode))
        if len(set(self.texts)) != len(self.texts):
            raise ValueError("textual item ids must be unique")

    @cached_property
    def _lookup(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.texts)}

    def __len__(self) -> int:
        return len(self.texts)

    def text_of(self, item: int) -> str:
        return self.texts[item]

    def item_of(self, text: str) -> int:
        try:
            return self._lookup[text]
        except KeyError:
            raise KeyError(f"no item has textual id {text!r} in this {self.mode.value} index") from None

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "seed": self.seed, "dataset_fingerprint": self.dataset_fingerprint,
                "leaky": self.mode.leaky, "texts": list(self.texts)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ItemIndex":
        return cls(mode=IndexMode(d["mode"]), seed=d["seed"], texts=tuple(d["texts"]),
                   dataset_fingerprint=d["dataset_fingerprint"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path, data: InteractionData | None = None) -> "ItemIndex":
        """Read a saved index; with ``data``, refuse an index built for another dataset."""
        index = cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        if data is not None:
            index.check_matches(data, source=str(path))
        return index

    def check_matches(self, data: InteractionData, source: str = "item index") -> None:
        if len(self.texts) != data.n_items or self.dataset_fingerprint != data.fingerprint():
            raise DataFormatError(
                source,
                f"built for dataset fingerprint {self.dataset_fingerprint} with {len(self.texts)} items, "
                f"but dataset {data.name!r} has fingerprint {data.fingerprint()} and {data.n_items} items",
            )


def build_item_index(data: InteractionData, mode: IndexMode | str = IndexMode.RANDOM, seed: int = 0) -> ItemIndex:
    """Assign textual ids to every item of ``data`` (``random`` ids are a seeded permutation of 1..I)."""
    mode = IndexMode(mode)
    n = data.n_items
    if mode is IndexMode.RANDOM:
        perm = np.random.default_rng(seed).permutation(n) + 1
        texts = tuple(str(int(x)) for x in perm)
    elif mode is IndexMode.SEQUENTIAL:
        numbers = np.zeros(n, dtype=np.int64)
        counter = 0
        for seq in data.sequences:
            for item in seq:
                if numbers[item] == 0:
                    counter += 1
                    numbers[item] = counter
        texts = tuple(str(int(x)) for x in numbers)
    else:
        bad = [t for t in data.item_ids if not t or any(c.isspace() for c in t)]
        if bad:
            raise DataFormatError(data.source, f"item id {bad[0]!r} contains whitespace; use a random index",
                                  field="item_id")
        texts = tuple(str(t) for t in data.item_ids)
    return ItemIndex(mode=mode, seed=seed if mode is IndexMode.RANDOM else None, texts=texts,
                     dataset_fingerprint=data.fingerprint())
