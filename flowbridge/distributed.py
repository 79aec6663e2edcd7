"""Data-parallel training across processes (``torchrun``) and device selection.

``torchrun --nproc_per_node 2 -m flowbridge train run.toml`` starts two processes with the
``torch.distributed`` environment variables set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``). :func:`setup` joins them into a process group (NCCL on
GPUs, gloo on CPUs), or uses a group the caller already initialised. Every rank draws the
same global batch and trains on its own contiguous share of it; gradients are averaged, so
``n`` ranks with shares of ``B / n`` take the same steps as one process with batches of ``B``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Distributed", "resolve_device", "setup"]


def resolve_device(request: str, local_rank: int = 0) -> torch.device:
    """The device a run asked for: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    ``"cuda"`` and ``"auto"`` pick GPU ``local_rank`` (each process of a multi-GPU run its own).

    Raises:
        ValueError: CUDA was asked for but is not available, or the request is unknown.
    """
    if request == "cpu":
        return torch.device("cpu")
    if request == "auto":
        request = "cuda" if torch.cuda.is_available() else "cpu"
        if request == "cpu":
            return torch.device("cpu")
    if request == "cuda" or request.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {request!r} was asked for but torch.cuda.is_available() is False "
                f"(torch {torch.__version__}); ask for 'cpu' or 'auto' instead (train.device in "
                f"a run config, --device on the command line), or install a CUDA build of torch"
            )
        return torch.device(request if ":" in request else f"cuda:{local_rank}")
    raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {request!r}")


@dataclass(frozen=True)
class Distributed:
    """This process's place in a (possibly one-process) data-parallel run.

    Attributes:
        rank, world_size, local_rank: as ``torchrun`` numbers them (0, 1, 0 alone).
        owns_group: whether :func:`setup` created the process group (and so ends it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs and checkpoints."""
        return self.rank == 0

    def check_divisible(self, size: int, what: str) -> None:
        if size % self.world_size:
            raise ValueError(
                f"{what} {size} must be a multiple of the number of processes "
                f"({self.world_size}): each takes an equal share of the global batch"
            )

    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share ``[B / world_size]`` of global batch indices ``[B]``."""
        share = indices.shape[0] // self.world_size
        return indices[self.rank * share : (self.rank + 1) * share]

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over all ranks (the same tensor alone)."""
        if not self.active:
            return values
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size

    def largest(self, value: int, device: torch.device) -> int:
        """The largest of every rank's ``value`` (a collective: all ranks must call it), e.g.
        whether any rank has received a signal; ``device``: this rank's (NCCL reduces only
        CUDA tensors)."""
        if not self.active:
            return value
        values = torch.tensor([value], dtype=torch.int64, device=device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return int(values.item())

    def barrier(self) -> None:
        """Wait until every rank has arrived here (nothing alone)."""
        if self.active:
            dist.barrier()

    def average_gradients(self, parameters: Sequence[torch.Tensor]) -> None:
        """Replace each parameter's ``.grad`` by its mean over all ranks (what DDP does for
        the modules it wraps), in one collective; a missing gradient counts as zeros."""
        if not self.active or not parameters:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = self.mean(torch.cat([g.flatten() for g in grads]))
        for p, mean in zip(parameters, flat.split([g.numel() for g in grads]), strict=True):
            p.grad = mean.view_as(p)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (a collective: all ranks must call it)."""
        if not self.active:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def close(self, barrier: bool = False) -> None:
        """End the process group if :func:`setup` started it.

        ``barrier=True`` (after a run that ended normally) first waits for every rank, so no
        rank tears the group down while another still has collective work in flight (gloo
        then aborts the process). Not after an error: the other ranks may never arrive.
        """
        if self.owns_group and dist.is_initialized():
            if barrier:
                dist.barrier()
            dist.destroy_process_group()


def setup(device_request: str) -> tuple[Distributed, torch.device]:
    """Join the data-parallel run this process belongs to (if any) and pick its device.

    Uses an initialised default process group if there is one; else starts one from the
    ``torchrun`` environment when ``WORLD_SIZE`` > 1; else runs alone.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
        device = resolve_device(device_request, local_rank)
        return Distributed(rank, world, local_rank, owns_group=False), device
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_request, local_rank)
    if world <= 1:
        return Distributed(), device
    if not dist.is_available():
        raise RuntimeError(
            f"WORLD_SIZE = {world} asks for {world} processes, but this torch build has no "
            f"torch.distributed; run one process (unset WORLD_SIZE) or install a torch build "
            f"with distributed support"
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank, True), device
