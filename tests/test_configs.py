"""Every config dataclass round-trips through JSON and rejects unknown keys."""

from __future__ import annotations

import json

import pytest

from pap_rec_core.data import DatasetConfig, SourceKind, SplitConfig
from pap_rec_core.evaluation import EvaluationConfig
from pap_rec_core.evaluation.recbole_baselines import BaselineConfig
from pap_rec_core.findings import FindingsConfig
from pap_rec_core.prompts.layout import PromptLayout, SlotPosition
from pap_rec_core.rlm import RLMConfig
from pap_rec_core.rlm.recipe import PRESETS, TrainConfig, preset
from pap_rec_core.search import SearchConfig

CONFIGS = [
    DatasetConfig(),
    DatasetConfig(kind=SourceKind.P5, path="p5/beauty", trust_pickle=True),
    SplitConfig(n_negatives=10, seed=3),
    EvaluationConfig(ks=(1, 20), mask_history=False),
    RLMConfig(vocab_size=100, d_model=8),
    TrainConfig(),
    *[preset(name) for name in PRESETS],
    BaselineConfig(model="SASRec", epochs=5),
    SearchConfig(),
    SearchConfig(n_shared=3, n_personal=2, surrogate="likelihood", personal_rule="likelihood-tiebreak",
                 personal_holdout=3, shared_holdout=3, user_ids=("7", "3"), seed=4),
    PromptLayout(),
    PromptLayout(task="direct", n_shared=2, n_personal=1, position=SlotPosition.PREFIX),
    FindingsConfig(personal=(0, 1), variants=(("likelihood-tiebreak", 0), ("strict", 3)), judges=("exact",),
                   baselines=("b.json",)),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_round_trip_through_json(config) -> None:
    back = type(config).from_dict(json.loads(json.dumps(config.to_dict())))
    assert back == config


@pytest.mark.parametrize("cls", [DatasetConfig, SplitConfig, EvaluationConfig, RLMConfig, TrainConfig, BaselineConfig,
                                 SearchConfig, PromptLayout, FindingsConfig])
def test_unknown_keys_are_rejected(cls) -> None:
    with pytest.raises(ValueError, match=f"unknown {cls.__name__} field.*bogus"):
        cls.from_dict({"bogus": 1})
