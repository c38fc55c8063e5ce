"""Live rules: what the doctor looks for while the network trains.

Two kinds of evidence, both plain numbers (no torch here, so every rule is tested with
scripted values):

* :class:`StepEvidence`: statistics sampled at one optimizer step (the loss, each layer's
  gradient norm, how many ReLU outputs are zero, how many sigmoid/tanh outputs sit at the
  flat ends of their range). The step rules judge one sample;
  :class:`~nnrecipe.doctor.monitors.LiveMonitor` reports a step finding only when the same
  rule fires on several samples in a row, so one odd batch never raises an alarm.
* :class:`HistoryEvidence`: the per-epoch learning curve so far; the epoch rules judge it
  at the end of each epoch (the curve itself carries the persistence).

Each rule is ``rule(ev) -> Finding | None`` with its thresholds as keyword defaults. They
started from the published ones (AutoTrainer, ICSE 2021; DeepDiagnosis, ICSE 2022) and were
checked against faults planted in ``tests/doctor/test_monitors.py``, which changed some:

* dead ReLU: not "70% of gradient entries zero". Healthy ReLU layers have ~50% zero outputs
  and 10-45% zero weight-gradient entries, but almost no unit that is zero on every row of a
  batch (0-43% seen). Dead: >= 60% of units so (bias -5: 100%; lr far too high: 56-94%).
* exploding: the loss against its value at the first step (x1000), not an absolute 1e3.
* oscillation: reversals of the validation loss (moves > 30%), not accuracy swings of 0.03,
  which on 60 validation rows is two rows. Healthy MLP validation losses moved < 22% an
  epoch; Adam at lr 0.1-1 moved 50-350%. It also needs the training loss to jump up by
  over 30% of what it had gained: the validation loss of an overfitting network swings too.
* divergence: about the training loss only, held high for two epochs; the validation loss
  rising while the training loss falls is overfitting (an after-training rule).
* slow convergence: the best loss gained < 1% in 5 epochs while still near the start, rather
  than an accuracy gain < 0.01 (same reason).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..findings import Finding, make_finding

__all__ = ["SATURATION_AT", "StepEvidence", "HistoryEvidence", "STEP_RULES", "EPOCH_RULES",
           "check_step", "check_history", "nan_loss", "exploding_gradients", "vanishing_gradients",
           "dead_relu", "saturated_activations", "nan_loss_in_history", "loss_divergence",
           "loss_oscillation", "slow_convergence", "best_gain"]

# A unit output this close to an asymptote is saturated: tanh at |y| >= 0.99 (|x| >= 2.65),
# where its slope 1 - y^2 is under 2% of its peak; sigmoid at y <= 0.01 or y >= 0.99
# (|x| >= 4.6), where y(1 - y) is under 4% of its peak (Glorot & Bengio 2010 watch the same
# units pinned at their ends; LeCun et al. 1998, "Efficient BackProp", on keeping them off).
SATURATION_AT = 0.01  # distance from the asymptote, as a share of the output's range


@dataclass
class StepEvidence:
    """Statistics sampled at one step. Dicts keep the model's registration order."""
    epoch: int
    step: int
    loss: float
    grad_norms: dict[str, float]       # L2 norm of weight.grad, per layer with weights
    grad_zero_share: dict[str, float]  # share of exactly-zero entries of weight.grad, per layer
    act_zero_share: dict[str, float]   # share of exactly-zero outputs, per ReLU/ReLU6 module
    saturation_share: dict[str, float]  # share of outputs within SATURATION_AT of an end,
    # per sigmoid/tanh module (tanh |y| >= 0.99; sigmoid y <= 0.01 or >= 0.99)
    dead_unit_share: dict[str, float] = field(default_factory=dict)  # per ReLU/ReLU6 module:
    # share of units (every output position but the batch dim) that are zero for the whole batch
    lr: float | None = None
    initial_loss: float | None = None  # the loss at the first step, the scale to compare with


@dataclass
class HistoryEvidence:
    """The per-epoch learning curve so far (index 0 is epoch 1)."""
    train_loss: list[float]
    val_loss: list[float]
    val_metric: list[float] | None = None
    metric_name: str | None = None
    higher_is_better: bool = True
    baseline_loss: float | None = None  # loss of an input-independent predictor, if known
    lr: float | None = None
    initial_loss: float | None = None   # the loss at the first step, before any learning


