"""Training: the tiny preset end to end, resume after an interruption, CLI train-rlm/evaluate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pap_rec_core.data import build_item_index
from pap_rec_core.prompts import get_template
from pap_rec_core.rlm import load_rlm
from pap_rec_core.rlm.evaluate import random_word_source
from pap_rec_core.rlm.training import TrainConfig, preset, train_rlm
from pap_rec_core.scoring import PromptSpec, evaluate_rlm


def _cfg(**kw) -> TrainConfig:
    return preset("tiny", direct_candidates=6, sequential_candidates=4, **kw)


def test_tiny_training_saves_a_loadable_model(toy_split, tmp_path) -> None:
    index = build_item_index(toy_split.data, "random", seed=0)
    bundle, report = train_rlm(toy_split, index, _cfg(), tmp_path / "m", progress=False)
    assert report.steps == 30 and report.curve and 0.0 <= report.best_valid_ndcg10 <= 1.0
    back = load_rlm(tmp_path / "m", device="cpu")
    assert back.metadata["train_config"]["preset"] == "tiny"
    assert back.metadata["dataset"]["fingerprint"] == toy_split.data.fingerprint()
    for name, tensor in bundle.model.state_dict().items():
        assert torch.equal(tensor, back.model.state_dict()[name]), name
    res = evaluate_rlm(back, toy_split, "test", "manual:2-3")
    assert len(res.users) == 24 and set(res.summary()) >= {"hit@10", "ndcg@10"}
    direct = evaluate_rlm(back, toy_split, "test", "manual:5-7")
    assert direct.task.value == "direct"


def test_interrupted_training_resumes_to_the_same_weights(toy_split, tmp_path) -> None:
    index = build_item_index(toy_split.data, "random", seed=0)
    full, _ = train_rlm(toy_split, index, _cfg(max_steps=12, eval_every=5), tmp_path / "a", progress=False)
    # Stop after the first step (time limit 0 s), then rerun without the limit: it continues.
    _, first = train_rlm(toy_split, index, _cfg(max_steps=12, eval_every=5, time_limit_s=0.0), tmp_path / "b",
                         progress=False)
    assert first.stopped_by == "time_limit" and first.steps == 1
    resumed, report = train_rlm(toy_split, index, _cfg(max_steps=12, eval_every=5), tmp_path / "b", progress=False)
    assert report.steps == 12
    for name, tensor in full.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    with pytest.raises(ValueError, match="differs in learning_rate"):
        train_rlm(toy_split, index, _cfg(max_steps=12, eval_every=5, learning_rate=0.1), tmp_path / "b",
                  progress=False)


def test_prompt_specs() -> None:
    assert PromptSpec.parse("manual:2-13").value == "2-13"
    assert PromptSpec.parse("manual:5-7").task.value == "direct"
    assert PromptSpec.parse("keyinfo").kind == "keyinfo"
    with pytest.raises(KeyError):
        PromptSpec.parse("manual:9-9")
    with pytest.raises(ValueError):
        PromptSpec.parse("magic")


def test_random_word_prompt_keeps_key_info(toy_split, tmp_path) -> None:
    from pap_rec_core.rlm.training import build_tokenizer

    tok = build_tokenizer(toy_split.data, build_item_index(toy_split.data), preset("tiny"))
    source = get_template("2-3").source
    randomized = random_word_source(source, tok, seed=1)
    assert "user_{user} : \n {history} \n" in randomized
    original_words = source.split()
    new_words = randomized.split()
    assert len(new_words) == len(original_words)
    changed = sum(a != b for a, b in zip(original_words, new_words) if a.isalpha())
    assert changed >= 0.7 * sum(w.isalpha() for w in original_words)
    assert random_word_source(source, tok, seed=1) == randomized


def _toy_recbole(tmp_path, n_users: int, length: int, n_items: int, stride: int = 1):
    """A small RecBole atomic dataset on disk: user u walks items (stride*u + t) % n_items."""
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    lines += [f"{u}\t{(stride * u + t) % n_items}\t{t}" for u in range(n_users) for t in range(length)]
    d = tmp_path / "toyrb"
    d.mkdir()
    (d / "toyrb.inter").write_text("\n".join(lines) + "\n")
    return d


def test_cli_train_and_evaluate(tmp_path, capsys) -> None:
    from pap_rec_core.cli import main

    d = _toy_recbole(tmp_path, n_users=12, length=6, n_items=15)
    out = tmp_path / "model"
    assert main(["-q", "train-rlm", "--dataset", str(d), "--preset", "tiny", "--max-steps", "4",
                 "--negatives", "5", "--out", str(out)]) == 0
    assert "saved" in capsys.readouterr().out
    code = main(["-q", "evaluate", "--model", str(out), "--prompt", "manual:2-3", "--prompt", "keyinfo",
                 "--resamples", "50", "--per-user", str(tmp_path / "pu.csv")])
    printed = capsys.readouterr().out
    assert code == 0 and "manual:2-3" in printed and "keyinfo" in printed and "ndcg@10" in printed
    assert (tmp_path / "pu.csv").read_text().count("\n") == 1 + 2 * 12
    assert main(["-q", "evaluate", "--model", str(tmp_path / "none"), "--prompt", "manual:2-3"]) == 2
    run = tmp_path / "run"
    assert main(["-q", "search", "--model", str(out), "--shared", "2", "--personal", "1", "--iterations", "1",
                 "--top-k", "2", "--users", "8", "--out", str(run)]) == 0
    assert "shared tokens:" in capsys.readouterr().out and (run / "trace.jsonl").is_file()
    code = main(["-q", "evaluate", "--model", str(out), "--prompt", "manual:2-3", "--prompt", f"run:{run}",
                 "--resamples", "50", "--per-user", str(tmp_path / "run.csv")])
    assert code == 0 and f"run:{run}" in capsys.readouterr().out
    assert (tmp_path / "run.csv").read_text().count("\n") == 1 + 2 * 8  # the run's 8 users, both prompts
    # bad input: a one-line error, exit 2, before any prompt is scored
    assert main(["-q", "evaluate", "--model", str(out), "--prompt", "manual:9-9"]) == 2
    assert "unknown template '9-9'" in capsys.readouterr().err
    assert main(["-q", "evaluate", "--model", str(out), "--prompt", "manual:2-3", "--prompt", "manual:5-7"]) == 2
    assert "different tasks" in capsys.readouterr().err
    other = tmp_path / "other"  # the same recipe on other data: the run's rows and tokens do not apply
    (tmp_path / "o").mkdir()
    d2 = _toy_recbole(tmp_path / "o", n_users=13, length=6, n_items=15)
    assert main(["-q", "train-rlm", "--dataset", str(d2), "--preset", "tiny", "--max-steps", "2",
                 "--negatives", "5", "--out", str(other)]) == 0
    capsys.readouterr()
    assert main(["-q", "evaluate", "--model", str(other), "--prompt", f"run:{run}"]) == 2
    err = capsys.readouterr().err
    assert "was searched on dataset" in err and "fingerprint" in err
    import json as _json

    started = _json.loads((run / "trace.jsonl").read_text().splitlines()[0])
    from pathlib import Path as _Path

    assert _Path(started["model"]["path"]).is_absolute()  # read from anywhere, the trace finds its model
    (run / "trace.jsonl").write_text((run / "trace.jsonl").read_text().splitlines()[0] + "\n")  # unfinished
    assert main(["-q", "evaluate", "--model", str(out), "--prompt", f"run:{run}"]) == 2
    assert "has not finished" in capsys.readouterr().err


def test_history_questions_share_the_key_info_and_answer_from_it(toy_split) -> None:
    import random as _random

    from pap_rec_core.prompts import Family, templates_of
    from pap_rec_core.prompts.parts import ItemRef, UserRef
    from pap_rec_core.rlm.samples import SampleBuilder
    from pap_rec_core.rlm.training import build_tokenizer

    cfg = _cfg()
    index = build_item_index(toy_split.data, "random", seed=0)
    builder = SampleBuilder(toy_split, build_tokenizer(toy_split.data, index, cfg), cfg, _random.Random(0))
    assert Family.HISTORY in builder.families
    for template in templates_of(Family.HISTORY):
        assert "user_{user} : \n {history} \n" in template.source
        for _ in range(20):
            parts, target, tid = builder.sample(Family.HISTORY, template)
            user = next(p.user for p in parts if isinstance(p, UserRef))
            shown = [p.item for p in parts if isinstance(p, ItemRef)]
            train = list(toy_split.train[user])
            assert shown == train[: len(shown)]  # a prefix of the training items (toy: never truncated)
            if template.target in ("{first}", "{last}"):
                assert target == builder.tok.item_target_ids(shown[0] if template.target == "{first}" else shown[-1])
            else:
                t = len(shown)  # the toy histories are never truncated
                later = train[t + 1 : t + 2] if template.target == "{after_next}" else train[t : t + 10]
                assert any(target == builder.tok.item_target_ids(i) for i in later)
            assert tid == template.id


def test_search_under_torchrun_takes_the_tokens_of_one_process(tmp_path) -> None:
    """2 processes (gloo on loopback) shard users and samples and all-reduce: same tokens as 1 process."""
    import json
    import subprocess
    import sys

    from pap_rec_core.cli import main
    from pap_rec_core.search import SearchResult

    d = _toy_recbole(tmp_path, n_users=14, length=7, n_items=17, stride=3)
    model = tmp_path / "model"
    assert main(["-q", "train-rlm", "--dataset", str(d), "--preset", "tiny", "--max-steps", "30",
                 "--negatives", "5", "--out", str(model)]) == 0
    args = ["-q", "search", "--model", str(model), "--shared", "3", "--personal", "1", "--iterations", "2",
            "--top-k", "3", "--personal-rule", "likelihood-tiebreak", "--batch-size", "4", "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "pap_rec_core.cli", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    one_r, two_r = SearchResult.from_run(tmp_path / "one"), SearchResult.from_run(tmp_path / "two")
    assert (two_r.shared, two_r.personal, two_r.iterations) == (one_r.shared, one_r.personal, one_r.iterations)
    assert two_r.value == pytest.approx(one_r.value, abs=1e-9)
    events = [json.loads(x)["event"] for x in (tmp_path / "two" / "trace.jsonl").read_text().splitlines()]
    assert events.count("run_started") == 1 and events[-1] == "finished"  # one writer
    records = [json.loads(x) for x in (tmp_path / "one" / "trace.jsonl").read_text().splitlines()]
    assert any(r["event"] == "token_accepted" or r.get("users_changed") for r in records)  # decisions were taken


def test_early_stopping_on_patience_and_on_resume(toy_split, tmp_path) -> None:
    index = build_item_index(toy_split.data, "random", seed=0)
    scores = iter([0.5, 0.4, 0.3, 0.9, 0.1, 0.1])  # the best is the first validation

    def validate(model, tok) -> float:
        return next(scores)

    cfg = _cfg(max_steps=30, eval_every=5, patience=2)
    _, report = train_rlm(toy_split, index, cfg, tmp_path / "m", progress=False, validate=validate)
    assert report.stopped_by == "patience" and report.steps == 15 and report.best_step == 5
    assert [c["step"] for c in report.curve] == [5, 10, 15]
    # Rerunning the finished directory resumes, sees the patience already spent and stops at once
    _, again = train_rlm(toy_split, index, cfg, tmp_path / "m", progress=False, validate=validate)
    assert again.steps == 15 and again.stopped_by == "patience" and next(scores) == 0.9  # no validation ran
    # patience may change on resume (like the time limit): a larger one continues the same run
    _, more = train_rlm(toy_split, index, _cfg(max_steps=30, eval_every=5, patience=3), tmp_path / "m",
                        progress=False, validate=lambda m, t: 0.0)
    assert more.steps == 20 and more.best_step == 5


def test_train_preset_reports_each_step_and_records_a_loadable_dataset(tmp_path, toy_recbole):
    from pap_rec_core.data import DatasetConfig
    from pap_rec_core.rlm.checkpoint import load_rlm_with_split
    from pap_rec_core.rlm.training import train_preset

    data_dir = toy_recbole(tmp_path / "toy")
    calls = []
    train_preset(DatasetConfig(path=str(data_dir)), "tiny", tmp_path / "m", negatives=5, progress=False, max_steps=5,
                 direct_candidates=6, sequential_candidates=4, device="cpu",
                 on_step=lambda step, total, loss: calls.append((step, total, loss)))
    assert [c[:2] for c in calls] == [(s, 5) for s in range(1, 6)] and all(c[2] > 0 for c in calls)
    bundle, split = load_rlm_with_split(tmp_path / "m", device="cpu")
    assert split.data.name == "toy" and split.config.n_negatives == 5
    assert split.data.item_titles()[0].startswith("Toy Movie")


def test_history_masked_loss(toy_split, toy_rlm):
    import torch

    from pap_rec_core.rlm.training import history_masked_loss

    tok = toy_rlm.tokenizer
    torch.manual_seed(0)
    logits = torch.randn(3, 2, tok.vocab_size)
    a, b, c = (tok.item_token(i) for i in (4, 5, 6))
    labels = torch.tensor([[a, 1], [b, 1], [c, -100]])
    plain = torch.nn.functional.cross_entropy(logits.reshape(-1, tok.vocab_size), labels.reshape(-1), ignore_index=-100)
    assert history_masked_loss(logits, labels, [None, None, None], tok) == pytest.approx(float(plain))
    masked = history_masked_loss(logits, labels, [np.array([5, 6, 4]), None, np.array([4])], tok)
    # by hand: row 0's first step loses items 5 and 6 (its own target 4 is never masked); row 2 loses item 4
    first = logits[:, 0].clone()
    first[0, [b, c]] = float("-inf")
    first[2, a] = float("-inf")
    terms = [-torch.log_softmax(first[0], -1)[a], -torch.log_softmax(logits[0, 1], -1)[1],
             -torch.log_softmax(first[1], -1)[b], -torch.log_softmax(logits[1, 1], -1)[1],
             -torch.log_softmax(first[2], -1)[c]]
    assert float(masked) == pytest.approx(float(torch.stack(terms).mean()), rel=1e-5)
    assert float(masked) < float(plain)


def test_training_with_the_history_masked_loss_runs(toy_split, tmp_path):
    from pap_rec_core.data import build_item_index
    from pap_rec_core.rlm.training import preset, train_rlm

    config = preset("tiny", max_steps=4, direct_candidates=6, sequential_candidates=4, device="cpu",
                    mask_history_loss=True)
    bundle, report = train_rlm(toy_split, build_item_index(toy_split.data, "random"), config, tmp_path / "m",
                               progress=False)
    assert report.steps == 4 and bundle.metadata["train_config"]["mask_history_loss"] is True
    with pytest.raises(ValueError, match="single-token items"):
        preset("tiny", mask_history_loss=True, item_tokens=False)


def test_cli_families_sets_the_training_mixture(tmp_path, capsys) -> None:
    import json

    from pap_rec_core.cli import main, parse_families

    assert parse_families("sequential=1,history=0.2") == (("sequential", 1.0), ("history", 0.2))
    assert parse_families("sequential") == (("sequential", 1.0),)
    d = _toy_recbole(tmp_path, n_users=12, length=6, n_items=15)
    out = tmp_path / "model"
    assert main(["-q", "train-rlm", "--dataset", str(d), "--preset", "tiny", "--max-steps", "4", "--negatives", "5",
                 "--families", "sequential=1", "--out", str(out)]) == 0
    meta = json.loads((out / "rlm_metadata.json").read_text())
    assert meta["train_config"]["family_weights"] == [["sequential", 1.0]]
    assert meta["templates_seen"] == [f"2-{k}" for k in range(1, 11)]  # the sequential family's seen templates
    for bad, why in (("sequentail=1", "unknown family 'sequentail'"), ("sequential=x", "not a number"),
                     ("sequential=-1", "must be >= 0")):
        assert main(["-q", "train-rlm", "--dataset", str(d), "--preset", "tiny", "--families", bad,
                     "--out", str(tmp_path / "bad")]) == 2
        assert why in capsys.readouterr().err
