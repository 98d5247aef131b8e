"""The parts a prompt is made of, before any tokenizer sees it: text, and references to an item, a user or
one vocabulary id (a search slot), and the item-list separator. A prompt is a list of parts so that ids
never have to be parsed back out of text; a tokenizer (``rlm.tokenizer.RecTokenizer``) encodes them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Union


@dataclass(frozen=True)
class ItemRef:
    item: int  # dense item index


@lru_cache(maxsize=None)
def item_ref(item: int) -> ItemRef:
    """``ItemRef(item)``, one shared instance per item (immutable): prompts repeat the same items thousands
    of times, and a frozen dataclass costs a microsecond to build."""
    return ItemRef(item)


@dataclass(frozen=True)
class UserRef:
    user: int  # dense user index


@dataclass(frozen=True)
class TokenRef:
    """One vocabulary id placed as is: a prompt-search slot. ``Encoded.slots`` gives its position."""

    token: int


@dataclass(frozen=True)
class ListSeparator:
    """The separator between the items of a history or candidate list. A tokenizer writes it as its
    ``item_separator`` (P5's ``" , "`` unless the model was trained without separators)."""


ITEM_SEPARATOR = ListSeparator()

Part = Union[str, ItemRef, UserRef, TokenRef, ListSeparator]
