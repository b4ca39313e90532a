"""Work sharing under ``torchrun``: which part of the items this process does, and putting parts together;
the one home of agomni's ``torch.distributed`` helpers (evaluation, metric accumulators, training).

``torchrun --nproc-per-node N -m agomni.cli run SUITE ...`` starts N processes. Each one calls `start`
(gloo on CPU, NCCL on CUDA) and then asks `current` for its `Shard`: rank r of N takes the r-th
contiguous block of the items (`Shard.part`), so the parts gathered in rank order are the items in their
original order and order-dependent statistics equal a single process's. Without torchrun (or with
N = 1) the shard is the whole: rank 0 of 1, and every method is a no-op.

Example (no torchrun: one process does everything)::

    >>> from agomni.distributed import current
    >>> shard = current()
    >>> shard.part(list("abcde")), shard.gather(3), shard.main
    (['a', 'b', 'c', 'd', 'e'], [3], True)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` processes (rank 0 is the one that writes files)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def part(self, items: Sequence[T]) -> list[T]:
        """This rank's contiguous block of ``items`` (blocks differ in size by at most one)."""
        n = len(items)
        return list(items[n * self.rank // self.world : n * (self.rank + 1) // self.world])

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
        return [value] if self.world == 1 else gather_objects(value)

    def from_main(self, compute: Callable[[], T]) -> T:
        """``compute()`` run on rank 0 only, its result handed to every rank (work that must not be
        split, e.g. a stage whose random draws depend on all items, or that writes shared files)."""
        if self.world == 1:
            return compute()
        box = [compute() if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block before the other ranks do (e.g. it builds a data set they then read)."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def barrier(self) -> None:
        """Wait until every rank got here (e.g. all generated files exist before scoring starts)."""
        if self.world > 1:
            dist.barrier()


def initialised() -> bool:
    """True when ``torch.distributed`` is available and a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(
    tensors: dict[str, torch.Tensor], group: dist.ProcessGroup | None = None
) -> dict[str, torch.Tensor]:
    """Sum each tensor element-wise over all ranks (``torch.distributed.all_reduce``, SUM).

    Returns new CPU tensors and leaves the inputs untouched. With the NCCL backend the tensors travel
    through the current CUDA device; gloo reduces CPU float64 directly. Without an initialised process
    group the tensors are returned as copies (the sum over one process).
    """
    if not initialised():
        return {key: value.clone() for key, value in tensors.items()}
    device = torch.device("cpu")
    if dist.get_backend(group) == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    reduced = {}
    for key in sorted(tensors):
        buffer = tensors[key].detach().to(device=device, copy=True)
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM, group=group)
        reduced[key] = buffer.cpu()
    return reduced


def gather_objects(value: Any, group: dist.ProcessGroup | None = None) -> list[Any]:
    """Every rank's ``value`` (any picklable object) in ``group``, in rank order, on every rank
    (``all_gather_object``); ``[value]`` without an initialised process group."""
    if not initialised():
        return [value]
    values: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(values, value, group=group)
    return values


def current() -> Shard:
    """The shard of this process: from the initialised process group, else rank 0 of 1."""
    if initialised():
        return Shard(dist.get_rank(), dist.get_world_size())
    return Shard()


def start(device: str | None = None) -> Shard:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1 in the environment): NCCL when
    ``device`` is CUDA (each rank on ``cuda:LOCAL_RANK``), gloo otherwise. A no-op in a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        cuda = device is not None and device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return current()


def stop() -> None:
    """Leave the process group `start` joined (nothing to do in a single process)."""
    if initialised():
        dist.destroy_process_group()
