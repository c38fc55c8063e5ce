"""Learning-rate schedules: thin wrappers over ``torch.optim.lr_scheduler``.

Epoch ``t`` (0-based) of an epoch-wise schedule trains at ``lr_at(spec, lr0, t)``:

    none           lr0
    step           lr0 · gamma^floor(t / step_size)          (StepLR; "halve every few epochs")
    exponential    lr0 · e^(−k·t)                            (LambdaLR; ExponentialLR is gamma^t)
    inverse_time   lr0 / (1 + k·t)                           (LambdaLR; "1/t decay")
    cosine         min_lr + (lr0 − min_lr)·(1 + cos(π·t/T))/2, T = epochs − warmup_epochs
                   (CosineAnnealingLR's closed form)
    plateau        lr × factor after more than ``patience`` epochs without a better val_loss
                   (ReduceLROnPlateau: with patience 5 the 6th bad epoch in a row cuts the LR)
    one_cycle      OneCycleLR over epochs × steps_per_epoch batches, stepped every batch; the peak
                   is lr0 × max_lr_mult. The default 1.0 follows fastai: the planned (LR-finder)
                   LR *is* the peak; the cycle starts at peak/25 and ends at peak/25e4 (torch's
                   defaults); momentum/beta1 cycles 0.95 → 0.85 → 0.95 when the optimizer has
                   momentum (SGD/RMSprop with momentum > 0, the Adam family), else it is untouched.

Warmup (``warmup_epochs = W > 0``, any schedule but one_cycle, which warms up itself): LinearLR
ramps from lr0 × WARMUP_START_FACTOR at epoch 0 linearly towards lr0 (epoch t < W trains at
lr0 · (0.1 + 0.9·t/W)); epoch W trains at lr0 and the schedule runs on from its own t = 0.

Each schedule is one ``ScheduleKind`` record in ``SCHEDULE_KINDS`` (at the end of this file):
how to build it and its closed form. The plan's ``schedule.name`` choices, ``make_schedule``
and ``lr_at`` read that registry, so adding a schedule is adding one record (its settings,
if it needs new ones, go in ``ScheduleSpec`` and the plan's keys).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch.optim import lr_scheduler as sched

__all__ = ["SCHEDULES", "SCHEDULE_KINDS", "Schedule", "ScheduleKind", "ScheduleSpec", "lr_at",
           "make_schedule"]

WARMUP_START_FACTOR = 0.1  # warmup starts at lr0 / 10


@dataclass(frozen=True)
class ScheduleSpec:
    name: str = "none"
    step_size: int = 10        # step: epochs between cuts
    gamma: float = 0.5         # step: factor per cut (0.5 = halve)
    k: float = 0.05            # exponential / inverse_time: decay rate per epoch
    warmup_epochs: int = 0     # linear warmup from lr0 × WARMUP_START_FACTOR to lr0
    min_lr: float = 0.0        # cosine floor (also the plateau floor)
    patience: int = 5          # plateau: bad epochs tolerated before a cut
    factor: float = 0.5        # plateau: factor per cut
    max_lr_mult: float = 1.0   # one_cycle: peak = lr0 × max_lr_mult (fastai: the lr is the peak)

    def __post_init__(self) -> None:
        kind = SCHEDULE_KINDS.get(self.name)
        checks = {
            f"name must be one of {tuple(SCHEDULE_KINDS)}": kind is not None,
            "step_size must be >= 1": self.step_size >= 1,
            "gamma must be in (0, 1]": 0 < self.gamma <= 1,
            "k must be >= 0": self.k >= 0,
            "warmup_epochs must be >= 0": self.warmup_epochs >= 0,
            "min_lr must be >= 0": self.min_lr >= 0,
            "patience must be >= 0": self.patience >= 0,
            "factor must be in (0, 1)": 0 < self.factor < 1,
            "max_lr_mult must be > 0": self.max_lr_mult > 0,
            f"{self.name} warms up by itself: warmup_epochs must be 0":
                not (kind is not None and kind.warms_up_itself and self.warmup_epochs),
        }
        bad = [msg for msg, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid learning-rate schedule {self!r}: " + "; ".join(bad))


def lr_at(spec: ScheduleSpec, lr0: float, epoch: int, *, epochs: int | None = None) -> float:
    """The LR epoch ``epoch`` (0-based) trains at, in closed form. ``epochs`` (the total) is
    needed by cosine only. one_cycle (per batch) and plateau (data-driven) have no closed form."""
    w = spec.warmup_epochs
    if epoch < w:
        return lr0 * (WARMUP_START_FACTOR + (1 - WARMUP_START_FACTOR) * epoch / w)
    closed_form = SCHEDULE_KINDS[spec.name].closed_form
    if closed_form is None:
        raise ValueError(f"the {spec.name} schedule has no epoch-wise closed form")
    return closed_form(spec, lr0, epoch - w, epochs)


class Schedule:
    """One schedule for one optimizer. The loop calls ``step_batch()`` after every
    ``optimizer.step()`` and ``step_epoch(val_loss)`` once after each epoch's validation;
    each is a no-op for the schedules that step on the other clock."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: Any, *, per_batch: bool,
                 plateau_warmup: sched.LinearLR | None = None, warmup_epochs: int = 0,
                 total_steps: int | None = None) -> None:
        self.optimizer, self.scheduler, self.per_batch = optimizer, scheduler, per_batch
        self.plateau_warmup, self.warmup_epochs = plateau_warmup, warmup_epochs
        self.total_steps = total_steps
        self.epoch = 0  # epochs completed (step_epoch calls)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def step_batch(self) -> None:
        # OneCycleLR raises past total_steps; hold the final LR instead of crashing training
        if self.per_batch and self.scheduler.last_epoch < self.total_steps - 1:
            self.scheduler.step()

    def step_epoch(self, val_loss: float | None = None) -> None:
        self.epoch += 1
        if self.per_batch:
            return
        if self.plateau_warmup is not None and self.epoch <= self.warmup_epochs:
            self.plateau_warmup.step()
        elif isinstance(self.scheduler, sched.ReduceLROnPlateau):
            if val_loss is None:
                raise ValueError("the plateau schedule needs a validation loss every epoch")
            self.scheduler.step(val_loss)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors/numbers only: safe for ``torch.load(..., weights_only=True)``."""
        return {"epoch": self.epoch, "scheduler": self.scheduler.state_dict(),
                "plateau_warmup": (self.plateau_warmup.state_dict()
                                   if self.plateau_warmup is not None else None),
                "lrs": [g["lr"] for g in self.optimizer.param_groups]}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restores the schedule *and* the optimizer's current LRs, whatever the order the
        optimizer's own state is loaded in."""
        self.epoch = d["epoch"]
        self.scheduler.load_state_dict(d["scheduler"])
        if self.plateau_warmup is not None:
            self.plateau_warmup.load_state_dict(d["plateau_warmup"])
        for g, lr in zip(self.optimizer.param_groups, d["lrs"], strict=True):
            g["lr"] = lr


