"""Multi-process search under ``torchrun``: joining the process group, who am I, summing per-process
rows, waiting for everyone. Without ``torch.distributed`` initialised every helper is a no-op for one
process (rank 0 of 1), so the engine calls them unconditionally."""

from __future__ import annotations

import os

import numpy as np
import torch


def init_distributed(device: str) -> bool:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch.distributed as dist

    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    elif "OMP_NUM_THREADS" not in os.environ:  # processes share the cores (torchrun sets 1 by default)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["WORLD_SIZE"])))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return True


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) under ``torch.distributed`` (torchrun), else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_sum(*arrays: np.ndarray | torch.Tensor) -> None:
    """In place: sum each array over the processes (each process filled its own rows, zeros elsewhere)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for a in arrays:
        t = torch.from_numpy(a) if isinstance(a, np.ndarray) else a  # numpy arrays share their memory
        if dist.get_backend() == "nccl":
            on_gpu = t.cuda()
            dist.all_reduce(on_gpu)
            t.copy_(on_gpu.cpu())
        else:
            dist.all_reduce(t)


def barrier(world: int) -> None:
    """Wait for every process (a no-op for one)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
