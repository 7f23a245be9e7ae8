"""Several processes under ``torchrun`` (DistributedDataParallel): plumbing a learner can skip.

``torchrun --nproc_per_node N`` starts N copies of a script with WORLD_SIZE, RANK and LOCAL_RANK set.
Each joins a process group (nccl for GPUs, gloo for CPUs), trains on its share of every batch, and
DDP averages the gradients, so all copies take the same optimizer step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Distributed:
    """Where this process stands: rank, number of processes, and its local GPU index."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | torch.device | None = None) -> Distributed:
    """Join the process group when started by ``torchrun``; else one process.

    The backend follows the device: nccl for CUDA GPUs, gloo for CPU processes.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    import torch.distributed as dist

    use_cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        check_local_gpu(local_rank, torch.cuda.device_count())
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    info = Distributed(dist.get_rank(), dist.get_world_size(), local_rank)
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    return info


def check_local_gpu(local_rank: int, gpus: int) -> None:
    """Fail in one readable line when torchrun starts more processes on a machine than it has GPUs."""
    if local_rank >= gpus:
        raise ValueError(
            f"process {local_rank} of this machine needs GPU {local_rank}, but only {gpus} GPU(s) are visible: "
            f"use torchrun --nproc_per_node {gpus} (or fewer), or --device cpu"
        )


def cleanup_distributed() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: Distributed) -> None:
    """Wait until every process reaches this point (nothing to wait for with one process)."""
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def mean_over_processes(value: torch.Tensor, info: Distributed) -> torch.Tensor:
    """The mean of ``value`` over all processes (the same number on every one)."""
    if not info.enabled:
        return value
    import torch.distributed as dist

    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)  # gloo has no AVG
    return value / info.world_size


def gather_to_all(obj: Any, info: Distributed) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process (``[obj]`` with one process)."""
    if not info.enabled:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
