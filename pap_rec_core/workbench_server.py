"""Starting the Streamlit workbench as a server process (the browser test, the startup benchmark).

Example::

    proc, url = start_workbench("models/ml-100k", "runs")
    ...; stop_workbench(proc)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "workbench" / "app.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_workbench(model_dir: str | Path, runs_dir: str | Path, port: int | None = None,
                    timeout_s: float = 90.0) -> tuple[subprocess.Popen, str]:
    """``streamlit run workbench/app.py`` bound to 127.0.0.1; returns ``(process, url)`` once the server
    answers its health check (the app itself loads on the first page view)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--", "--model", str(model_dir), "--runs", str(runs_dir)]
    proc = subprocess.Popen(cmd, cwd=APP.parents[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    stop_workbench(proc)
    raise RuntimeError(f"streamlit did not answer within {timeout_s:.0f} s")


def stop_workbench(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
