"""Training samples of the RLM: (prompt parts, decoder target ids, template id), from the *training*
split only (never a validation or test item, review or rating).

One family and one template per batch (prompts of one template have similar lengths, so padding stays
small). Positions of the sequential-style families (sequential, history, conditional) are drawn by
``TrainConfig.position_sampling``: ``position`` — every training position of every user equally likely
(SASRec's augmentation: users with long histories give more samples) — or ``user`` — a user uniformly,
then a position; ``recency_half_life`` weighs positions near the end of a user's training sequence
more (the evaluation asks for the items right after it).
"""

from __future__ import annotations

import math
import random
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pap_rec_core.data.negatives import unseen_items
from pap_rec_core.data.split import Split
from pap_rec_core.prompts.render import render_text, truncate_history
from pap_rec_core.prompts.templates import TEMPLATES, Family, Template, get_template, templates_of
from pap_rec_core.rlm.batching import EncodedBatch, collate, pad_labels
from pap_rec_core.rlm.tokenizer import RecTokenizer

if TYPE_CHECKING:
    from pap_rec_core.rlm.recipe import TrainConfig

FUTURE_WINDOW = 10  # "some time in the future" (H-4) and the conditional family: the next 10 training items
LIKED, DISLIKED = 4.0, 2.0  # C-4: the next item rated >= 4; C-5: rated <= 2
TITLE_STOPWORDS = {"the", "and", "for", "with", "from", "les", "der", "die", "das", "une"}  # C-6/C-7 skip these


def title_words(title) -> tuple[str, ...]:
    """The words of a title a conditional sample may name (C-6, C-7): alphabetic, 3+ letters, case kept
    (the tokenizer's pieces are case-sensitive), no stop words, each once, in title order."""
    if not isinstance(title, str):
        return ()
    words = [w for w in re.findall(r"[A-Za-z]+", title) if len(w) >= 3 and w.lower() not in TITLE_STOPWORDS]
    return tuple(dict.fromkeys(words))

Sample = tuple[list, tuple[int, ...], str]  # (prompt parts, target ids, template id)


def train_reviews(reviews):
    """The reviews the explanation family trains on: P5's ``train`` split (never validation/test, which
    the explanation evaluation holds out); None when there are none."""
    if reviews is None:
        return None
    rows = reviews[reviews["split"] == "train"] if "split" in reviews else reviews
    return rows if len(rows) else None


class _Positions:
    """Training positions ``(user, t)`` with ``t`` in ``[lo, len(train[user]) - hi)``, drawn uniformly
    over positions or over users; with ``half_life`` (positions), a position ``k`` steps before the end
    of its user's training sequence weighs ``0.5 ** (k / half_life)`` (recent positions more likely)."""

    def __init__(self, train, lo: int, hi: int, by_user: bool, half_life: float | None = None):
        self.users = [u for u, items in enumerate(train) if len(items) - hi > lo]
        self.lens = {u: len(train[u]) for u in self.users}
        self.lo, self.hi, self.by_user, self.half_life = lo, hi, by_user, half_life
        if half_life is None:
            counts = np.array([len(train[u]) - hi - lo for u in self.users], dtype=np.float64)
        else:  # one weight per user: the sum of its positions' weights (geometric series)
            q = 0.5 ** (1.0 / half_life)
            counts = np.array([(1 - q ** (len(train[u]) - hi - lo)) / (1 - q) for u in self.users])
            self.q = q
        self.cum = np.cumsum(counts)

    def __bool__(self) -> bool:
        return bool(self.users)

    def draw(self, rng: random.Random) -> tuple[int, int]:
        if self.by_user:
            u = self.users[rng.randrange(len(self.users))]
            return u, self._position(u, rng)
        if self.half_life is None:
            k = rng.randrange(int(self.cum[-1]))
            row = int(np.searchsorted(self.cum, k, side="right"))
            before = int(self.cum[row - 1]) if row else 0
            return self.users[row], self.lo + k - before
        row = min(int(np.searchsorted(self.cum, rng.random() * self.cum[-1], side="right")), len(self.users) - 1)
        u = self.users[row]
        return u, self._position(u, rng)

    def _position(self, u: int, rng: random.Random) -> int:
        n = self.lens[u] - self.hi - self.lo
        if self.half_life is None:
            return self.lo + rng.randrange(n)
        # k steps before the end with probability ~ q**k, k < n (inverse CDF of a truncated geometric)
        x = rng.random() * (1 - self.q ** n)
        k = min(n - 1, int(math.log1p(-x) / math.log(self.q)))
        return self.lo + n - 1 - k


