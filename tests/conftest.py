"""Shared fixtures: builders of tiny dataset files in ``tmp_path``, and the real datasets loaded once.

The builders are factory fixtures (they return a function) so that each test writes exactly the
malformed or well-formed input it is about, and every path ends up under that test's ``tmp_path``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the repository (the same layout in a fresh clone anywhere else).
P5_BEAUTY_DIR = REPO_ROOT.parent / "shared" / "data" / "p5_beauty"


# ----------------------------------------------------------------------------------------------------
# A toy dataset with a strong sequential pattern, and a tiny RLM trained on it (seconds)


@pytest.fixture(scope="session")
def toy_cycle_data():
    """24 users walking a cycle of 30 items from different starts (8 items each; timestamps 0-7, ratings
    1 + position on the cycle mod 5)."""
    import numpy as np

    from pap_rec_core.data import build_interactions

    rng = np.random.default_rng(0)
    users, items, times, ratings = [], [], [], []
    for u in range(24):
        start = int(rng.integers(30))
        for t in range(8):
            users.append(f"u{u}")
            items.append(f"i{(start + t) % 30}")
            times.append(t)
            ratings.append(float(1 + (start + t) % 5))
    return build_interactions(users, items, name="toy", source="test", timestamps=times, ratings=ratings)


@pytest.fixture(scope="session")
def toy_split(toy_cycle_data):
    """``toy_cycle_data`` split leave-one-out with 5 negatives per user."""
    from pap_rec_core.data import SplitConfig, leave_one_out

    return leave_one_out(toy_cycle_data, SplitConfig(n_negatives=5))


@pytest.fixture(scope="session")
def toy_rlm(toy_split, tmp_path_factory):
    """The tiny preset trained on ``toy_split`` (60 steps), loaded on the CPU."""
    from pap_rec_core.data import build_item_index
    from pap_rec_core.rlm.training import preset, train_rlm

    index = build_item_index(toy_split.data, "random", seed=0)
    config = preset("tiny", max_steps=60, direct_candidates=6, sequential_candidates=4, device="cpu")
    bundle, _ = train_rlm(toy_split, index, config, tmp_path_factory.mktemp("toy_rlm"), progress=False)
    return bundle


@pytest.fixture(scope="session")
def toy_digit_rlm(toy_split, tmp_path_factory):
    """The tiny preset with items and users written as digit text (as P5 checkpoints write them), 60 steps."""
    from pap_rec_core.data import build_item_index
    from pap_rec_core.rlm.training import preset, train_rlm

    index = build_item_index(toy_split.data, "random", seed=0)
    config = preset("tiny", max_steps=60, direct_candidates=6, sequential_candidates=4, device="cpu",
                    item_tokens=False, user_tokens=False)
    bundle, _ = train_rlm(toy_split, index, config, tmp_path_factory.mktemp("toy_digit_rlm"), progress=False)
    return bundle


# ----------------------------------------------------------------------------------------------------
# Real datasets


@pytest.fixture(scope="session")
def p5_beauty_dir() -> Path:
    """``../shared/data/p5_beauty`` relative to the repository root; skips when it is absent."""
    if not (P5_BEAUTY_DIR / "sequential_data.txt").is_file():
        pytest.skip(f"P5 Beauty data not found at {P5_BEAUTY_DIR} (expected ../shared/data/p5_beauty "
                    "beside the repository, with sequential_data.txt)")
    return P5_BEAUTY_DIR


@pytest.fixture(scope="session")
def ml100k():
    """MovieLens-100k bundled with the installed recbole package, loaded once for the whole run."""
    from pap_rec_core.data import DatasetConfig, load_dataset

    return load_dataset(DatasetConfig())


@pytest.fixture(scope="session")
def beauty(p5_beauty_dir: Path):
    """P5 Beauty, loaded once for the whole run (skips with ``p5_beauty_dir`` when absent)."""
    from pap_rec_core.data import load_p5_dir

    return load_p5_dir(p5_beauty_dir)


# ----------------------------------------------------------------------------------------------------
# Tiny-file builders


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    """``write_file("a/b.txt", "text")`` writes text (exactly as given) under tmp_path."""

    def write(rel: str, text: str) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def atomic_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A RecBole atomic file: tab-separated ``name:type`` header, then tab-separated rows."""
    lines = ["\t".join(header)] + ["\t".join(map(str, r)) for r in rows]
    return "\n".join(lines) + "\n"