def _scaled(lr: float | None, factor: float) -> dict[str, float]:
    return {} if lr is None else {"optimizer.lr": float(f"{lr * factor:.3g}")}


_CLIP = {"train.grad_clip.kind": "global_norm", "train.grad_clip.max": 1.0}
_LR_ADVICE = ("Lower the learning rate about tenfold; the best rate is usually around half "
              "of the one at which training diverges (an LR finder shows where that is).")
_CLIP_ADVICE = ("Clip the gradients by their global norm (e.g. 1.0): it caps the step size "
                "but keeps the direction of the whole gradient, unlike clipping each value.")


# --- step rules ---------------------------------------------------------------------------

def nan_loss(ev: StepEvidence) -> Finding | None:
    if math.isfinite(ev.loss):
        return None
    return make_finding(
        "nan_loss", {"loss": str(ev.loss), "lr": ev.lr if ev.lr is not None else "unknown"},
        f"The loss of the batch at step {ev.step} is {ev.loss}. Once a weight becomes "
        "NaN or infinite every later output does too, so training cannot recover.",
        [_LR_ADVICE, _CLIP_ADVICE,
         "If it persists at a low learning rate, look for NaN/inf in the inputs or targets "
         "and for log(0) or division by zero in a custom loss."],
        {**_CLIP, **_scaled(ev.lr, 0.1)}, epoch=ev.epoch, step=ev.step)


def non_finite_weights(names: list[str], *, epoch: int, lr: float | None,
                       top: int = 3) -> Finding | None:
    """Weights or running statistics that hold NaN or infinity at the end of an epoch
    whose loss stayed finite (``names``: the state tensors affected). A BatchNorm layer's
    running variance that overflowed during a blow-up does that: in training mode the
    layer uses each batch's own statistics, so the loss looks fine, but the network
    evaluates with the broken ones and cannot be used. Reported as ``nan_loss``: the same
    illness, caught where the loss does not show it."""
    if not names:
        return None
    return make_finding(
        "nan_loss", {"non_finite_tensors": len(names), "first": ", ".join(names[:top]),
                     "lr": lr if lr is not None else "unknown"},
        f"At the end of epoch {epoch}, {len(names)} weight or statistic tensor(s) hold NaN "
        f"or infinite values ({', '.join(names[:top])}), though the loss stayed finite. A "
        "network with non-finite numbers inside cannot be evaluated or trained on from there.",
        [_LR_ADVICE, _CLIP_ADVICE,
         "If it persists at a low learning rate, look for NaN/inf in the inputs."],
        {**_CLIP, **_scaled(lr, 0.1)}, epoch=epoch)


def exploding_gradients(ev: StepEvidence, *, ratio_max: float = 70.0,
                        loss_factor: float = 1e3) -> Finding | None:
    """Non-finite gradients, a loss ``loss_factor`` times its initial value, or a first layer
    whose gradient norm is over ``ratio_max`` times the last layer's."""
    if not math.isfinite(ev.loss) or not ev.grad_norms:
        return None  # nan_loss speaks for a non-finite loss
    names, norms = list(ev.grad_norms), list(ev.grad_norms.values())
    bad = [n for n, g in ev.grad_norms.items() if not math.isfinite(g)]
    ratio = norms[0] / norms[-1] if len(norms) > 1 and norms[-1] > 0 else None
    grown = ev.initial_loss is not None and ev.initial_loss > 0 and \
        ev.loss >= loss_factor * ev.initial_loss
    if not bad and not grown and not (ratio is not None and ratio > ratio_max):
        return None
    if bad:
        trigger, layer = "non_finite_gradient", bad[0]
        why = f"the gradient of {bad[0]} is not finite"
    elif grown:
        trigger, layer = "loss_growth", None
        why = (f"the loss grew to {ev.loss:.4g}, over {loss_factor:g} times its initial "
               f"{ev.initial_loss:.4g}")
    else:
        trigger, layer = "gradient_ratio", names[0]
        why = (f"the gradient norm of the first layer ({names[0]}) is {ratio:.3g} times the "
               f"last layer's ({names[-1]})")
    evidence = {"trigger": trigger, "loss": ev.loss, "initial_loss": ev.initial_loss or "",
                "first_layer": names[0], "last_layer": names[-1],
                "grad_norm_first": norms[0] if math.isfinite(norms[0]) else str(norms[0]),
                "grad_norm_last": norms[-1] if math.isfinite(norms[-1]) else str(norms[-1]),
                "ratio_first_last": ratio if ratio is not None and math.isfinite(ratio) else "",
                "ratio_max": ratio_max}
    return make_finding(
        "exploding_gradients", evidence,
        f"At step {ev.step} {why}. Gradients that grow as they flow back make steps so "
        "large that the weights jump past any minimum and the loss blows up.",
        [_CLIP_ADVICE, _LR_ADVICE,
         "BatchNorm and an initialisation matched to the activation keep gradients in range."],
        {**_CLIP, **_scaled(ev.lr, 0.1)}, epoch=ev.epoch, step=ev.step, layer=layer)


