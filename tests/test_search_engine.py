"""The search engine on a tiny trained RLM: both engines decide alike, resume is exact, rounds add up."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pap_rec_core.search import PapRecSearch, SearchConfig, SearchResult, read_trace, run_search
from pap_rec_core.search.events import TRACE_FILE, CandidatesScored, PersonalRound, TokenAccepted, TraceError

CFG = SearchConfig(n_shared=3, n_personal=1, top_k=3, iterations=3, batch_size=16, seed=0)


def _decisions(events):
    """What a search decided: the candidates it scored, the tokens it took, the users it changed."""
    return [(e.event, getattr(e, "slot", None), getattr(e, "candidates", None), getattr(e, "after", None),
             getattr(e, "changed", None)) for e in events if e.event != "run_started"]


def _values(events):
    return [v for e in events if e.event == "candidates_scored" for v in e.values]


def _same_search(a, b) -> None:
    """Same decisions; surrogate values equal up to float rounding (batches of other sizes change the
    last bits of continuous values such as likelihoods; rank-based values come out identical)."""
    assert _decisions(a) == _decisions(b)
    assert _values(a) == pytest.approx(_values(b), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(("surrogate", "holdout", "shared_holdout"),
                         [("exact", 0, 0), ("beam", 0, 0), ("likelihood", 0, 0), ("exact", 2, 0), ("ndcg", 0, 0),
                          ("ndcg", 2, 3)])
def test_fast_and_reference_engines_take_the_same_decisions(toy_rlm, toy_split, surrogate, holdout,
                                                            shared_holdout) -> None:
    cfg = SearchConfig(**{**CFG.to_dict(), "surrogate": surrogate, "personal_rule": "likelihood-tiebreak",
                          "personal_holdout": holdout, "shared_holdout": shared_holdout})
    fast = list(PapRecSearch(toy_rlm, toy_split, cfg, engine="fast").events())
    ref = list(PapRecSearch(toy_rlm, toy_split, cfg, engine="reference").events())
    _same_search(fast, ref)
    assert fast[-1].shared == ref[-1].shared and fast[-1].personal == ref[-1].personal
    assert any(isinstance(e, CandidatesScored) for e in fast)


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_the_fast_engine_judges_the_same_tokens_once(toy_rlm, toy_split, engine) -> None:
    """The shared round starts from the initial tokens on the same judge: the fast engine reuses the initial
    values (the reference, as the public code, judges them again)."""
    search = PapRecSearch(toy_rlm, toy_split, SearchConfig(**{**CFG.to_dict(), "iterations": 1}), engine=engine)
    calls, score = [], search._score_rows
    search._score_rows = lambda judge, tokens, rows: (calls.append(len(rows)), score(judge, tokens, rows))[1]
    seen: dict[str, int] = {}
    for e in search.events():
        if e.event in ("evaluated", "gradient_computed"):
            seen.setdefault(e.event, len(calls))  # the initial value; the shared round's start
    assert seen["evaluated"] > 0
    assert (seen["gradient_computed"] == seen["evaluated"]) == (engine == "fast")


@pytest.mark.parametrize("surrogate", ["exact", "beam", "likelihood"])
def test_engines_agree_on_digit_text_items(toy_digit_rlm, toy_split, surrogate) -> None:
    """Items written as digit text (P5 checkpoints): the fast engine's trie scores and beam search replay
    take the reference's decisions (teacher forcing, ``generate`` under the trie). (Plain, unconstrained
    beams of this toy model emit no item ids: the replay of plain ``generate`` is tested token for token
    in test_rlm_ranking.py.)"""
    assert not toy_digit_rlm.tokenizer.item_tokens
    cfg = SearchConfig(**{**CFG.to_dict(), "surrogate": surrogate, "iterations": 2, "max_users": 12,
                          "personal_rule": "likelihood-tiebreak"})
    fast = list(PapRecSearch(toy_digit_rlm, toy_split, cfg, engine="fast").events())
    ref = list(PapRecSearch(toy_digit_rlm, toy_split, cfg, engine="reference").events())
    _same_search(fast, ref)
    assert any(isinstance(e, CandidatesScored) for e in fast)
    if surrogate != "likelihood":
        assert any(v > 0 for v in _values(fast)), "the targets rank in the lists: the agreement is not between zeros"
    assert any(e.event in ("token_accepted", "personal_round") for e in fast), "the search took decisions"


def test_the_paper_protocol_runs_the_public_codes_choices_and_both_engines_agree(toy_rlm, toy_split) -> None:
    cfg = SearchConfig.preset("paper", n_shared=3, n_personal=1, top_k=3, iterations=2, max_users=24)
    assert (cfg.surrogate, cfg.samples_per_user, cfg.sample_window) == ("beam", 5, 4)
    assert cfg.allow_current and not cfg.mask_history and not cfg.beam_constrained
    fast = list(PapRecSearch(toy_rlm, toy_split, cfg, engine="fast").events())
    ref = list(PapRecSearch(toy_rlm, toy_split, cfg, engine="reference").events())
    _same_search(fast, ref)
    assert any(v > 0 for v in _values(fast)), "plain beams find targets: the agreement is not between zeros"
    search = PapRecSearch(toy_rlm, toy_split, cfg)
    assert not search.valid.mask.any()  # history items stay in the lists, as in the public code
    prompts = search.training_prompts(0, "shared")
    assert len(prompts) == 5 * len(search.users)
    for r, u in enumerate(np.repeat(search.users, 5)):  # targets among the last 4 training items
        train = toy_split.train[int(u)]
        assert int(prompts.targets[r]) in set(train[max(1, len(train) - 4):].tolist()) or len(train) < 2
    # the fast engine computes a sample drawn twice once and counts it twice: the same gradients and loss
    keep, counts = search._distinct_samples(prompts, np.repeat(search.mine, 5))
    assert len(keep) < len(prompts) and counts.sum() == len(prompts)
    reference = PapRecSearch(toy_rlm, toy_split, cfg, engine="reference")
    tokens = search._tokens(list(fast[0].shared), np.array(fast[0].personal))  # the run's starting tokens
    g_fast, loss_fast = search.gradients(prompts, tokens)
    g_ref, loss_ref = reference.gradients(reference.training_prompts(0, "shared"), tokens)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-7)
    assert loss_fast == pytest.approx(loss_ref, rel=1e-5)
    ours = SearchConfig.preset("ours", n_shared=3)
    assert ours == SearchConfig(n_shared=3) and ours.mask_history and not ours.allow_current
    with pytest.raises(ValueError, match="unknown protocol"):
        SearchConfig.preset("p5")


def test_evaluate_under_the_paper_protocol_replays_the_paper_searchs_judge(toy_rlm, toy_split, tmp_path) -> None:
    """NDCG@5 + HR@5 of plain 20-beam lists on validation, history items kept: evaluating the found prompt
    that way on the searched users gives the search's final judge value."""
    from pap_rec_core.evaluation import EvaluationConfig
    from pap_rec_core.scoring import evaluate_rlm

    cfg = SearchConfig.preset("paper", n_shared=3, n_personal=1, top_k=3, iterations=1, max_users=24)
    result = run_search(toy_rlm, toy_split, cfg, tmp_path / "paper")
    found = evaluate_rlm(toy_rlm, toy_split, "valid", f"run:{tmp_path / 'paper'}", method="beam",
                         beam_constrained=False, config=EvaluationConfig(mask_history=False, n_resamples=10))
    judged = found.per_user["ndcg@5"] + found.per_user["hit@5"]
    assert result.value > 0 and judged.mean() == pytest.approx(result.value, abs=1e-9)
    ours = evaluate_rlm(toy_rlm, toy_split, "valid", f"run:{tmp_path / 'paper'}", method="beam",
                        config=EvaluationConfig(n_resamples=10))
    assert not np.array_equal(ours.ranks, found.ranks), "the two protocols differ on this model"


