"""``InteractionData``: the one in-memory form of every dataset, whatever file format it came from."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pap_rec_core.data.errors import UnknownUserError

log = logging.getLogger(__name__)

NO_GENRE = {"unknown", ""}  # genre values that name no genre


@dataclass(frozen=True, eq=False)
class InteractionData:
    """Users, items and each user's time-ordered interaction sequence.

    Users and items are addressed by dense indices (``0..n_users-1``, ``0..n_items-1``); ``user_ids`` /
    ``item_ids`` hold the ids as written in the source file (strings). Within a user, interactions are
    ordered by timestamp; ties (and files without timestamps) keep file order.

    Example::

        data = load_dataset(DatasetConfig())           # ml-100k bundled with recbole
        data.n_users, data.n_items, data.n_interactions  # (943, 1682, 100000)
        data.sequences[0]                                # item indices of user data.user_ids[0]
    """

    name: str
    source: str
    user_ids: np.ndarray  # (U,) str, raw ids in order of first appearance
    item_ids: np.ndarray  # (I,) str, raw ids in order of first appearance
    sequences: tuple[np.ndarray, ...]  # U arrays of item indices (int64), time-ordered
    timestamps: tuple[np.ndarray, ...] | None = None  # U arrays (float64) aligned with sequences
    ratings: tuple[np.ndarray, ...] | None = None  # U arrays (float64) aligned with sequences
    item_info: pd.DataFrame | None = None  # index 0..I-1; columns such as "title", "genres"
    reviews: pd.DataFrame | None = None  # columns user, item (indices), text, rating, feature, split
    given_negatives: Mapping[int, np.ndarray] | None = None  # user index -> item indices (P5 files)
    notes: tuple[str, ...] = field(default=())  # what the loader dropped or assumed, for the log/stats

    def __post_init__(self) -> None:
        if len(self.sequences) != len(self.user_ids):
            raise ValueError(f"{len(self.sequences)} sequences for {len(self.user_ids)} users")
        for name in ("timestamps", "ratings"):
            values = getattr(self, name)
            if values is not None and [len(v) for v in values] != [len(s) for s in self.sequences]:
                raise ValueError(f"{name} are not aligned with sequences")
        if self.item_info is not None and len(self.item_info) != len(self.item_ids):
            raise ValueError(f"item_info has {len(self.item_info)} rows for {len(self.item_ids)} items")

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    @cached_property
    def _user_lookup(self) -> dict[str, int]:
        return {str(u): i for i, u in enumerate(self.user_ids)}

    @cached_property
    def _item_lookup(self) -> dict[str, int]:
        return {str(u): i for i, u in enumerate(self.item_ids)}

    def user_index(self, user_id: str | int) -> int:
        """Dense index of a raw user id; ``UnknownUserError`` names the id and the dataset."""
        try:
            return self._user_lookup[str(user_id)]
        except KeyError:
            raise UnknownUserError(
                f"unknown user id {user_id!r} in dataset {self.name!r} "
                f"({self.n_users} users, e.g. {', '.join(map(str, self.user_ids[:3]))})"
            ) from None

    def item_index(self, item_id: str | int) -> int:
        """Dense index of a raw item id (``KeyError`` when absent)."""
        try:
            return self._item_lookup[str(item_id)]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r} in dataset {self.name!r}") from None

    def item_titles(self) -> np.ndarray | None:
        """(I,) titles when the source has them, else None."""
        if self.item_info is None or "title" not in self.item_info:
            return None
        return self.item_info["title"].to_numpy()

    def item_genre_sets(self) -> list[tuple[str, ...]] | None:
        """(I,) each item's genres (the ``genres`` column split on whitespace, "unknown" left out) when the
        source has genres, else None."""
        if self.item_info is None or "genres" not in self.item_info:
            return None
        return [tuple(g for g in v.split() if g not in NO_GENRE) if isinstance(v, str) else ()
                for v in self.item_info["genres"].to_numpy()]

    def fingerprint(self) -> str:
        """SHA-256 (16 hex chars) of ids and sequences: identical data gives identical fingerprints."""
        h = hashlib.sha256()
        h.update("\x1f".join(map(str, self.user_ids)).encode())
        h.update(b"\x1e")
        h.update("\x1f".join(map(str, self.item_ids)).encode())
        for seq in self.sequences:
            h.update(b"\x1e")
            h.update(np.ascontiguousarray(seq, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]


def build_interactions(
    users: Sequence[str],
    items: Sequence[str],
    *,
    name: str,
    source: str,
    timestamps: Sequence[float] | np.ndarray | None = None,
    ratings: Sequence[float] | np.ndarray | None = None,
    item_info: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
) -> InteractionData:
    """Group flat interaction records (in file order) into per-user, time-ordered sequences.

    ``item_info`` (optional) is indexed by raw item id; rows for items without interactions are dropped
    and counted in ``notes``. Users and items get dense indices in order of first appearance.
    """
    user_codes, user_ids = pd.factorize(pd.Series(users, dtype=object), sort=False)
    item_codes, item_ids = pd.factorize(pd.Series(items, dtype=object), sort=False)
    n = len(user_codes)
    line_order = np.arange(n)
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
    # Stable: by user, then timestamp, then file order.
    keys = [line_order] + ([ts] if ts is not None else []) + [user_codes]
    order = np.lexsort(keys)
    bounds = np.flatnonzero(np.diff(user_codes[order])) + 1
    item_sorted = item_codes[order].astype(np.int64)
    sequences = tuple(np.split(item_sorted, bounds)) if n else ()
    ts_seq = tuple(np.split(ts[order], bounds)) if ts is not None and n else None
    ratings_seq = None
    if ratings is not None and n:
        ratings_seq = tuple(np.split(np.asarray(ratings, dtype=np.float64)[order], bounds))
    notes = list(notes)
    info = None
    if item_info is not None:
        info, dropped, missing = _align_item_info(item_info, item_ids)
        if dropped:
            notes.append(f"{dropped} items listed in the item file have no interactions and were dropped")
        if missing:
            notes.append(f"{missing} interacted items have no row in the item file (metadata left empty)")
    for note in notes:
        log.info("%s: %s", name, note)
    return InteractionData(
        name=name,
        source=source,
        user_ids=np.asarray(user_ids, dtype=object).astype(str),
        item_ids=np.asarray(item_ids, dtype=object).astype(str),
        sequences=sequences,
        timestamps=ts_seq,
        ratings=ratings_seq,
        item_info=info,
        notes=tuple(notes),
    )


def _align_item_info(info: pd.DataFrame, item_ids: pd.Index) -> tuple[pd.DataFrame, int, int]:
    """Reindex metadata (indexed by raw id) to dense item order; count dropped and missing rows."""
    info = info.copy()
    info.index = info.index.astype(str)
    known = set(item_ids.astype(str))
    dropped = int(sum(1 for i in info.index if i not in known))
    aligned = info.reindex(item_ids.astype(str))
    missing = int(aligned.isna().all(axis=1).sum()) if len(aligned.columns) else 0
    aligned.index = pd.RangeIndex(len(aligned))
    aligned.insert(0, "item_id", item_ids.astype(str))
    return aligned, dropped, missing
