"""Rendering templates into prompt parts (strings and id references) for :class:`RecTokenizer`."""

from __future__ import annotations

import string
from typing import Any, Sequence

import numpy as np

from pap_rec_core.prompts.parts import ITEM_SEPARATOR, ItemRef, Part, UserRef, item_ref

DEFAULT_MAX_HISTORY = 20  # most recent items shown in a prompt (P5 truncates histories too)


def item_list_parts(items: Sequence[int] | np.ndarray) -> list[Part]:
    """``[ItemRef(a), ITEM_SEPARATOR, ItemRef(b), ...]`` (the tokenizer writes the separator: P5's
    ``" , "`` unless its model was trained without)."""
    items = items.tolist() if isinstance(items, np.ndarray) else [int(i) for i in items]
    parts: list[Part] = [ITEM_SEPARATOR] * max(0, 2 * len(items) - 1)
    parts[::2] = [item_ref(i) for i in items]
    return parts


def render_text(pattern: str, **values: Any) -> list[Part]:
    """Render a template's source (``Template.source``) into parts. ``user`` is a user index, ``item`` an
    item index, ``history`` and ``candidates`` item-index sequences (already truncated), other fields plain
    text; a field without a value is an error naming it."""
    parts: list[Part] = []
    for literal, field_name, _, _ in string.Formatter().parse(pattern):
        if literal:
            parts.append(literal)
        if field_name is None:
            continue
        if field_name not in values or values[field_name] is None:
            raise KeyError(f"template field {{{field_name}}} needs a value")
        value = values[field_name]
        if field_name == "user":
            parts.append(UserRef(int(value)))
        elif field_name == "item":
            parts.append(ItemRef(int(value)))
        elif field_name in ("history", "candidates"):
            parts.extend(item_list_parts(value))
        else:
            parts.append(str(value))
    return parts


def key_info_parts(user: int, history: Sequence[int]) -> list[Part]:
    """PAP-REC's key information for the sequential task: ``user_{u} : \\n {history} \\n``."""
    return ["user_", UserRef(int(user)), " : \n ", *item_list_parts(history), " \n "]


def truncate_history(history: np.ndarray, max_history: int = DEFAULT_MAX_HISTORY) -> np.ndarray:
    return history[-max_history:] if max_history > 0 else history[:0]
