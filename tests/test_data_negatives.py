"""Tests for pap_rec_core.data.negatives: the one draw of unseen items and the per-user generators."""

from __future__ import annotations

import random

from pap_rec_core.data.negatives import unseen_items, user_rng


def test_unseen_items_are_distinct_and_outside_seen_and_exclude() -> None:
    seen = set(range(0, 1000, 3))
    for n in (0, 1, 50, 300):  # 300 of 666 unseen: rejection path; more than half: the pool
        out = unseen_items(random.Random(n), 1000, seen, n, exclude=1)
        assert len(out) == n == len(set(out))
        assert not set(out) & (seen | {1})
        assert all(0 <= j < 1000 for j in out)


def test_unseen_items_returns_what_exists_when_fewer_than_asked() -> None:
    out = unseen_items(random.Random(0), 10, {0, 1, 2, 3, 4, 5, 6}, 5, exclude=8)
    assert sorted(out) == [7, 9]
    assert unseen_items(random.Random(0), 3, {0, 1, 2}, 4) == []


def test_unseen_items_follow_the_stream() -> None:
    a = unseen_items(random.Random(5), 500, {1, 2}, 20)
    assert a == unseen_items(random.Random(5), 500, {1, 2}, 20)
    assert a != unseen_items(random.Random(6), 500, {1, 2}, 20)


def test_user_rng_depends_on_seed_user_and_purpose_only() -> None:
    draw = lambda r: [r.random() for _ in range(3)]  # noqa: E731
    assert draw(user_rng(0, 7, "negatives")) == draw(user_rng(0, 7, "negatives"))
    others = [user_rng(1, 7, "negatives"), user_rng(0, 8, "negatives"), user_rng(0, 7, "shown-valid")]
    assert all(draw(r) != draw(user_rng(0, 7, "negatives")) for r in others)
