"""A deep ensemble: K networks of one plan, trained from different seeds, whose predictions
are averaged (Lakshminarayanan et al. 2017). It is one ``nn.Module`` with the member's own
output, so predict, evaluate, export and the doctor's after-training checks read it as they
read a single network.

How the members' outputs are averaged follows the loss, so that the average is taken over
what each member predicts:

- ``cross_entropy`` (logits, softmax in the loss): the mean of the members' class
  probabilities, returned as logits (the log of that mean; softmax gives the mean back);
- ``bce`` (logits, sigmoid in the loss): the mean probability, returned as its logit;
- anything else (regression values, probabilities from a sigmoid or softmax output): the
  plain mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..plan.schema import Decision, Plan

__all__ = ["Ensemble", "combine_for", "ensemble_size", "member_plan", "with_members"]


def combine_for(loss: str) -> str:
    """How an ensemble trained with ``loss`` averages its members' outputs."""
    return {"cross_entropy": "softmax", "bce": "sigmoid"}.get(loss, "mean")


class Ensemble(nn.Module):
    """``members`` averaged as ``combine`` says (``combine_for``)."""

    def __init__(self, members: Sequence[nn.Module], combine: str):
        super().__init__()
        if combine not in ("softmax", "sigmoid", "mean"):
            raise ValueError(f"combine must be softmax, sigmoid or mean, not {combine!r}")
        self.members = nn.ModuleList(members)
        self.combine = combine

    def forward(self, *args: Any) -> torch.Tensor:
        first = self.members[0](*args)
        # in float64: the average does not add rounding of its own, so a sample's output
        # does not depend on the batch it came in
        outs = torch.stack([first.double()] + [m(*args).double() for m in self.members[1:]])
        log_k = math.log(len(self.members))
        if self.combine == "softmax":  # log of the mean softmax: logits of the mean
            out = torch.logsumexp(torch.log_softmax(outs, dim=-1), dim=0) - log_k
        elif self.combine == "sigmoid":  # logit of the mean sigmoid, computed in log space
            log_p = torch.logsumexp(nn.functional.logsigmoid(outs), dim=0) - log_k
            log_q = torch.logsumexp(nn.functional.logsigmoid(-outs), dim=0) - log_k
            out = log_p - log_q
        else:
            out = outs.mean(dim=0)
        return out.to(first.dtype)


def ensemble_size(plan: Plan) -> int:
    """K, the plan's ``model.ensemble`` (1 for the kinds of data without the key)."""
    return int(plan["model.ensemble"]) if "model.ensemble" in plan else 1


def member_plan(plan: Plan, k: int) -> Plan:
    """The plan of member ``k`` (0 is the first, the doctor's network): the same plan with
    seed + k, so each member draws its own initial weights, order and dropout masks."""
    if k == 0:
        return plan
    seed = plan["seed"] + k
    return plan.with_decision("seed", Decision(seed, f"ensemble member {k + 1}: seed {seed}",
                                               "model.ensemble_member"))


def with_members(plan: Plan, build: Callable[[Plan], nn.Module]) -> nn.Module:
    """The network a saved run's weights load into: one network, or an ``Ensemble`` of
    ``model.ensemble`` networks built by ``build(plan)`` from each member's plan."""
    k = ensemble_size(plan)
    if k == 1:
        return build(plan)
    return Ensemble([build(member_plan(plan, i)) for i in range(k)],
                    combine_for(plan["loss.name"]))
