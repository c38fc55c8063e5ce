"""Auto-repair: choose the plan change that answers a finding, and escalate when the
symptom persists.

The first fix tried is the finding's own ``fix``. When the same symptom comes back, the
escalation for its code is tried next (a further tenfold cut of the learning rate, a
different activation, ...). A change is applicable only if it can be made to a network in
mid-training: model, optimizer, training and regularisation keys; a change to the data or
the loss is left to the user as advice.

Learning rates in a fix are kept to the optimizer's usual range (its record in
``train/optimizers.py``): a cut that would still leave the rate above the range goes to the
optimizer's usual rate instead (Adam at 10 cut tenfold is still 1000 times too fast; Adam
normalises the gradient, so clipping does not slow it either), and a raise above the range
is not tried. A fix for dead ReLUs keeps a rate inside the range: units die of a bad bias or
init as often as of large steps, and a tenfold cut then only slows the repaired network.
A value "auto" in a fix (let the plan's rule choose) changes nothing where the rule chose
already, so it does not count as a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..train import optimizers
from .findings import Finding

__all__ = ["REPAIRABLE", "choose_fix", "keeps_weights", "repairable_symptom"]

# error-level findings that auto-repair acts on (the list)
REPAIRABLE = ("nan_loss", "exploding_gradients", "vanishing_gradients", "dead_relu",
              "loss_divergence", "cannot_overfit_batch")
_APPLICABLE_PREFIXES = ("model.", "optimizer.", "train.", "regularization.")
_NOT_APPLICABLE = ("model.output_activation",)


def repairable_symptom(findings: list[Finding]) -> Finding | None:
    """The first error-level finding that auto-repair acts on."""
    return next((f for f in findings if f.severity == "error" and f.code in REPAIRABLE), None)


def _applicable(fix: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fix.items()
            if k.startswith(_APPLICABLE_PREFIXES) and k not in _NOT_APPLICABLE}


def _escalations(code: str, plan: Any) -> list[dict[str, Any]]:
    lr = plan["optimizer.lr"]
    lower = {"optimizer.lr": lr / 10}
    clip = {"train.grad_clip.kind": "global_norm", "train.grad_clip.max": 1.0}
    return {
        "nan_loss": [{**clip, **lower}, {**clip, "optimizer.lr": lr / 100}],
        "exploding_gradients": [{**clip, **lower}, {**clip, "optimizer.lr": lr / 100}],
        "loss_divergence": [lower, {**clip, "optimizer.lr": lr / 100}],
        "dead_relu": [{"model.activation": "leaky_relu", "model.init": "he_normal", **lower},
                      {"model.activation": "elu", "model.init": "lecun_normal",
                       "model.bias_init": 0.0}],
        "vanishing_gradients": [{"model.activation": "relu", "model.init": "he_normal",
                                 "model.batchnorm": True},
                                {"model.hidden_layers": max(1, plan["model.hidden_layers"] // 2)}
                                if "model.hidden_layers" in plan else {}],
        "cannot_overfit_batch": [{"optimizer.lr": lr * 10}, {"model.init": "he_normal",
                                                             "model.init_scale": 1.0,
                                                             "model.bias_init": 0.0}],
    }.get(code, [])


def _usual_lr(plan: Any) -> tuple[float, float] | None:
    """(top of the usual range, usual rate) of the plan's optimizer; None without a range."""
    spec = optimizers.OPTIMIZERS.get(plan["optimizer.name"]) if "optimizer.name" in plan else None
    if spec is None or spec.lr_range is None:
        return None
    return spec.lr_range[1], spec.lr


def _sane_rate(code: str, fix: dict[str, Any], plan: Any) -> dict[str, Any] | None:
    """``fix`` with its learning rate kept to the optimizer's usual range; None when the
    fix is a raise beyond it."""
    usual = _usual_lr(plan)
    if "optimizer.lr" not in fix or usual is None or "optimizer.lr" not in plan:
        return fix
    high, rate = usual
    new, old = fix["optimizer.lr"], plan["optimizer.lr"]
    if new > old:
        return None if new > high else fix
    if code == "dead_relu" and old <= high:
        return {k: v for k, v in fix.items() if k != "optimizer.lr"}
    return {**fix, "optimizer.lr": rate} if new > high else fix


def _changes(fix: dict[str, Any], plan: Any) -> dict[str, Any]:
    """The keys whose value ``fix`` changes; "auto" changes a value only where the user
    had set it."""
    decisions = getattr(plan, "decisions", {})
    return {k: v for k, v in fix.items()
            if plan[k] != v and not (v == "auto" and k in decisions
                                     and decisions[k].rule != "user")}


def choose_fix(finding: Finding, plan: Any, tried: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first candidate change not tried yet that changes something in ``plan``."""
    candidates = ([finding.fix] if finding.fix else []) + _escalations(finding.code, plan)
    for fix in candidates:
        fix = _sane_rate(finding.code,
                         {k: v for k, v in _applicable(fix).items() if k in plan}, plan)
        if fix and _changes(fix, plan) and fix not in tried:
            return fix
    return None


def keeps_weights(fix: Mapping[str, Any]) -> bool:
    """True when the change leaves the architecture alone, so training can go on from the
    last good weights; otherwise the network is re-initialised."""
    return all(k.startswith(("optimizer.", "train.", "regularization.")) for k in fix)
