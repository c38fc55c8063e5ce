"""Configuration rules: choices that are wrong before the first batch is seen.

They read a ``ConfigEvidence``, built from a plan (``config_evidence_from_plan``) or from a
user's own model, loss and optimizer objects (``config_evidence_from_objects``). A field
that could not be read is ``None`` and the rules that need it stay silent. Each rule is
``rule(ev) -> Finding | None``; ``RULES`` is the registry, ``check_config`` runs it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...plan.rules import INIT_FOR_ACTIVATION
from ...plan.schema import Plan
from ...train import optimizers
from ..findings import Finding, make_finding

__all__ = ["ConfigEvidence", "RULES", "check_config", "config_evidence_from_plan",
           "config_evidence_from_objects", "loss_activation_mismatch",
           "init_activation_mismatch", "lr_out_of_range", "dropout_batchnorm_conflict",
           "large_batch", "lr_ranges"]


@dataclass
class ConfigEvidence:
    model: nn.Module  # any module: our TabularMLP or a user's own network
    loss: str | None  # bce | cross_entropy | mse | huber | mae; from objects also bce_probs, nll
    output_activation: str | None  # linear | sigmoid | softmax | tanh | softplus | relu
    #                                (from objects also log_softmax)
    task: str | None  # binary | multiclass | regression
    activation: str | None  # hidden activation, e.g. relu
    init: str | None  # plan init name
    optimizer: str | None
    lr: float | None
    batch_size: int | None
    n_train: int | None
    target_summary: dict | None  # regression: min, max, mean, std


# ---- building the evidence --------------------------------------------------------------------
def config_evidence_from_plan(plan: Plan, model: nn.Module, n_train: int | None,
                              target_summary: dict | None) -> ConfigEvidence:
    return ConfigEvidence(
        model=model, loss=plan["loss.name"], output_activation=plan["model.output_activation"],
        task=plan["task"], activation=plan["model.activation"],
        init=plan["model.init"] if "model.init" in plan else None,  # convnets/RNNs init themselves
        optimizer=plan["optimizer.name"], lr=plan["optimizer.lr"],
        batch_size=plan["train.batch_size"], n_train=n_train, target_summary=target_summary)


# Most specific class first: isinstance also matches subclasses.
_LOSS_CLASSES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.BCEWithLogitsLoss, "bce"), (nn.BCELoss, "bce_probs"),  # BCELoss wants probabilities
    (nn.CrossEntropyLoss, "cross_entropy"), (nn.NLLLoss, "nll"),  # NLL wants log-probabilities
    (nn.MSELoss, "mse"), (nn.HuberLoss, "huber"), (nn.SmoothL1Loss, "huber"), (nn.L1Loss, "mae"),
)
_OUTPUT_CLASSES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Sigmoid, "sigmoid"), (nn.Softmax, "softmax"), (nn.LogSoftmax, "log_softmax"),
    (nn.Tanh, "tanh"), (nn.Softplus, "softplus"), (nn.ReLU, "relu"),
)
_HIDDEN_CLASSES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.ReLU, "relu"), (nn.LeakyReLU, "leaky_relu"), (nn.PReLU, "prelu"), (nn.RReLU, "rrelu"),
    (nn.ELU, "elu"), (nn.SELU, "selu"), (nn.GELU, "gelu"), (nn.Tanh, "tanh"),
    (nn.Sigmoid, "sigmoid"), (nn.SiLU, "silu"), (nn.Mish, "mish"),
)
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_BATCHNORM = nn.modules.batchnorm._BatchNorm


def _name_of(module: nn.Module | None, table: tuple[tuple[type, str], ...]) -> str | None:
    return next((name for cls, name in table if isinstance(module, cls)), None)


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules without children, in registration order."""
    return [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]


def config_evidence_from_objects(model: nn.Module, loss_fn: nn.Module | None,
                                 optimizer: torch.optim.Optimizer | None,
                                 batch_size: int | None = None) -> ConfigEvidence:
    """Evidence for a user's own model. The output activation is read from the model's last
    leaf module ("linear" when it is no activation: a sigmoid applied inside ``forward``
    cannot be seen); the hidden activation is the commonest activation module before it."""
    leaves = [m for _, m in _leaves(model)]
    last = leaves[-1] if leaves else None
    output = _name_of(last, _OUTPUT_CLASSES) or "linear"
    hidden_mods = leaves[:-1] if output != "linear" else leaves
    hidden = Counter(n for n in (_name_of(m, _HIDDEN_CLASSES) for m in hidden_mods) if n)
    lr = optimizer.param_groups[0]["lr"] if optimizer is not None else None
    return ConfigEvidence(
        model=model, loss=_name_of(loss_fn, _LOSS_CLASSES), output_activation=output,
        task=None, activation=hidden.most_common(1)[0][0] if hidden else None, init=None,
        optimizer=type(optimizer).__name__.lower() if optimizer is not None else None,
        lr=float(lr) if lr is not None else None, batch_size=batch_size, n_train=None,
        target_summary=None)


