"""Leave-one-out split (as in P5) and fixed, seeded negatives for the direct task.

For a user with sequence ``s`` of length ``n >= min_interactions`` (default 3): test target ``s[-1]``,
validation target ``s[-2]``, training items ``s[:-2]``. Users with fewer interactions keep all their
items for training and get no validation/test target; they are counted in ``Split.notes``. Negatives
(99 by default) are drawn once per user, by the user's own seeded generator (a user's list depends on the
split seed and the user alone: :mod:`pap_rec_core.data.negatives`), from items the user never interacted
with, and are reused for validation and test: never resampled per evaluation.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pap_rec_core import PapRecError
from pap_rec_core.choices import Choice
from pap_rec_core.configs import known_fields
from pap_rec_core.data.interactions import InteractionData
from pap_rec_core.data.negatives import unseen_items, user_rng

log = logging.getLogger(__name__)

NO_TARGET = -1


class SplitError(PapRecError, ValueError):
    """The dataset cannot be split as configured (e.g. fewer unseen items than negatives requested)."""


class Stage(Choice):
    VALID = "valid"
    TEST = "test"


@dataclass(frozen=True)
class SplitConfig:
    """How to split and which negatives to draw."""

    n_negatives: int = 99  # direct task: 1 positive + n_negatives candidates (P5: 99)
    seed: int = 0
    min_interactions: int = 3  # users with fewer get no validation/test target
    use_given_negatives: bool = True  # use P5's negative_samples.txt when the dataset has it

    def __post_init__(self) -> None:
        if self.n_negatives < 0:
            raise SplitError("n_negatives must be >= 0")
        if self.min_interactions < 3:
            raise SplitError("min_interactions must be >= 3 (one train, one validation, one test item)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SplitConfig":
        return cls(**known_fields(cls, d))


@dataclass(frozen=True, eq=False)
class Split:
    """Per-user train items and validation/test targets of one dataset.

    Example::

        split = leave_one_out(data)
        users = split.eval_users                  # (E,) users that have targets
        split.history(users[0], Stage.TEST)       # items before the test target
        split.candidates(Stage.TEST)              # (E, 1 + n_negatives), target in column 0
    """

    data: InteractionData
    config: SplitConfig
    train: tuple[np.ndarray, ...]  # U arrays of item indices
    valid_target: np.ndarray  # (U,) item index or NO_TARGET
    test_target: np.ndarray  # (U,) item index or NO_TARGET
    negatives: np.ndarray  # (U, n_negatives) item indices; NO_TARGET rows for users without targets
    notes: tuple[str, ...] = ()

    @property
    def eval_users(self) -> np.ndarray:
        return np.flatnonzero(self.test_target != NO_TARGET)

    def targets(self, stage: Stage | str) -> np.ndarray:
        """(U,) targets of a stage (NO_TARGET where none)."""
        return self.valid_target if Stage(stage) is Stage.VALID else self.test_target

    def history(self, user: int, stage: Stage | str) -> np.ndarray:
        """Items the user interacted with before the stage's target (train, plus validation for test)."""
        if Stage(stage) is Stage.VALID or self.valid_target[user] == NO_TARGET:
            return self.train[user]
        return np.append(self.train[user], self.valid_target[user])

    def history_mask(self, stage: Stage | str, users: np.ndarray) -> np.ndarray:
        """(B, n_items) bool, True on each user's history items before the stage's target: what every
        full ranking excludes (the target is never in the history)."""
        return item_mask([self.history(int(u), stage) for u in users], self.data.n_items)

    def candidates(self, stage: Stage | str, users: np.ndarray | None = None) -> np.ndarray:
        """(E, 1 + n_negatives) candidate lists for the direct task; the target is column 0."""
        users = self.eval_users if users is None else np.asarray(users)
        return np.concatenate([self.targets(stage)[users, None], self.negatives[users]], axis=1)

    def shown_candidates(self, stage: Stage | str, users: np.ndarray | None = None) -> np.ndarray:
        """The direct task's candidate lists in the order its prompts show them: each row of
        :meth:`candidates` shuffled by the user's own generator (the split seed, the stage and the user:
        :func:`~pap_rec_core.data.negatives.user_rng`), so a user sees the same list in the same order in
        the evaluator, the search's judge and the per-user view, whichever users are shown with it."""
        stage = Stage(stage)
        cands = self.candidates(stage, users)
        users = self.eval_users if users is None else np.asarray(users)
        rows = []
        for u, row in zip(users, cands):
            order = list(range(len(row)))
            user_rng(self.config.seed, int(u), f"shown-{stage.value}").shuffle(order)
            rows.append(row[order])
        return np.stack(rows) if rows else cands


def item_mask(item_lists, n_items: int) -> np.ndarray:
    """(len(item_lists), n_items) bool, True on each row's items (a row of ``None``: none). The one
    history mask: :meth:`Split.history_mask` for a split's users, the search's judge for its rows
    (whose histories may stop before held-out items)."""
    mask = np.zeros((len(item_lists), n_items), dtype=bool)
    for row, items in enumerate(item_lists):
        if items is not None:
            mask[row, items] = True
    return mask


def leave_one_out(data: InteractionData, config: SplitConfig = SplitConfig()) -> Split:
    """Split every user's sequence (last item: test, second last: validation, rest: train)."""
    n_users = data.n_users
    valid = np.full(n_users, NO_TARGET, dtype=np.int64)
    test = np.full(n_users, NO_TARGET, dtype=np.int64)
    train: list[np.ndarray] = []
    short = 0
    for u, seq in enumerate(data.sequences):
        if len(seq) >= config.min_interactions:
            train.append(seq[:-2])
            valid[u], test[u] = seq[-2], seq[-1]
        else:
            train.append(seq)
            short += 1
    notes = []
    if short:
        notes.append(f"{short} users with fewer than {config.min_interactions} interactions: all their items "
                     "are training items, they have no validation/test target")
    repeats = sum(1 for u in np.flatnonzero(test != NO_TARGET) if test[u] in set(data.sequences[u][:-1].tolist()))
    if repeats:
        notes.append(f"{repeats} users' test item repeats an item of their history")
    negatives, neg_note = _negatives(data, test != NO_TARGET, config)
    if neg_note:
        notes.append(neg_note)
    for note in notes:
        log.info("%s split: %s", data.name, note)
    return Split(data=data, config=config, train=tuple(train), valid_target=valid, test_target=test,
                 negatives=negatives, notes=tuple(notes))


def _negatives(data: InteractionData, has_target: np.ndarray, config: SplitConfig) -> tuple[np.ndarray, str | None]:
    n = config.n_negatives
    out = np.full((data.n_users, n), NO_TARGET, dtype=np.int64)
    given = data.given_negatives if config.use_given_negatives else None
    if given is not None:
        for u in np.flatnonzero(has_target):
            negs = given.get(int(u))
            if negs is None or len(negs) < n:
                raise SplitError(
                    f"the dataset's given negatives for user {data.user_ids[u]} have {0 if negs is None else len(negs)} "
                    f"items, {n} needed; set use_given_negatives=False to sample them"
                )
            out[u] = negs[:n]
        return out, f"negatives: the dataset's own ({n} per user)"
    for u in np.flatnonzero(has_target):
        seen = set(data.sequences[u].tolist())
        if data.n_items - len(seen) < n:
            raise SplitError(f"user {data.user_ids[u]} has only {data.n_items - len(seen)} unseen items; {n} "
                             "negatives requested (lower n_negatives / --negatives)")
        out[u] = unseen_items(user_rng(config.seed, int(u), "negatives"), data.n_items, seen, n)
    return out, None