def make_schedule(spec: ScheduleSpec, optimizer: torch.optim.Optimizer, *, epochs: int,
                  steps_per_epoch: int) -> Schedule | None:
    """The schedule for ``optimizer`` (whose current LR is lr0), or None when the LR stays
    constant ("none" without warmup). Build it right after the optimizer, before training."""
    return SCHEDULE_KINDS[spec.name].build(spec, optimizer, epochs, steps_per_epoch)


# ---- the records ----------------------------------------------------------------------------
Build = Callable[[ScheduleSpec, torch.optim.Optimizer, int, int], Schedule | None]
ClosedForm = Callable[[ScheduleSpec, float, int, int | None], float]


@dataclass(frozen=True)
class ScheduleKind:
    """One schedule the plan may name (``schedule.name``).

    ``build(spec, optimizer, epochs, steps_per_epoch)`` makes the schedule (None: the LR
    stays constant). ``closed_form(spec, lr0, t, epochs)`` is the LR at epoch ``t`` counted
    after the warmup (None: there is no closed form). ``warms_up_itself``: warmup_epochs
    must be 0.
    """

    name: str
    build: Build
    closed_form: ClosedForm | None = None
    warms_up_itself: bool = False


def _warmup(spec: ScheduleSpec, optimizer: torch.optim.Optimizer) -> sched.LinearLR | None:
    if not spec.warmup_epochs:
        return None
    return sched.LinearLR(optimizer, start_factor=WARMUP_START_FACTOR, end_factor=1.0,
                          total_iters=spec.warmup_epochs)


def _epoch_wise(scheduler: Callable[[ScheduleSpec, torch.optim.Optimizer, int], Any]) -> Build:
    """A build for a torch scheduler stepped once an epoch, after the warmup if any."""
    def build(spec, optimizer, epochs, steps_per_epoch):
        warmup = _warmup(spec, optimizer)  # first: it sets the LR the next one starts from
        main = scheduler(spec, optimizer, epochs)
        if warmup is not None:
            main = sched.SequentialLR(optimizer, [warmup, main], milestones=[spec.warmup_epochs])
        return Schedule(optimizer, main, per_batch=False)
    return build


