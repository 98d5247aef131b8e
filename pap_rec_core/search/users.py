"""Which users a search judges on, when a person picks one: that user first, plus a seeded sample of others."""

from __future__ import annotations

import numpy as np

from pap_rec_core.data.split import Split


def sample_user_ids(split: Split, picked: int | None, n_users: int, seed: int) -> tuple[str, ...] | None:
    """Raw ids for ``SearchConfig.user_ids``: with ``n_users`` > 0 and a picked user (a dense index), that user
    first plus ``n_users - 1`` others drawn with ``seed`` from the evaluation users (the shared tokens are
    judged on all of them); without a picked user, ``n_users`` drawn with ``seed``; ``n_users`` = 0: None
    (every user, the picked one among them)."""
    if not n_users:
        return None
    ids = split.data.user_ids
    others = [int(u) for u in split.eval_users if int(u) != picked]
    rng = np.random.default_rng(seed)
    first = [picked] if picked is not None else []
    drawn = rng.choice(others, size=min(len(others), n_users - len(first)), replace=False).tolist()
    return tuple(str(ids[u]) for u in first + drawn)
