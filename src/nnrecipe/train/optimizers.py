"""Every optimizer the plan may name, one record each.

A record says everything the rest of the package needs to know about one optimizer: how
to build it, its default learning rate and why, the learning-rate range the doctor accepts,
its momentum and betas defaults, and whether the tuner may pick it. The plan's choices and
defaults (plan/schema.py, plan/rules.py), ``make_optimizer`` (train/optim.py), the doctor's
learning-rate check (doctor/rules/config.py) and the tuner's choices (tune/search.py) all
read ``OPTIMIZERS``; they look it up when they run, never copy it at import.

To add an optimizer, add one ``OptimizerSpec`` to ``_RECORDS`` below. Its name is what
``--set optimizer.name=...`` takes; for the doctor to recognise a user's own optimizer
object, the name should be the torch class's name in lower case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

__all__ = ["OptimizerSpec", "OPTIMIZERS", "LBFGS_HISTORY"]

LBFGS_HISTORY = 100  # curvature pairs L-BFGS keeps (PyTorch's default)


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer.

    ``make`` is the torch class, or any function called like one: ``make(params, lr=...,
    ...)``. It receives ``lr``, then ``momentum`` when ``momentum`` is not None, ``nesterov``
    when ``nesterov`` is true, ``betas`` when ``betas`` is not None, ``weight_decay`` when
    ``weight_decay`` is true, and finally ``options`` as they are.
    """

    name: str
    make: Callable[..., torch.optim.Optimizer]
    lr: float  # the plan's default learning rate
    lr_reason: str  # why that rate, naming the source where there is one
    lr_range: tuple[float, float] | None  # (low, high) the doctor accepts; None: no check
    lr_range_reason: str
    momentum: float | None = None  # default momentum; None: the optimizer takes none
    momentum_reason: str = ""
    betas: tuple[float, float] | None = None  # default betas; None: the optimizer takes none
    betas_reason: str = ""
    nesterov: bool = False  # takes optimizer.nesterov
    weight_decay: bool = True  # takes optimizer.weight_decay
    tune_rank: int | None = None  # its place among the tuner's choices (1: first);
    #                               None: the tuner never picks it
    full_batch: bool = False  # needs every row in one batch and a closure for step()
    #                          (L-BFGS); its line search sets the step, so no LR range test
    options: Mapping[str, Any] = field(default_factory=dict)  # fixed extra keyword arguments


_ADAM_BETAS = (0.9, 0.999)

# The order is the order of the plan's choices (tune_rank orders the tuner's).
_RECORDS = (
    OptimizerSpec(
        "sgd", torch.optim.SGD, 0.01, "Keras's default for SGD",
        (1e-4, 1.0), "raw gradient steps: a hundredth to a hundred times 0.01",
        momentum=0.9, momentum_reason="SGD with momentum 0.9 damps oscillation",
        nesterov=True, tune_rank=5),
    OptimizerSpec(
        "adam", torch.optim.Adam, 1e-3,
        "Kingma & Ba (2015) suggest 0.001; PyTorch's and Keras's default",
        (1e-5, 1e-2), "adaptive steps are already scaled: a hundredth to ten times 0.001",
        betas=_ADAM_BETAS, betas_reason="Adam's defaults", tune_rank=1),
    OptimizerSpec(
        "adamw", torch.optim.AdamW, 1e-3, "PyTorch's default, Adam's own rate",
        (1e-5, 1e-2), "as for Adam: the decoupled weight decay does not change the step",
        betas=_ADAM_BETAS, betas_reason="Adam's defaults"),
    OptimizerSpec(
        "nadam", torch.optim.NAdam, 2e-3, "PyTorch's default for NAdam",
        (1e-5, 1e-2), "as for Adam: Nesterov momentum does not change the step's scale",
        betas=_ADAM_BETAS, betas_reason="Adam's defaults", tune_rank=2),
    OptimizerSpec(
        "adamax", torch.optim.Adamax, 2e-3,
        "Kingma & Ba (2015) suggest 0.002 for AdaMax; PyTorch's default",
        (1e-5, 2e-2), "as for Adam, with a top twice as high like its default",
        betas=_ADAM_BETAS, betas_reason="Adam's defaults", tune_rank=3),
    OptimizerSpec(
        "rmsprop", torch.optim.RMSprop, 1e-3, "Keras's default for RMSprop",
        (1e-5, 1e-2), "adaptive like Adam, so the same range",
        momentum=0.0, momentum_reason="plain RMSprop", tune_rank=4),
    OptimizerSpec(
        "adagrad", torch.optim.Adagrad, 0.01, "PyTorch's default for Adagrad",
        (1e-3, 1.0), "its steps shrink as squared gradients add up, so a larger start "
        "still works: a tenth to a hundred times 0.01"),
    OptimizerSpec(
        "adadelta", torch.optim.Adadelta, 1.0,
        "Zeiler (2012) gives Adadelta no learning rate, and 1.0 runs it as published; "
        "PyTorch's default",
        (0.1, 10.0), "the rate only rescales Adadelta's own step: a tenth to ten times 1.0"),
    OptimizerSpec(
        "lbfgs", torch.optim.LBFGS, 1.0,
        "a full quasi-Newton step, which the line search then adjusts; PyTorch's default",
        None, "the strong-Wolfe line search chooses the step: no range to check",
        weight_decay=False, full_batch=True,
        options=MappingProxyType({"history_size": LBFGS_HISTORY,
                                  "line_search_fn": "strong_wolfe"})),
)

OPTIMIZERS: Mapping[str, OptimizerSpec] = MappingProxyType({r.name: r for r in _RECORDS})