def _output_layer(model: nn.Module) -> str | None:
    leaves = _leaves(model)
    return (leaves[-1][0] or None) if leaves else None


# ---- loss and output activation ---------------------------------------------------------------
_CLASS_FIX = {"binary": {"loss.name": "bce", "model.output_activation": "linear"},
              "multiclass": {"loss.name": "cross_entropy", "model.output_activation": "linear"}}


def _double_squash(ev: ConfigEvidence) -> Finding | None:
    """A sigmoid/softmax output fed to a loss that applies its own (or the wrong kind)."""
    out, loss = ev.output_activation, ev.loss
    wrong = {"bce": ("sigmoid", "softmax"), "cross_entropy": ("sigmoid", "softmax"),
             "nll": ("sigmoid", "softmax")}
    if out not in wrong.get(loss, ()):
        return None
    inside = {"bce": "a sigmoid", "cross_entropy": "a log-softmax",
              "nll": "nothing: it expects log-probabilities"}[loss]
    return make_finding(
        "loss_activation_mismatch", {"loss": loss, "output_activation": out},
        f"The network ends in {out}, and the {loss} loss applies {inside}. The loss then "
        "sees squashed values in a narrow range: its gradients shrink, the network learns "
        "slowly or not at all, and the probabilities it reports are wrong.",
        ["Output raw logits (no activation on the last layer) and keep the loss that applies "
         "the sigmoid/softmax itself (BCEWithLogitsLoss, CrossEntropyLoss): numerically stable.",
         "Apply sigmoid/softmax only when turning outputs into probabilities for prediction.",
         "With NLLLoss, end the network in LogSoftmax instead."],
        {"model.output_activation": "linear"} if loss != "nll" else None,
        layer=_output_layer(ev.model))


def _distance_loss_on_classes(ev: ConfigEvidence) -> Finding | None:
    if ev.task not in ("binary", "multiclass") or ev.loss not in ("mse", "huber", "mae"):
        return None
    return make_finding(
        "loss_activation_mismatch", {"loss": ev.loss, "task": ev.task,
                                     "output_activation": str(ev.output_activation)},
        f"A {ev.loss} loss on class labels treats classes as numbers to approach. Through a "
        "sigmoid/softmax its gradient vanishes exactly when the network is confidently wrong, "
        "so learning stalls; the probabilities it produces are poorly calibrated.",
        ["Use cross-entropy for classes: binary cross-entropy on one logit for two classes, "
         "cross-entropy on one logit per class for more.",
         "Keep the last layer linear; the cross-entropy loss applies the sigmoid/softmax."],
        dict(_CLASS_FIX[ev.task]))


def _class_loss_on_regression(ev: ConfigEvidence) -> Finding | None:
    if ev.task != "regression" or ev.loss not in ("bce", "bce_probs", "cross_entropy", "nll"):
        return None
    return make_finding(
        "loss_activation_mismatch", {"loss": ev.loss, "task": ev.task},
        f"The {ev.loss} loss needs class labels, but the target is a continuous quantity.",
        ["Use mse (or huber/mae when outliers matter) with a linear output."],
        {"loss.name": "mse", "model.output_activation": "linear"})


def _regression_range(ev: ConfigEvidence) -> Finding | None:
    """A bounded or positive-only output that cannot cover the regression target."""
    t, out = ev.target_summary or {}, ev.output_activation
    if ev.task != "regression" or "min" not in t or out not in ("sigmoid", "tanh", "softplus",
                                                                 "relu"):
        return None
    lo, hi = t["min"], t["max"]
    evidence = {"output_activation": out, "target_min": lo, "target_max": hi}
    fix = {"model.output_activation": "linear"}
    if out in ("softplus", "relu"):
        if lo >= 0:
            return None
        return make_finding(
            "loss_activation_mismatch", evidence,
            f"The {out} output is never negative, but the target goes down to {lo:.4g}: "
            "every negative value is predicted wrong, however long the network trains.",
            ["Use a linear output for a target that can be negative; keep softplus for "
             "strictly positive targets."], fix, layer=_output_layer(ev.model))
    bounds = (0.0, 1.0) if out == "sigmoid" else (-1.0, 1.0)
    if bounds[0] <= lo and hi <= bounds[1]:
        return None
    return make_finding(
        "loss_activation_mismatch", evidence,
        f"The {out} output is bounded, so the target's range ({lo:.4g} to {hi:.4g}) was mapped "
        "onto it from the training data: values beyond the range seen in training cannot be "
        "predicted, and values near its ends only with saturated, slow-learning units.",
        ["Use a linear output unless the target has natural bounds (a share, a probability).",
         "If the bounds are real, say so in the data (scale the target into them) and keep "
         f"{out}."], fix, severity="warning", layer=_output_layer(ev.model))


