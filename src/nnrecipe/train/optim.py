"""Optimizers from the plan, built from their records in train/optimizers.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from . import optimizers

if TYPE_CHECKING:  # train/ never imports plan/ at run time: plan/ reads our records
    from ..plan.schema import Plan

__all__ = ["make_optimizer", "parameter_groups"]


def make_optimizer(plan: Plan, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer ``optimizer.name`` names, with the plan's settings that it takes."""
    spec = optimizers.OPTIMIZERS[plan["optimizer.name"]]
    return spec.make(params, **_settings(spec, plan))


def _settings(spec: optimizers.OptimizerSpec, plan: Plan) -> dict[str, Any]:
    """The keyword arguments for ``spec.make``: the plan's values for what it takes."""
    kwargs: dict[str, Any] = {"lr": plan["optimizer.lr"]}
    if spec.momentum is not None:
        kwargs["momentum"] = plan["optimizer.momentum"]
    if spec.nesterov:
        kwargs["nesterov"] = plan["optimizer.nesterov"]
    if spec.betas is not None:
        kwargs["betas"] = tuple(plan["optimizer.betas"])
    if spec.weight_decay:
        kwargs["weight_decay"] = plan["optimizer.weight_decay"]
    return {**kwargs, **spec.options}


def parameter_groups(model: torch.nn.Module, plan: Plan) -> Any:
    """Discriminative learning rates (transfer learning): the pretrained blocks
    (``model.blocks[:transfer.keep_blocks]``) at ``optimizer.lr`` × ``transfer.backbone_lr``,
    everything else (new blocks, the head) at ``optimizer.lr``. Plain ``model.parameters()``
    when the plan has no such factor."""
    factor = plan["transfer.backbone_lr"] if "transfer.backbone_lr" in plan else 1.0
    blocks = getattr(model, "blocks", None)
    if factor == 1.0 or blocks is None:
        return model.parameters()
    backbone = [p for b in blocks[:plan["transfer.keep_blocks"]] for p in b.parameters()]
    ids = {id(p) for p in backbone}
    rest = [p for p in model.parameters() if id(p) not in ids]
    # the head's group first: the learning rate logged each epoch is group 0's
    return [{"params": rest}, {"params": backbone, "lr": plan["optimizer.lr"] * factor}]