class SampleBuilder:
    """Draws training samples (see the module docstring) with ``rng`` (a seeded ``random.Random``)."""

    def __init__(self, split: Split, tokenizer: RecTokenizer, config: "TrainConfig", rng: random.Random):
        self.split, self.tok, self.config, self.rng = split, tokenizer, config, rng
        data = split.data
        self.n_items = data.n_items
        self.titles = data.item_titles()
        info = data.item_info
        self.genres = None if info is None or "genres" not in info else info["genres"].to_numpy()
        self.genre_sets = data.item_genre_sets()
        self.title_word_sets = None if self.titles is None else [title_words(t) for t in self.titles]
        # the words a conditional target may name, per item: genres (C-1 ... C-3) or title words (C-6, C-7)
        self.word_sets = {"{next_genre}": self.genre_sets, "{next_titled}": self.title_word_sets}
        by_user = config.position_sampling == "user"
        half = config.recency_half_life
        self.next_pos = _Positions(split.train, 1, 0, by_user, half)  # target train[t], history train[:t]
        self.later_pos = _Positions(split.train, 1, 1, by_user, half)  # H-3/H-4: an item after train[t]
        self.users = self.next_pos.users
        self.users_any = [u for u, items in enumerate(split.train) if len(items) >= 1]
        # negatives: items outside the user's *training* items (a validation/test item may be one)
        self.seen_items = [set(split.train[u].tolist()) for u in range(data.n_users)]
        self.ratings = data.ratings
        families = dict(config.family_weights)
        self.reviews = train_reviews(data.reviews)
        available = {
            Family.SEQUENTIAL: bool(self.next_pos),
            Family.HISTORY: bool(self.next_pos),
            Family.CONDITIONAL: bool(self.next_pos),
            Family.DIRECT: bool(self.users_any),
            Family.RATING: data.ratings is not None,
            Family.METADATA: self.titles is not None,
            Family.EXPLANATION: self.reviews is not None,  # without titles the {title} field is empty
        }
        self.families = [Family(f) for f, w in families.items() if w > 0 and available[Family(f)]]
        # ``templates`` restricts the families it names; a family it does not name trains all its seen templates
        pool = {f: [get_template(t) for t in config.templates if get_template(t).family is f] for f in self.families}
        pool = {f: p if p else list(templates_of(f, seen=True)) for f, p in pool.items()}
        self.templates = {f: [t for t in pool[f] if self._usable(t)] for f in self.families}
        self.families = [f for f in self.families if self.templates[f]]
        self.weights = [families[f.value] for f in self.families]
        if not self.families:
            raise ValueError("no task family can be trained on this dataset (check family_weights and templates)")
        self.batch_history: list = []

    def _usable(self, t: Template) -> bool:
        needs = set(t.fields) | {f for f in ("title", "genres") if "{" + f + "}" in t.target}
        if "title" in needs and self.titles is None and t.family is not Family.EXPLANATION:
            return False  # (an explanation prompt without titles shows an empty title: the review is the point)
        if t.target in ("{after_next}", "{future}") and not self.later_pos:
            return False
        if t.target in self.word_sets:
            return self.word_sets[t.target] is not None and any(self.word_sets[t.target])
        if t.target in ("{next_liked}", "{next_disliked}"):
            return self.ratings is not None
        return not ("genres" in needs and self.genres is None)

    def _negatives(self, user: int, n: int, exclude_item: int) -> list[int]:
        """``n`` distinct items outside the user's training items and other than the target (fewer when
        fewer exist), from the training stream."""
        return unseen_items(self.rng, self.n_items, self.seen_items[user], n, exclude=exclude_item)

    def sample_family(self) -> Family:
        return self.rng.choices(self.families, weights=self.weights)[0]

    def batch(self, size: int) -> list[Sample]:
        """``size`` samples of one family and template. ``self.batch_history`` then holds, per sample, the
        items before a sequential target (else None)."""
        family = self.sample_family()
        template = self.rng.choice(self.templates[family])
        out, self.batch_history = [], []
        for _ in range(size):
            out.append(self.sample(family, template))
            self.batch_history.append(self._history)
        return out

    def sample(self, family: Family | None = None, template: Template | None = None) -> Sample:
        family = family or self.sample_family()
        template = template or self.rng.choice(self.templates[family])
        values: dict[str, Any] = {}
        target_item: int | None = None
        target_text: str | None = None
        self._history = None
        if family is Family.SEQUENTIAL:
            user, t = self.next_pos.draw(self.rng)
            train = self.split.train[user]
            target_item = int(train[t])
            self._history = train[:t]
            values.update(user=user, history=truncate_history(train[:t], self.config.max_history))
            if "candidates" in template.fields:
                cands = self._negatives(user, self.config.sequential_candidates - 1, target_item) + [target_item]
                self.rng.shuffle(cands)
                values["candidates"] = cands
        elif family is Family.CONDITIONAL:
            user, t, target_item, word = self._conditional(template)
            train = self.split.train[user]
            self._history = train[:t]
            values.update(user=user, history=truncate_history(train[:t], self.config.max_history), genre=word, word=word)
        elif family is Family.HISTORY:
            if template.target in ("{first}", "{last}"):  # about the shown history (at least 2 items)
                user, _ = self.next_pos.draw(self.rng)
                train = self.split.train[user]
                history = truncate_history(train[: self.rng.randrange(2, len(train) + 1)], self.config.max_history)
                target_item = int(history[0] if template.target == "{first}" else history[-1])
            else:  # about a later item: the one after next, or any of the next FUTURE_WINDOW
                user, t = self.later_pos.draw(self.rng)
                train = self.split.train[user]
                history = truncate_history(train[:t], self.config.max_history)
                target_item = int(train[t + 1] if template.target == "{after_next}"
                                  else self.rng.choice(list(train[t : t + FUTURE_WINDOW])))
            values.update(user=user, history=history)
        elif family is Family.DIRECT:
            user = self.rng.choice(self.users_any)
            target_item = int(self.rng.choice(list(self.split.train[user])))
            cands = self._negatives(user, self.config.direct_candidates - 1, target_item) + [target_item]
            self.rng.shuffle(cands)
            values.update(user=user, candidates=cands)
        elif family is Family.RATING:
            user = self.rng.choice(self.users_any)
            pos = self.rng.randrange(len(self.split.train[user]))
            item = int(self.split.train[user][pos])
            rating = self.ratings[user][pos]
            values.update(user=user, item=item, title=self._title(item))
            target_text = f"{rating:g}"
        elif family is Family.METADATA:
            item = self.rng.randrange(self.n_items)
            values.update(item=item, title=self._title(item), genres=self._genres(item))
            if template.target == "{item}":
                target_item = item
            else:
                target_text = values[template.target.strip("{}")]
        else:  # explanation
            reviews = self.reviews
            row = reviews.iloc[self.rng.randrange(len(reviews))]
            values.update(user=int(row["user"]), item=int(row["item"]), title=self._title(int(row["item"])),
                          rating=f"{row['rating']:g}")
            target_text = str(row["text"])
        parts = render_text(template.source, **{k: v for k, v in values.items() if k in template.fields})
        if target_item is not None:
            target = self.tok.item_target_ids(target_item)
        else:
            target = self.tok.text_target_ids(target_text or "")
        return parts, target, template.id

    def _conditional(self, template: Template, tries: int = 100) -> tuple[int, int, int, str]:
        """``(user, cut t, target item, word)`` of a conditional sample: the target is the first of
        ``train[t : t + FUTURE_WINDOW]`` with the named genre (a genre drawn from those of that window) or
        title word (C-6, C-7: drawn from the titles of that window), or the first rated >= LIKED
        (<= DISLIKED); cuts without such an item are redrawn."""
        for _ in range(tries):
            user, t = self.next_pos.draw(self.rng)
            window = self.split.train[user][t : t + FUTURE_WINDOW]
            if template.target in self.word_sets:
                sets = self.word_sets[template.target]
                present = sorted({g for item in window for g in sets[int(item)]})
                if not present:
                    continue
                word = self.rng.choice(present)
                return user, t, next(int(i) for i in window if word in sets[int(i)]), word
            ratings = self.ratings[user][t : t + len(window)]  # (ratings cover the whole sequence: cut to training)
            liked = template.target == "{next_liked}"
            hits = [k for k, r in enumerate(ratings) if (r >= LIKED if liked else r <= DISLIKED)]
            if hits:
                return user, t, int(window[hits[0]]), ""
        raise ValueError(f"template {template.id}: no training position with a {template.target} item in "
                         f"{tries} draws; drop it from the training templates")

    def _title(self, item: int) -> str:
        return "" if self.titles is None else str(self.titles[item])

    def _genres(self, item: int) -> str:
        return "" if self.genres is None else str(self.genres[item])


def make_batch(samples: list[Sample], tok: RecTokenizer) -> tuple[EncodedBatch, torch.Tensor]:
    return collate([tok.encode_parts(p) for p, _, _ in samples]), pad_labels([t for _, t, _ in samples])


def tokenizer_corpus(data) -> list[str]:
    """Text the demo SentencePiece model is trained on: template words, titles, genres, numbers."""
    corpus = []
    for t in TEMPLATES:
        text = t.source
        for name in t.fields:
            text = text.replace("{" + name + "}", " ")
        corpus.extend([text] * 20)
    corpus.extend(str(r) for r in range(0, 11))
    if data.item_info is not None:
        for col in ("title", "genres"):
            if col in data.item_info:
                corpus.extend(str(v) for v in data.item_info[col].dropna().tolist())
    reviews = train_reviews(data.reviews)
    if reviews is not None:
        corpus.extend(str(t) for t in reviews["text"].dropna().tolist()[:200_000])
    return corpus
