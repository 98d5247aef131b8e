"""What each task gives the search: its users, its validation and training rows, the key info of its
prompts and how its surrogate is computed (the paper's hand-written templates per task:
``prompts.templates.paper_templates``; the surrogates each task allows: ``search.config.TASK_SURROGATES``).

The engine (:mod:`pap_rec_core.search.engine`) runs the rounds and knows no task; it asks a
:class:`SearchTask` (``search_task(split, config)``) for everything that differs between them:

- ``sequential``: history -> the next item over the whole catalogue (the paper's main task);
- ``direct``: the next item among the split's fixed 1 + n candidates, shown in a seeded order;
- ``explanation``: a user's review sentence for an item (datasets with review text).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pap_rec_core.choices import Task
from pap_rec_core.data.negatives import unseen_items
from pap_rec_core.data.split import Split, Stage
from pap_rec_core.prompts.layout import PromptLayout
from pap_rec_core.rlm.batching import EncodedBatch
from pap_rec_core.rlm.tokenizer import RecTokenizer
from pap_rec_core.search.config import SearchConfig
from pap_rec_core.search.slots import SlotPrompts
from pap_rec_core.search.surrogate import direct_values, explanation_values, surrogate_values


@dataclass(frozen=True)
class Row:
    """One prompt to judge or to train on: the searched user's row and what the task shows and asks."""

    user_row: int
    history: np.ndarray | None = None  # sequential
    target: int = -1  # sequential / direct: the item asked for
    candidates: np.ndarray | None = None  # direct
    item: int | None = None  # explanation: the reviewed item
    text: str | None = None  # explanation: the reference explanation


@dataclass(frozen=True)
class Judge:
    """Validation prompts a surrogate is computed on: one or more rows per searched user."""

    prompts: SlotPrompts
    histories: list  # (R,) history of each row (the reference engine renders from it)
    row_user: np.ndarray  # (R,) row -> index into the searched users
    mask: np.ndarray  # (R, I) items excluded from each row's ranking (its history)
    mine: np.ndarray  # rows this process scores
    rows_per_user: np.ndarray  # (U,)
    candidates: np.ndarray | None = None  # direct task: (R, C) candidate lists as shown
    target_col: np.ndarray | None = None  # direct task: (R,) column of the target in ``candidates``
    items: np.ndarray | None = None  # explanation task: (R,) the reviewed item of each row


