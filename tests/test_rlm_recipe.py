"""The RLM recipe's parts: item embeddings from training transitions, conditional samples, the item
separator of a tokenizer, and the small state a finished training leaves behind."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pandas as pd
import pytest
import torch

from pap_rec_core.data import SplitConfig, build_interactions, build_item_index, leave_one_out
from pap_rec_core.data.transitions import transition_counts
from pap_rec_core.prompts import get_template
from pap_rec_core.prompts.parts import ItemRef, UserRef
from pap_rec_core.rlm.item_init import transition_svd_embeddings
from pap_rec_core.rlm.samples import FUTURE_WINDOW, SampleBuilder
from pap_rec_core.rlm.training import TrainConfig, build_tokenizer, init_embeddings, preset, train_rlm

GENRES = ["Comedy", "Drama", "Horror", "Comedy Drama", "Action"]


@pytest.fixture(scope="module")
def genre_split():
    """20 users x 12 items over 25 items with genres (item i: GENRES[i % 5]) and ratings 1..5."""
    rng = np.random.default_rng(1)
    users, items, times, ratings = [], [], [], []
    for u in range(20):
        for t, i in enumerate(rng.permutation(25)[:12]):
            users.append(f"u{u}"), items.append(f"i{i}"), times.append(t), ratings.append(float(rng.integers(1, 6)))
    info = pd.DataFrame({"title": [f"Movie {i}" for i in range(25)], "genres": [GENRES[i % 5] for i in range(25)]},
                        index=[f"i{i}" for i in range(25)])
    data = build_interactions(users, items, name="genres", source="test", timestamps=times, ratings=ratings,
                              item_info=info)
    return leave_one_out(data, SplitConfig(n_negatives=5))


# ---- item embeddings from training transitions ----------------------------------------------------


def test_transition_counts_count_consecutive_training_pairs() -> None:
    counts = transition_counts([np.array([0, 1, 2]), np.array([0, 1]), np.array([3])], n_items=4).toarray()
    expected = np.zeros((4, 4))
    expected[0, 1], expected[1, 2] = 2, 1
    np.testing.assert_array_equal(counts, expected)


def _interactions(sequences, n_items):
    # first, a user with every item: the same catalogue and the same dense item indices in every variant
    users, items, times = ["all"] * n_items, [f"i{i}" for i in range(n_items)], list(range(n_items))
    for u, seq in enumerate(sequences):
        for t, i in enumerate(seq):
            users.append(f"u{u}"), items.append(f"i{i}"), times.append(t)
    return build_interactions(users, items, name="svd", source="test", timestamps=times)


def test_transition_svd_sees_training_items_only(tmp_path) -> None:
    """The step-0 item embeddings of a training run depend on training interactions only: replacing every
    user's validation and test items (the last two of each sequence) leaves them bit for bit equal."""
    rng = np.random.default_rng(0)
    n_items = 30
    seqs = [rng.permutation(n_items)[:10].tolist() for _ in range(12)]
    moved = [s[:-2] + [(s[-2] + 11) % n_items, (s[-1] + 17) % n_items] for s in seqs]
    moved = [s if len(set(s)) == len(s) else s[:-2] + [x for x in range(n_items) if x not in s[:-2]][:2] for s in moved]

    def initial_item_embeddings(sequences):
        data = _interactions(sequences, n_items)
        split = leave_one_out(data, SplitConfig(n_negatives=0))
        index = build_item_index(data, "random", seed=0)
        config = preset("tiny", d_model=8, d_kv=4)
        tok = build_tokenizer(data, index, config)
        model = __import__("pap_rec_core.rlm.model", fromlist=["RecLM"]).RecLM(config.rlm_config(tok.vocab_size))
        init_embeddings(model, tok, split, config)
        start, stop = tok.item_token_range()
        assert [data.item_index(f"i{i}") for i in range(n_items)] == list(range(n_items))
        return model.token_embeddings.weight[start:stop].detach().numpy(), split

    emb, split = initial_item_embeddings(seqs)
    emb_moved, split_moved = initial_item_embeddings(moved)
    assert any(not np.array_equal(a, b) for a, b in zip(split.test_target, split_moved.test_target))
    np.testing.assert_array_equal(emb, emb_moved)
    # ... while a changed *training* item moves them
    changed = [list(s) for s in seqs]
    changed[0][0], changed[0][1] = changed[0][1], changed[0][0]
    assert not np.array_equal(initial_item_embeddings(changed)[0], emb)