_LOSS_CHECKS = (_double_squash, _distance_loss_on_classes, _class_loss_on_regression,
                _regression_range)


def loss_activation_mismatch(ev: ConfigEvidence) -> Finding | None:
    """The first of several output/loss checks that fires (they rarely co-occur)."""
    if ev.loss is None and ev.output_activation is None:
        return None
    return next((f for f in (check(ev) for check in _LOSS_CHECKS) if f is not None), None)


# ---- initialisation ---------------------------------------------------------------------------
RELU_FAMILY = ("relu", "leaky_relu", "prelu", "rrelu", "gelu", "silu", "mish")
SQUASHING = ("sigmoid", "tanh")


def _init_problem(init: str, act: str) -> tuple[str, str] | None:
    """(severity, why) for a poor pairing, or None."""
    if init == "zeros":
        return "error", ("every weight starts at zero, so all units of a layer compute the "
                         "same thing and receive the same update: the symmetry is never broken")
    if init in ("normal", "uniform"):
        return "warning", ("fixed small random weights ignore the layer's fan-in: the signal "
                           "shrinks layer by layer and gradients vanish in deeper networks")
    variance_keeping = init.startswith("glorot") or init == "lecun_normal"
    if variance_keeping and act in RELU_FAMILY:
        return "warning", (f"{init} keeps the variance for symmetric activations; {act} "
                           "zeroes half the signal, so it halves at every layer")
    if act == "selu" and init != "lecun_normal":
        return "warning", "SELU self-normalises only from LeCun normal weights (variance 1/fan_in)"
    if init.startswith("he") and act in SQUASHING:
        return "warning", (f"{init} doubles the variance to make up for ReLU's zeroed half; "
                           f"{act} has no such half, so its units start saturated")
    return None


def init_activation_mismatch(ev: ConfigEvidence) -> Finding | None:
    """He init for the ReLU family (He et al. 2015), Glorot for sigmoid/tanh/softmax (Glorot
    & Bengio 2010), LeCun for SELU/ELU (LeCun et al. 1998; Klambauer et al. 2017)."""
    if ev.init is None or ev.activation is None:
        return None
    problem = _init_problem(ev.init, ev.activation)
    if problem is None:
        return None
    severity, why = problem
    right = INIT_FOR_ACTIVATION.get(ev.activation)
    return make_finding(
        "init_activation_mismatch", {"init": ev.init, "activation": ev.activation,
                                     "suggested_init": right or "unknown"},
        f"Initialisation {ev.init} with {ev.activation} activations: {why}.",
        ["Match the initialisation to the activation: He for ReLU and its variants, Glorot "
         "for sigmoid/tanh, LeCun normal for SELU/ELU.",
         "Weights should be small but not too small, random, with zero mean and a variance "
         "set by the layer's fan-in."],
        {"model.init": right} if right else None, severity=severity)


# ---- learning rate and batch ------------------------------------------------------------------
def lr_ranges() -> dict[str, tuple[float, float]]:
    """The range in which each optimizer's learning rate usually works, around its usual
    default, from its record (train/optimizers.py). Adaptive methods normalise the step, so
    their range sits lower. An optimizer without a range (L-BFGS) is left out."""
    return {name: spec.lr_range for name, spec in optimizers.OPTIMIZERS.items()
            if spec.lr_range is not None}


