"""Many processes: DistributedDataParallel (DDP) under torchrun, or ``nnrecipe train --nproc N``.

torchrun starts one process per GPU (or N on CPUs) and tells each its place through the
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, the rendezvous address). Every process
runs the same command: it loads and plans the same data with the same seed, so the plans and
the initial weights agree; then

- **rank 0 decides, the others follow.** Only rank 0 writes the run directory and prints. It
  runs the pre-flight (and the range test) and sends the plan and the findings to the others;
  every stop (early stopping, the doctor, Ctrl-C, a repair) is decided once and sent, so
  every rank stops on the same step and the same epoch;
- **each rank trains on its share.** The epoch's order is drawn from the same seeded
  generator on every rank and dealt out as torch's ``DistributedSampler`` deals it (every
  ``world``-th row, padded to equal shares), so a rank's k-th batches together are the
  one-process run's k-th batch of ``world`` times the size;
- **gradients are averaged** by DDP before the step, so clipping, the optimizer and the
  doctor's gradient checks see the same, global gradients on every rank; the training loss
  is summed across ranks; every rank evaluates the whole validation split (identical
  weights give identical numbers);
- **no hang**: collectives time out after :func:`timeout_seconds` (``NNRECIPE_DDP_TIMEOUT``,
  default 600 s), and torchrun ends the other ranks when one fails.

Backends: gloo on CPUs, NCCL on CUDA GPUs (one GPU per process, ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ..errors import RunError

__all__ = ["Group", "PeerLost", "current", "guard", "join", "leave", "lr_scale",
           "timeout_seconds"]

DEFAULT_TIMEOUT = 600.0


class PeerLost(RunError):
    """Another process of the run stopped answering (it failed, was killed, or timed out)."""


def _lost(e: BaseException) -> bool:
    """Whether an exception raised inside a collective means another rank is gone."""
    if isinstance(e, dist.DistError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(
        w in text for w in ("gloo", "NCCL", "Connection", "connection", "timed out", "Timeout"))


@contextmanager
def guard(group: Group | None) -> Iterator[None]:
    """Within a run of several processes: a collective that fails because another rank is
    gone becomes one clear error (PeerLost), not a traceback from the transport."""
    if group is None:
        yield
        return
    try:
        yield
    except Exception as e:
        if not _lost(e):
            raise
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise PeerLost(f"process {group.rank} of {group.world} lost contact with the others "
                       f"({first}); the run stops here and its checkpoints are kept (--resume)"
                       ) from None


def timeout_seconds() -> float:
    """How long a collective waits for the other ranks before the job fails."""
    return float(os.environ.get("NNRECIPE_DDP_TIMEOUT", DEFAULT_TIMEOUT))


@dataclass(frozen=True)
class Group:
    """This process's place among the processes torchrun started."""

    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world

    # ---- collectives (every rank must call them, in the same order) -----------------------
    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        box = [obj if self.main else None]
        with guard(self):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, by rank, on every rank."""
        out: list[Any] = [None] * self.world
        with guard(self):
            dist.all_gather_object(out, obj)
        return out

    def any(self, *flags: bool) -> list[bool]:
        """Each flag true on at least one rank."""
        t = torch.tensor([float(f) for f in flags], device=self._device())
        with guard(self):
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of ``t`` over the ranks (a float tensor of the same shape everywhere)."""
        t = t.detach().float().clone()
        with guard(self):
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t / self.world

    def sum(self, *values: float) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self._device())
        with guard(self):
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def _device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def current() -> Group | None:
    """The group torchrun started this process in (``WORLD_SIZE`` > 1); None for a single
    process."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    return Group(int(os.environ.get("RANK", "0")), world,
                 int(os.environ.get("LOCAL_RANK", "0")))


def join(device_type: str | None = None) -> Group | None:
    """This process's group, the default process group initialised on first use: NCCL when
    training on CUDA (each process on ``cuda:LOCAL_RANK``), gloo otherwise; collectives
    time out after :func:`timeout_seconds`. None for a single process."""
    group = current()
    if group is None:
        return None
    if not dist.is_initialized():
        if device_type is None:
            device_type = "cuda" if torch.cuda.is_available() else "cpu"
        backend = "nccl" if device_type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(group.local_rank)
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_seconds()))
    return group


def leave() -> None:
    """End this process's part in the group (at the end of a command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


#: how the learning rate follows the global batch, by optimizer: SGD's step grows with the
#: batch (linear scaling, Goyal et al. 2017); adaptive methods divide by the gradient's
#: size, and their rate follows the square root (Malladi et al. 2022, the SDE of Adam and
#: RMSprop); L-BFGS's line search chooses its own step
SCALING = {"sgd": "linear", "lbfgs": "none"}


def lr_scale(optimizer: str, processes: int) -> tuple[float, str]:
    """The factor the learning rate chosen for one process's batch is multiplied by when
    ``processes`` share each step (a global batch ``processes`` times as large), and the
    rule's name with its source."""
    rule = SCALING.get(optimizer, "sqrt")
    if processes <= 1 or rule == "none":
        return 1.0, "no scaling (L-BFGS's line search sets the step)" if rule == "none" else ""
    if rule == "linear":
        return float(processes), f"linear scaling (Goyal et al. 2017): × {processes}"
    k = processes ** 0.5
    return k, f"square-root scaling (Malladi et al. 2022, adaptive optimizers): × {k:.3g}"