def test_transition_svd_structure_and_scale() -> None:
    # Items 0 and 1 are always followed by item 2; item 4 never precedes anything (it keeps a random row).
    train = [np.array([0, 2, 3]), np.array([1, 2, 3]), np.array([0, 2, 4]), np.array([1, 2, 4])]
    emb = transition_svd_embeddings(train, n_items=5, dim=3, seed=0)
    np.testing.assert_allclose(emb[0], emb[1], atol=1e-6)  # same successors, same embedding
    active = emb[:3, :3]
    assert active.std() == pytest.approx(1.0, rel=1e-5)
    random_row = np.random.default_rng(0).standard_normal((5, 3))[4]
    np.testing.assert_allclose(emb[4], random_row, rtol=1e-6)
    assert not np.allclose(emb[0], emb[2])


def test_training_starts_from_the_transition_embeddings(toy_split) -> None:
    from pap_rec_core.rlm.model import RecLM

    index = build_item_index(toy_split.data, "random", seed=0)
    config = preset("tiny", item_init="transition-svd", whole_word_init_std=0.0)
    tok = build_tokenizer(toy_split.data, index, config)
    torch.manual_seed(0)
    model = RecLM(config.rlm_config(tok.vocab_size))
    init_embeddings(model, tok, toy_split, config)
    start, stop = tok.item_token_range()
    expected = transition_svd_embeddings(toy_split.train, toy_split.data.n_items, config.d_model, seed=config.seed)
    np.testing.assert_array_equal(model.token_embeddings.weight[start:stop].detach().numpy(), expected)
    assert float(model.whole_word_embeddings.weight.detach().abs().max()) == 0.0
    with pytest.raises(ValueError):
        TrainConfig(item_init="popularity")


# ---- conditional samples --------------------------------------------------------------------------


def _decoded(builder, split, parts, target):
    """``(user, shown history, the next FUTURE_WINDOW training items, target item, prompt text)`` of a sample
    (histories of 10 or fewer items are shown whole, so the cut is the shown length)."""
    user = next(p.user for p in parts if isinstance(p, UserRef))
    shown = [p.item for p in parts if isinstance(p, ItemRef)]
    train = list(split.train[user])
    item = next(i for i in range(split.data.n_items) if builder.tok.item_target_ids(i) == target)
    return user, shown, train, train[len(shown) : len(shown) + FUTURE_WINDOW], item, \
        "".join(p for p in parts if isinstance(p, str))


def test_conditional_samples_name_the_genre_and_answer_with_its_next_item(genre_split) -> None:
    config = preset("tiny", family_weights=(("conditional", 1.0),))
    index = build_item_index(genre_split.data, "random", seed=0)
    builder = SampleBuilder(genre_split, build_tokenizer(genre_split.data, index, config), config, random.Random(0))
    genre_sets = [set(g.split()) for g in genre_split.data.item_info["genres"]]
    ratings = genre_split.data.ratings
    for template_id in ("C-1", "C-2", "C-3", "C-4", "C-5"):
        template = get_template(template_id)
        for _ in range(30):
            parts, target, tid = builder.sample(template.family, template)
            user, shown, train, window, item, text = _decoded(builder, genre_split, parts, target)
            t = len(shown)
            assert shown == train[:t] and tid == template_id
            if template.target == "{next_genre}":
                word = next(g for g in ("Comedy", "Drama", "Horror", "Action") if g in text)
                assert item == next(i for i in window if word in genre_sets[i])
            else:
                liked = template.target == "{next_liked}"
                first = next(k for k, r in enumerate(ratings[user][t : t + FUTURE_WINDOW]) if (r >= 4 if liked else r <= 2))
                assert item == window[first]


