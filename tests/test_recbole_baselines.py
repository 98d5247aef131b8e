"""RecBole baselines trained on our split and scored by our evaluator (pap_rec_core.evaluation.recbole_baselines).

A toy dataset with a strong sequential pattern (each user walks through consecutive items) trains Pop,
BPR and SASRec for a few epochs; the tests check shapes, users, metric ranges, that SASRec learns the
pattern, that Pop equals ``popularity_scores``, and that RecBole leaves no trace in the process
(files in the CWD, ``sys.argv``, logging, RNG state, anomaly mode).
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pap_rec_core.data import SplitConfig, Stage, build_interactions, build_item_index, leave_one_out
from pap_rec_core.evaluation import EvaluationResult, evaluate_scores, popularity_scores
from pap_rec_core.evaluation.recbole_baselines import (
    SUPPORTED,
    BaselineConfig,
    BaselineResult,
    baselines_frame,
    run_baselines,
    train_baseline,
)

N_USERS, N_ITEMS = 30, 40
# Small batches and a larger learning rate so that a few epochs learn the toy pattern.
TOY = dict(train_batch_size=32, learning_rate=5e-3, device="cpu")
EPOCHS = {"Pop": 1, "BPR": 2, "SASRec": 3}


@pytest.fixture(scope="module")
def toy():
    """30 users x 40 items: user u walks ``start, start+1, ...`` (mod 40) for 8-14 steps."""
    rng = np.random.default_rng(7)
    users, items, times = [], [], []
    for u in range(N_USERS):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(8, 15))
        for k in range(length):
            users.append(f"u{u}")
            items.append(f"i{(start + k) % N_ITEMS}")
            times.append(1000.0 * u + k)
    data = build_interactions(users, items, name="toy", source="test:toy", timestamps=times)
    split = leave_one_out(data, SplitConfig(n_negatives=10))
    index = build_item_index(data, "random", seed=0)
    return SimpleNamespace(data=data, split=split, index=index)


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    """Pop, BPR and SASRec trained once, from an empty CWD that is listed afterwards."""
    cwd = tmp_path_factory.mktemp("cwd")
    argv = sys.argv
    argv_copy = list(argv)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        results = {m: train_baseline(toy.split, toy.index, BaselineConfig(m, epochs=EPOCHS[m], **TOY))
                   for m in EPOCHS}
        cwd_after = Path.cwd()
    return SimpleNamespace(results=results, cwd=cwd, cwd_after=cwd_after, listing=sorted(os.listdir(cwd)),
                           argv_restored=sys.argv is argv and sys.argv == argv_copy)


# ----------------------------------------------------------------------------------------------------
# Config


def test_unknown_model_lists_supported():
    with pytest.raises(ValueError, match="unknown baseline model 'LightGCN'") as err:
        BaselineConfig("LightGCN")
    for name in SUPPORTED:
        assert name in str(err.value)


def test_config_validation_and_round_trip():
    assert BaselineConfig("sasrec").model == "SASRec"  # case-insensitive
    for bad in (dict(epochs=0), dict(stopping_step=0), dict(learning_rate=0), dict(train_batch_size=0),
                dict(device="tpu"), dict(max_seconds=-1), dict(extra={"epochs": 3}),
                dict(extra={"checkpoint_dir": "x"}), dict(extra={"f": object()})):
        with pytest.raises(ValueError):
            BaselineConfig("BPR", **bad)
    cfg = BaselineConfig("GRU4Rec", epochs=5, seed=3, extra={"hidden_size": 32}, max_seconds=60)
    assert BaselineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown BaselineConfig field.*bogus"):
        BaselineConfig.from_dict({"model": "Pop", "bogus": 1})


# ----------------------------------------------------------------------------------------------------
# Results


@pytest.mark.parametrize("model", list(EPOCHS))
def test_results_shapes_users_and_ranges(trained, toy, model):
    res = trained.results[model]
    assert isinstance(res, BaselineResult) and res.model == model
    for stage, ev in ((Stage.VALID, res.valid), (Stage.TEST, res.test)):
        assert isinstance(ev, EvaluationResult) and ev.stage is stage and ev.system == model
        np.testing.assert_array_equal(ev.users, toy.split.eval_users)
        assert ev.ranks.shape == (len(toy.split.eval_users),)
        for key, values in ev.per_user.items():
            assert values.shape == ev.ranks.shape
            assert np.all((values >= 0) & (values <= 1)), key
    assert 1 <= res.epochs_run <= EPOCHS[model] and 0 <= res.best_epoch < res.epochs_run
    assert len(res.valid_curve) == res.epochs_run
    assert res.valid.summary()["ndcg@10"] == pytest.approx(max(res.valid_curve))  # best epoch's weights
    d = json.loads(json.dumps(res.to_dict()))
    assert d["model"] == model and d["users"] == len(toy.split.eval_users)
    assert set(d["test"]) == {"hit@1", "hit@5", "hit@10", "ndcg@5", "ndcg@10", "mrr"}


def test_sasrec_learns_the_pattern_far_above_random(trained, toy):
    split = toy.split
    rng = np.random.default_rng(0)
    rand = evaluate_scores(split, Stage.TEST, rng.random((len(split.eval_users), split.data.n_items)),
                           system="random", users=split.eval_users)
    sasrec = trained.results["SASRec"].test.summary()
    assert sasrec["ndcg@10"] > 0.5 > 3 * rand.summary()["ndcg@10"]
    assert sasrec["hit@10"] > 0.7


def test_pop_equals_popularity_scores(trained, toy):
    """RecBole's Pop counts every training interaction (duplicate-free sub-batches): same ranks as ours."""
    split = toy.split
    pop = np.broadcast_to(popularity_scores(split), (len(split.eval_users), split.data.n_items))
    for stage, ev in ((Stage.VALID, trained.results["Pop"].valid), (Stage.TEST, trained.results["Pop"].test)):
        ours = evaluate_scores(split, stage, pop, system="popularity", users=split.eval_users)
        np.testing.assert_array_equal(ours.ranks, ev.ranks)