class SearchTask:
    """The sequential task; :class:`DirectTask` and :class:`ExplanationTask` change what differs."""

    name: ClassVar[Task] = Task.SEQUENTIAL

    def __init__(self, split: Split, config: SearchConfig):
        self.split, self.config = split, config

    def population(self) -> np.ndarray:
        """Every user this task can search (dense indices, sorted)."""
        return self.split.eval_users

    # -- rows ---------------------------------------------------------------------------------------
    def validation_rows(self, users: np.ndarray) -> list[Row]:
        """The paper's judge: each user's validation item."""
        targets = self.split.targets(Stage.VALID)[users]
        return [Row(r, self.split.history(int(u), Stage.VALID), int(targets[r])) for r, u in enumerate(users)]

    def holdout_rows(self, users: np.ndarray, n: int) -> list[Row]:
        """A row per held-out training position: each user's last ``n`` training items, keeping at least
        one item of history (the config allows holdouts for the sequential task only)."""
        return [Row(r, train[: len(train) - j], int(train[len(train) - j]))
                for r, u in enumerate(users) for train in [self.split.train[int(u)]]
                for j in range(1, min(n, len(train) - 1) + 1)]

    def _training_target(self, user: int, usable: int, rng: random.Random) -> tuple[int, int]:
        """(position, item) of a training target among the user's first ``usable`` training items."""
        train = self.split.train[user]
        lo = max(1, usable - self.config.sample_window) if self.config.sample_window else 1  # the last N only
        t = rng.randrange(lo, usable) if usable > 1 else 0
        return t, int(train[t]) if len(train) else int(self.split.targets(Stage.VALID)[user])

    def training_row(self, row: int, user: int, usable: int, rng: random.Random) -> Row:
        """One gradient sample of searched user ``row`` (dense index ``user``): a history prefix -> the
        next training item; ``usable`` training positions are allowed (held-out ones stay out)."""
        t, target = self._training_target(user, usable, rng)
        return Row(row, self.split.train[user][:t], target)

    # -- prompts and judges -------------------------------------------------------------------------
    def prompts(self, tok: RecTokenizer, layout: PromptLayout, users: np.ndarray, rows: list[Row],
                memo: dict | None = None) -> SlotPrompts:
        """The rows' prompts with placeholder slots (``users``: the dense user of each row; ``memo``: see
        :meth:`SlotPrompts.build`)."""
        return SlotPrompts.build(tok, layout, users, [r.history for r in rows], [r.target for r in rows], memo=memo)

    def judge_fields(self, rows: list[Row]) -> dict:
        """The task's extra :class:`Judge` fields for ``rows`` (none for the sequential task)."""
        return {}

    def render(self, tok: RecTokenizer, layout: PromptLayout, judge: Judge, row: int, shared: list[int],
               personal: list[int]) -> dict:
        """Row ``row`` of ``judge`` rendered and tokenised from scratch (the reference engine's way)."""
        return tok.encode_parts(layout.parts(int(judge.prompts.users[row]), judge.histories[row],
                                             shared=shared, personal=personal))

    def values(self, model, tok: RecTokenizer, batch: EncodedBatch, judge: Judge, rows: np.ndarray, *,
               generate: bool) -> tuple[np.ndarray, np.ndarray]:
        """(surrogate, target log-likelihood) of ``judge``'s ``rows`` encoded as ``batch``; ``generate``:
        the beam surrogate through transformers' ``generate`` (the reference engine)."""
        return surrogate_values(self.config.surrogate, model, tok, batch, judge.prompts.targets[rows],
                                judge.mask[rows], self.config.ranking, generate=generate,
                                constrained=self.config.beam_constrained,
                                likelihood=self.config.personal_rule == "likelihood-tiebreak")


SequentialTask = SearchTask


class DirectTask(SearchTask):
    """The next item among the split's fixed 1 + n candidates (validation: the split's negatives, shown in a
    seeded order per user; training: fresh negatives the user never interacted with)."""

    name = Task.DIRECT

    def validation_rows(self, users: np.ndarray) -> list[Row]:
        targets = self.split.targets(Stage.VALID)[users]
        shown = self.split.shown_candidates(Stage.VALID, users)
        # the history is not in the prompt; it is the judge's history mask (used by the beam surrogate only)
        return [Row(r, self.split.history(int(u), Stage.VALID), int(targets[r]), shown[r]) for r, u in enumerate(users)]

    def training_row(self, row: int, user: int, usable: int, rng: random.Random) -> Row:
        _, target = self._training_target(user, usable, rng)
        return Row(row, target=target, candidates=self._training_candidates(user, target, rng))

    def _training_candidates(self, user: int, target: int, rng: random.Random) -> np.ndarray:
        """A training candidate list: the target and as many items the user never interacted with as the
        split has negatives (fewer when fewer exist), shuffled."""
        seen = set(self.split.data.sequences[user].tolist())
        shown = unseen_items(rng, self.split.data.n_items, seen, self.split.negatives.shape[1]) + [target]
        rng.shuffle(shown)
        return np.asarray(shown, dtype=np.int64)

    def prompts(self, tok: RecTokenizer, layout: PromptLayout, users: np.ndarray, rows: list[Row],
                memo: dict | None = None) -> SlotPrompts:
        return SlotPrompts.build(tok, layout, users, [r.history for r in rows], [r.target for r in rows],
                                 candidates=[r.candidates for r in rows], memo=memo)

    def judge_fields(self, rows: list[Row]) -> dict:
        return {"candidates": np.stack([r.candidates for r in rows]),
                "target_col": np.array([int(np.flatnonzero(r.candidates == r.target)[0]) for r in rows])}

    def render(self, tok, layout, judge, row, shared, personal) -> dict:
        return tok.encode_parts(layout.parts(int(judge.prompts.users[row]), judge.histories[row],
                                             judge.candidates[row], shared=shared, personal=personal))

    def values(self, model, tok, batch, judge, rows, *, generate):
        if self.config.surrogate == "beam":  # the public code's judge: beams over the prompt, as sequential
            return super().values(model, tok, batch, judge, rows, generate=generate)
        return direct_values(self.config.surrogate, model, tok, batch, judge.candidates[rows],
                             judge.target_col[rows], self.config.ranking)


