"""The advisor: rules that choose each plan value from the data profile, with a reason.

Each rule is a small function ``rule(ctx) -> Decision``; the registry ``RULES`` lists them
in the order they run (later rules read earlier decisions through ``ctx``). A value the user
set wins over the rule, and the plan says so. The rules choose defaults; they don't forbid
experiments: any valid value may be set.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..data.preprocess import categorical_encoding, embedding_dim
from ..data.profile import DataProfile
from ..errors import PlanError
from ..train import devices, distributed, optimizers, schedules, streams
from .schema import Decision, Plan, validate_overrides
from .sizing import MAX_PARAMETERS_PER_VALUE, WARN_PARAMETERS_PER_VALUE

__all__ = ["make_plan", "add_parameter_count", "RULES", "INIT_FOR_ACTIVATION",
           "ensemble_rule", "patience_rule"]

INIT_FOR_ACTIVATION = {
    "relu": "he_normal", "leaky_relu": "he_normal", "prelu": "he_normal", "rrelu": "he_normal",
    "gelu": "he_normal", "elu": "lecun_normal", "selu": "lecun_normal",
    "tanh": "glorot_uniform", "sigmoid": "glorot_uniform",
}


def _optimizers() -> Mapping[str, Any]:
    """The optimizer records (train/optimizers.py), by name."""
    return optimizers.OPTIMIZERS  # looked up when used: a test may add a record


def _schedule_kinds() -> Mapping[str, Any]:
    """The schedule records (train/schedules.py), by name."""
    return schedules.SCHEDULE_KINDS


@dataclass
class Ctx:
    profile: DataProfile
    n_train: int
    decisions: dict[str, Decision] = field(default_factory=dict)
    derived: dict[str, Decision] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        d = self.decisions.get(key) or self.derived[key]
        return d.value

    @property
    def task(self) -> str:
        return self.profile.task


Rule = Callable[[Ctx], Decision]


# ---- data -----------------------------------------------------------------------------------
def scale_rule(ctx: Ctx) -> Decision:
    return Decision("standard", "inputs centred at 0 with unit variance keep the loss surface "
                    "well conditioned, so one learning rate suits every weight", "data.zero_center")


def drop_rule(ctx: Ctx) -> Decision:
    p = ctx.profile
    drop = {c: "constant: carries no information" for c in p.constant_columns}
    drop.update({c: "id-like: unique per row, it can only be memorised" for c in p.id_like_columns
                 if c not in drop})
    drop.update({c: "free text: the tabular network does not read text" for c in p.text_columns
                 if c not in drop})
    reason = (f"dropping {len(drop)} column(s): " + "; ".join(f"{c} ({r})" for c, r in drop.items())
              if drop else "every column is usable")
    return Decision(drop, reason, "data.drop_unusable")


def impute_rule(ctx: Ctx) -> Decision:
    p = ctx.profile
    gaps = {c: s["missing_share"] for c, s in p.columns.items()
            if c != p.target and c not in ctx["data.drop"] and s["missing_share"] > 0}
    if not gaps and not p.dropped_target_missing:
        return Decision({}, "no missing values", "data.impute")
    parts = [f"{c} ({share:.0%} missing)" for c, share in gaps.items()]
    reason = ("numeric gaps get the training median plus a 0/1 'was missing' column, "
              "categorical gaps their own level: " + ", ".join(parts)) if gaps else ""
    if p.dropped_target_missing:
        reason += ("; " if reason else "") + (f"{p.dropped_target_missing} row(s) without a "
                                              "target value were left out")
    return Decision({c: round(v, 4) for c, v in gaps.items()}, reason, "data.impute")


def inputs_rule(ctx: Ctx) -> Decision:
    """Width of the network's input, estimated from the profile as the preprocessor will
    encode it (the exact count comes from the fitted preprocessor)."""
    n, parts = 0, {"numeric": 0, "onehot": 0, "embedding": 0}
    for col, kind in ctx.profile.feature_kinds.items():
        if col in ctx["data.drop"]:
            continue
        stats = ctx.profile.columns[col]
        extra = 1 if stats["missing_share"] > 0 else 0
        if kind in ("numeric", "boolean"):
            k = 1 + extra
            parts["numeric"] += k
        elif kind == "datetime":
            k = 4 + extra
            parts["numeric"] += k
        else:
            levels = stats["distinct"] + extra
            if categorical_encoding(levels) == "onehot":
                k = levels
                parts["onehot"] += k
            else:
                k = embedding_dim(levels)
                parts["embedding"] += k
        n += k
    return Decision(n, f"{parts['numeric']} numeric, {parts['onehot']} one-hot and "
                    f"{parts['embedding']} embedding inputs", "data.encode")


# ---- task, output and loss ------------------------------------------------------------------
def task_rule(ctx: Ctx) -> Decision:
    return Decision(ctx.task, ctx.profile.task_reason, "task.from_target")


def loss_rule(ctx: Ctx) -> Decision:
    name = {"binary": "bce", "multiclass": "cross_entropy", "regression": "mse"}[ctx.task]
    reason = {
        "bce": "binary target: one logit with binary cross-entropy on logits (the sigmoid "
               "inside the loss is numerically stable)",
        "cross_entropy": "multiclass target: one logit per class with cross-entropy on integer "
                         "labels (sparse categorical cross-entropy)",
        "mse": "regression: mean squared error",
    }[name]
    return Decision(name, reason, f"loss.{ctx.task}")


def output_activation_rule(ctx: Ctx) -> Decision:
    loss = ctx["loss.name"]
    if ctx.task != "regression":
        if loss in ("bce", "cross_entropy"):
            return Decision("linear", f"the network outputs logits; {loss} applies the "
                            f"{'sigmoid' if loss == 'bce' else 'softmax'} itself",
                            "output.logits_for_ce")
        act = "sigmoid" if ctx.task == "binary" else "softmax"
        return Decision(act, f"{loss} on class targets compares probabilities, so the output "
                        f"goes through {act}", "output.probabilities")
    t = ctx.profile.target_summary
    if t["min"] >= 0 and t["max"] <= 1:
        return Decision("sigmoid", f"the target lies in [0, 1] (min {t['min']:.3g}, max "
                        f"{t['max']:.3g}): a sigmoid output cannot leave that range",
                        "output.bounded")
    if t["min"] > 0:
        return Decision("softplus", f"the target is strictly positive (min {t['min']:.3g}): a "
                        "softplus output is always > 0", "output.positive")
    return Decision("linear", "unbounded real-valued target: linear output", "output.linear")


def n_outputs_rule(ctx: Ctx) -> Decision:
    if ctx.task == "regression":
        return Decision(1, "one value per row", "output.units")
    n_classes = len(ctx.profile.target_summary["classes"])
    if ctx.task == "binary" and ctx["loss.name"] != "cross_entropy":
        return Decision(1, "one unit: the probability of the positive class", "output.units")
    return Decision(n_classes, f"one unit per class ({n_classes})", "output.units")


# ---- architecture ---------------------------------------------------------------------------
def hidden_layers_rule(ctx: Ctx) -> Decision:
    n = ctx.n_train
    depth = 1 if n < 500 else 2 if n < 20_000 else 3 if n < 500_000 else 4
    return Decision(depth, f"{n} training rows: {depth} hidden layer(s) (common practice: start "
                    "with 1-5; more data supports more depth)", "model.depth_by_rows")


def width_rule(ctx: Ctx, *, small_data: int = 1000, per_row_small: float = 2.0,
               per_row: float = 10.0, grow_per_row: float = 2.0, max_width: int = 256
               ) -> Decision:
    """About twice the inputs (a power of two in [16, 128]), halved (down to 8) while the
    network would have more parameters than the data can pin down: ``per_row_small`` per
    training row under ``small_data`` rows, ``per_row`` above. From ``small_data`` rows up,
    doubled (up to ``max_width``) while it stays within ``grow_per_row`` weights per row:
    a few inputs and many rows is room for more units than the inputs suggest. Measured on
    the tabular benchmark: synthetic_friedman1 (10 inputs, 3,400 training rows) went from
    32 to 64 units, RMSE 1.1% lower (with GELU, 1.126 against scikit-learn's MLP's 1.121)."""
    n_in, depth, n_out = ctx["data.n_inputs"], ctx["model.hidden_layers"], ctx["model.n_outputs"]
    width = min(128, max(16, 2 ** math.ceil(math.log2(max(2 * n_in, 1)))))
    budget = (per_row_small if ctx.n_train < small_data else per_row) * ctx.n_train

    def params(w: int) -> int:
        return n_in * w + max(depth - 1, 0) * w * w + w * n_out if depth else n_in * n_out

    start = width
    while width > 8 and params(width) > budget:
        width //= 2
    why = f"about twice the {n_in} inputs, a power of two in [16, 128]"
    if width < start:
        why = (f"halved from {start} to keep about {params(width):,} weights within "
               f"{budget / ctx.n_train:g} per training row ({ctx.n_train} rows)")
    elif depth and ctx.n_train >= small_data:
        while 2 * width <= max_width and params(2 * width) <= grow_per_row * ctx.n_train:
            width *= 2
        if width > start:
            why = (f"doubled from {start} (twice the {n_in} inputs): {ctx.n_train:,} training "
                   f"rows hold {params(width):,} weights at under {grow_per_row:g} a row")
    return Decision(width, f"{width} units in every hidden layer ({why})", "model.width_by_inputs")


def activation_rule(ctx: Ctx) -> Decision:
    """ReLU first; GELU (Hendrycks & Gimpel 2016) for a regression, where the target is
    usually a smooth function of the inputs and a ReLU network is piecewise linear. Measured
    on the tabular benchmark (deep ensemble of 5, three seeds): RMSE 3.8% lower on
    synthetic_friedman1, 0.6% on star98, 0.3% on diabetes, randhie within 0.1%; on the six
    classification sets it cost up to 0.8% accuracy (anes96), so they keep ReLU."""
    if ctx.task == "regression":
        return Decision("gelu", "GELU for a regression: smooth, where a ReLU network is "
                        "piecewise linear (on the tabular benchmark's regressions RMSE up to "
                        "3.8% lower, none worse by more than 0.1%)", "model.gelu_for_regression")
    return Decision("relu", "ReLU first: it works well most of the time and does not saturate",
                    "model.relu_first")


def init_rule(ctx: Ctx) -> Decision:
    act = ctx["model.activation"]
    init = INIT_FOR_ACTIVATION[act]
    family = {"he_normal": "He", "lecun_normal": "LeCun", "glorot_uniform": "Glorot"}[init]
    return Decision(init, f"{family} initialisation keeps the signal's variance steady through "
                    f"{act} layers", "model.init_follows_activation")


def batchnorm_rule(ctx: Ctx) -> Decision:
    if ctx["model.hidden_layers"] == 0:
        return Decision(False, "no hidden layer to normalise", "model.batchnorm")
    return Decision(True, "BatchNorm before each activation keeps pre-activations centred and "
                    "scaled (faster, steadier training)", "model.batchnorm")


def dropout_rule(ctx: Ctx) -> Decision:
    n = ctx.n_train
    rate = 0.1 if n >= 100_000 else 0.2 if n >= 5_000 else 0.3
    if ctx["model.width"] >= 128 and rate < 0.5:
        rate += 0.1
    where = ("after the last hidden block only (dropout before a BatchNorm layer shifts its "
             "variance)" if ctx["model.batchnorm"] else "after each hidden activation")
    return Decision(round(rate, 2), f"{n} training rows and width {ctx['model.width']}: "
                    f"dropout {rate:.1f}, {where}", "model.dropout_by_size")


ENSEMBLE_ROWS = (50_000, 5), (200_000, 3)  # (up to this many training rows, K networks)


def ensemble_rule(ctx: Ctx) -> Decision:
    """K networks from different seeds, averaged (a deep ensemble: Lakshminarayanan et al.
    2017). Averaging cancels the part of each network's error that depends on its seed
    (initial weights, order, dropout masks, which epoch early stopping kept), which on small
    tables is a large part; it costs K times the training."""
    n = ctx.n_train
    if ctx["data.loader"] == "stream":
        return Decision(1, "one network: the table is streamed from disk, and each more "
                        "network would read it again", "model.ensemble_by_rows")
    k = next((k for rows, k in ENSEMBLE_ROWS if n <= rows), 1)
    if k == 1:
        return Decision(1, f"one network: with {n:,} training rows the seed matters little "
                        "and each more network would cost a full training",
                        "model.ensemble_by_rows")
    return Decision(k, f"{k} networks from seeds seed..seed+{k - 1}, their predictions "
                    f"averaged (a deep ensemble: Lakshminarayanan et al. 2017): with {n:,} "
                    "training rows much of a network's error depends on its seed, and "
                    f"averaging cancels it; the doctor watches the first, training takes "
                    f"about {k} times as long", "model.ensemble_by_rows")


# ---- optimisation ---------------------------------------------------------------------------
def optimizer_rule(ctx: Ctx) -> Decision:
    return Decision("adam", "Adam first: adaptive, forgiving of a less than ideal learning rate",
                    "optimizer.adam_first")


def lr_rule(ctx: Ctx) -> Decision:
    opt = ctx["optimizer.name"]
    spec = _optimizers()[opt]
    return Decision(spec.lr, f"the usual starting learning rate for {opt}: {spec.lr_reason}",
                    "optimizer.default_lr")


def momentum_rule(ctx: Ctx) -> Decision:
    spec = _optimizers()[ctx["optimizer.name"]]
    if spec.momentum is None:
        return Decision(0.0, "not used by this optimizer", "optimizer.momentum")
    return Decision(spec.momentum, spec.momentum_reason, "optimizer.momentum")


def nesterov_rule(ctx: Ctx) -> Decision:
    takes_it = _optimizers()[ctx["optimizer.name"]].nesterov
    return Decision(False, "plain momentum" if takes_it else "not used by this optimizer",
                    "optimizer.momentum")


def betas_rule(ctx: Ctx) -> Decision:
    spec = _optimizers()[ctx["optimizer.name"]]
    if spec.betas is None:  # every plan has the key; this valid pair is never read
        return Decision([0.9, 0.999], "not used by this optimizer", "optimizer.adam_betas")
    return Decision(list(spec.betas), spec.betas_reason, "optimizer.adam_betas")


SMALL_BATCH = 32  # Masters & Luschi 2018: small batches generalise better
MAX_EPOCH_STEPS = 10_000  # updates per epoch before the batch grows with the rows
MAX_BATCH = 4096


def batch_size_rule(ctx: Ctx) -> Decision:
    n = ctx.n_train
    if ctx["optimizer.name"] == "lbfgs":
        return Decision(n, f"L-BFGS needs full-batch gradients: all {n} training rows in one "
                        "batch", "train.full_batch_lbfgs")
    if n > SMALL_BATCH * MAX_EPOCH_STEPS:  # millions of rows: bound the steps of an epoch
        bs = min(MAX_BATCH, 2 ** math.ceil(math.log2(n / MAX_EPOCH_STEPS)))
        return Decision(bs, f"{n:,} training rows: {bs} per batch keeps an epoch to "
                        f"{math.ceil(n / bs):,} updates (at most {MAX_EPOCH_STEPS:,}); with "
                        "this much data a step's fixed cost, not gradient noise, limits "
                        "training (measured on 7M rows: 6,400 rows/s at 32 per batch, 33,900 "
                        "at 1,024), and larger batches act like a smaller learning rate "
                        "(Smith et al. 2018)", "train.batch_for_many_rows")
    bs = SMALL_BATCH if n >= 1000 else 16 if n >= 200 else 8
    why = ("small batches (32) generalise better and train stably" if bs == SMALL_BATCH else
           f"only {n} training rows: {bs} per batch still gives {math.ceil(n / bs)} updates "
           "an epoch")
    return Decision(bs, why, "train.small_batch")


def max_epochs_rule(ctx: Ctx) -> Decision:
    steps = max(1, math.ceil(ctx.n_train / ctx["train.batch_size"]))
    epochs = int(min(500, max(20, 50_000 // steps)))
    return Decision(epochs, f"generous ({epochs} epochs, about {epochs * steps} updates): "
                    "early stopping ends training when validation stops improving",
                    "train.many_epochs")


def patience_rule(ctx: Ctx) -> Decision:
    """Patience in epochs, the same for every kind of data (non-tabular plans use it)."""
    p = 10 if ctx["train.max_epochs"] >= 50 else 5
    return Decision(p, f"stop after {p} epochs without a better validation loss and restore "
                    "the best checkpoint", "train.early_stopping")


PATIENCE_UPDATES = 4000  # updates without a better validation loss before a table stops
MAX_PATIENCE = 40


def update_patience_rule(ctx: Ctx) -> Decision:
    """Tables: patience counted in updates. A small table has few updates an epoch and a
    small, noisy validation split, so 10 epochs stopped it while validation was still
    improving. Measured with benchmarks/tabular (10 tables x 3 seeds, this rule against
    patience 10): test RMSE 7.5% lower on make_friedman1 (5,000 rows), 3.6% on diabetes,
    3.5% on star98; accuracy 1.1% higher on modechoice; the six others within 0.2%."""
    if ctx["train.max_epochs"] < 50:  # long epochs: the epoch rule's patience
        return patience_rule(ctx)
    steps = max(1, math.ceil(ctx.n_train / ctx["train.batch_size"]))
    p = min(MAX_PATIENCE, max(10, math.ceil(PATIENCE_UPDATES / steps)))
    return Decision(p, f"stop after {p} epochs (about {p * steps:,} updates) without a better "
                    "validation loss and restore the best checkpoint: at least "
                    f"{PATIENCE_UPDATES:,} updates, 10 to {MAX_PATIENCE} epochs, since a small "
                    "validation split is noisy and a short patience stops while it is still "
                    "improving (measured on 10 small tables against patience 10: test RMSE "
                    "3.5-7.5% lower on three regressions, no loss elsewhere)",
                    "train.early_stopping_in_updates")


# ---- hardware -------------------------------------------------------------------------------
def device_rule(ctx: Ctx) -> Decision:
    name, reason = devices.find_device()
    return Decision(name, reason, "train.device_found")


def precision_rule(ctx: Ctx) -> Decision:
    name, reason = devices.precision_for(ctx["train.device"], ctx["optimizer.name"])
    rule = {"fp32": "train.fp32", "bf16": "train.bf16_autocast",
            "fp16": "train.fp16_loss_scaling"}[name]
    return Decision(name, reason, rule)


def threads_rule(ctx: Ctx) -> Decision:
    arch = ctx.decisions["model.arch"].value if "model.arch" in ctx.decisions else None
    n, reason = devices.threads_for(ctx["train.device"], arch)
    return Decision(n, reason, "train.threads_measured")


def workers_rule(ctx: Ctx) -> Decision:
    """DataLoader workers of a streamed split (data.loader=stream; 0 when in memory)."""
    if ctx["data.loader"] != "stream":
        return Decision(0, "the splits are tensors in memory: nothing to read ahead",
                        "data.workers_streaming")
    n, reason = streams.worker_count(ctx["train.device"])
    return Decision(n, reason, "data.workers_streaming")


def _const(value: Any, reason: str, rule: str) -> Rule:
    return lambda ctx: Decision(value, reason, rule)


# (key, rule, derived?) in evaluation order.
RULES: tuple[tuple[str, Rule, bool], ...] = (
    ("task", task_rule, True),
    ("seed", _const(0, "fixed so a rerun gives the same numbers", "seed.fixed"), False),
    ("data.scale", scale_rule, False),
    ("data.drop", drop_rule, True),
    ("data.impute", impute_rule, True),
    ("data.n_inputs", inputs_rule, True),
    ("loss.name", loss_rule, False),
    ("model.output_activation", output_activation_rule, False),
    ("model.n_outputs", n_outputs_rule, True),
    ("model.hidden_layers", hidden_layers_rule, False),
    ("model.width", width_rule, False),
    ("model.activation", activation_rule, False),
    ("model.init", init_rule, False),
    ("model.init_scale", _const(1.0, "the initialisation's own scale", "model.init"), False),
    ("model.bias_init", _const(0.0, "biases start at zero", "model.init"), False),
    ("model.batchnorm", batchnorm_rule, False),
    ("model.dropout", dropout_rule, False),
    ("optimizer.name", optimizer_rule, False),
    ("optimizer.lr", lr_rule, False),
    ("optimizer.momentum", momentum_rule, False),
    ("optimizer.nesterov", nesterov_rule, False),
    ("optimizer.betas", betas_rule, False),
    ("optimizer.weight_decay", _const(0.0, "dropout and early stopping regularise first",
                                      "regularization.start_without"), False),
    ("regularization.l1", _const(0.0, "rarely needed for networks", "regularization.l1"), False),
    ("train.batch_size", batch_size_rule, False),
    ("train.max_epochs", max_epochs_rule, False),
    ("train.early_stopping.patience", update_patience_rule, False),
    ("schedule.name", _const("none", "a constant learning rate until everything else is "
                             "tuned; decay comes last (Smith 2018)", "schedule.constant_first"),
     False),
    ("schedule.step_size", _const(10, "step decay: halve every 10 epochs", "schedule.step"),
     False),
    ("schedule.gamma", _const(0.5, "step decay halves the rate", "schedule.step"), False),
    ("schedule.k", _const(0.05, "exponential / 1/t decay: rate k per epoch",
                          "schedule.decay_rate"), False),
    ("schedule.warmup_epochs", _const(0, "no warmup: Adam with a medium rate starts "
                                      "steadily", "schedule.warmup"), False),
    ("train.grad_clip.kind", _const("none", "no sign of exploding gradients yet",
                                    "train.grad_clip"), False),
    ("train.grad_clip.max", _const(1.0, "the usual threshold when clipping is on",
                                   "train.grad_clip"), False),
    ("train.swa", _const(False, "stochastic weight averaging: average the weights of the last "
                         "epochs; off by default", "train.swa"), False),
    ("train.swa_start", _const(0.75, "with train.swa: average the epochs after 75% of "
                               "train.max_epochs", "train.swa"), False),
    ("train.checkpoint_minutes", _const(10.0, "checkpoints/last.pt after an epoch (at most "
                                        "every 2 s, so short epochs are not slowed by the "
                                        "writes), and every 10 minutes inside a longer one: "
                                        "a crash loses at most that much work (--resume)",
                                        "train.checkpoints"), False),
    ("train.device", device_rule, False),
    ("train.precision", precision_rule, False),
    ("train.threads", threads_rule, False),
)


#: how each kind of data composes its plan from :data:`RULES` and its own rules, by the
#: profile's ``modality``: ``compose(RULES, pretrained) -> [(key, rule, derived), ...]``.
#: Filled in by ``nnrecipe.modalities`` (each modality registers its ``plan_rules``): the
#: registry is imported (by name: it imports this module) the first time a plan is made.
RULE_SETS: dict[str, Callable[[tuple, dict | None], list[tuple[str, Rule, bool]]]] = {}
REGISTRY = "nnrecipe.modalities"


def make_plan(profile: DataProfile, n_train: int, overrides: Mapping[str, Any] | None = None
              ) -> Plan:
    """Run every rule; a user's override replaces the rule's value. Raises PlanError."""
    values = validate_overrides(overrides)
    ctx = Ctx(profile, n_train)
    if not RULE_SETS:
        importlib.import_module(REGISTRY)  # its modalities register their rules
    compose = RULE_SETS.get(profile.modality)
    if compose is None:
        raise PlanError(f"no plan rules for {profile.modality} data; known kinds of data: "
                        + ", ".join(RULE_SETS))
    rules = compose(RULES, (profile.inputs or {}).get("pretrained"))
    known = {key for key, _, derived in rules if not derived}
    foreign = sorted(k for k in values if k not in known)
    if any(k.startswith("transfer.") for k in foreign):
        raise PlanError("transfer.* settings apply with --pretrained PATH (a convnet run or "
                        "state dict to start from); give it, or drop the transfer settings")
    if foreign:
        raise PlanError(f"{', '.join(foreign)}: not a setting for {profile.modality} data; "
                        f"keys for {profile.modality} data: " + ", ".join(sorted(known)))
    for key, rule, derived in rules:
        if key in values and values[key] != "auto":  # "auto": let the rule choose
            v = values[key]
            shown = ",".join(map(str, v)) if isinstance(v, list) else v
            d = Decision(values[key], f"set by the user (--set {key}={shown})", "user")
        else:
            d = rule(ctx)
        (ctx.derived if derived else ctx.decisions)[key] = d
    if values.get("optimizer.lr") == "auto":
        ctx.derived["optimizer.lr_find"] = Decision(
            True, "optimizer.lr=auto: an LR range test before training sets the learning rate",
            "optimizer.lr_range_test")
    group = distributed.current()
    if group is not None:
        _processes(ctx, values, group.world)
    _check_combinations(ctx, values)
    return Plan(ctx.decisions, ctx.derived)


def _processes(ctx: Ctx, given: Mapping[str, Any], world: int) -> None:
    """Several processes (torchrun): how many, the global batch they make, and the
    learning rate scaled to it (unless the user set the rate)."""
    bs = ctx["train.batch_size"]
    ctx.derived["train.processes"] = Decision(
        world, f"{world} processes started by torchrun train together (DistributedDataParallel"
        f"): each reads 1 of every {world} rows of an epoch's order, and their gradients "
        "are averaged before each step", "train.ddp")
    ctx.derived["train.global_batch_size"] = Decision(
        bs * world, f"{bs} rows per process × {world} processes: each step's gradient is the "
        f"mean over {bs * world} rows", "train.ddp_global_batch")
    if ctx.decisions.get("model.ensemble") is not None and ctx["model.ensemble"] > 1:
        if "model.ensemble" in given:
            raise PlanError("model.ensemble > 1 trains its networks one after another in one "
                            "process; with several processes set model.ensemble=1")
        ctx.decisions["model.ensemble"] = Decision(
            1, f"one network: {world} processes train it together (an ensemble's networks "
            "train one after another in one process)", "model.ensemble_by_rows")
    if "optimizer.lr" in given:  # a number the user chose, or auto (the range test scales)
        return
    k, rule = distributed.lr_scale(ctx["optimizer.name"], world)
    if k != 1.0:
        lr = ctx.decisions["optimizer.lr"]
        ctx.decisions["optimizer.lr"] = Decision(
            lr.value * k, f"{lr.reason}; for the global batch of {bs * world} rows, {rule}",
            "optimizer.lr_scaled_for_processes")


def _check_combinations(ctx: Ctx, given: Mapping[str, Any]) -> None:
    problems = []
    loss, task = ctx["loss.name"], ctx.task
    if task == "regression" and loss in ("bce", "cross_entropy"):
        problems.append(f"loss.name={loss} needs class labels, but the task is regression; "
                        "use mse, huber or mae")
    problems += _optimizer_problems(ctx, given)
    problems += devices.setting_problems(ctx["train.device"], ctx["train.precision"],
                                         ctx["optimizer.name"])
    schedule = ctx["schedule.name"]
    if _schedule_kinds()[schedule].warms_up_itself and ctx["schedule.warmup_epochs"] > 0:
        problems.append(f"schedule.warmup_epochs must be 0 with schedule.name={schedule} "
                        "(it warms up by itself)")
    if problems:
        raise PlanError("; ".join(problems))


def _optimizer_problems(ctx: Ctx, given: Mapping[str, Any]) -> list[str]:
    """Settings the chosen optimizer does not take, as its record says."""
    records, opt = _optimizers(), ctx["optimizer.name"]
    spec, problems = records[opt], []

    def takers(has: Callable[[Any], bool], sep: str = ", ") -> str:
        return sep.join(name for name, r in records.items() if has(r))

    if ctx["optimizer.nesterov"] and (not spec.nesterov or ctx["optimizer.momentum"] <= 0):
        problems.append(f"optimizer.nesterov=true needs optimizer.name="
                        f"{takers(lambda r: r.nesterov, ' or ')} with optimizer.momentum > 0")
    if "optimizer.momentum" in given and spec.momentum is None:
        problems.append(f"optimizer.momentum applies to "
                        f"{takers(lambda r: r.momentum is not None)}, not {opt}")
    if "optimizer.betas" in given and spec.betas is None:
        problems.append(f"optimizer.betas applies to {takers(lambda r: r.betas is not None)}, "
                        f"not {opt}")
    if spec.full_batch and given.get("optimizer.lr") == "auto":
        problems.append(f"optimizer.lr=auto (the LR range test) does not apply to {opt}: its "
                        f"line search chooses the step; leave optimizer.lr at {spec.lr}")
    if not spec.weight_decay and given.get("optimizer.weight_decay", 0) > 0:
        problems.append(f"optimizer.weight_decay is not supported by {opt}; use "
                        "regularization.l1 or another optimizer")
    return problems


def add_parameter_count(plan: Plan, n_params: int, n_train: int,
                        values_per_sample: int | None = None) -> Plan:
    """Compare the built network's size with the data: the ratio of parameters to training
    rows says whether to expect overfitting or underfitting. A convnet (give
    ``values_per_sample``: channels × positions) reuses its weights at every position, so
    its data is counted in input values, against ``MAX_PARAMETERS_PER_VALUE`` (a note over
    it, expect overfitting over twice it, as the doctor's ``too_many_parameters``)."""
    if values_per_sample:
        values = n_train * values_per_sample
        per = n_params / max(values, 1)
        size = (f"{n_params:,} trainable parameters for {n_train:,} training samples of "
                f"{values_per_sample:,} values ({per:.2g} per input value)")
        over = per > WARN_PARAMETERS_PER_VALUE  # the doctor's warning; over the limit, a note
        rule = "model.parameters_vs_values"
    else:
        per = n_params / max(n_train, 1)
        size = (f"{n_params:,} trainable parameters for {n_train:,} training rows "
                f"({per:.2g} per row)")
        over = per > 10
        rule = "model.parameters_vs_rows"
    if over:
        advice = ("far more parameters than the data holds: expect overfitting; dropout, early "
                  "stopping and weight decay hold it back, and a smaller network (width, "
                  "filters or blocks) is the first thing to try")
    elif values_per_sample and per > MAX_PARAMETERS_PER_VALUE:
        advice = (f"more than {MAX_PARAMETERS_PER_VALUE:g} per input value, where a convnet "
                  "often still generalises with dropout and early stopping: watch the gap "
                  "between the training and validation loss")
    elif not values_per_sample and per < 0.01 and n_train >= 10_000:
        advice = ("a small network for this much data: it may underfit; more width or depth "
                  "can be afforded")
    else:
        advice = "in proportion to the data"
    return plan.with_derived("model.parameters", Decision(n_params, f"{size}: {advice}", rule))
