"""runlock: a run directory is held by one writer; readers tell running from stopped; stale locks expire."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from pap_rec_core.search.events import TraceError
from pap_rec_core.search.runlock import LOCK_FILE, hold, holder, run_status


def test_a_held_run_reads_as_running_and_refuses_a_second_writer(tmp_path):
    run = tmp_path / "r"
    assert holder(run) is None and run_status(run, finished=False) == "stopped"
    with hold(run):
        assert (run / LOCK_FILE).is_file()
        assert holder(run)["this_process"] and run_status(run, finished=False) == "running"
        with pytest.raises(TraceError, match="being searched by this process"):
            with hold(run):
                pass
    assert not (run / LOCK_FILE).exists() and run_status(run, finished=False) == "stopped"
    assert run_status(run, finished=True) == "finished"


def test_another_live_process_holds_it_and_a_dead_ones_lock_is_stale(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / LOCK_FILE).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "started": 0}))
        assert holder(run)["pid"] == sleeper.pid and run_status(run, finished=False) == "running"
        with pytest.raises(TraceError, match=f"process {sleeper.pid} on "):
            with hold(run):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    assert holder(run) is None  # its process is gone: stale, the run reads as stopped
    with hold(run):  # and the next search takes it over
        assert holder(run)["this_process"]
    (run / LOCK_FILE).write_text("not json")
    assert holder(run) is None
