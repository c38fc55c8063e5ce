"""The streaming data path: rows read a batch at a time, for data that does not fit in
memory (a folder of photos decoded per batch, a Parquet table read by row groups).

Small data keeps the fast path: the loop (train/loop.py) takes ``(x, y)`` tensors and
slices contiguous batches from one gather per epoch. Anything else is a :class:`Stream`,
which the same loop reads through ``epoch(...)``:

    :class:`PositionStream`  samples addressed by position (``fetch(positions) -> (x, y)``
                             reads and encodes a batch of them); torch ``DataLoader``
                             worker processes fetch batches ahead, pinned memory on CUDA
    a chunked stream         rows that come in chunks (data/tables_stream.py: Parquet row
                             groups, shuffled per row group through a buffer)

Both shuffle from the loop's own seeded generator: the same seed gives the same order,
however many workers read. Each epoch draws from that generator exactly as the in-memory
path does (one permutation), so a resumed run redraws the epoch it stopped in.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["Fetch", "PositionStream", "Stream", "shard_order", "worker_count"]

Batch = tuple[torch.Tensor, torch.Tensor]
#: reads and encodes the samples at ``positions`` (an int64 array): (x, y) tensors, y shaped
#: for the loss. Runs in a worker process when there are workers: it must not draw random
#: numbers (augmentation runs in the loop, on the batch).
Fetch = Callable[[np.ndarray], Batch]


class Stream(ABC):
    """A split's rows, read a batch at a time."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of rows."""

    @abstractmethod
    def epoch(self, batch_size: int, gen: torch.Generator | None, *, skip: int = 0,
              shard: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
        """One pass, as (x, y) batches on the CPU (pinned when the stream pins).

        ``gen``: the loop's shuffling generator: the rows in a random order drawn from it,
        and a last batch of a single row dropped (it breaks BatchNorm); ``None``: every row
        in order (evaluation). ``skip``: batches already done (a resumed epoch), passed
        over without reading them where the stream can. ``shard=(rank, world)``: this
        process's share of the epoch (DistributedDataParallel); every rank gets the same
        number of batches."""

    @abstractmethod
    def n_batches(self, batch_size: int, shard: tuple[int, int] = (0, 1)) -> int:
        """Batches in a shuffled epoch (what ``epoch(batch_size, gen)`` yields)."""

    @abstractmethod
    def sample(self, n: int, seed: int) -> Batch:
        """``n`` rows (all when fewer) drawn with ``seed``, as tensors in memory: what the
        doctor's pre-flight, the range test and the baseline loss look at."""

    def close(self) -> None:  # noqa: B027 (most streams hold no worker)
        """Stop worker processes (a stream is usable again afterwards)."""


def shard_order(order: torch.Tensor, shard: tuple[int, int]) -> torch.Tensor:
    """This rank's share of an epoch's order: as torch's ``DistributedSampler``, the order
    padded with its first rows to a multiple of the ranks, then every ``world``-th row."""
    rank, world = shard
    if world == 1:
        return order
    total = -(-len(order) // world) * world
    if total > len(order):
        order = torch.cat([order, order[: total - len(order)]])
    return order[rank::world]


def used_rows(n: int, batch_size: int) -> int:
    """Rows a shuffled epoch uses: all but a last batch of one."""
    return n - 1 if n % batch_size == 1 and n > 1 else n


class _Batches:
    """The sampler of a persistent DataLoader: the current epoch's batches of positions,
    replaced before each pass (the sampler runs in the main process)."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _Reader(torch.utils.data.Dataset):
    """The DataLoader's dataset: one item is a whole batch (a positions array)."""

    def __init__(self, fetch: Fetch, positions: np.ndarray):
        self.fetch, self.positions = fetch, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: np.ndarray) -> Batch:
        return self.fetch(self.positions[index])


class PositionStream(Stream):
    """Samples addressed by position. ``positions``: the split's positions in the data
    (``fetch`` is called with a subset of them). ``workers``: DataLoader worker processes
    (0: the main process reads); ``pin``: pinned memory (CUDA); ``order(gen, batch_size)``:
    each shuffled epoch's order of the split's rows (indices into ``positions``; by default
    a random permutation)."""

    def __init__(self, fetch: Fetch, positions: np.ndarray, *, workers: int = 0,
                 pin: bool = False, order: Callable[[torch.Generator, int], torch.Tensor]
                 | None = None):
        self.fetch, self.positions = fetch, np.asarray(positions, dtype=np.int64)
        self.workers, self.pin, self.order = workers, pin, order
        self._loader: torch.utils.data.DataLoader | None = None
        self._batches = _Batches()

    def __len__(self) -> int:
        return len(self.positions)

    def n_batches(self, batch_size: int, shard: tuple[int, int] = (0, 1)) -> int:
        per_rank = math.ceil(used_rows(len(self), batch_size) / shard[1])
        return math.ceil(per_rank / batch_size)

    def epoch(self, batch_size: int, gen: torch.Generator | None, *, skip: int = 0,
              shard: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
        n = len(self)
        if gen is None:
            order = torch.arange(n)
        else:
            order = self.order(gen, batch_size) if self.order else torch.randperm(n, generator=gen)
            order = order[: used_rows(n, batch_size)]
        order = shard_order(order, shard).numpy()
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        self._batches.batches = batches[skip:]
        if not self._batches.batches:
            return
        yield from self._reader()

    def _reader(self) -> Any:
        if self.workers == 0:
            return (self.fetch(self.positions[b]) for b in self._batches)
        if self._loader is None:
            self._loader = torch.utils.data.DataLoader(
                _Reader(self.fetch, self.positions), sampler=self._batches, batch_size=None,
                num_workers=self.workers, pin_memory=self.pin, persistent_workers=True,
                prefetch_factor=2,
                # its workers' seeds come from here, not from torch's global generator, whose
                # draws (dropout) must not depend on whether there are workers
                generator=torch.Generator().manual_seed(0))
        return iter(self._loader)

    def sample(self, n: int, seed: int) -> Batch:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(self), size=min(n, len(self)), replace=False))
        return self.fetch(self.positions[pick])

    def close(self) -> None:
        self._loader = None  # its persistent workers end with it

    def __getstate__(self) -> dict[str, Any]:  # a worker never needs the loader
        return {**self.__dict__, "_loader": None}


def worker_count(device: str, cores: int | None = None) -> tuple[int, str]:
    """DataLoader workers for a stream, and why: decoding overlaps training when a core is
    free for it. On a GPU most cores are free (up to 8 workers); on the CPU training uses
    the cores, so one worker when there are at least 2 (it decodes the next batch while
    the main process trains on this one), none on a single core."""
    cores = cores or os.cpu_count() or 1
    if device == "cuda":
        n = max(1, min(8, cores - 1))
        return n, f"{n} worker process(es) decode batches ahead of the GPU ({cores} CPU cores)"
    if cores >= 2:
        return 1, (f"1 worker process decodes the next batch while this one trains "
                   f"({cores} CPU cores, training uses the rest)")
    return 0, "no worker process: a single CPU core decodes and trains in turn"
