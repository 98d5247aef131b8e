"""The search's events and their JSONL trace (see DESIGN.md, "The search trace contract").

Every event is a JSON object with ``schema`` (the version below), ``event`` (its kind) and ``time``
(seconds since the run started), appended to ``trace.jsonl`` and flushed as it happens, so that a crash
loses at most the step in progress. The app's live view and replay, the notebooks and ``resume`` all
read this one stream. Token lists are ids; ``tokens_text`` fields carry their pieces for people.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pap_rec_core import PapRecError

SCHEMA_VERSION = 1
TRACE_FILE = "trace.jsonl"


@dataclass
class SearchEvent:
    event: str = field(init=False, default="")
    time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, **asdict(self)}


@dataclass
class RunStarted(SearchEvent):
    config: dict = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    users: list = field(default_factory=list)  # dense indices of the searched validation users
    shared: list = field(default_factory=list)  # initial tokens
    personal: list = field(default_factory=list)  # (U, P) initial tokens
    allowed_tokens: int = 0
    event: str = field(init=False, default="run_started")


@dataclass
class Evaluated(SearchEvent):
    label: str = ""  # initial | final | ...
    split: str = "valid"
    metrics: dict = field(default_factory=dict)
    event: str = field(init=False, default="evaluated")


@dataclass
class GradientComputed(SearchEvent):
    iteration: int = 0
    kind: str = "shared"  # shared | personal
    slots: list = field(default_factory=list)
    samples: int = 0
    loss: float = 0.0
    seconds: float = 0.0  # the round's start: the judge's pass over the current tokens, then the gradient
    judge_seconds: float = 0.0  # the first part alone (traces written before it was recorded: 0)
    event: str = field(init=False, default="gradient_computed")


@dataclass
class CandidatesScored(SearchEvent):
    iteration: int = 0
    slot: int = 0
    current: int = 0
    current_value: float = 0.0
    candidates: list = field(default_factory=list)
    candidates_text: list = field(default_factory=list)
    gradient_scores: list = field(default_factory=list)
    values: list = field(default_factory=list)
    seconds: float = 0.0
    event: str = field(init=False, default="candidates_scored")


@dataclass
class TokenAccepted(SearchEvent):
    iteration: int = 0
    slot: int = 0
    before: int = 0
    after: int = 0
    before_text: str = ""
    after_text: str = ""
    value_before: float = 0.0
    value_after: float = 0.0
    shared: list = field(default_factory=list)  # all shared tokens after the change
    event: str = field(init=False, default="token_accepted")


@dataclass
class SlotRejected(SearchEvent):
    iteration: int = 0
    slot: int = 0
    best_value: float = 0.0
    current_value: float = 0.0
    event: str = field(init=False, default="slot_rejected")


@dataclass
class SharedConverged(SearchEvent):
    iteration: int = 0
    event: str = field(init=False, default="shared_converged")


@dataclass
class PersonalRound(SearchEvent):
    iteration: int = 0
    slot: int = 0
    users_changed: int = 0
    value_before: float = 0.0  # mean surrogate on the personal rounds' judge (validation + held-out items)
    value_after: float = 0.0
    changed: dict = field(default_factory=dict)  # user index (str) -> [before, after] token ids
    seconds: float = 0.0
    event: str = field(init=False, default="personal_round")


@dataclass
class IterationFinished(SearchEvent):
    """A resumable state: the search continues from here exactly as if it had not stopped."""

    iteration: int = 0
    shared: list = field(default_factory=list)
    personal: list = field(default_factory=list)
    value: float = 0.0
    converged: bool = False  # this iteration changed no token: the search stops
    event: str = field(init=False, default="iteration_finished")


@dataclass
class Resumed(SearchEvent):
    after_iteration: int = -1
    event: str = field(init=False, default="resumed")


@dataclass
class Finished(SearchEvent):
    shared: list = field(default_factory=list)
    shared_text: list = field(default_factory=list)
    personal: list = field(default_factory=list)
    value: float = 0.0
    iterations: int = 0
    seconds: float = 0.0
    event: str = field(init=False, default="finished")


EVENT_TYPES: dict[str, type[SearchEvent]] = {
    cls.__dataclass_fields__["event"].default: cls
    for cls in (RunStarted, Evaluated, GradientComputed, CandidatesScored, TokenAccepted, SlotRejected,
                SharedConverged, PersonalRound, IterationFinished, Resumed, Finished)
}


class TraceError(PapRecError, ValueError):
    """A trace or run directory that cannot be read or resumed; the message names the file and line."""


def event_from_dict(d: dict[str, Any]) -> SearchEvent:
    if d.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"trace schema {d.get('schema')!r} is not {SCHEMA_VERSION}")
    cls = EVENT_TYPES.get(d.get("event", ""))
    if cls is None:
        raise ValueError(f"unknown trace event {d.get('event')!r}")
    ev = cls(**{k: v for k, v in d.items() if k not in ("schema", "event")})
    return ev


class TraceWriter:
    """Appends events to ``run_dir/trace.jsonl``, one flushed line each."""

    def __init__(self, run_dir: str | Path, fsync: bool = False):
        self.path = Path(run_dir) / TRACE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._fh = self.path.open("a", encoding="utf-8")

    def write(self, event: SearchEvent) -> None:
        self._fh.write(json.dumps(event.to_dict()) + "\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_trace_lines(path: str | Path) -> list[tuple[int, SearchEvent]]:
    """``(byte offset just after the line, event)`` for each complete line of a trace file (or run
    directory). A torn last line (a crash mid-write, no newline) is left out; any other malformed line
    is an error naming the line."""
    path = Path(path)
    if path.is_dir():
        path = path / TRACE_FILE
    out, offset = [], 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                break
            offset += len(raw)
            if not raw.strip():
                continue
            try:
                out.append((offset, event_from_dict(json.loads(raw))))
            except (ValueError, TypeError) as exc:
                raise TraceError(f"{path}:{n}: {exc}") from None
    return out


def read_trace(path: str | Path) -> list[SearchEvent]:
    """The events of a trace file or run directory (see :func:`read_trace_lines`)."""
    return [event for _, event in read_trace_lines(path)]


@dataclass(frozen=True)
class RunTrace:
    """A run's trace, read once: the one place that knows what its records mean (the run's start, its
    finished iterations, whether and how it ended). ``SearchResult.from_run``, ``list_runs``, the resume
    in ``run_search``, ``Timeline`` and the findings read runs through it."""

    path: Path  # the trace file
    lines: tuple  # (byte offset just after the line, event), complete lines only

    @classmethod
    def read(cls, run_dir: str | Path) -> "RunTrace":
        """The trace of a run directory (or a trace file); an error when it has no ``run_started`` record."""
        path = Path(run_dir)
        path = path / TRACE_FILE if path.is_dir() or path.suffix != ".jsonl" else path
        trace = cls(path, tuple(read_trace_lines(path)))
        if trace.started is None:
            raise TraceError(f"{path}: no run_started record (not a search trace, or it has just begun)")
        return trace

    @property
    def events(self) -> list[SearchEvent]:
        return [e for _, e in self.lines]

    def of(self, kind: type) -> list:
        """Every event of one type, in order."""
        return [e for _, e in self.lines if isinstance(e, kind)]

    @property
    def started(self) -> "RunStarted | None":
        return next((e for _, e in self.lines if isinstance(e, RunStarted)), None)

    @property
    def finished(self) -> "Finished | None":
        return next((e for _, e in self.lines if isinstance(e, Finished)), None)

    @property
    def iterations(self) -> list[IterationFinished]:
        return self.of(IterationFinished)

    @property
    def resume_offset(self) -> int:
        """Where an interrupted run is cut before it continues: just after its last finished iteration
        (0: none finished, it starts again)."""
        last = [off for off, e in self.lines if isinstance(e, IterationFinished)]
        return last[-1] if last else 0

    @property
    def value(self) -> float | None:
        """The validation surrogate: the finished run's, else the last finished iteration's (None: none)."""
        done, its = self.finished, self.iterations
        return done.value if done else its[-1].value if its else None

    @property
    def users_changed(self) -> list[int]:
        """Users whose personal token changed, per personal round."""
        return [int(e.users_changed) for e in self.of(PersonalRound)]

    def shared_prompts_scored(self, n_shared: int | None = None) -> list[list[int]]:
        """Every shared-token list the search scored as a candidate, in order (replaying acceptances)."""
        n_shared = int(self.started.config.get("n_shared", 0)) if n_shared is None else n_shared
        shared, out = list(self.started.shared), []
        for e in self.events:
            if isinstance(e, CandidatesScored) and e.slot < n_shared:
                for c in e.candidates:
                    tokens = list(shared)
                    tokens[e.slot] = int(c)
                    out.append(tokens)
            elif isinstance(e, TokenAccepted):
                shared = list(e.shared)
        return out

