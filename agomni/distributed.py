"""Work sharing under ``torchrun``: which part of the items this process does, and putting parts together.

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
        if self.world == 1:
            return [value]
        values: list[Any] = [None] * self.world
        dist.all_gather_object(values, value)
        return values

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


def current() -> Shard:
    """The shard of this process: from the initialised process group, else rank 0 of 1."""
    if dist.is_available() and dist.is_initialized():
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
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