def test_search_is_deterministic_and_only_accepts_strict_improvements(toy_rlm, toy_split) -> None:
    a = list(PapRecSearch(toy_rlm, toy_split, CFG).events())
    b = list(PapRecSearch(toy_rlm, toy_split, CFG).events())
    assert _decisions(a) == _decisions(b) and _values(a) == _values(b)  # same engine, same batches: identical
    start = a[0]
    allowed = PapRecSearch(toy_rlm, toy_split, CFG).allowed
    for e in a:
        if isinstance(e, TokenAccepted):
            assert e.value_after > e.value_before and e.after != e.before and allowed[e.after]
        if isinstance(e, CandidatesScored):
            assert e.current not in e.candidates and len(e.candidates) == CFG.top_k
            assert e.gradient_scores == sorted(e.gradient_scores, reverse=True)
    assert len(start.shared) == 3 and np.shape(start.personal) == (len(start.users), 1)


def test_personal_round_bookkeeping(toy_rlm, toy_split) -> None:
    cfg = SearchConfig(**{**CFG.to_dict(), "personal_rule": "likelihood-tiebreak"})
    events = list(PapRecSearch(toy_rlm, toy_split, cfg).events())
    assert sum(e.users_changed for e in events if isinstance(e, PersonalRound)) > 0
    personal = np.array(events[0].personal)
    row = {u: r for r, u in enumerate(events[0].users)}
    for e in events:
        if isinstance(e, PersonalRound):
            assert e.users_changed == len(e.changed)
            assert e.value_after >= e.value_before  # every user keeps its own best
            for user, (before, after) in e.changed.items():
                assert personal[row[int(user)], e.slot - CFG.n_shared] == before != after
                personal[row[int(user)], e.slot - CFG.n_shared] = after
    assert personal.tolist() == events[-1].personal