def test_title_word_samples_answer_with_the_next_item_whose_title_has_the_word() -> None:
    from pap_rec_core.rlm.samples import title_words

    assert title_words("The Star Wars (1977)") == ("Star", "Wars")
    assert title_words(None) == () and title_words("Up (2009)") == ()
    words = ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    rng = np.random.default_rng(2)
    users, items, times = [], [], []
    for u in range(15):
        for t, i in enumerate(rng.permutation(20)[:12]):
            users.append(f"u{u}"), items.append(f"i{i}"), times.append(t)
    titles = [f"The {words[i % 5]} {words[(i // 5) % 5]} ({1990 + i})" for i in range(20)]
    info = pd.DataFrame({"title": titles}, index=[f"i{i}" for i in range(20)])
    split = leave_one_out(build_interactions(users, items, name="titles", source="test", timestamps=times,
                                             item_info=info), SplitConfig(n_negatives=5))
    config = preset("tiny", family_weights=(("conditional", 1.0),), templates=("C-6", "C-7"))
    builder = SampleBuilder(split, build_tokenizer(split.data, build_item_index(split.data, "random", seed=0), config),
                            config, random.Random(0))
    named = set()
    for template_id in ("C-6", "C-7"):
        template = get_template(template_id)
        for _ in range(40):
            parts, target, _ = builder.sample(template.family, template)
            user, shown, train, window, item, text = _decoded(builder, split, parts, target)
            assert shown == train[: len(shown)]
            word = next(w for w in words if w in text)
            assert item == next(i for i in window if word in title_words(builder.titles[i]))
            named.add(word)
    assert len(named) >= 3  # the word is drawn, not always the same


def test_conditional_family_needs_genres_or_ratings(toy_split) -> None:
    config = preset("tiny", family_weights=(("conditional", 1.0),))
    tok = build_tokenizer(toy_split.data, build_item_index(toy_split.data), config)
    builder = SampleBuilder(toy_split, tok, config, random.Random(0))  # ratings, no genres
    assert {t.id for t in builder.templates[builder.families[0]]} == {"C-4", "C-5"}


# ---- the item separator ---------------------------------------------------------------------------


def test_a_tokenizer_writes_lists_with_its_separator(toy_split, tmp_path) -> None:
    from pap_rec_core.prompts.render import key_info_parts
    from pap_rec_core.rlm.tokenizer import RecTokenizer

    index = build_item_index(toy_split.data)
    p5 = build_tokenizer(toy_split.data, index, preset("tiny"))
    bare = build_tokenizer(toy_split.data, index, preset("tiny", item_separator=""))
    parts = key_info_parts(0, np.array([3, 4, 5]))
    items = [p5.item_token(i) for i in (3, 4, 5)]
    with_sep, without = p5.encode_parts(parts).input_ids, bare.encode_parts(parts).input_ids
    comma = p5.encode_text(" , ")
    assert len(with_sep) == len(without) + 2 * len(comma)
    start = without.index(items[0])
    assert list(without[start : start + 3]) == items  # the items side by side
    enc = bare.encode_parts(parts)
    words = [enc.whole_word_ids[enc.input_ids.index(i)] for i in items]
    assert len(set(words)) == 3  # still three words
    bare.save(tmp_path / "tok")
    assert RecTokenizer.load(tmp_path / "tok").encode_parts(parts).input_ids == without


# ---- a finished training ----------------------------------------------------------------------------


def test_finished_training_keeps_a_small_state_and_a_rerun_returns_the_model(toy_split, tmp_path) -> None:
    index = build_item_index(toy_split.data, "random", seed=0)
    config = preset("tiny", max_steps=10, eval_every=5, direct_candidates=6, sequential_candidates=4)
    bundle, report = train_rlm(toy_split, index, config, tmp_path / "m", progress=False)
    state = torch.load(tmp_path / "m" / "train_state.pt", weights_only=True)
    assert state["finished"] and "model" not in state and "optimizer" not in state
    again, report2 = train_rlm(toy_split, index, config, tmp_path / "m", progress=False,
                               validate=lambda m, t: pytest.fail("a finished run must not train or validate"))
    assert report2.steps == report.steps and report2.best_valid_ndcg10 == report.best_valid_ndcg10
    for name, tensor in bundle.model.state_dict().items():
        assert torch.equal(tensor, again.model.state_dict()[name]), name
    with pytest.raises(ValueError, match="differs in learning_rate"):
        train_rlm(toy_split, index, dataclasses.replace(config, learning_rate=0.5), tmp_path / "m", progress=False)


