"""The configs' choice fields are string enums: they compare, print and serialise as their values (so
old traces read back unchanged), and a bad value fails with the valid ones named."""

from __future__ import annotations

import json

import pytest

from pap_rec_core.choices import PersonalRule, Ranking, Surrogate, Task
from pap_rec_core.evaluation import Task as EvaluationTask
from pap_rec_core.prompts.layout import PromptLayout, SlotPosition
from pap_rec_core.search.config import PERSONAL_RULES, SURROGATES, TASK_SURROGATES, SearchConfig


def test_one_task_enum_serves_the_evaluator_the_layout_and_the_search() -> None:
    assert EvaluationTask is Task
    assert set(TASK_SURROGATES) == set(Task.values())
    assert SURROGATES == Surrogate.values() and PERSONAL_RULES == PersonalRule.values()


def test_strings_become_members_that_print_and_serialise_as_their_values() -> None:
    config = SearchConfig(task="direct", surrogate="likelihood", personal_rule="likelihood-tiebreak",
                          ranking="exact", position="prefix")
    assert config.task is Task.DIRECT and config.surrogate is Surrogate.LIKELIHOOD
    assert config.personal_rule is PersonalRule.LIKELIHOOD_TIEBREAK and config.ranking is Ranking.EXACT
    assert config.position is SlotPosition.PREFIX
    assert config.task == "direct" and f"{config.task}/{config.surrogate}" == "direct/likelihood"
    assert str(config.personal_rule) == "likelihood-tiebreak"
    d = config.to_dict()
    assert type(d["task"]) is str and type(d["position"]) is str  # plain JSON values
    assert json.loads(json.dumps(d))["surrogate"] == "likelihood"
    assert SearchConfig.from_dict(json.loads(json.dumps(d))) == config
    layout = PromptLayout(task="explanation", n_shared=1)
    assert layout.task is Task.EXPLANATION and PromptLayout.from_dict(layout.to_dict()) == layout
    assert type(layout.to_dict()["task"]) is str


@pytest.mark.parametrize("field, value, message", [
    ("surrogate", "bleu", "unknown surrogate 'bleu'; use one of beam, exact, ndcg, likelihood, bleu-rouge"),
    ("personal_rule", "lenient", "unknown personal rule 'lenient'; use one of strict, likelihood-tiebreak"),
    ("ranking", "full", "unknown ranking 'full'; use first-token or exact"),
    ("task", "rating", "unknown task 'rating'; use sequential, direct, explanation"),
])
def test_a_bad_choice_names_the_valid_ones(field: str, value: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        SearchConfig(**{field: value})
    assert str(err.value) == message


def test_a_task_that_does_not_take_the_surrogate_says_so_in_words() -> None:
    with pytest.raises(ValueError, match=r"^the direct task's search takes the exact or ndcg or likelihood or beam "
                                         r"surrogate, not 'bleu-rouge'$"):
        SearchConfig(task="direct", surrogate="bleu-rouge")