@pytest.fixture
def make_recbole(tmp_path: Path) -> Callable[..., Path]:
    """Write ``<dir>/<name>.inter`` (and optionally ``<name>.item``); returns the directory.

    ``inter`` / ``item`` are either raw text or ``(header, rows)`` tuples.
    """

    def make(name: str = "tiny", inter: str | tuple = None, item: str | tuple | None = None,
             directory: str | None = None) -> Path:
        d = tmp_path / (directory or name)
        d.mkdir(parents=True, exist_ok=True)
        if inter is None:
            inter = (["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
                     [("u1", "i1", 5, 10), ("u1", "i2", 4, 20), ("u2", "i1", 3, 5)])
        for suffix, content in (("inter", inter), ("item", item)):
            if content is None:
                continue
            text = content if isinstance(content, str) else atomic_text(*content)
            (d / f"{name}.{suffix}").write_text(text, encoding="utf-8")
        return d

    return make


@pytest.fixture
def make_p5_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write a P5-style directory.

    ``sequences``: ``{user_id: [item_id, ...]}`` (ints or strings) or raw text of sequential_data.txt.
    ``datamaps``: True (derive one from the sequences), False (none), a dict, or raw text.
    ``negatives``: ``{user_id: [item_id, ...]}`` or raw text of negative_samples.txt, or None.
    ``reviews``: ``{"review_splits.pkl" | "exp_splits.pkl": splits_dict}``.
    """

    def make(sequences: Mapping | str, *, datamaps: bool | dict | str = True,
             negatives: Mapping | str | None = None, reviews: Mapping[str, object] | None = None,
             name: str = "p5tiny") -> Path:
        d = tmp_path / name
        d.mkdir(parents=True, exist_ok=True)
        if isinstance(sequences, str):
            seq_text = sequences
        else:
            seq_text = "".join(f"{u} {' '.join(map(str, items))}\n" for u, items in sequences.items())
        (d / "sequential_data.txt").write_text(seq_text, encoding="utf-8")
        if datamaps is True:
            if isinstance(sequences, str):
                raise ValueError("pass datamaps explicitly with raw sequence text")
            datamaps = p5_datamaps(sequences)
        if isinstance(datamaps, dict):
            (d / "datamaps.json").write_text(json.dumps(datamaps), encoding="utf-8")
        elif isinstance(datamaps, str):
            (d / "datamaps.json").write_text(datamaps, encoding="utf-8")
        if negatives is not None:
            text = negatives if isinstance(negatives, str) else "".join(
                f"{u} {' '.join(map(str, items))}\n" for u, items in negatives.items())
            (d / "negative_samples.txt").write_text(text, encoding="utf-8")
        for fname, splits in (reviews or {}).items():
            with (d / fname).open("wb") as fh:
                pickle.dump(splits, fh)
        return d

    return make


def p5_datamaps(sequences: Mapping, extra_items: Iterable = ()) -> dict:
    """datamaps.json for P5 ids: raw user ``U<id>``, raw item (asin) ``A<id>``."""
    users = [str(u) for u in sequences]
    items = sorted({str(i) for s in sequences.values() for i in s} | {str(i) for i in extra_items}, key=int)
    return {
        "user2id": {f"U{u}": u for u in users},
        "id2user": {u: f"U{u}" for u in users},
        "item2id": {f"A{i}": i for i in items},
        "id2item": {i: f"A{i}" for i in items},
    }


@pytest.fixture
def make_table(tmp_path: Path) -> Callable[..., Path]:
    """Write a CSV (``.csv``) / TSV (``.tsv``) file from raw text; returns its path."""

    def make(text: str, name: str = "interactions.csv") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return make


@pytest.fixture
def tiny_data():
    """A hand-checkable dataset (file order, no timestamps):

    u1: a b c d     (4)
    u2: b e         (2: no validation/test target)
    u3: c a f       (3)
    items in order of first appearance: a b c d e f g h (g, h only reachable via u4)
    u4: g h a       (3)
    """
    from pap_rec_core.data import build_interactions

    seqs = {"u1": list("abcd"), "u2": list("be"), "u3": list("caf"), "u4": list("gha")}
    users = [u for u, s in seqs.items() for _ in s]
    items = [i for s in seqs.values() for i in s]
    return build_interactions(users, items, name="tiny", source="test:tiny")


@pytest.fixture
def wide_data():
    """20 users x 6-10 interactions over 60 items, seeded (enough unseen items for negatives)."""
    import numpy as np

    from pap_rec_core.data import build_interactions

    rng = np.random.default_rng(123)
    users, items = [], []
    for u in range(20):
        seq = rng.choice(60, size=int(rng.integers(6, 11)), replace=False)
        users += [f"user{u}"] * len(seq)
        items += [f"item{int(i)}" for i in seq]
    return build_interactions(users, items, name="wide", source="test:wide")


@pytest.fixture
def p5_maps() -> Callable[..., dict]:
    """The ``p5_datamaps`` builder, as a fixture (test modules do not import conftest)."""
    return p5_datamaps


@pytest.fixture
def atomic() -> Callable[..., str]:
    """The ``atomic_text`` builder, as a fixture."""
    return atomic_text


# ----------------------------------------------------------------------------------------------------
# A tiny RLM trained on a dataset *on disk* (RecBole atomic files with titles), as the workbench and the
# CLI load models: through the dataset config recorded in the model directory.


def write_toy_recbole(directory: Path, n_users: int = 24, n_items: int = 30, length: int = 8) -> Path:
    """``toy.inter`` + ``toy.item`` (titles): users walking a cycle of items from different starts."""
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        rows += [(f"u{u}", f"i{(start + t) % n_items}", 1 + (start + t) % 5, t) for t in range(length)]
    (directory / "toy.inter").write_text(atomic_text(
        ["user_id:token", "item_id:token", "rating:float", "timestamp:float"], rows), encoding="utf-8")
    (directory / "toy.item").write_text(atomic_text(
        ["item_id:token", "movie_title:token_seq"], [(f"i{i}", f"Toy Movie {i}") for i in range(n_items)]),
        encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def disk_rlm_dir(tmp_path_factory) -> Path:
    """A tiny RLM directory whose metadata points to a toy RecBole dataset on disk (60 steps, CPU)."""
    from pap_rec_core.data import DatasetConfig
    from pap_rec_core.rlm.training import train_preset

    root = tmp_path_factory.mktemp("disk_rlm")
    data_dir = write_toy_recbole(root / "toy")
    out = root / "model"
    train_preset(DatasetConfig(path=str(data_dir)), "tiny", out, negatives=5, progress=False, max_steps=60,
                 direct_candidates=6, sequential_candidates=4, device="cpu")
    return out


@pytest.fixture
def toy_recbole() -> Callable[..., Path]:
    """The ``write_toy_recbole`` builder, as a fixture."""
    return write_toy_recbole


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system Chromium (the real-browser test; static PNG/SVG/PDF export through kaleido). Outside CI a
    machine without it skips these tests with the install hint; on CI (.ci/run installs it) they fail."""
    import os

    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing on CI (.ci/run installs it with apt)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    return CHROMIUM