def test_recency_sampling_favours_the_end_of_each_training_sequence() -> None:
    from pap_rec_core.rlm.samples import _Positions

    train = [np.arange(50), np.arange(10), np.arange(3)]
    uniform = _Positions(train, 1, 0, by_user=False)
    recent = _Positions(train, 1, 0, by_user=False, half_life=2.0)
    rng = random.Random(0)
    draws_u = [uniform.draw(rng) for _ in range(4000)]
    draws_r = [recent.draw(rng) for _ in range(4000)]
    for u, t in draws_u + draws_r:
        assert 1 <= t < len(train[u])
    # uniform over positions: user 0 holds 49 of the 60 positions; recency: each user's weight is ~ its
    # half-life's worth of positions, so the short sequences get a far larger share
    share0 = lambda draws: np.mean([u == 0 for u, _ in draws])
    assert share0(draws_u) == pytest.approx(49 / 60, abs=0.03)
    assert share0(draws_r) < 0.5
    steps_before_end = np.array([len(train[u]) - 1 - t for u, t in draws_r if u == 0])
    # P(k) ~ 0.5 ** (k / 2): k = 0 and 1 together hold 1 - 0.5 = half of the mass
    assert np.mean(steps_before_end <= 1) == pytest.approx(1 - 0.5 ** (2 / 2), abs=0.05)
    with pytest.raises(ValueError, match="recency_half_life"):
        TrainConfig(recency_half_life=0)


def test_train_rlm_set_overrides_parse_json_values_and_refuse_unknown_fields() -> None:
    from pap_rec_core.cli import PapRecError, parse_settings

    got = parse_settings(["dropout_rate=0.2", "item-separator=", "templates=[\"2-3\", \"C-1\"]", "recency_half_life=null"])
    assert got == {"dropout_rate": 0.2, "item_separator": "", "templates": ("2-3", "C-1"), "recency_half_life": None}
    assert TrainConfig(**got).templates == ("2-3", "C-1")
    assert parse_settings(["templates=2-3,C-1", "family_weights=sequential:0.7,conditional:0.3"]) == {
        "templates": ("2-3", "C-1"), "family_weights": (("sequential", 0.7), ("conditional", 0.3))}
    with pytest.raises(PapRecError, match="FAMILY:WEIGHT"):
        parse_settings(["family_weights=sequential"])
    with pytest.raises(PapRecError, match="unknown training field 'seed'"):  # --seed has its own option
        parse_settings(["seed=3"])
    with pytest.raises(ValueError, match="held out as unseen"):
        TrainConfig(templates=("2-13",))
    with pytest.raises(ValueError, match="select_prompt"):
        TrainConfig(select_prompt="2-3")
    with pytest.raises(PapRecError, match="unknown training field 'dropout'"):
        parse_settings(["dropout=0.2"])
    with pytest.raises(PapRecError, match="FIELD=VALUE"):
        parse_settings(["dropout_rate"])


@pytest.fixture
def batch_templates(monkeypatch) -> list[set[str]]:
    """The template ids of every training batch drawn (``SampleBuilder.batch``), in order."""
    seen: list[set[str]] = []
    original = SampleBuilder.batch

    def recording(self, size):
        out = original(self, size)
        seen.append({template for _, _, template in out})
        return out

    monkeypatch.setattr(SampleBuilder, "batch", recording)
    return seen


def test_keyinfo_steps_train_the_history_alone_first(toy_split, tmp_path, batch_templates) -> None:
    seen = batch_templates
    index = build_item_index(toy_split.data, "random", seed=0)
    config = preset("tiny", max_steps=8, keyinfo_steps=3, eval_every=8, direct_candidates=6, sequential_candidates=4,
                    family_weights=(("sequential", 1.0),), templates=("2-3", "2-6"))
    bundle, _ = train_rlm(toy_split, index, config, tmp_path / "m", progress=False)
    assert seen[:3] == [{"B-1"}] * 3
    assert all(s <= {"2-3", "2-6"} for s in seen[3:]) and len(seen) == 8
    assert bundle.metadata["templates_seen"] == ["2-3", "2-6"]
    with pytest.raises(ValueError, match="keyinfo_steps"):
        TrainConfig(max_steps=5, keyinfo_steps=6)
    # With a time limit, the key-info phase ends at its share of it (here at once), so that the steps
    # with template words still happen before the limit stops the run.
    seen.clear()
    _, report = train_rlm(toy_split, index, dataclasses.replace(config, time_limit_s=1e-9), tmp_path / "t",
                          progress=False)
    assert report.stopped_by == "time_limit" and report.keyinfo_steps == 0
    assert seen and "B-1" not in seen[0]