def test_likelihood_tiebreak_changes_a_superset_of_users(toy_rlm, toy_split) -> None:
    cfg = SearchConfig(n_shared=1, n_personal=1, top_k=3, iterations=1, batch_size=16)
    strict = [e for e in PapRecSearch(toy_rlm, toy_split, cfg).events() if isinstance(e, PersonalRound)]
    tie = [e for e in PapRecSearch(toy_rlm, toy_split, SearchConfig(**{**cfg.to_dict(),
           "personal_rule": "likelihood-tiebreak"})).events() if isinstance(e, PersonalRound)]
    assert tie[0].users_changed > 0 and set(strict[0].changed) <= set(tie[0].changed)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("stop_after", [3, 9])
def test_interrupted_search_resumes_to_the_same_tokens(toy_rlm, toy_split, tmp_path, stop_after) -> None:
    whole = run_search(toy_rlm, toy_split, CFG, tmp_path / "whole")
    seen = []

    def stop(event):
        seen.append(event)
        if len(seen) == stop_after:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_search(toy_rlm, toy_split, CFG, tmp_path / "cut", on_event=stop)
    with (tmp_path / "cut" / TRACE_FILE).open("a") as fh:
        fh.write('{"schema": 1, "event": "candidates_sc')  # a torn line, as kill -9 mid-write leaves
    resumed = run_search(toy_rlm, toy_split, CFG, tmp_path / "cut")
    assert (resumed.shared, resumed.personal, resumed.value) == (whole.shared, whole.personal, whole.value)
    events = read_trace(tmp_path / "cut")
    assert events[-1].event == "finished" and sum(e.event == "run_started" for e in events) == 1
    again = run_search(toy_rlm, toy_split, CFG, tmp_path / "cut")  # finished: read back, nothing rerun
    assert again == resumed and read_trace(tmp_path / "cut") == events