def test_nothing_written_to_cwd_and_argv_restored(trained):
    assert trained.listing == []
    assert trained.cwd_after == trained.cwd
    assert trained.argv_restored


def test_recbole_ignores_our_argv_and_leaves_no_trace(toy, tmp_path, monkeypatch):
    """RecBole parses ``--key=value`` from sys.argv; a clean argv is used and the caller's is restored."""
    import torch

    monkeypatch.chdir(tmp_path)
    argv = ["pytest", "--epochs=999", "--learning_rate=oops", "-k", "x"]
    monkeypatch.setattr(sys, "argv", argv)
    root = logging.getLogger()
    filters, level, handlers = list(root.filters), root.level, list(root.handlers)
    anomaly = torch.is_anomaly_enabled()
    cuda_env = os.environ.get("CUDA_VISIBLE_DEVICES")
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    res = train_baseline(toy.split, toy.index, BaselineConfig("BPR", epochs=1, **TOY))
    assert res.epochs_run == 1
    assert sys.argv is argv and argv == ["pytest", "--epochs=999", "--learning_rate=oops", "-k", "x"]
    assert os.listdir(tmp_path) == [] and Path.cwd() == tmp_path
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected  # global RNGs untouched
    assert (root.filters, root.level, root.handlers) == (filters, level, handlers)
    assert torch.is_anomaly_enabled() == anomaly  # RecBole's sine.py switches it on at import
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == cuda_env


def test_work_dir_keeps_benchmark_files_with_train_plus_valid_test_histories(toy, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    work = tmp_path / "work"
    res = train_baseline(toy.split, toy.index, BaselineConfig("SASRec", epochs=1, **TOY), work_dir=work)
    assert os.listdir(cwd) == []
    assert res.recbole_settings["MAX_ITEM_LIST_LENGTH"] == 13  # longest history (train + valid) < 50
    split, index = toy.split, toy.index
    lines = (work / "data" / "paprec" / "paprec.test.inter").read_text().splitlines()
    assert lines[0] == "user_id:token\titem_id_list:token_seq\titem_id:token"
    rows = {u: (hist.split(), target) for u, hist, target in (line.split("\t") for line in lines[1:])}
    assert len(rows) == len(split.eval_users)
    for u in split.eval_users:
        hist, target = rows[split.data.user_ids[u]]
        assert [index.item_of(t) for t in hist] == split.history(int(u), Stage.TEST).tolist()  # train + valid
        assert index.item_of(target) == split.test_target[u]
    assert (work / "export" / "paprec" / "paprec.train.inter").is_file()  # the plain export, kept


def test_run_baselines_and_frame(toy):
    results = run_baselines(toy.split, toy.index, ["Pop", "bpr"], epochs=1, progress=False, device="cpu")
    assert [r.model for r in results] == ["Pop", "BPR"]
    frame = baselines_frame(results)
    assert list(frame["model"]) == ["Pop", "BPR"] and (frame["users"] == len(toy.split.eval_users)).all()
    with pytest.raises(ValueError, match="supported"):
        run_baselines(toy.split, toy.index, ["Pop", "NoSuchModel"], progress=False)


# ----------------------------------------------------------------------------------------------------
# CLI (Pop on ml-100k: also the cross-check against popularity_scores on the real dataset)


def test_cli_baselines_pop_ml100k(ml100k, tmp_path, monkeypatch, capsys):
    from pap_rec_core.cli import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "res" / "pop.json"
    assert main(["-q", "baselines", "--dataset", "ml-100k", "--models", "Pop", "--epochs", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Pop" in printed and "ndcg@10" in printed
    payload = json.loads(out.read_text())
    assert os.listdir(tmp_path) == ["res"]
    (pop_result,) = payload["models"]
    split = leave_one_out(ml100k)
    pop = np.broadcast_to(popularity_scores(split), (len(split.eval_users), ml100k.n_items))
    ours = evaluate_scores(split, Stage.TEST, pop, system="popularity", users=split.eval_users).summary()
    assert pop_result["test"] == pytest.approx(ours, abs=1e-12)
    assert ours["ndcg@10"] == pytest.approx(0.043, abs=5e-4)  # README: popularity, test, masked


def test_cli_baselines_rejects_unknown_model(capsys):
    from pap_rec_core.cli import main

    assert main(["baselines", "--models", "Pop,Nope"]) == 2
    assert "supported" in capsys.readouterr().err


@pytest.mark.slow
def test_sasrec_ml100k_beats_popularity(ml100k):
    import torch

    split = leave_one_out(ml100k)
    index = build_item_index(ml100k, "random", seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))  # ~4.5 min on a 2-core CPU (2 epochs of ~100k sequences)
    try:
        res = train_baseline(split, index, BaselineConfig("SASRec", epochs=2, stopping_step=1, train_batch_size=512))
    finally:
        torch.set_num_threads(threads)
    pop = np.broadcast_to(popularity_scores(split), (len(split.eval_users), ml100k.n_items))
    popular = evaluate_scores(split, Stage.TEST, pop, system="popularity", users=split.eval_users)
    assert res.test.summary()["ndcg@10"] > popular.summary()["ndcg@10"]