def test_templates_restrict_only_the_families_they_name(genre_split) -> None:
    index = build_item_index(genre_split.data, "random", seed=0)
    config = preset("tiny", family_weights=(("sequential", 1.0), ("rating", 0.5)), templates=("2-3",))
    builder = SampleBuilder(genre_split, build_tokenizer(genre_split.data, index, config), config, random.Random(0))
    got = {f.value: [t.id for t in builder.templates[f]] for f in builder.families}
    assert got == {"sequential": ["2-3"], "rating": ["1-1", "1-2", "1-6"]}


def test_a_run_stopped_by_its_time_limit_judges_its_last_weights(toy_split, tmp_path) -> None:
    index = build_item_index(toy_split.data, "random", seed=0)
    calls = []

    def validate(model, tok):
        calls.append(1)
        return float(len(calls))  # every later validation is better

    config = preset("tiny", max_steps=50, eval_every=2, direct_candidates=6, sequential_candidates=4,
                    time_limit_s=0.0)
    _, report = train_rlm(toy_split, index, dataclasses.replace(config, eval_every=40), tmp_path / "m",
                          progress=False, validate=validate)
    assert report.stopped_by == "time_limit" and report.steps == 1
    assert [c["step"] for c in report.curve] == [1] and report.best_step == 1


# ---- two phases: the key info, then the words --------------------------------------------------------


