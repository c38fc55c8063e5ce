"""The other networks of a deep ensemble (``model.ensemble`` = K > 1), trained after the
first one.

The first network is the doctor's: the pre-flight checks, the live monitors, the repairs of
``--auto-fix`` and the after-training checks all watch it. The other K - 1 networks train
with the plan it ended with (repairs included), each from its own seed (seed + k: initial
weights, order, dropout masks), with the same early stopping on the same validation split.
The run keeps one ``Ensemble`` module (models/ensemble.py) that averages them; each
member's epochs, best epoch and best validation loss go to evaluation.json.
"""

from __future__ import annotations

from typing import Any

import torch

from ..evaluate import MAIN_METRIC
from ..modalities import Inputs, Prepared
from ..models.ensemble import Ensemble, combine_for, ensemble_size, member_plan
from ..plan import Decision, Plan
from ..train import History, make_loss
from ..train import fit as train_fit

__all__ = ["finite_weights", "train_members"]


def _facts(k: int, plan: Any, history: History) -> dict[str, Any]:
    """A member's line in evaluation.json (``best_val_loss`` None: never finite)."""
    return {"member": k + 1, "seed": plan["seed"], "epochs": len(history.epochs),
            "best_epoch": history.best_epoch, "best_val_loss": history.best_val_loss,
            "stop_reason": history.stop_reason}


def finite_weights(model: torch.nn.Module) -> bool:
    """Every floating-point weight and buffer finite (not a diverged network)."""
    return all(bool(torch.isfinite(v).all()) for v in model.state_dict().values()
               if v.is_floating_point())


def train_members(prep: Prepared, inputs: Inputs, plan: Plan, first: torch.nn.Module,
                  history: History, *, progress: bool, should_stop: Any = None
                  ) -> tuple[torch.nn.Module, Plan, list[dict[str, Any]], str | None]:
    """``first`` (trained) and K - 1 more networks of ``plan`` as one ``Ensemble``; the
    plan (its ``model.ensemble`` lowered to the networks kept, when one was left out for
    weights or a validation loss that are not finite, or training was interrupted); the
    members' facts; and a stop reason when training was interrupted (Ctrl-C) before the
    last member (the members finished so far are kept)."""
    k_total = ensemble_size(plan)
    members, facts = [first], [_facts(0, plan, history)]
    task = plan["task"]
    for k in range(1, k_total):
        plan_k = member_plan(plan, k)
        model = prep.modality.build(plan_k, prep.preprocessor, prep.pretrained)
        hist = train_fit(model, plan_k, inputs.train_data, inputs.val_data,
                         loss_fn=make_loss(plan_k["loss.name"]), val_metrics=inputs.val_metrics,
                         main_metric=MAIN_METRIC[task], watchers=[], run_dir=None,
                         progress=f"net {k + 1}/{k_total}" if progress else False,
                         augment=prep.augment, order=prep.order,
                         should_stop=should_stop)
        if hist.stop_reason.startswith("interrupted"):
            return (*_combine(members, plan, k_total), facts,
                    f"interrupted while training ensemble member {k + 1} of {k_total}; "
                    f"the {len(members)} finished network(s) are kept")
        facts.append(_facts(k, plan_k, hist))
        if not finite_weights(model):
            facts[-1]["left_out"] = "its weights are not finite"
        elif facts[-1]["best_val_loss"] is None:  # finite weights, but outputs that are not
            facts[-1]["left_out"] = "no epoch ended with a finite validation loss"
        else:
            members.append(model)
    return (*_combine(members, plan, k_total), facts, None)


def _combine(members: list[torch.nn.Module], plan: Plan, k_total: int
             ) -> tuple[torch.nn.Module, Plan]:
    """The module the run saves, and its plan (``model.ensemble`` = the members kept)."""
    if len(members) < k_total:
        old = plan.decisions["model.ensemble"]
        plan = plan.with_decision("model.ensemble", Decision(
            len(members), f"{old.reason}; {len(members)} of the {k_total} networks were kept",
            old.rule))
    if len(members) == 1:
        return members[0], plan
    model = Ensemble(members, combine_for(plan["loss.name"]))
    model.eval()
    return model, plan
