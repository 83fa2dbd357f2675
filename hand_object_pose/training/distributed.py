"""Process-group set-up for torchrun / DistributedDataParallel, and the single-process fallback.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; we use NCCL when CUDA is available and gloo on CPU.
A plain `python -m ...train` run is world size 1 and creates no process group.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""            # "" when no process group was created

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", backend: str = "auto") -> DistributedContext:
    """Join the torchrun process group if launched by torchrun, else return a single-process context.

    device: "auto" (cuda:LOCAL_RANK when CUDA is available, else cpu), "cpu" or "cuda".
    backend: "auto" (nccl for CUDA, gloo for CPU), "nccl" or "gloo".
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        torch_device = torch.device("cuda", local_rank)
    else:
        torch_device = torch.device("cpu")
    if world_size == 1:
        return DistributedContext(0, 1, 0, torch_device, "")
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, torch_device, backend)


def shutdown_distributed(context: DistributedContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Mean of a tensor over all processes (a copy; identity for one process)."""
    if not context.distributed:
        return value.detach().clone()
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / context.world_size