def test_resume_refuses_another_configuration(toy_rlm, toy_split, tmp_path) -> None:
    run_search(toy_rlm, toy_split, SearchConfig(n_shared=1, iterations=1, top_k=2), tmp_path / "r")
    with pytest.raises(ValueError, match="differs in top_k"):
        run_search(toy_rlm, toy_split, SearchConfig(n_shared=1, iterations=1, top_k=3), tmp_path / "r")


def test_trace_lines_are_versioned_json(toy_rlm, toy_split, tmp_path) -> None:
    result = run_search(toy_rlm, toy_split, SearchConfig(n_shared=2, iterations=1, top_k=2), tmp_path / "t")
    lines = (tmp_path / "t" / TRACE_FILE).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert all(r["schema"] == 1 and r["event"] for r in records)
    assert records[0]["event"] == "run_started" and records[-1]["event"] == "finished"
    assert SearchResult.from_run(tmp_path / "t") == result
    (tmp_path / "t" / TRACE_FILE).write_text(lines[0] + "\nnot json\n" + lines[1] + "\n")
    with pytest.raises(ValueError, match=r"trace.jsonl:2"):
        read_trace(tmp_path / "t")


def test_a_found_prompt_is_evaluated_on_the_users_it_searched(toy_rlm, toy_split, tmp_path) -> None:
    from pap_rec_core.data import UnknownUserError
    from pap_rec_core.scoring import evaluate_rlm

    cfg = SearchConfig(n_shared=2, n_personal=1, iterations=1, top_k=2, max_users=5)
    result = run_search(toy_rlm, toy_split, cfg, tmp_path / "r")
    res = evaluate_rlm(toy_rlm, toy_split, "test", f"run:{tmp_path / 'r'}", method="first-token")
    assert res.users.tolist() == result.users == toy_split.eval_users[:5].tolist()
    with pytest.raises(UnknownUserError, match="was not searched"):
        evaluate_rlm(toy_rlm, toy_split, "test", f"run:{tmp_path / 'r'}", users=toy_split.eval_users[:6])


def test_personal_holdout_judges_on_more_items_per_user(toy_rlm, toy_split) -> None:
    cfg = SearchConfig(n_shared=1, n_personal=1, top_k=3, iterations=1, personal_holdout=2)
    search = PapRecSearch(toy_rlm, toy_split, cfg)
    judge = search.personal_valid
    assert judge.rows_per_user.tolist() == [3] * len(search.users)
    for r in range(6):
        user = int(search.users[judge.row_user[r]])
        train = toy_split.train[user]
        assert judge.prompts.targets[r] in (toy_split.targets("valid")[user], train[-1], train[-2])
        assert not judge.mask[r, judge.prompts.targets[r]]  # a row's target is never in its own history
    prompts = search.training_prompts(0, "personal")
    for u, t in zip(prompts.users, prompts.targets):
        assert t not in toy_split.train[u][-2:]  # held-out items are not gradient targets


def test_shared_holdout_judges_shared_rounds_on_held_out_items(toy_rlm, toy_split) -> None:
    cfg = SearchConfig(n_shared=2, n_personal=1, top_k=3, iterations=2, shared_holdout=3, personal_holdout=1)
    search = PapRecSearch(toy_rlm, toy_split, cfg)
    assert search.shared_valid.rows_per_user.tolist() == [4] * len(search.users)
    assert search.personal_valid.rows_per_user.tolist() == [2] * len(search.users)
    assert search.valid.rows_per_user.tolist() == [1] * len(search.users)
    for kind in ("shared", "personal"):  # the larger holdout is kept out of every gradient
        prompts = search.training_prompts(0, kind)
        for u, t in zip(prompts.users, prompts.targets):
            train = toy_split.train[u]
            assert t in train[: max(1, len(train) - 3)]
    events = list(search.events())
    tokens = search._tokens([e for e in events if e.event == "run_started"][0].shared,
                            np.asarray([e for e in events if e.event == "run_started"][0].personal))
    first = next(e for e in events if e.event == "candidates_scored")
    assert first.current_value == pytest.approx(float(search.values(tokens, search.shared_valid)[0].mean()))
    finished = events[-1]  # the recorded value stays the validation item's, whatever judged the rounds
    final = search._tokens(finished.shared, np.asarray(finished.personal))
    assert finished.value == pytest.approx(float(search.values(final)[0].mean()))