def vanishing_gradients(ev: StepEvidence, *, ratio_min: float = 1e-3,
                        first_max: float = 1e-4) -> Finding | None:
    """The first layer's gradient norm is under ``ratio_min`` times the last layer's and
    under ``first_max`` in absolute terms."""
    if len(ev.grad_norms) < 2 or not math.isfinite(ev.loss):
        return None
    names, norms = list(ev.grad_norms), list(ev.grad_norms.values())
    first, last = norms[0], norms[-1]
    if not (math.isfinite(first) and math.isfinite(last)) or last <= 0:
        return None  # no gradient at the end at all is dead units, not vanishing
    ratio = first / last
    if ratio >= ratio_min or first >= first_max:
        return None
    return make_finding(
        "vanishing_gradients",
        {"first_layer": names[0], "last_layer": names[-1], "grad_norm_first": first,
         "grad_norm_last": last, "ratio_first_last": ratio, "ratio_min": ratio_min,
         "first_max": first_max},
        f"At step {ev.step} the gradient reaching the first layer ({names[0]}) is "
        f"{ratio:.2g} times the one at the last layer: the early layers barely learn.",
        ["Use ReLU (or a ReLU variant) in hidden layers: sigmoid and tanh shrink the "
         "gradient at every layer they pass it through.",
         "Initialise to match the activation (He for ReLU, Glorot for tanh/sigmoid) rather "
         "than with tiny fixed-scale random numbers.",
         "BatchNorm before each activation keeps pre-activations centred and helps the "
         "gradient through deep stacks; so do shorter networks or skip connections."],
        {"model.activation": "relu", "model.init": "auto", "model.batchnorm": True},
        epoch=ev.epoch, step=ev.step, layer=names[0])


def dead_relu(ev: StepEvidence, *, dead_share: float = 0.6,
              zero_share: float = 0.95) -> Finding | None:
    """A ReLU module where at least ``dead_share`` of the units output zero for the whole
    batch, or ``zero_share`` of all outputs are zero (a healthy ReLU layer has about half
    of its outputs zero, but almost no unit that is zero for every row)."""
    for name, zeros in ev.act_zero_share.items():
        dead = ev.dead_unit_share.get(name, 0.0)
        if dead < dead_share and zeros < zero_share:
            continue
        return make_finding(
            "dead_relu",
            {"dead_unit_share": dead, "zero_output_share": zeros, "dead_share": dead_share,
             "zero_share": zero_share,
             "max_weight_grad_zero_share": max(ev.grad_zero_share.values(), default=""),
             "layers_affected": sum(
                 ev.dead_unit_share.get(n, 0.0) >= dead_share or z >= zero_share
                 for n, z in ev.act_zero_share.items()),
             "lr": ev.lr if ev.lr is not None else "unknown"},
            f"At step {ev.step}, {dead:.0%} of the units of {name} output zero for every "
            f"row of the batch ({zeros:.0%} of all its outputs are zero). A ReLU stuck below "
            "zero passes no gradient, so it never recovers.",
            ["Use Leaky ReLU (or ELU/SELU): a small slope below zero keeps the gradient alive.",
             "Lower the learning rate: one large step can push a unit's bias far negative.",
             "Start biases at zero and initialise weights with He initialisation."],
            {"model.activation": "leaky_relu", "model.bias_init": 0.0, **_scaled(ev.lr, 0.1)},
            epoch=ev.epoch, step=ev.step, layer=name)
    return None