def _by_factor(factor: Callable[[ScheduleSpec], Callable[[int], float]]
               ) -> tuple[Build, ClosedForm]:
    """The build (a LambdaLR) and the closed form of a schedule that multiplies lr0 by
    ``factor(spec)(t)`` at epoch t."""
    build = _epoch_wise(lambda spec, optimizer, epochs: sched.LambdaLR(optimizer, factor(spec)))
    return build, lambda spec, lr0, t, epochs: lr0 * factor(spec)(t)


def _constant(spec: ScheduleSpec) -> Callable[[int], float]:
    return lambda t: 1.0


def _step(spec: ScheduleSpec) -> Callable[[int], float]:
    return lambda t: spec.gamma ** (t // spec.step_size)


def _exponential(spec: ScheduleSpec) -> Callable[[int], float]:
    return lambda t: math.exp(-spec.k * t)


def _inverse_time(spec: ScheduleSpec) -> Callable[[int], float]:
    return lambda t: 1.0 / (1.0 + spec.k * t)


_keep, _keep_at = _by_factor(_constant)


def _none(spec, optimizer, epochs, steps_per_epoch) -> Schedule | None:
    """No schedule, unless there is a warmup: then the LR stays at lr0 after it."""
    return _keep(spec, optimizer, epochs, steps_per_epoch) if spec.warmup_epochs else None


def _step_lr(spec: ScheduleSpec, optimizer: torch.optim.Optimizer, epochs: int) -> Any:
    return sched.StepLR(optimizer, step_size=spec.step_size, gamma=spec.gamma)


def _cosine_t_max(spec: ScheduleSpec, epochs: int) -> int:
    return max(1, epochs - spec.warmup_epochs)


def _cosine_lr(spec: ScheduleSpec, optimizer: torch.optim.Optimizer, epochs: int) -> Any:
    return sched.CosineAnnealingLR(optimizer, T_max=_cosine_t_max(spec, epochs),
                                   eta_min=spec.min_lr)


def _cosine_at(spec: ScheduleSpec, lr0: float, t: int, epochs: int | None) -> float:
    if epochs is None:
        raise ValueError("lr_at for cosine needs epochs=")
    cos = (1 + math.cos(math.pi * t / _cosine_t_max(spec, epochs))) / 2
    return spec.min_lr + (lr0 - spec.min_lr) * cos


def _plateau(spec, optimizer, epochs, steps_per_epoch) -> Schedule:
    warmup = _warmup(spec, optimizer)
    plateau = sched.ReduceLROnPlateau(optimizer, mode="min", factor=spec.factor,
                                      patience=spec.patience, min_lr=spec.min_lr)
    return Schedule(optimizer, plateau, per_batch=False, plateau_warmup=warmup,
                    warmup_epochs=spec.warmup_epochs)


def _one_cycle(spec, optimizer, epochs, steps_per_epoch) -> Schedule:
    total_steps = max(1, epochs * steps_per_epoch)
    defaults = optimizer.defaults
    has_momentum = "betas" in defaults or defaults.get("momentum", 0) > 0
    peak = [g["lr"] * spec.max_lr_mult for g in optimizer.param_groups]
    one = sched.OneCycleLR(optimizer, max_lr=peak, total_steps=total_steps,
                           cycle_momentum=has_momentum)
    return Schedule(optimizer, one, per_batch=True, total_steps=total_steps)


# The order is the order of the plan's choices.
_RECORDS = (
    ScheduleKind("none", _none, _keep_at),
    ScheduleKind("step", _epoch_wise(_step_lr), _by_factor(_step)[1]),
    ScheduleKind("exponential", *_by_factor(_exponential)),
    ScheduleKind("inverse_time", *_by_factor(_inverse_time)),
    ScheduleKind("one_cycle", _one_cycle, warms_up_itself=True),
    ScheduleKind("cosine", _epoch_wise(_cosine_lr), _cosine_at),
    ScheduleKind("plateau", _plateau),
)

SCHEDULE_KINDS: Mapping[str, ScheduleKind] = MappingProxyType({r.name: r for r in _RECORDS})
SCHEDULES = tuple(SCHEDULE_KINDS)  # the names, in order (SCHEDULE_KINDS is the registry)
