"""Training on several GPUs (or CPU processes) with ``torchrun`` and DistributedDataParallel.

``torchrun --nproc_per_node=4 -m segscope train ...`` starts one process per GPU; each reads the
environment ``torchrun`` sets (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...),
trains on its own share of every epoch (``DistributedSampler``), and averages gradients with the
others after each backward pass. Rank 0 alone validates, writes checkpoints and logs, and shows
progress. Without ``torchrun`` nothing here is active and training runs as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Distributed", "distributed_from_environment"]


@dataclass(frozen=True)
class Distributed:
    """This process's place in a distributed run (world size 1: not distributed)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this process validates, saves and reports (rank 0)."""
        return self.rank == 0

    def device(self, requested: str | None) -> torch.device:
        """One GPU per process (``cuda:LOCAL_RANK``) when CUDA is there, else the CPU."""
        if requested is not None and requested not in ("cuda", "cpu"):
            raise ValueError(f"under torchrun each process takes the GPU of its LOCAL_RANK; "
                             f"device={requested!r} cannot be honoured (use 'cuda', 'cpu' or None)")
        if requested != "cpu" and torch.cuda.is_available():
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def start(self, device: torch.device) -> None:
        if self.active and not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")

    def stop(self) -> None:
        if self.active and torch.distributed.is_initialized():
            # Every process reaches the end before any tears the group down: one leaving while the
            # other still holds gloo's connections aborted it at exit, once in about a dozen runs.
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    def agree(self, value: float, device: torch.device) -> float:
        """The largest of every process's ``value``: one decision (stop, LR position) for all."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return float(tensor.item())

    def from_main(self, value: float, device: torch.device) -> float:
        """Rank 0's ``value``, on every process (a decision only rank 0 can make)."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        torch.distributed.broadcast(tensor, src=0)
        return float(tensor.item())


def distributed_from_environment() -> Distributed:
    """Read ``torchrun``'s environment; world size 1 when it is absent."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"malformed torchrun environment (WORLD_SIZE, RANK, LOCAL_RANK): {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"malformed torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return Distributed(rank, local, world)