def test_two_phase_schedule_restarts_at_the_word_phase() -> None:
    from pap_rec_core.rlm.training import lr_factor

    config = TrainConfig(max_steps=100, keyinfo_steps=60, warmup_steps=10, learning_rate=2e-3, two_phase=True,
                         word_learning_rate=5e-4, word_warmup_steps=5)
    f = [lr_factor(config, s) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[59] < 0.01  # the key-info phase's cosine ends at its own end
    assert f[60] == pytest.approx(0.25 / 5) and f[64] == pytest.approx(0.25)  # warm-up to 5e-4 / 2e-3
    assert f[99] < 0.01 * 0.25 and all(a >= b for a, b in zip(f[64:], f[65:]))
    # the time limit may end the key-info phase early: the word phase's schedule starts there
    assert lr_factor(config, 30, keyinfo_end=30) == pytest.approx(0.25 / 5)
    # one schedule over both (two_phase False): no restart
    joint = dataclasses.replace(config, two_phase=False)
    assert lr_factor(joint, 60) == pytest.approx(lr_factor(joint, 59), rel=0.05)
    with pytest.raises(ValueError, match="two_phase needs"):
        TrainConfig(max_steps=10, keyinfo_steps=10, two_phase=True)
    with pytest.raises(ValueError, match="word_learning_rate"):
        TrainConfig(word_learning_rate=0.0)


def test_two_phase_training_chooses_each_phase_by_its_own_prompt(toy_split, tmp_path, monkeypatch,
                                                                  batch_templates) -> None:
    import pap_rec_core.rlm.evaluate as evaluate

    index = build_item_index(toy_split.data, "random", seed=0)
    calls: list[tuple[str, int]] = []
    weights: list[torch.Tensor] = []
    # B-1 validations: best at the first (step 2); word-phase validations: each better than the last
    scores = {"manual:B-1": [0.5, 0.1, 0.2], "manual:2-3": [0.01, 0.02, 0.03]}

    def fake(model, tok, split, *, users, max_history, template):
        calls.append((template, len(calls)))
        weights.append(model.token_embeddings.weight.detach().clone())
        return scores[template][sum(t == template for t, _ in calls) - 1]

    monkeypatch.setattr(evaluate, "validation_ndcg10", fake)
    seen = batch_templates
    config = preset("tiny", max_steps=12, keyinfo_steps=6, eval_every=2, direct_candidates=6, sequential_candidates=4,
                    family_weights=(("sequential", 1.0),), templates=("2-3",), two_phase=True,
                    word_learning_rate=1e-3, word_warmup_steps=2)
    _, report = train_rlm(toy_split, index, config, tmp_path / "m", progress=False)
    assert [t for t, _ in calls] == ["manual:B-1"] * 3 + ["manual:2-3"] * 3
    assert [c["prompt"] for c in report.curve] == [t for t, _ in calls]
    assert seen[:6] == [{"B-1"}] * 6 and all(s == {"2-3"} for s in seen[6:])
    assert report.keyinfo_best == {"step": 2, "valid_ndcg@10": 0.5}
    assert report.best_step == 12 and report.best_valid_ndcg10 == pytest.approx(0.03)
    # the word phase starts from the key-info phase's best weights (step 2), not its last (step 6)
    first_word_step = [c["step"] for c in report.curve].index(8)
    assert not torch.equal(weights[0], weights[2])
    moved_from_best = (weights[first_word_step] - weights[0]).abs().sum()
    moved_from_last = (weights[first_word_step] - weights[2]).abs().sum()
    assert moved_from_best < moved_from_last


def test_two_phase_training_resumes_to_the_same_weights(toy_split, tmp_path) -> None:
    index = build_item_index(toy_split.data, "random", seed=0)
    config = preset("tiny", max_steps=12, keyinfo_steps=6, eval_every=3, direct_candidates=6, sequential_candidates=4,
                    two_phase=True, word_learning_rate=1e-3)
    full, full_report = train_rlm(toy_split, index, config, tmp_path / "a", progress=False)
    # stop inside the word phase (a time limit of 0 s ends the run after one step at a time)
    for _ in range(8):
        _, part = train_rlm(toy_split, index, dataclasses.replace(config, time_limit_s=0.0), tmp_path / "b",
                            progress=False)
    assert part.stopped_by == "time_limit" and 6 < part.steps < 12
    resumed, report = train_rlm(toy_split, index, config, tmp_path / "b", progress=False)
    assert report.steps == 12 and report.keyinfo_best == full_report.keyinfo_best
    for name, tensor in full.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_keyinfo_conditional_mixes_bare_conditional_questions_into_the_key_info_phase(genre_split, tmp_path,
                                                                                     batch_templates) -> None:
    seen = batch_templates
    index = build_item_index(genre_split.data, "random", seed=0)
    config = preset("tiny", max_steps=40, keyinfo_steps=30, eval_every=40, direct_candidates=4, sequential_candidates=4,
                    family_weights=(("sequential", 1.0),), templates=("2-3",), two_phase=True, keyinfo_conditional=0.5)
    train_rlm(genre_split, index, config, tmp_path / "m", progress=False)
    first = set().union(*seen[:30])
    assert first == {"B-1", "C-2", "C-7"} and set().union(*seen[30:]) == {"2-3"}
    with pytest.raises(ValueError, match="keyinfo_conditional"):
        TrainConfig(keyinfo_conditional=1.0)


def test_a_shorter_preset_keeps_the_key_info_share() -> None:
    assert preset("demo", max_steps=400).keyinfo_steps == 300
    assert preset("full", max_steps=900).keyinfo_steps == 800
    assert preset("demo", max_steps=400, keyinfo_steps=100).keyinfo_steps == 100  # (as asked)
    one = preset("demo", max_steps=1)
    assert one.keyinfo_steps == 0 and not one.two_phase
    assert preset("demo", max_steps=2).keyinfo_steps == 1


def test_patience_ends_the_key_info_phase_not_the_run(toy_split, tmp_path, monkeypatch) -> None:
    import pap_rec_core.rlm.evaluate as evaluate

    index = build_item_index(toy_split.data, "random", seed=0)
    scores = {"manual:B-1": iter([0.5, 0.1, 0.1, 0.1, 0.1]), "manual:2-3": iter([0.2, 0.1, 0.1, 0.1, 0.1])}
    monkeypatch.setattr(evaluate, "validation_ndcg10",
                        lambda model, tok, split, *, users, max_history, template: next(scores[template]))
    config = preset("tiny", max_steps=20, keyinfo_steps=12, eval_every=2, direct_candidates=6, sequential_candidates=4,
                    two_phase=True, patience=2)
    _, report = train_rlm(toy_split, index, config, tmp_path / "m", progress=False)
    # B-1 best at step 2, two validations without improvement (4, 6): the word phase starts at step 6
    assert report.keyinfo_best == {"step": 2, "valid_ndcg@10": 0.5} and report.keyinfo_steps == 6
    # the word phase: best at step 8, out of patience at step 12
    assert report.stopped_by == "patience" and report.steps == 12 and report.best_step == 8
    assert [c["prompt"] for c in report.curve] == ["manual:B-1"] * 3 + ["manual:2-3"] * 3