def saturated_activations(ev: StepEvidence, *, share_max: float = 1 / 3) -> Finding | None:
    """A sigmoid/tanh module where over ``share_max`` of the unit outputs on the sampled
    training batch sit at an end of their range (tanh |y| >= 0.99, sigmoid y <= 0.01 or
    >= 0.99: ``SATURATION_AT``), where the slope is a few percent of its peak.

    Why a third, measured on a 3-layer tanh MLP (width 8, dropout 0.3, no BatchNorm) over
    20 epochs on a table: with Glorot init (Glorot & Bengio 2010) at most 26% of the last
    layer's outputs reached 0.99 (dropout's 1/(1-p) scaling in training pushes them out;
    the first layers 2-5%); at ``model.init_scale`` 2 52-66%, at 3 70-79%, at 5 83-90%.
    DeepDiagnosis (ICSE 2022) flags over half of the inputs beyond |x| >= 5, which only
    much larger scales (about 10) reach, so it missed those clear cases."""
    for name, share in ev.saturation_share.items():
        if share <= share_max:
            continue
        return make_finding(
            "saturated_activations",
            {"saturated_share": share, "share_max": share_max,
             "near_end": SATURATION_AT,
             "layers_affected": sum(s > share_max for s in ev.saturation_share.values())},
            f"At step {ev.step}, {share:.0%} of the outputs of {name} sit at an end of its "
            "range (tanh beyond +-0.99, sigmoid below 0.01 or above 0.99), where sigmoid and "
            "tanh are flat: their gradient there is nearly zero, so those units barely learn.",
            ["Prefer ReLU in hidden layers; it does not saturate for positive inputs.",
             "Initialise to match the activation (Glorot for tanh/sigmoid) and keep the "
             "initial weights small, not scaled up.",
             "Standardise the inputs and consider BatchNorm before the activation."],
            {"model.activation": "relu", "model.init": "auto", "model.init_scale": 1.0},
            epoch=ev.epoch, step=ev.step, layer=name)
    return None


# --- epoch rules --------------------------------------------------------------------------

def nan_loss_in_history(ev: HistoryEvidence) -> Finding | None:
    if not ev.train_loss or math.isfinite(ev.train_loss[-1]):
        return None
    epoch = len(ev.train_loss)
    return make_finding(
        "nan_loss", {"train_loss": str(ev.train_loss[-1]),
                     "lr": ev.lr if ev.lr is not None else "unknown"},
        f"The mean training loss of epoch {epoch} is {ev.train_loss[-1]}: some step produced "
        "a non-finite loss, and the weights it touched are lost.",
        [_LR_ADVICE, _CLIP_ADVICE,
         "If it persists at a low learning rate, look for NaN/inf in the inputs or targets."],
        {**_CLIP, **_scaled(ev.lr, 0.1)}, epoch=epoch)


def loss_divergence(ev: HistoryEvidence, *, window: int = 3, rise: float = 0.5,
                    blowup: float = 10.0, give_back: float = 0.3,
                    held: int = 2) -> Finding | None:
    """The *training* loss moves away from its minimum. Either it blew up: above where it
    started (the loss at the first step) and ``blowup`` times the lower of that start and
    its best; or it rose in each of the last ``window`` epochs, giving back at least
    ``give_back`` of the progress made from the start to the best, and stayed over
    ``1 + rise`` times its best for the last ``held`` epochs, with the validation loss (if
    any) up over the same epochs too. A validation loss that rises while the training loss
    falls is overfitting (the after-training rule), never divergence.

    The give-back share keeps the late jitter of a small, dropout-noisy loss from counting:
    healthy runs gave back 12-22% (breast cancer, wine), diverging ones most of it. ``held``
    keeps one noisy epoch from counting: a 4 x 512 network without dropout on 104 rows had
    one epoch at 3.5 times its best training loss (0.17, 0.20, 0.24, 0.58, then 0.37, 0.24,
    0.18) while it was overfitting; a learning rate too large keeps the loss up."""
    losses = ev.train_loss
    if len(losses) < 2 or not all(math.isfinite(v) for v in losses):
        return None
    best, now = min(losses), losses[-1]
    start = ev.initial_loss if ev.initial_loss is not None else losses[0]
    blown = now > start > 0 and best > 0 and now >= blowup * min(best, start)
    val = ev.val_loss
    rising = len(losses) > window and \
        all(v > best * (1 + rise) for v in losses[-held:]) and \
        now - best >= give_back * (start - best) and all(
        b > a for a, b in zip(losses[-window - 1:-1], losses[-window:], strict=True)) and (
        len(val) <= window or val[-1] > val[-window - 1])
    if not (blown or rising):
        return None
    epoch = len(losses)
    return make_finding(
        "loss_divergence",
        {"train_loss": now, "best_train_loss": best, "best_epoch": losses.index(best) + 1,
         "ratio_to_best": now / best if best > 0 else "", "start_loss": start,
         "trigger": "blowup" if blown else "sustained_rise",
         "lr": ev.lr if ev.lr is not None else "unknown"},
        f"The training loss is {now:.4g} at epoch {epoch}, up from its best {best:.4g}: "
        "the optimizer is moving away from the minimum instead of into it, which is what a "
        "learning rate that is too large does.",
        [_LR_ADVICE, _CLIP_ADVICE],
        _scaled(ev.lr, 0.1) or None, epoch=epoch)


