"""The one way items a user never interacted with are drawn, and the per-user generators that draw them.

Three owners draw negatives, each with its own notion of "seen" and its own generator, all through
:func:`unseen_items`:

- the split (:func:`pap_rec_core.data.split.leave_one_out`): the direct task's fixed 1 + n evaluation
  candidates, excluding every interaction of the user, drawn by :func:`user_rng` (``"negatives"``) so a
  user's list depends on the split seed and the user alone;
- the RLM's training samples (``rlm.samples.SampleBuilder``): excluding the training items and the target,
  from the training stream's generator;
- the search's direct-task training rows (``search.tasks.DirectTask``): excluding every interaction, from
  the search's generator.

The split's shown order of those candidates (``Split.shown_candidates``) is drawn by :func:`user_rng`
too (``"shown-valid"`` / ``"shown-test"``: each stage its own order): the same user sees the same list in the same order wherever it is shown (evaluation,
the search's judge, the per-user view), whichever users are evaluated with it.
"""

from __future__ import annotations

import random
from collections.abc import Collection


def user_rng(seed: int, user: int, purpose: str) -> random.Random:
    """A generator for one user's draw of one kind: the same ``(seed, user, purpose)`` gives the same
    stream on every platform (a string seed is hashed with SHA-512 by :class:`random.Random`)."""
    return random.Random(f"{purpose}:{int(seed)}:{int(user)}")


def unseen_items(rng: random.Random, n_items: int, seen: Collection[int], n: int,
                 exclude: int | None = None) -> list[int]:
    """``n`` distinct items in ``0..n_items-1`` outside ``seen`` (and other than ``exclude``), fewer when
    fewer exist. Few unseen items (``n`` at least half of them): one sample from the explicit pool (never
    loops forever), in the sample's order; otherwise rejection sampling, which touches about ``n`` items
    instead of the whole catalogue, in the drawn set's iteration order (deterministic for a given stream;
    callers shuffle the list they show)."""
    banned = set(seen) if exclude is None else set(seen) | {int(exclude)}
    if n >= (n_items - len(banned)) // 2:
        pool = [j for j in range(n_items) if j not in banned]
        return rng.sample(pool, min(n, len(pool)))
    out: set[int] = set()
    while len(out) < n:
        j = rng.randrange(n_items)
        if j not in banned:
            out.add(j)
    return list(out)