def test_ndcg_surrogate_counts_every_rank() -> None:
    from pap_rec_core.search.surrogate import ndcg5_plus_hit5, rank_value

    ranks = np.array([1, 5, 6, 40, 1000])
    assert rank_value("exact", ranks).tolist() == ndcg5_plus_hit5(ranks).tolist()
    assert ndcg5_plus_hit5(ranks)[2:].tolist() == [0, 0, 0]
    ndcg = rank_value("ndcg", ranks)
    assert ndcg[0] == 1.0 and (np.diff(ndcg) < 0).all() and ndcg[-1] > 0


@pytest.mark.parametrize("surrogate", ["exact", "likelihood"])
def test_direct_task_search_engines_agree_and_evaluate(toy_rlm, toy_split, tmp_path, surrogate) -> None:
    from pap_rec_core.scoring import evaluate_rlm

    cfg = SearchConfig(task="direct", n_shared=2, n_personal=1, top_k=2, iterations=2, surrogate=surrogate,
                       personal_rule="likelihood-tiebreak")
    fast = list(PapRecSearch(toy_rlm, toy_split, cfg).events())
    ref = list(PapRecSearch(toy_rlm, toy_split, cfg, engine="reference").events())
    _same_search(fast, ref)
    search = PapRecSearch(toy_rlm, toy_split, cfg)
    judge = search.valid
    assert judge.candidates.shape == (24, 6)
    assert (judge.candidates[np.arange(24), judge.target_col] == toy_split.targets("valid")[search.users]).all()
    prompts = search.training_prompts(0, "shared")
    start, stop = toy_rlm.tokenizer.item_token_range()
    for row, target in enumerate(prompts.targets):  # each training prompt lists 6 candidates, its target among them
        ids = prompts.base.input_ids[row]
        listed = ids[(ids >= start) & (ids < stop)] - start
        assert len(listed) == 6 and target in listed.tolist()
    result = run_search(toy_rlm, toy_split, cfg, tmp_path / "d")
    res = evaluate_rlm(toy_rlm, toy_split, "test", f"run:{tmp_path / 'd'}", method="first-token")
    assert res.task.value == "direct" and len(res.users) == 24 and result.config.task == "direct"
    with pytest.raises(ValueError, match="direct task"):
        SearchConfig(task="direct", surrogate="bleu-rouge")


