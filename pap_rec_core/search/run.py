"""Running a search into a run directory (``trace.jsonl``), and resuming an interrupted one.

``run_search`` writes every event to the trace as it happens. Called again on the same directory, it
reads the trace: a finished run is returned as is; an interrupted one continues from its last
``iteration_finished`` record (the partial iteration after it is cut from the file and redone), which
gives the same tokens as an uninterrupted run because an iteration depends only on the state before it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pap_rec_core.data.split import Split
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.search.config import SearchConfig
from pap_rec_core.search.distributed import barrier, rank_and_world
from pap_rec_core.search.engine import PapRecSearch, SearchState
from pap_rec_core.search.events import TRACE_FILE, RunTrace, SearchEvent, TraceError, TraceWriter
from pap_rec_core.search.runlock import hold, run_status


@dataclass(frozen=True)
class SearchResult:
    run_dir: str
    users: list[int]  # dense indices of the searched users (rows of ``personal``)
    shared: list[int]
    personal: list[list[int]]
    value: float  # mean validation surrogate
    iterations: int
    config: SearchConfig
    dataset: dict = field(default_factory=dict)  # name and fingerprint of the searched data (run start)
    model: dict = field(default_factory=dict)  # path and parameter count of the searched model (run start)

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "SearchResult":
        trace = RunTrace.read(run_dir)
        start, done = trace.started, trace.finished
        if done is None:
            raise TraceError(f"{run_dir}: the search has not finished (resume it with `pap-rec search ... --out {run_dir}`)")
        return cls(str(run_dir), start.users, done.shared, done.personal, done.value, done.iterations,
                   SearchConfig.from_dict(start.config), dict(start.dataset or {}), dict(start.model or {}))

    def check_matches(self, bundle, split) -> None:
        """Refuse to use this run's tokens and user rows on another dataset or model (they are ids into the
        searched model's vocabulary and rows of the searched dataset)."""
        recorded = self.dataset.get("fingerprint")
        if recorded and recorded != split.data.fingerprint():
            raise TraceError(f"{self.run_dir} was searched on dataset {self.dataset.get('name')!r} (fingerprint "
                             f"{recorded}), not on {split.data.name!r} (fingerprint {split.data.fingerprint()}); "
                             "evaluate it with the model and data it was searched on")
        params = self.model.get("parameters")
        if params and params != bundle.model.num_parameters():
            raise TraceError(f"{self.run_dir} was searched on the model {self.model.get('path')} ({params:,} "
                             f"parameters), not on {bundle.path} ({bundle.model.num_parameters():,} parameters)")


def run_search(bundle: RLMBundle, split: Split, config: SearchConfig, run_dir: str | Path, *, engine: str = "fast",
               on_event: Callable[[SearchEvent], None] | None = None) -> SearchResult:
    """Run (or resume, or just read) the search of ``run_dir``; ``on_event`` sees every new event.

    Under ``torchrun`` every process calls this with the same arguments; users and samples are sharded
    over the processes, sums are all-reduced, every process takes the same decisions, and process 0
    alone writes the trace and calls ``on_event``."""
    run_dir = Path(run_dir)
    path = run_dir / TRACE_FILE
    rank, world = rank_and_world()
    resume_from, cut = None, None
    if path.is_file() and path.stat().st_size:
        try:
            trace = RunTrace.read(path)
        except TraceError as err:
            raise TraceError(f"{err}; use another run directory") from None
        start = trace.started
        if SearchConfig.from_dict(start.config) != config:
            diff = sorted(k for k, v in config.to_dict().items() if start.config.get(k) != v)
            raise TraceError(f"{run_dir} holds a search with another configuration (differs in {', '.join(diff)}); "
                             "use another run directory")
        if trace.finished is not None:
            return SearchResult.from_run(run_dir)
        cut = trace.resume_offset  # 0: interrupted before the first iteration ended — start again
        if trace.iterations:
            rec = trace.iterations[-1]
            resume_from = SearchState(rec.iteration + 1, list(rec.shared),
                                      np.asarray(rec.personal, dtype=np.int64).reshape(len(start.users), -1),
                                      converged=rec.converged, value=rec.value)
    barrier(world)  # every process has read the trace before it is cut
    with hold(run_dir) if rank == 0 else contextlib.nullcontext():  # one writer; readers see "running"
        if rank == 0 and cut is not None:
            with path.open("r+b") as fh:
                fh.truncate(cut)  # drop the partial iteration; it is redone
        search = PapRecSearch(bundle, split, config, engine=engine)
        with TraceWriter(run_dir) if rank == 0 else contextlib.nullcontext() as trace:
            for event in search.events(resume_from):
                if trace is not None:
                    trace.write(event)
                if on_event is not None and rank == 0:
                    on_event(event)
    barrier(world)  # the trace is complete before anyone reads the result
    return SearchResult.from_run(run_dir)


def list_runs(runs_dir: str | Path) -> list[dict]:
    """Every search run under ``runs_dir`` (directories holding a ``trace.jsonl``, newest first): name,
    path, task, slots, surrogate, users (count, and the first listed user of a run given ``user_ids``:
    the workbench's picked user), iterations done, finished, status (finished / running / stopped, see
    ``runlock``), validation surrogate (the last finished iteration's while unfinished), last write
    time; a trace that cannot be read is listed with its error instead of hiding the others."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    rows = []
    for trace in sorted(runs_dir.glob(f"**/{TRACE_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True):
        row = {"name": str(trace.parent.relative_to(runs_dir)), "path": str(trace.parent), "error": None}
        try:
            read = RunTrace.read(trace)
            start, done, its = read.started, read.finished, read.iterations
            cfg = start.config
            listed = cfg.get("user_ids")
            row.update(task=cfg.get("task"), shared=cfg.get("n_shared"), personal=cfg.get("n_personal"),
                       surrogate=cfg.get("surrogate"), users=len(start.users),
                       first_user=str(listed[0]) if listed else None,
                       iterations=f"{len(its)}/{cfg.get('iterations')}", finished=done is not None,
                       status=run_status(trace.parent, done is not None),
                       value=read.value,
                       modified=trace.stat().st_mtime)
        except (TraceError, OSError, ValueError) as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows
