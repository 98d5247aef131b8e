"""A search running in a background thread, stoppable and resumable: what the workbench starts so that
its page stays responsive while the trace grows (the page reads the trace; see ``timeline.py``).

Stopping takes effect at the next event: the trace then ends in the middle of an iteration, exactly
like an interrupted process, and :meth:`BackgroundSearch.start` again resumes it from the last finished
iteration (``run_search``'s resume) to the same tokens as an uninterrupted run.

Example::

    job = BackgroundSearch(bundle, split, SearchConfig(n_shared=5, iterations=2), "runs/mine")
    job.start(); ...; job.stop(); job.join(); job.start()   # resumed
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import Callable

from pap_rec_core import PapRecError
from pap_rec_core.data.split import Split
from pap_rec_core.rlm.checkpoint import RLMBundle
from pap_rec_core.search.config import SearchConfig
from pap_rec_core.search.events import SearchEvent
from pap_rec_core.search.run import SearchResult, run_search


_JOBS: dict[str, "BackgroundSearch"] = {}  # run directory -> the last job started on it in this process


def find_job(run_dir: str | Path) -> "BackgroundSearch | None":
    """The job this process started on ``run_dir`` (running or not), or None: how a page that lost its
    session (a browser reload) re-attaches to a search still running in the server."""
    return _JOBS.get(str(Path(run_dir).resolve()))


class SearchStopped(PapRecError):
    """Raised inside the search thread to stop it at the next event (the trace stays resumable)."""


class BackgroundSearch:
    """One search run directory driven by a background thread. ``status``: idle | running | stopping |
    stopped | finished | failed."""

    def __init__(self, bundle: RLMBundle, split: Split, config: SearchConfig, run_dir: str | Path, *,
                 engine: str = "fast", on_event: Callable[[SearchEvent], None] | None = None):
        self.bundle, self.split, self.config, self.engine = bundle, split, config, engine
        self.run_dir = Path(run_dir)
        self.on_event = on_event
        self.status = "idle"
        self.error: str | None = None
        self.result: SearchResult | None = None
        self.events_seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start (or resume) the search; a no-op while it runs."""
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self.status, self.error = "running", None
            self._thread = threading.Thread(target=self._work, name=f"search:{self.run_dir.name}", daemon=True)
            _JOBS[str(self.run_dir.resolve())] = self
            self._thread.start()

    def stop(self) -> None:
        """Ask the search to stop at its next event (see the module docstring)."""
        if self.running:
            self.status = "stopping"
            self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _event(self, event: SearchEvent) -> None:
        self.events_seen += 1
        if self.on_event is not None:
            self.on_event(event)
        if self._stop.is_set():
            raise SearchStopped(f"stopped by request after {event.event}")

    def _work(self) -> None:
        try:
            self.result = run_search(self.bundle, self.split, self.config, self.run_dir, engine=self.engine,
                                     on_event=self._event)
            self.status = "finished"
        except SearchStopped:
            self.status = "stopped"
        except Exception as exc:  # shown by the app; the trace keeps everything up to the failure
            self.status = "failed"
            self.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