def test_the_paper_protocol_judges_the_direct_task_by_plain_beams_and_evaluate_replays_it(toy_rlm, toy_split,
                                                                                          tmp_path) -> None:
    """The public code's direct task: NDCG@5 + HR@5 of the items plain 20-beam search generates for the
    prompt with its candidates (the target need not be ranked among them); both engines agree, and
    evaluating the found prompt the paper way gives the search's final judge value."""
    from pap_rec_core.evaluation import EvaluationConfig
    from pap_rec_core.scoring import evaluate_rlm

    cfg = SearchConfig.preset("paper", task="direct", n_shared=2, n_personal=1, top_k=3, iterations=1)
    assert (cfg.surrogate, cfg.samples_per_user, cfg.sample_window) == ("beam", 5, 0)
    assert not cfg.mask_history and not cfg.beam_constrained and cfg.allow_current
    fast = list(PapRecSearch(toy_rlm, toy_split, cfg, engine="fast").events())
    ref = list(PapRecSearch(toy_rlm, toy_split, cfg, engine="reference").events())
    _same_search(fast, ref)
    assert any(v > 0 for v in _values(fast)), "the beams list targets: the agreement is not between zeros"
    result = run_search(toy_rlm, toy_split, cfg, tmp_path / "d")
    found = evaluate_rlm(toy_rlm, toy_split, "valid", f"run:{tmp_path / 'd'}", method="beam",
                         beam_constrained=False, config=EvaluationConfig(mask_history=False, n_resamples=10))
    assert found.task.value == "direct"
    judged = found.per_user["ndcg@5"] + found.per_user["hit@5"]
    assert result.value > 0 and judged.mean() == pytest.approx(result.value, abs=1e-9)
    ranked = evaluate_rlm(toy_rlm, toy_split, "valid", f"run:{tmp_path / 'd'}", method="first-token",
                          config=EvaluationConfig(n_resamples=10))  # ours: the target among its candidates
    assert not np.array_equal(ranked.ranks, found.ranks), "the two judges differ on this model"
    # each user's candidates are shown in the user's own order: the replay holds for any seed and any users
    ids = [str(toy_split.data.user_ids[u]) for u in toy_split.eval_users[::-1][3:]]
    other = SearchConfig.preset("paper", task="direct", n_shared=2, n_personal=1, top_k=3, iterations=1, seed=1,
                                user_ids=tuple(ids))
    result = run_search(toy_rlm, toy_split, other, tmp_path / "d1")
    found = evaluate_rlm(toy_rlm, toy_split, "valid", f"run:{tmp_path / 'd1'}", method="beam",
                         beam_constrained=False, config=EvaluationConfig(mask_history=False, n_resamples=10))
    assert sorted(str(toy_split.data.user_ids[u]) for u in found.users) == sorted(ids)
    judged = found.per_user["ndcg@5"] + found.per_user["hit@5"]
    assert result.value > 0 and judged.mean() == pytest.approx(result.value, abs=1e-9)
    with pytest.raises(ValueError, match="explanation task"):
        SearchConfig.preset("paper", task="explanation")


def test_the_direct_tasks_beam_surrogate_under_ours_masks_history_and_both_engines_agree(toy_rlm, toy_split) -> None:
    """Ours: beams held to item ids, each user's history left out of the lists (the judge's mask, which the
    direct task's prompts do not show)."""
    cfg = SearchConfig(task="direct", surrogate="beam", n_shared=2, n_personal=1, top_k=3, iterations=1)
    fast = list(PapRecSearch(toy_rlm, toy_split, cfg, engine="fast").events())
    ref = list(PapRecSearch(toy_rlm, toy_split, cfg, engine="reference").events())
    _same_search(fast, ref)
    search = PapRecSearch(toy_rlm, toy_split, cfg)
    np.testing.assert_array_equal(search.valid.mask, toy_split.history_mask("valid", search.users))
    assert search.valid.mask.any() and any(v > 0 for v in _values(fast)), "masks and hits: not a vacuous agreement"


def test_search_takes_an_explicit_user_set(toy_rlm, toy_split, tmp_path) -> None:
    from pap_rec_core.data.errors import UnknownUserError

    ids = [str(toy_split.data.user_ids[u]) for u in toy_split.eval_users[[7, 2, 11]]]
    cfg = SearchConfig(n_shared=1, n_personal=1, top_k=2, iterations=1, user_ids=ids)
    result = run_search(toy_rlm, toy_split, cfg, tmp_path / "r")
    assert result.users == toy_split.eval_users[[7, 2, 11]].tolist()  # these users, in this order
    assert SearchConfig.from_dict(cfg.to_dict()) == cfg and result.config.user_ids == tuple(ids)
    with pytest.raises(TraceError, match="another configuration .*user_ids"):
        run_search(toy_rlm, toy_split, SearchConfig(**{**cfg.to_dict(), "user_ids": ids[:2]}), tmp_path / "r")
    with pytest.raises(UnknownUserError, match="unknown user id 'nobody'"):
        PapRecSearch(toy_rlm, toy_split, SearchConfig(user_ids=[ids[0], "nobody"]))
    with pytest.raises(ValueError, match="more than once"):
        SearchConfig(user_ids=[ids[0], ids[0]])
    with pytest.raises(ValueError, match="not both"):
        SearchConfig(user_ids=ids, max_users=3)


