"""The committed ml-100k RLM (models/ml-100k) gives exactly the metrics its report records.

The report (benchmarks/results/rlm_ml-100k_full.json) is written by ``benchmarks/rlm_report.py`` from the
committed weights; here the two rows that are cheap to recompute (manual 2-3 ranked by first token over
all items; direct 5-7 scored exactly over its 1+99 candidates) are recomputed and compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pap_rec_core.rlm import embedded_model_dir, load_rlm_with_split
from pap_rec_core.rlm.checkpoint import EMBEDDED_MODEL_COMMAND
from pap_rec_core.scoring import evaluate_rlm

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "benchmarks" / "results" / "rlm_ml-100k_full.json"


@pytest.fixture(scope="module")
def embedded():
    return load_rlm_with_split(embedded_model_dir(), device="cpu")


def test_embedded_model_is_small_and_records_how_it_was_made(embedded) -> None:
    bundle, split = embedded
    size = sum(p.stat().st_size for p in embedded_model_dir().rglob("*") if p.is_file())
    assert size <= 20 * 2**20
    assert not (embedded_model_dir() / "train_state.pt").exists()
    meta = bundle.metadata
    assert meta["train_config"]["preset"] == "full" and meta["train_config"]["seed"] == 0
    assert meta["item_index"] == {"mode": "random", "seed": 0, "leaky": False}
    assert meta["dataset"]["name"] == "ml-100k" and len(split.eval_users) == 943
    assert "--preset full --seed 0" in EMBEDDED_MODEL_COMMAND and "--threads 1" in EMBEDDED_MODEL_COMMAND


@pytest.mark.parametrize(("prompt", "method"), [("manual:2-3", "first-token"), ("manual:5-7", "exact")])
def test_recorded_metrics_are_what_the_weights_give(embedded, prompt, method) -> None:
    report = json.loads(REPORT.read_text())
    row = next(r for r in report["rows"] if r["prompt"] == prompt)
    assert row["method"] == method
    bundle, split = embedded
    got = evaluate_rlm(bundle, split, "test", prompt, method=method).summary()
    for key in ("hit@5", "ndcg@5", "hit@10", "ndcg@10"):
        assert got[key] == pytest.approx(row[key], abs=1e-6), key


def test_the_default_search_has_something_to_find_on_the_embedded_model(embedded) -> None:
    """Issue 12's headroom: one iteration of the default search on 200 validation users accepts a token,
    and a slot's candidates do not all score the same (on the previous, prompt-deaf model every
    candidate scored 0.0715 and nothing changed)."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from search_headroom import headroom

    bundle, split = embedded
    result = headroom(bundle, split, users=200)
    assert result["accepted"], "no token accepted"
    assert result["slots_with_unequal_candidates"] >= 1
    assert all(a["value_after"] > a["value_before"] for a in result["accepted"])


def test_embedded_model_starts_from_training_transitions(embedded) -> None:
    bundle, _ = embedded
    config = bundle.metadata["train_config"]
    assert config["item_init"] == "transition-svd" and config["keyinfo_steps"] > 0 and config["two_phase"]
    assert bundle.tokenizer.item_separator == "" and not bundle.tokenizer.user_tokens
    # the key-info phase chose its own weights (by the history alone, B-1); the word phase, the model (2-3)
    report = bundle.metadata["train_report"]
    assert report["keyinfo_best"]["step"] <= config["keyinfo_steps"] < report["best_step"]
    assert {c["prompt"] for c in report["curve"]} == {"manual:B-1", "manual:2-3"}
