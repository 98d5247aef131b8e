"""P5's manual prompt templates (Geng et al., RecSys 2022), as used by PAP-REC, plus item-metadata tasks.

Placeholders: ``{user}`` (user id), ``{history}`` (item ids, ``" , "``-joined), ``{candidates}`` (item
ids), ``{item}`` (one item id), ``{title}``, ``{genres}``, ``{genre}`` (one genre), ``{word}`` (one title word), ``{rating}``. Texts are P5's
``all_amazon_templates.py`` wordings with "purchase" kept as in P5 (our demo data is movies; the
words are what the model learns to read, not a description of the data). ``seen=False`` marks
templates held out of training to measure generalisation to unseen prompts (P5's 2-13 and 5-8).

Where we deliberately differ from P5: P5's "user_desc" variants (user described by name) are
rendered with the same ``user_{user}`` key info, since our datasets have no user names; the
yes/no pairwise variants (2-11, 2-12, 5-1...5-4) are not used for ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Family(str, Enum):
    RATING = "rating"
    SEQUENTIAL = "sequential"
    EXPLANATION = "explanation"
    DIRECT = "direct"
    METADATA = "metadata"
    HISTORY = "history"
    CONDITIONAL = "conditional"


@dataclass(frozen=True)
class Template:
    id: str
    family: Family
    source: str
    target: str
    seen: bool = True  # used in training; False = held out (unseen prompt)

    @property
    def fields(self) -> tuple[str, ...]:
        import string

        return tuple(f for _, f, _, _ in string.Formatter().parse(self.source) if f)


_SEQ = Family.SEQUENTIAL
_DIR = Family.DIRECT

TEMPLATES: tuple[Template, ...] = (
    # Rating (P5 family 1)
    Template("1-1", Family.RATING, "Which star rating will user_{user} give item_{item} ? ( 1 being lowest and 5 being highest )", "{rating}"),
    Template("1-2", Family.RATING, "How will user_{user} rate this product : {title} ? ( 1 being lowest and 5 being highest )", "{rating}"),
    Template("1-6", Family.RATING, "What star rating do you think user_{user} will give item_{item} ? ( 1 being lowest and 5 being highest )", "{rating}"),
    Template("1-10", Family.RATING, "Predict user_{user} 's preference towards {title} ( 1 being lowest and 5 being highest )", "{rating}", seen=False),
    # Sequential (P5 family 2); 2-13 held out as unseen, as in P5
    Template("2-1", _SEQ, "Given the following purchase history of user_{user} : \n {history} \n predict next possible item to be purchased by the user ?", "{item}"),
    Template("2-2", _SEQ, "I find the purchase history list of user_{user} : \n {history} \n I wonder what is the next item to recommend to the user . Can you help me decide ?", "{item}"),
    Template("2-3", _SEQ, "Here is the purchase history list of user_{user} : \n {history} \n try to recommend next item to the user", "{item}"),
    Template("2-4", _SEQ, "Given the following purchase history of user_{user} : \n {history} \n predict next possible item for the user", "{item}"),
    Template("2-5", _SEQ, "Based on the purchase history of user_{user} : \n {history} \n Can you decide the next item likely to be purchased by the user ?", "{item}"),
    Template("2-6", _SEQ, "Here is the purchase history of user_{user} : \n {history} \n What to recommend next for the user ?", "{item}"),
    Template("2-7", _SEQ, "Here is the purchase history of user_{user} : \n {history} \n Select the next possible item likely to be purchased by the user from the following candidates : \n {candidates}", "{item}"),
    Template("2-8", _SEQ, "Given the following purchase history of user_{user} : \n {history} \n What to recommend next for the user? Select one from the following items : \n {candidates}", "{item}"),
    Template("2-9", _SEQ, "Based on the purchase history of user_{user} : \n {history} \n Choose the next possible purchased item from the following candidates : \n {candidates}", "{item}"),
    Template("2-10", _SEQ, "I find the purchase history list of user_{user} : \n {history} \n I wonder which is the next item to recommend to the user . Try to select one from the following candidates : \n {candidates}", "{item}"),
    Template("2-13", _SEQ, "According to the purchase history of user_{user} : \n {history} \n Can you recommend the next possible item to the user ?", "{item}", seen=False),
    # Direct recommendation (P5 family 5, candidate-list variants); 5-8 held out as unseen
    Template("5-5", _DIR, "Which item of the following to recommend for user_{user} ? \n {candidates}", "{item}"),
    Template("5-6", _DIR, "Choose the best item from the candidates to recommend for user_{user} ? \n {candidates}", "{item}"),
    Template("5-7", _DIR, "Pick the most suitable item from the following list and recommend to user_{user} : \n {candidates}", "{item}"),
    Template("5-8", _DIR, "We want to make recommendation for user_{user} . Select the best item from these candidates : \n {candidates}", "{item}", seen=False),
    # Explanation (P5 family 3), for datasets with review text
    Template("3-1", Family.EXPLANATION, "Generate an explanation for user_{user} about this product : {title}", "{explanation}"),
    Template("3-3", Family.EXPLANATION, "Help user_{user} generate a {rating}-star explanation about this product : \n {title}", "{explanation}"),
    Template("3-6", Family.EXPLANATION, "Help user_{user} generate a {rating}-star explanation for item_{item}", "{explanation}", seen=False),
    # Item metadata (ours): trains the word embeddings on titles and genres
    Template("M-1", Family.METADATA, "What is the title of item_{item} ?", "{title}"),
    Template("M-2", Family.METADATA, "Which genres does item_{item} belong to ?", "{genres}"),
    Template("M-3", Family.METADATA, "Which item is called {title} ?", "{item}"),
    # Questions about the history (ours): the key info of the sequential family with another question.
    # Only the words say whether the next item, a later one or one already in the history is asked for,
    # so a model trained with them has a reason to read its prompt. (Answers from the history are masked
    # in evaluation; the later-item questions compete with "next" on the items that are ranked.)
    Template("H-1", Family.HISTORY, "Here is the purchase history list of user_{user} : \n {history} \n which item did the user purchase first ?", "{first}"),
    Template("H-2", Family.HISTORY, "Given the following purchase history of user_{user} : \n {history} \n what was the most recent purchase of the user ?", "{last}"),
    Template("H-3", Family.HISTORY, "Based on the purchase history of user_{user} : \n {history} \n which item will the user purchase after the next one ?", "{after_next}"),
    Template("H-4", Family.HISTORY, "I find the purchase history list of user_{user} : \n {history} \n name an item the user will purchase some time in the future", "{future}"),
    # Conditional next items (ours): the sequential key info, and a word that changes the answer — the
    # next item of a named genre (the first of the next 10 training items with it), or the next item the
    # user rates highly (>= 4) or poorly (<= 2). Every sequential template asks the same question, so
    # without these a model is free to ignore its words; with them a word (a searched token too) can
    # steer the recommendation. C-2 is the search's own layout: key info, then the word.
    Template("C-1", Family.CONDITIONAL, "Here is the purchase history list of user_{user} : \n {history} \n try to recommend next {genre} item to the user", "{next_genre}"),
    Template("C-2", Family.CONDITIONAL, "user_{user} : \n {history} \n {genre}", "{next_genre}"),
    Template("C-3", Family.CONDITIONAL, "Given the following purchase history of user_{user} : \n {history} \n predict next possible {genre} item for the user", "{next_genre}"),
    Template("C-4", Family.CONDITIONAL, "Here is the purchase history list of user_{user} : \n {history} \n try to recommend next item the user will like", "{next_liked}"),
    Template("C-5", Family.CONDITIONAL, "Here is the purchase history list of user_{user} : \n {history} \n try to recommend next item the user will dislike", "{next_disliked}"),
    # The next item whose title has a named word (the first of the next 10 training items with it): every
    # title word then means some items, so any vocabulary word (a searched token too) can steer. Not in
    # the presets' recipe yet: the ladder rung "title-words" measures it. C-7 is the search's layout.
    Template("C-6", Family.CONDITIONAL, "Here is the purchase history list of user_{user} : \n {history} \n try to recommend next item with {word} in its title", "{next_titled}"),
    Template("C-7", Family.CONDITIONAL, "user_{user} : \n {history} \n {word}", "{next_titled}"),
)

# Not P5 templates and not trained by default: prompts of the ablation ladder (benchmarks/rlm_ladder.py).
DIAGNOSTIC_TEMPLATES: tuple[Template, ...] = (
    Template("B-1", Family.SEQUENTIAL, "{history}", "{item}", seen=False),  # the history alone, no words
)

_BY_ID = {t.id: t for t in TEMPLATES + DIAGNOSTIC_TEMPLATES}


def get_template(template_id: str) -> Template:
    try:
        return _BY_ID[template_id]
    except KeyError:
        raise KeyError(f"unknown template {template_id!r}; known: {', '.join(_BY_ID)}") from None


def templates_of(family: Family | str, seen: bool | None = None) -> tuple[Template, ...]:
    family = Family(family)
    return tuple(t for t in TEMPLATES if t.family is family and (seen is None or t.seen is seen))


# What an automatic prompt of each ranking task is compared to: the paper's (seen, unseen) manual templates.
PAPER_TEMPLATES: dict[str, tuple[str, str]] = {"sequential": ("2-3", "2-13"), "direct": ("5-7", "5-8")}


def paper_templates(task: str) -> tuple[str, str]:
    """The (seen, unseen) manual templates the paper compares ``task``'s automatic prompts to."""
    try:
        return PAPER_TEMPLATES[str(task)]
    except KeyError:
        raise KeyError(f"the paper compares no manual template for the {task} task; "
                       f"ranking tasks: {', '.join(PAPER_TEMPLATES)}") from None