def test_cli_search_prints_an_evaluate_command_that_runs_with_the_searchs_ranking(disk_rlm_dir, tmp_path,
                                                                                  capsys) -> None:
    import shlex

    from pap_rec_core.cli import main
    from pap_rec_core.cli.commands import evaluate_command

    run = tmp_path / "run"
    assert main(["-q", "search", "--model", str(disk_rlm_dir), "--shared", "1", "--iterations", "1", "--top-k", "2",
                 "--users", "4", "--out", str(run)]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("evaluate: ")][-1]
    command = shlex.split(line.removeprefix("evaluate: "))
    assert command[:2] == ["pap-rec", "evaluate"] and command[-2:] == ["--method", "first-token"]
    assert "manual:2-3" in command
    assert main(["-q", *command[1:], "--users", "4"]) == 0
    assert "method first-token" in capsys.readouterr().out
    assert evaluate_command("m", "r", SearchConfig(surrogate="beam")).endswith("--method beam")
    assert evaluate_command("m", "r", SearchConfig(ranking="exact")).endswith("--method exact")
    assert "manual:5-7" in evaluate_command("m", "r", SearchConfig(task="direct"))


def test_cli_search_protocol_paper_records_the_public_codes_choices(disk_rlm_dir, tmp_path) -> None:
    from pap_rec_core.cli import main
    from pap_rec_core.search import SearchResult

    run = tmp_path / "paper"
    assert main(["-q", "search", "--model", str(disk_rlm_dir), "--protocol", "paper", "--shared", "1",
                 "--iterations", "1", "--top-k", "2", "--users", "4", "--samples-per-user", "2", "--out", str(run)]) == 0
    config = SearchResult.from_run(run).config
    assert config == SearchConfig.preset("paper", n_shared=1, iterations=1, top_k=2, max_users=4, samples_per_user=2,
                                         batch_size=128)
    from pap_rec_core.cli.commands import evaluate_command

    command = evaluate_command(str(disk_rlm_dir), str(run), config)
    assert command.endswith("--method beam --protocol paper")  # evaluate replays the judge the search used
    import shlex

    assert main(["-q", *shlex.split(command)[1:], "--stage", "valid", "--resamples", "10"]) == 0
    assert main(["-q", *shlex.split(command)[1:], "--method", "exact"]) == 2  # contradicts the protocol, in words
    assert main(["-q", "search", "--model", str(disk_rlm_dir), "--protocol", "paper", "--task", "explanation",
                 "--out", str(tmp_path / "expl")]) == 2  # refused in words, not a ValueError
    direct = tmp_path / "direct"
    assert main(["-q", "search", "--model", str(disk_rlm_dir), "--protocol", "paper", "--task", "direct",
                 "--shared", "1", "--iterations", "1", "--top-k", "2", "--users", "4", "--samples-per-user", "2",
                 "--out", str(direct)]) == 0
    command = evaluate_command(str(disk_rlm_dir), str(direct), SearchResult.from_run(direct).config)
    assert "manual:5-7" in command and command.endswith("--method beam --protocol paper")
    assert main(["-q", *shlex.split(command)[1:], "--stage", "valid", "--resamples", "10"]) == 0


def test_cli_search_user_ids_and_resume(disk_rlm_dir, tmp_path, capsys) -> None:
    from pap_rec_core.cli import main
    from pap_rec_core.search import SearchResult

    run = tmp_path / "run"
    args = ["-q", "search", "--model", str(disk_rlm_dir), "--shared", "1", "--personal", "1", "--iterations", "1",
            "--top-k", "2", "--out", str(run)]
    assert main([*args, "--user-ids", "u5,u2"]) == 0
    first = SearchResult.from_run(run)
    assert first.config.user_ids == ("u5", "u2")
    assert main([*args, "--user-ids", "u5,u2"]) == 0  # the same set: the finished run is read back
    (tmp_path / "ids.txt").write_text("u5\nu2\n")
    assert main([*args, "--user-ids", f"@{tmp_path / 'ids.txt'}"]) == 0
    capsys.readouterr()
    assert main([*args, "--user-ids", "u5,u3"]) == 2  # another set: refused, names the field
    assert "user_ids" in capsys.readouterr().err
    assert main([*args[:-1], str(tmp_path / "r2"), "--user-ids", "u5,nobody"]) == 2
    assert "unknown user id 'nobody'" in capsys.readouterr().err


def test_search_runs_on_a_p5_checkpoint_with_more_embeddings_than_pieces(toy_digit_rlm, toy_split, tmp_path) -> None:
    """T5 pads its 32,100 pieces to 32,128 embeddings: a P5 checkpoint read by load_p5_checkpoint has more
    embedding rows than its tokenizer has tokens; slots never take the extra rows, and the search runs."""
    from dataclasses import replace as dc_replace

    import torch

    from pap_rec_core.rlm import RecLM, load_p5_checkpoint
    from pap_rec_core.rlm.checkpoint import reclm_to_p5_state_dict

    tok, small = toy_digit_rlm.tokenizer, toy_digit_rlm.model
    big = RecLM(dc_replace(small.config, vocab_size=tok.vocab_size + 28))
    state = small.state_dict()
    for key, value in big.state_dict().items():
        if value.shape != state[key].shape:  # the embedding rows (and the tied output rows): pad
            padded = value.clone()
            padded[: state[key].shape[0]] = state[key]
            state[key] = padded
    torch.save(reclm_to_p5_state_dict(state), tmp_path / "p5.pth")
    tok.save(tmp_path / "t5tok")
    (tmp_path / "t5tok" / "rec_tokenizer.json").unlink()  # a plain T5 tokenizer directory
    bundle = load_p5_checkpoint(tmp_path / "p5.pth", tmp_path / "t5tok", item_texts=list(tok.item_texts),
                                user_texts=list(tok.user_texts), device="cpu")
    assert bundle.model.token_embeddings.weight.shape[0] == tok.vocab_size + 28
    cfg = SearchConfig(**{**CFG.to_dict(), "surrogate": "beam", "iterations": 1, "max_users": 8})
    search = PapRecSearch(bundle, toy_split, cfg)
    assert not search.allowed[tok.vocab_size:].any() and search.allowed.shape[0] == tok.vocab_size + 28
    events = list(search.events())
    assert events[-1].event == "finished"
    assert all(t < tok.vocab_size for t in events[-1].shared)


def test_fast_batches_group_prompts_of_similar_length_and_carry_little_padding(toy_rlm, toy_split) -> None:
    cfg = SearchConfig(**{**CFG.to_dict(), "batch_size": 20, "max_history": 6})
    search = PapRecSearch(toy_rlm, toy_split, cfg)
    judge = search.valid
    lengths = judge.prompts.lengths()
    rows = np.tile(judge.mine, 3)  # three candidates' blocks
    batches = search._batches(judge, rows)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(rows)))  # every position once
    assert all(len(b) <= 20 for b in batches)
    for b in batches:
        batch = judge.prompts.fill(torch.zeros(judge.prompts.base.slots.shape[1], dtype=torch.long), rows[b])
        assert batch.input_ids.shape[1] == lengths[rows[b]].max()  # trimmed to its longest prompt
    ref = PapRecSearch(toy_rlm, toy_split, cfg, engine="reference")
    assert [b.tolist() for b in ref._batches(judge, rows)] == [list(range(s, min(len(rows), s + 20)))
                                                              for s in range(0, len(rows), 20)]