def loss_oscillation(ev: HistoryEvidence, *, window: int = 6, swing: float = 0.3,
                     min_flips: int = 2, min_move: float = 0.02,
                     undo: float = 0.3, spike: float = 1.5) -> Finding | None:
    """Steps that overshoot: in the last ``window`` epochs the loss changed direction at
    least ``min_flips`` times between moves of over ``swing`` of its level and over
    ``min_move`` of where it started (so the jitter of a loss near zero does not count),
    *and* the training loss itself jumped up at least once by over ``swing`` of its level
    and over ``undo`` of the ground it had gained from its start to its best.

    The reversals are counted on the validation loss when there is one (computed on the
    same rows without dropout every epoch, it moves only when the weights do; the training
    loss also carries batch and dropout noise), else on the training loss. The jump in the
    training loss is what separates overshooting from overfitting: an optimizer that
    overshoots makes its own objective worse (Adam at lr 1 on breast cancer: 0.19 to 0.92,
    0.39 to 0.79, most of what it had gained), while the validation loss of an overfitting
    network swings on a few confidently wrong rows with the training loss staying low (a
    4 x 512 network on 104 noisy rows: validation 0.44-0.80 from epoch to epoch, training
    jumps of at most 0.14 against 0.78 gained, 18%; ``undo`` sits between).

    Or, without such a jump, spikes: the validation loss rose by over ``spike`` (to 2.5
    times its level) at least twice in the window and fell back in between. Overfitting's
    swings stayed under +80% an epoch; a cyclic rate whose peak is too high (Adam from 1e-3
    up to 0.3 and back every four epochs on digits) sent it from 0.26 to 1.49 and from 0.26
    to 0.95 while the training loss, averaged over the cycle, rose by under 30%."""
    which = "val_loss" if len(ev.val_loss) == len(ev.train_loss) else "train_loss"
    losses = ev.val_loss if which == "val_loss" else ev.train_loss
    recent = losses[-window - 1:]
    if len(recent) < window + 1 or not all(math.isfinite(v) and v > 0 for v in recent):
        return None
    start = next((r for r in (ev.initial_loss, ev.baseline_loss) if r is not None), 0.0)
    big = [(b - a) / a for a, b in zip(recent, recent[1:], strict=False)
           if abs(b - a) > swing * a and abs(b - a) > min_move * start]
    flips = sum((a > 0) != (b > 0) for a, b in zip(big, big[1:], strict=False))
    if flips < min_flips:
        return None
    train = ev.train_loss
    if not all(math.isfinite(v) for v in train):
        return None
    first = ev.initial_loss if ev.initial_loss is not None else train[0]
    gained = max(first - min(train), 0.0)
    tail = train[-window - 1:]
    jumps = [b - a for a, b in zip(tail, tail[1:], strict=False) if b - a > swing * a]
    jump = max(jumps, default=0.0)
    spikes = sum(m > spike for m in big) if which == "val_loss" else 0
    if jump <= undo * gained and spikes < 2:
        return None
    epoch = len(losses)
    evidence = {"series": which, "flips": flips, "largest_swing": max(abs(m) for m in big),
                "train_jump": jump, "train_gained": gained, "val_spikes": spikes,
                "window": window, "swing": swing,
                "lr": ev.lr if ev.lr is not None else "unknown"}
    if ev.val_metric and ev.metric_name and len(ev.val_metric) > window:
        tail = [v for v in ev.val_metric[-window - 1:] if math.isfinite(v)]
        if tail:
            evidence[f"val_{ev.metric_name}_range"] = max(tail) - min(tail)
    return make_finding(
        "loss_oscillation", evidence,
        f"Over the last {window} epochs (to epoch {epoch}) the {which.replace('_', ' ')} "
        f"jumped up and down by more than {swing:.0%} ({flips} reversals), and " + (
            f"the training loss itself jumped up by {jump:.4g}, "
            f"{jump / gained if gained else math.inf:.0%} of what training had gained"
            if jump > undo * gained else
            f"{spikes} times it rose to over {1 + spike:g} times its level and fell back") +
        ": the steps overshoot the minimum and bounce across it.",
        ["Lower the learning rate (a third to a tenth), or decay it as training goes on.",
         "A larger batch gives a less noisy gradient; momentum smooths the path too."],
        _scaled(ev.lr, 1 / 3) or None, epoch=epoch)