class ExplanationTask(SearchTask):
    """A user's review sentence for an item: judged on every validation review of the users with both a
    training and a validation review; trained on one of the user's training reviews."""

    name = Task.EXPLANATION

    def __init__(self, split: Split, config: SearchConfig):
        super().__init__(split, config)
        self._users, self._train_reviews, self._valid_reviews = review_users(split.data)
        titles = split.data.item_titles()
        self._titles = None if titles is None else [str(t) for t in titles]

    def population(self) -> np.ndarray:
        return self._users

    def validation_rows(self, users: np.ndarray) -> list[Row]:
        return [Row(r, item=item, text=text) for r, u in enumerate(users) for item, text in self._valid_reviews[int(u)]]

    def holdout_rows(self, users: np.ndarray, n: int) -> list[Row]:
        return []

    def training_row(self, row: int, user: int, usable: int, rng: random.Random) -> Row:
        reviews = self._train_reviews[user]
        item, text = reviews[rng.randrange(len(reviews))]
        return Row(row, item=item, text=text)

    def _title(self, item: int) -> str | None:
        return None if self._titles is None else self._titles[item]

    def prompts(self, tok: RecTokenizer, layout: PromptLayout, users: np.ndarray, rows: list[Row],
                memo: dict | None = None) -> SlotPrompts:
        items = [r.item for r in rows]
        return SlotPrompts.build(tok, layout, users, [r.history for r in rows], [r.target for r in rows], items=items,
                                 titles=[self._title(i) for i in items], texts=[r.text for r in rows], memo=memo)

    def judge_fields(self, rows: list[Row]) -> dict:
        return {"items": np.array([r.item for r in rows], dtype=np.int64)}

    def render(self, tok, layout, judge, row, shared, personal) -> dict:
        item = int(judge.items[row])
        return tok.encode_parts(layout.parts(int(judge.prompts.users[row]), judge.histories[row], shared=shared,
                                             personal=personal, item=item, title=self._title(item)))

    def values(self, model, tok, batch, judge, rows, *, generate):
        return explanation_values(self.config.surrogate, model, tok, batch, [judge.prompts.texts[r] for r in rows],
                                  self.config.max_explanation_tokens)


TASKS: dict[Task, type[SearchTask]] = {Task.SEQUENTIAL: SequentialTask, Task.DIRECT: DirectTask,
                                       Task.EXPLANATION: ExplanationTask}


def search_task(split: Split, config: SearchConfig) -> SearchTask:
    """The task object of ``config.task`` over ``split``."""
    return TASKS[Task(config.task)](split, config)


def review_users(data) -> tuple[np.ndarray, dict[int, list[tuple[int, str]]], dict[int, list[tuple[int, str]]]]:
    """Users with at least one ``train`` and one ``val`` review (sorted) and, per user, the (item, text)
    pairs of each of the two splits: the explanation task's search population."""
    if data.reviews is None:
        raise ValueError(f"{data.name} has no review text: the explanation task needs P5's review_splits.pkl / "
                         "exp_splits.pkl (loaded with trust_pickle=True)")
    by: dict[str, dict[int, list[tuple[int, str]]]] = {"train": {}, "val": {}}
    for r in data.reviews.itertuples():
        if r.split in by:
            by[r.split].setdefault(int(r.user), []).append((int(r.item), str(r.text)))
    users = np.array(sorted(set(by["train"]) & set(by["val"])), dtype=np.int64)
    if not len(users):
        raise ValueError(f"{data.name}: no user has both a train and a val review to search explanations on")
    return users, by["train"], by["val"]


__all__ = ["DirectTask", "ExplanationTask", "Judge", "Row", "SearchTask", "SequentialTask", "TASKS",
           "review_users", "search_task"]
