"""RecBole's side of the baselines: the benchmark files it reads (our split written as its atomic files)
and the confinement of its process-wide side effects (import, logging, argv, working directory, global
RNG state; :func:`recbole_sandbox`)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pap_rec_core.data.item_index import ItemIndex
from pap_rec_core.data.split import NO_TARGET, Split, Stage

log = logging.getLogger("pap_rec_core.evaluation.recbole_baselines")  # one logger for the baselines
_recbole_log = logging.getLogger("pap_rec_core.evaluation.recbole_baselines.recbole")

DATASET_TOKEN = "paprec"  # RecBole dataset name (not "ml-100k": RecBole has per-name presets)


def sequential_rows(split: Split, max_len: int) -> tuple[dict[str, list[tuple[int, np.ndarray, int]]], int]:
    """(user, history[-max_len:], target) rows per part, and the longest history written."""
    rows: dict[str, list[tuple[int, np.ndarray, int]]] = {"train": [], "valid": [], "test": []}
    longest = 0
    for u, train in enumerate(split.train):
        for k in range(1, len(train)):
            hist = train[max(0, k - max_len):k]
            rows["train"].append((u, hist, int(train[k])))
            longest = max(longest, len(hist))
        if split.test_target[u] == NO_TARGET:
            continue
        for stage in (Stage.VALID, Stage.TEST):
            hist = split.history(u, stage)[-max_len:]
            rows[stage.value].append((u, hist, int(split.targets(stage)[u])))
            longest = max(longest, len(hist))
    return rows, longest


def write_sequential_benchmark(split: Split, index: ItemIndex, out: Path, max_len: int) -> int:
    """Pre-augmented ``<token>.train/valid/test.inter`` (user, item_id_list, item_id); returns the window."""
    rows, longest = sequential_rows(split, max_len)
    if not rows["train"]:
        raise ValueError("no training sequences: sequential baselines need users with at least 2 training items")
    out.mkdir(parents=True, exist_ok=True)
    users = split.data.user_ids
    texts = np.asarray(index.texts, dtype=object)
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    for part, part_rows in rows.items():
        lines = [f"{users[u]}\t{' '.join(texts[hist])}\t{texts[target]}\n" for u, hist, target in part_rows]
        (out / f"{DATASET_TOKEN}.{part}.inter").write_text(header + "".join(lines), encoding="utf-8")
    return min(max_len, longest)


# ----------------------------------------------------------------------------------------------------
# Isolation of RecBole's process-wide side effects


def import_recbole() -> None:
    """Import RecBole's modules, undoing the import-time switch-on of autograd anomaly detection."""
    import torch

    mode = (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled())
    try:
        import recbole.config  # noqa: F401
        import recbole.data  # noqa: F401
        import recbole.model.general_recommender  # noqa: F401
        import recbole.model.sequential_recommender  # noqa: F401  (sine.py: set_detect_anomaly(True))
        import recbole.trainer  # noqa: F401
        import recbole.utils  # noqa: F401
    finally:
        torch.autograd.set_detect_anomaly(mode[0], check_nan=mode[1])


class RecBoleLogFilter(logging.Filter):
    """On the root logger: re-emit RecBole's records under our logger (DEBUG; warnings stay WARNING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        path = record.pathname.replace("\\", "/")
        if "/recbole/" not in path:
            return True
        level = logging.WARNING if record.levelno >= logging.WARNING else logging.DEBUG
        if _recbole_log.isEnabledFor(level):
            _recbole_log.log(level, "%s", record.getMessage())
        return False


@contextlib.contextmanager
def recbole_sandbox(cwd: Path) -> Iterator[None]:
    """Clean ``sys.argv``, private CWD, restored env / RNG / cudnn flags, RecBole logs and warnings captured."""
    import torch

    saved_argv = sys.argv
    saved_cwd = os.getcwd()
    saved_cuda_env = os.environ.get("CUDA_VISIBLE_DEVICES")
    saved_random = random.getstate()
    saved_np = np.random.get_state()
    saved_cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    saved_anomaly = (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled())
    root = logging.getLogger()
    log_filter = RecBoleLogFilter()
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=cuda_devices))
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", module=r"recbole(\.|$)")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"pandas(\.|$)")
        root.addFilter(log_filter)
        sys.argv = [saved_argv[0] if saved_argv else "pap-rec"]
        os.chdir(cwd)
        torch.autograd.set_detect_anomaly(False)
        try:
            yield
        finally:
            torch.autograd.set_detect_anomaly(saved_anomaly[0], check_nan=saved_anomaly[1])
            os.chdir(saved_cwd)
            sys.argv = saved_argv
            root.removeFilter(log_filter)
            if saved_cuda_env is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved_cuda_env
            random.setstate(saved_random)
            np.random.set_state(saved_np)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved_cudnn


def resolve_device(device: str):
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)