def slow_convergence(ev: HistoryEvidence, *, window: int = 5, min_gain: float = 0.01,
                     near: float = 0.9, steady: float = 0.1) -> Finding | None:
    """The best training loss of the last ``window`` epochs beats the best before them by
    under ``min_gain`` (relative), and so does the validation loss when there is one, while
    the loss is still within a factor ``near`` of where training started (the loss at the
    first step, or the constant predictor's) and steady: over the window it spans under
    ``steady`` of its level (the validation loss if any; a jumping loss is oscillation,
    and a larger learning rate would not help it)."""
    losses = ev.train_loss
    refs = [r for r in (ev.initial_loss, ev.baseline_loss) if r is not None and r > 0]
    if len(losses) <= window or not refs or not all(math.isfinite(v) for v in losses):
        return None
    gain = best_gain(losses, window)
    recent = min(losses[-window:])
    if gain >= min_gain or not near * min(refs) <= recent <= max(refs) / near:
        return None  # still learning; or well below the start (converged); or above it
    has_val = len(ev.val_loss) > window and all(math.isfinite(v) for v in ev.val_loss)
    val_gain = best_gain(ev.val_loss, window) if has_val else None
    if val_gain is not None and val_gain >= min_gain:
        return None
    tail = (ev.val_loss if has_val else losses)[-window - 1:]
    if max(tail) - min(tail) >= steady * min(tail):
        return None
    epoch = len(losses)
    factor = 10.0 if gain < min_gain / 10 else 3.0
    return make_finding(
        "slow_convergence",
        {"best_recent_loss": recent, "gain": gain,
         "val_gain": val_gain if val_gain is not None else "", "window": window,
         "initial_loss": ev.initial_loss or "", "baseline_loss": ev.baseline_loss or "",
         "lr": ev.lr if ev.lr is not None else "unknown"},
        f"In the last {window} epochs (to epoch {epoch}) the best training loss improved by "
        f"{gain:.2%}, and at {recent:.4g} it is still about where it started "
        f"({min(refs):.4g}): the network is learning very slowly, if at all.",
        [f"Raise the learning rate (about {factor:g}x) or run an LR finder; a rate that is "
         "too small takes tiny, consistent steps that need a very long time.",
         "If a higher rate does not help, check that the inputs carry signal and are scaled."],
        _scaled(ev.lr, factor) or None, epoch=epoch)


def best_gain(losses: list[float], window: int) -> float:
    """Relative improvement of the best of the last ``window`` values over the best before."""
    before, recent = min(losses[:-window]), min(losses[-window:])
    return (before - recent) / before if before > 0 and math.isfinite(recent) else 0.0


# --- registries ---------------------------------------------------------------------------

STEP_RULES: dict[str, Callable[[StepEvidence], Finding | None]] = {
    "nan_loss": nan_loss,
    "exploding_gradients": exploding_gradients,
    "vanishing_gradients": vanishing_gradients,
    "dead_relu": dead_relu,
    "saturated_activations": saturated_activations,
}
EPOCH_RULES: dict[str, Callable[[HistoryEvidence], Finding | None]] = {
    "nan_loss": nan_loss_in_history,
    "loss_divergence": loss_divergence,
    "loss_oscillation": loss_oscillation,
    "slow_convergence": slow_convergence,
}


def check_step(ev: StepEvidence) -> list[Finding]:
    return [f for rule in STEP_RULES.values() if (f := rule(ev)) is not None]


def check_history(ev: HistoryEvidence) -> list[Finding]:
    return [f for rule in EPOCH_RULES.values() if (f := rule(ev)) is not None]