def lr_out_of_range(ev: ConfigEvidence, *,
                    ranges: Mapping[str, tuple[float, float]] | None = None) -> Finding | None:
    """A learning rate outside the optimizer's usual range (``ranges``: the records')."""
    ranges = lr_ranges() if ranges is None else ranges
    if ev.lr is None or ev.optimizer not in ranges:
        return None
    low, high = ranges[ev.optimizer]
    if low <= ev.lr <= high:
        return None
    too = "high" if ev.lr > high else "low"
    record = optimizers.OPTIMIZERS.get(ev.optimizer)
    usual = record.lr if record is not None else None
    evidence: dict[str, Any] = {"optimizer": ev.optimizer, "lr": ev.lr, "usual_low": low,
                                "usual_high": high}
    if ev.lr > 0:
        evidence["factor_outside"] = ev.lr / high if too == "high" else low / ev.lr
    if usual is not None:
        evidence["usual_default"] = usual
    return make_finding(
        "lr_out_of_range", evidence,
        f"The learning rate {ev.lr:.3g} is {too} for {ev.optimizer}, which usually works "
        f"between {low:g} and {high:g}. " + (
            "Steps this large overshoot: the loss oscillates, diverges or becomes NaN."
            if too == "high" else
            "Steps this small make progress very slowly and can look like a plateau."),
        [f"Start from the optimizer's usual learning rate ({usual or low:g}).",
         "Run the learning-rate finder (nnrecipe lr-find) and pick a rate a little below "
         "where the loss falls fastest.",
         "If a large rate is intended, add warm-up and gradient clipping."],
        {"optimizer.lr": usual} if usual is not None else None)


def dropout_batchnorm_conflict(ev: ConfigEvidence) -> Finding | None:
    """A Dropout (p > 0) registered before a BatchNorm layer (Li et al., 2019). Registration
    order stands in for the order of the forward pass."""
    leaves = _leaves(ev.model)
    bn_at = [i for i, (_, m) in enumerate(leaves) if isinstance(m, _BATCHNORM)]
    early = [i for i, (_, m) in enumerate(leaves)
             if isinstance(m, _DROPOUT) and m.p > 0 and bn_at and i < bn_at[-1]]
    if not early:
        return None
    name, drop = leaves[early[0]]
    bn = leaves[next(j for j in bn_at if j > early[0])][0]
    return make_finding(
        "dropout_batchnorm_conflict", {"dropout": name, "dropout_p": drop.p, "batchnorm": bn,
                                       "dropouts_before_batchnorm": len(early)},
        f"Dropout '{name}' (p={drop.p:g}) comes before BatchNorm '{bn}'. In training the "
        "BatchNorm layer learns the variance of dropped-out activations; at evaluation "
        "dropout is off, the variance shifts, and the statistics it learned no longer fit "
        "(the 'variance shift' of Li et al., 2019): validation scores suffer.",
        ["Put dropout after the last BatchNorm layer only (before the output layer).",
         "Or keep one of the two: BatchNorm alone already regularises a little."],
        None, layer=name)


def large_batch(ev: ConfigEvidence, *, max_batch: int = 512, max_share: float = 0.25,
                small_batch: int = 32) -> Finding | None:
    """Above ``max_batch`` rows, or (above ``small_batch``) more than ``max_share`` of the
    training rows: fewer than four noisy updates per epoch, close to full-batch descent."""
    bs, n = ev.batch_size, ev.n_train
    record = optimizers.OPTIMIZERS.get(ev.optimizer or "")
    if bs is None or (record is not None and record.full_batch):  # L-BFGS: full-batch by design
        return None
    too_big = bs > max_batch
    too_much = n is not None and bs > small_batch and bs > max_share * n
    if not (too_big or too_much):
        return None
    evidence: dict[str, Any] = {"batch_size": bs, "max_batch": max_batch}
    if n is not None:
        evidence.update(train_rows=n, updates_per_epoch=-(-n // bs), batch_share=bs / n)
    return make_finding(
        "large_batch", evidence,
        f"Batches of {bs} rows" + (f" ({bs / n:.0%} of the {n} training rows)" if n else "")
        + " average away the gradient noise that helps a network settle in a minimum that "
        "generalises; large batches train faster per epoch but tend to score worse on new "
        "data and can be unstable.",
        ["Use small batches: 32 or fewer generalise better and train stably.",
         "If a large batch is needed for speed, scale the learning rate with it and warm up."],
        {"train.batch_size": small_batch})


Rule = Callable[[ConfigEvidence], Finding | None]

RULES: list[Rule] = [
    loss_activation_mismatch,
    init_activation_mismatch,
    lr_out_of_range,
    dropout_batchnorm_conflict,
    large_batch,
]


def check_config(ev: ConfigEvidence) -> list[Finding]:
    """Every configuration finding, in registry order."""
    return [f for f in (rule(ev) for rule in RULES) if f is not None]
