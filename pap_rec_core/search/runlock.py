"""Who is writing a run directory: a small ``running.json`` (process id, host, start time) that a search
holds while it writes the trace, so that a reader can tell a *running* search from a *stopped* one
(interrupted, killed, or stopped on request: resumable) and a second writer is refused instead of
interleaving two traces.

A lock whose process is gone (killed, machine rebooted) is stale: it reads as stopped and the next
search takes it over. Within one process the lock also knows which run directories are held, so two
threads (two workbench sessions) cannot search the same directory at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

from pap_rec_core.search.events import TraceError

LOCK_FILE = "running.json"
_HELD: set[str] = set()  # run directories held by this process
_GUARD = threading.Lock()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def holder(run_dir: str | Path) -> dict | None:
    """The live process writing ``run_dir`` (``{"pid", "host", "started"}``), or None (no lock, or a stale
    one). A lock from another host cannot be checked and counts as live."""
    run_dir = Path(run_dir)
    if str(run_dir.resolve()) in _HELD:
        return {"pid": os.getpid(), "host": socket.gethostname(), "started": None, "this_process": True}
    path = run_dir / LOCK_FILE
    try:
        info = json.loads(path.read_text())
        pid, host = int(info["pid"]), str(info["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname() and (pid == os.getpid() or not _pid_alive(pid)):
        return None  # stale: its process is gone (or it is ours and no thread holds it)
    return {"pid": pid, "host": host, "started": info.get("started"), "this_process": False}


def run_status(run_dir: str | Path, finished: bool) -> str:
    """``finished`` | ``running`` (a live process holds it) | ``stopped`` (unfinished, nobody writing)."""
    if finished:
        return "finished"
    return "running" if holder(run_dir) is not None else "stopped"


@contextlib.contextmanager
def hold(run_dir: str | Path) -> Iterator[None]:
    """Hold ``run_dir`` while writing its trace; raises :class:`TraceError` naming the process that
    already does."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = str(run_dir.resolve())
    with _GUARD:
        other = holder(run_dir)
        if other is not None:
            where = "this process" if other["this_process"] else f"process {other['pid']} on {other['host']}"
            raise TraceError(f"{run_dir} is being searched by {where}; stop that search first or use another "
                             "run directory")
        _HELD.add(key)
        (run_dir / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                     "started": time.time()}))
    try:
        yield
    finally:
        with _GUARD:
            _HELD.discard(key)
            with contextlib.suppress(OSError):
                (run_dir / LOCK_FILE).unlink()
