"""A search trace as a sequence of decisions ("steps"): what the app's live view and replay slider, the
notebooks' convergence plots and ``pap-rec export-plots`` show.

One step is one decision of the search: a shared slot's candidates scored and the best accepted or the
slot rejected, or one personal round (every user's candidate for one personal slot). The timeline keeps
the prompt tokens after every step, so the state at any step is a lookup, not a replay.

Example::

    tl = Timeline.from_trace("runs/demo")
    tl.n_steps, tl.shared_after(3)            # the shared tokens after the 4th decision
    tl.slot_grid(user=17)                     # (n_steps + 1, n_slots) token ids, row 0 = initial
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pap_rec_core.search.events import (
    CandidatesScored,
    Evaluated,
    Finished,
    GradientComputed,
    IterationFinished,
    PersonalRound,
    RunStarted,
    RunTrace,
    SearchEvent,
    SlotRejected,
    TokenAccepted,
    TraceError,
)


@dataclass(frozen=True)
class Step:
    """One decision of the search."""

    index: int  # 0-based position in the timeline
    iteration: int
    kind: str  # shared | personal
    slot: int  # slot index in the layout (shared slots first, then personal ones)
    accepted: bool  # a shared token changed / at least one user's personal token changed
    value_before: float  # surrogate before the decision (personal: mean over the searched users)
    value_after: float  # surrogate after it
    time: float  # seconds since the run started, when the decision was recorded
    seconds: float  # time spent on the decision (gradient + candidate scoring)
    candidates: tuple[int, ...] = ()  # shared steps: the top-k candidates scored
    candidates_text: tuple[str, ...] = ()
    candidate_values: tuple[float, ...] = ()
    users_changed: int = 0  # personal steps
    changed: dict[int, tuple[int, int]] = field(default_factory=dict)  # personal: user index -> (before, after)


@dataclass(frozen=True, eq=False)
class Timeline:
    """The decisions of one search run, with the tokens after each (see the module docstring)."""

    config: dict
    users: tuple[int, ...]  # dense user indices, rows of the personal tokens
    n_shared: int
    n_personal: int
    steps: tuple[Step, ...]
    shared_states: np.ndarray  # (n_steps + 1, n_shared) token ids; row 0 = initial
    personal_states: np.ndarray  # (n_steps + 1, U, n_personal) token ids
    texts: dict[int, str]  # token id -> text, as far as the trace names them
    evaluations: tuple[Evaluated, ...] = ()
    iterations_done: int = 0
    finished: bool = False
    seconds: float = 0.0  # time of the last event

    @classmethod
    def from_trace(cls, path: str | Path) -> "Timeline":
        """The timeline of a run directory or trace file (complete lines only: a running search is fine)."""
        return cls.from_events(RunTrace.read(path).events, where=str(path))

    @classmethod
    def from_events(cls, events: Sequence[SearchEvent], where: str = "trace") -> "Timeline":
        start = next((e for e in events if isinstance(e, RunStarted)), None)
        if start is None:
            raise TraceError(f"{where}: no run_started record (not a search trace, or it has just begun)")
        n_shared = int(start.config.get("n_shared", len(start.shared)))
        n_personal = int(start.config.get("n_personal", 0))
        users = tuple(int(u) for u in start.users)
        row_of = {u: r for r, u in enumerate(users)}
        shared = np.asarray(start.shared, dtype=np.int64).reshape(n_shared)
        personal = np.asarray(start.personal, dtype=np.int64).reshape(len(users), n_personal)
        shared_states, personal_states = [shared.copy()], [personal.copy()]
        steps: list[Step] = []
        texts: dict[int, str] = {}
        pending: CandidatesScored | None = None
        last_grad_seconds = 0.0
        evaluations, iterations_done, finished, last_time = [], 0, False, 0.0
        for e in events:
            last_time = max(last_time, float(e.time))
            if isinstance(e, GradientComputed):
                last_grad_seconds = float(e.seconds)
            elif isinstance(e, CandidatesScored):
                pending = e
                texts.update({int(c): str(t) for c, t in zip(e.candidates, e.candidates_text)})
            elif isinstance(e, (TokenAccepted, SlotRejected)):
                accepted = isinstance(e, TokenAccepted)
                if accepted:
                    texts[int(e.before)], texts[int(e.after)] = e.before_text, e.after_text
                    shared = np.asarray(e.shared, dtype=np.int64).reshape(n_shared)
                    before, after = float(e.value_before), float(e.value_after)
                else:
                    before, after = float(e.current_value), float(e.current_value)
                cand = pending if pending is not None and pending.slot == e.slot else None
                steps.append(Step(
                    index=len(steps), iteration=int(e.iteration), kind="shared", slot=int(e.slot), accepted=accepted,
                    value_before=before, value_after=after, time=float(e.time),
                    seconds=last_grad_seconds + (float(cand.seconds) if cand else 0.0),
                    candidates=tuple(int(c) for c in cand.candidates) if cand else (),
                    candidates_text=tuple(map(str, cand.candidates_text)) if cand else (),
                    candidate_values=tuple(float(v) for v in cand.values) if cand else ()))
                pending = None
                shared_states.append(shared.copy())
                personal_states.append(personal.copy())
            elif isinstance(e, PersonalRound):
                p = int(e.slot) - n_shared
                changed = {}
                for u, (before_id, after_id) in e.changed.items():
                    r = row_of.get(int(u))
                    if r is None or not 0 <= p < n_personal:
                        raise TraceError(f"{where}: personal_round names user {u} / slot {e.slot} outside the run")
                    personal[r, p] = int(after_id)
                    changed[int(u)] = (int(before_id), int(after_id))
                steps.append(Step(
                    index=len(steps), iteration=int(e.iteration), kind="personal", slot=int(e.slot),
                    accepted=bool(changed), value_before=float(e.value_before), value_after=float(e.value_after),
                    time=float(e.time), seconds=float(e.seconds), users_changed=int(e.users_changed),
                    changed=changed))
                shared_states.append(shared.copy())
                personal_states.append(personal.copy())
            elif isinstance(e, Evaluated):
                evaluations.append(e)
            elif isinstance(e, IterationFinished):
                iterations_done = int(e.iteration) + 1
            elif isinstance(e, Finished):
                finished = True
                texts.update({int(t): str(s) for t, s in zip(e.shared, e.shared_text)})
        return cls(config=dict(start.config), users=users, n_shared=n_shared, n_personal=n_personal,
                   steps=tuple(steps), shared_states=np.stack(shared_states),
                   personal_states=np.stack(personal_states), texts=texts, evaluations=tuple(evaluations),
                   iterations_done=iterations_done, finished=finished, seconds=last_time)

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def n_slots(self) -> int:
        return self.n_shared + self.n_personal

    def row(self, user: int) -> int:
        """Row of a dense user index in the personal tokens (``KeyError`` naming the user if not searched)."""
        try:
            return self.users.index(int(user))
        except ValueError:
            raise KeyError(f"user index {user} was not searched in this run ({len(self.users)} users were)") from None

    def shared_after(self, step: int) -> list[int]:
        """Shared tokens after ``step`` decisions (``step`` = 0: the initial tokens)."""
        return [int(t) for t in self.shared_states[self._state(step)]]

    def personal_after(self, step: int, user: int) -> list[int]:
        return [int(t) for t in self.personal_states[self._state(step), self.row(user)]]

    def slot_grid(self, user: int | None = None, upto: int | None = None) -> np.ndarray:
        """(steps + 1, slots) token ids: row 0 the initial prompt, row i the prompt after decision i.
        Personal slots are the given user's (left out when ``user`` is None)."""
        last = self._state(self.n_steps if upto is None else upto)
        grid = self.shared_states[: last + 1]
        if user is not None and self.n_personal:
            grid = np.concatenate([grid, self.personal_states[: last + 1, self.row(user)]], axis=1)
        return grid

    def changed_cells(self, user: int | None = None, upto: int | None = None) -> np.ndarray:
        """Same shape as :meth:`slot_grid`: True where the token differs from the row above."""
        grid = self.slot_grid(user, upto)
        out = np.zeros(grid.shape, dtype=bool)
        out[1:] = grid[1:] != grid[:-1]
        return out

    def text(self, token_id: int, token_text: Callable[[int], str] | None = None) -> str:
        """A token's text: from ``token_text`` (a tokenizer's) when given, else as the trace names it."""
        if token_text is not None:
            return token_text(int(token_id))
        return self.texts.get(int(token_id), f"#{int(token_id)}")

    @property
    def stop_reason(self) -> str:
        """Why the run ended (or that it has not): the budget, or an iteration that changed nothing."""
        budget = int(self.config.get("iterations", self.iterations_done))
        if not self.finished:
            return f"not finished ({self.iterations_done}/{budget} iterations)"
        if self.iterations_done < budget:
            return (f"stopped after iteration {self.iterations_done} of {budget}: iteration {self.iterations_done} "
                    "changed no token")
        return f"finished its budget of {budget} iterations"

    def tied_steps(self) -> list[Step]:
        """Shared decisions whose candidates all scored the same value as the current token: the surrogate
        cannot tell them apart (a model deaf to its prompt words, or too few users to judge on)."""
        return [s for s in self.steps if s.kind == "shared" and s.candidate_values
                and len(set(s.candidate_values)) == 1 and s.candidate_values[0] == s.value_before]

    def surrogate_curve(self) -> list[tuple[int, str, float]]:
        """``(step index, kind, surrogate after the step)``; step -1 is the initial value."""
        initial = self.steps[0].value_before if self.steps else float("nan")
        return [(-1, "initial", initial)] + [(s.index, s.kind, s.value_after) for s in self.steps]

    def _state(self, step: int) -> int:
        if not 0 <= step <= self.n_steps:
            raise IndexError(f"step {step} is outside 0..{self.n_steps}")
        return step


def slot_labels(n_shared: int, n_personal: int) -> list[str]:
    return [f"shared {i + 1}" for i in range(n_shared)] + [f"personal {i + 1}" for i in range(n_personal)]
