"""Shared helper for the frozen config dataclasses' ``from_dict``: unknown keys are an error, not ignored."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping


def known_fields(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """``dict(d)`` after checking that every key is a field of dataclass ``cls`` (else ``ValueError``)."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    return dict(d)
