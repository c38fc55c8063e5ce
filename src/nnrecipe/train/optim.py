"""Optimizers from the plan, with the usual defaults of each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ..plan import Plan

__all__ = ["make_optimizer", "parameter_groups", "LBFGS_HISTORY"]

LBFGS_HISTORY = 100  # curvature pairs L-BFGS keeps (PyTorch's default)


def make_optimizer(plan: Plan, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    name, lr, wd = plan["optimizer.name"], plan["optimizer.lr"], plan["optimizer.weight_decay"]
    betas = tuple(plan["optimizer.betas"])
    o = torch.optim
    if name == "sgd":
        return o.SGD(params, lr=lr, momentum=plan["optimizer.momentum"],
                     nesterov=plan["optimizer.nesterov"], weight_decay=wd)
    if name == "rmsprop":
        return o.RMSprop(params, lr=lr, momentum=plan["optimizer.momentum"], weight_decay=wd)
    if name in ("adam", "adamw", "nadam", "adamax"):
        cls = {"adam": o.Adam, "adamw": o.AdamW, "nadam": o.NAdam, "adamax": o.Adamax}[name]
        return cls(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "lbfgs":  # full batch; the loop passes a closure to step()
        return o.LBFGS(params, lr=lr, history_size=LBFGS_HISTORY, line_search_fn="strong_wolfe")
    cls = {"adagrad": o.Adagrad, "adadelta": o.Adadelta}[name]
    return cls(params, lr=lr, weight_decay=wd)


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
