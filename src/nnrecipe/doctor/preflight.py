"""Pre-flight: a few seconds of checks before the first epoch, on any ``nn.Module``.

The debugging recipe, run by machine on throwaway copies of the network:

    1. the loss at initialisation is near what a network that knows nothing scores
    2. every trainable parameter gets a finite, non-zero gradient
    3. the network can memorise a tiny batch (dropout and weight decay off, the caller's
       learning rate, then once more at ten times that rate, or a tenth if the loss rose;
       regularisation is there to stop memorising, so a strong one would fail the check
       for a network that learns, and hide the real illness, underfitting), judged against
       the lowest loss that batch allows: identical inputs with different labels cannot
       all be fitted, so "memorised" means near that floor, not near zero
    4. trained briefly on the real inputs, it beats the same network trained on zeroed
       inputs on rows it has not seen (otherwise it does not use the inputs)

Each step measures numbers into :class:`PreflightEvidence`; the rules in ``RULES`` judge
them, one small function per code. The caller's model and optimizer are never touched
(the checks train deep copies with fresh optimizers from ``make_optimizer``) and torch's
global random state is restored afterwards, so a seeded run stays reproducible.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import Parameter
from torch.optim import Optimizer

from .findings import Finding, make_finding

__all__ = ["PreflightEvidence", "RULES", "run_preflight", "measure_preflight", "check_preflight",
           "nan_loss_at_init", "bad_initial_loss", "no_gradient", "cannot_overfit_batch",
           "no_signal"]

MAX_ROWS = 2048         # rows used by the loss-at-init, gradient and signal checks
FIT_RATIO = 0.1         # "memorised": the final loss under 10% of the starting loss
FIT_FLOOR = 0.01        # ... or under this absolute value (loss units)
RETRY_LR_FACTOR = 10.0  # a tiny batch not memorised is retried at 10× the rate (÷10 if it rose)
MIN_HOLDOUT = 16        # fewer held-out rows than this: the signal check is skipped

OptimizerFactory = Callable[[Iterable[Parameter]], Optimizer]


@dataclass
class PreflightEvidence:
    """What the pre-flight measured; ``None`` where a check could not run."""
    task: str | None = None
    n_rows: int = 0  # rows the checks use
    # 1. loss at initialisation
    initial_loss: float | None = None
    expected_loss: float | None = None        # outputs all neutral (zero logits, zero value)
    best_constant_loss: float | None = None   # class priors / mean: the input-free optimum
    non_finite_inputs: int = 0    # rows whose inputs hold a NaN or an infinity
    non_finite_targets: int = 0   # rows whose target does
    # 2. gradients after one backward pass (parameter names)
    n_trainable: int = 0
    no_grad: list[str] = field(default_factory=list)    # None: the loss never reaches them
    zero_grad: list[str] = field(default_factory=list)  # exactly zero everywhere
    bad_grad: list[str] = field(default_factory=list)   # NaN or infinite
    zero_weights: list[str] = field(default_factory=list)  # weight tensors all zero at init
    # 3. memorising a tiny batch: attempts as (lr, initial, final)
    overfit_rows: int = 0
    overfit_steps: int = 0
    overfit: list[tuple[float, float, float]] = field(default_factory=list)
    overfit_floor: float = 0.0     # the lowest loss the batch allows (identical inputs)
    overfit_duplicates: int = 0    # rows of the batch whose input another row repeats
    # 4. real inputs against zeroed inputs, loss on held-out rows
    signal_steps: int = 0
    n_holdout: int = 0
    real_loss: float | None = None
    zeroed_loss: float | None = None
    gain_se: float | None = None         # standard error of the per-row (zeroed - real) gain
    real_train_drop: float | None = None  # share by which the real-input training loss fell

    @property
    def nan_at_init(self) -> bool:
        """The loss before any step is NaN or infinite."""
        return self.initial_loss is not None and not math.isfinite(self.initial_loss)


def run_preflight(model: nn.Module, loss_fn: nn.Module, make_optimizer: OptimizerFactory,
                  x: Tensor, y: Tensor, **options: Any) -> list[Finding]:
    """Run the checks on ``x``/``y`` (shaped for ``loss_fn``) and return findings;
    ``options`` as :func:`measure_preflight`'s."""
    return check_preflight(measure_preflight(model, loss_fn, make_optimizer, x, y, **options))


def measure_preflight(model: nn.Module, loss_fn: nn.Module, make_optimizer: OptimizerFactory,
                      x: Tensor, y: Tensor, *, task: str | None = None,
                      class_priors: list[float] | None = None, lr: float | None = None,
                      overfit_rows: int = 16, overfit_steps: int = 200,
                      signal_steps: int = 300, seed: int = 0) -> PreflightEvidence:
    """What the checks judge, measured on ``x``/``y`` (the best constant prediction's loss
    among it: the input-free baseline the after-training rules compare with).

    ``lr`` replaces the learning rate of the optimizers ``make_optimizer`` builds (None
    keeps theirs). ``class_priors`` are the training class shares (else taken from ``y``)."""
    if len(x) < 2:  # BatchNorm and the held-out split need rows
        raise ValueError(f"the pre-flight needs at least 2 rows, got {len(x)}")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x, y = x.to(device), y.to(device)
    cuda = sorted({d.index or 0 for d in [device] if d.type == "cuda"})
    ev = PreflightEvidence(task=task or _infer_task(loss_fn))
    with torch.random.fork_rng(devices=cuda):  # the caller's RNG state comes back untouched
        g = torch.Generator().manual_seed(seed)
        rows = torch.randperm(len(x), generator=g)[:MAX_ROWS].to(device)
        xs, ys = x[rows], y[rows]
        torch.manual_seed(seed)  # before each check: each one is reproducible on its own
        _measure_init(ev, model, loss_fn, xs, ys, class_priors)
        torch.manual_seed(seed)
        _measure_gradients(ev, model, loss_fn, xs, ys)
        torch.manual_seed(seed)
        _measure_overfit(ev, model, loss_fn, make_optimizer, xs[:overfit_rows],
                         ys[:overfit_rows], lr, overfit_steps)
        torch.manual_seed(seed)
        _measure_signal(ev, model, loss_fn, make_optimizer, xs, ys, lr, signal_steps, seed)
    return ev


def check_preflight(ev: PreflightEvidence) -> list[Finding]:
    """Every rule; but once the loss at init is not finite, the checks that train or compare
    losses have nothing to judge, so only the NaN itself and missing gradients are told."""
    rules = (nan_loss_at_init, no_gradient) if ev.nan_at_init else RULES
    return [f for rule in rules if (f := rule(ev)) is not None]


# ---------------------------------------------------------------------------- rules

def bad_initial_loss(ev: PreflightEvidence, *, high_ratio: float = 3.0) -> Finding | None:
    """The loss at init is more than ``high_ratio`` times the loss of neutral outputs (ln C
    for C balanced classes, var(y)+mean(y)² for MSE): the outputs start large and confident.
    Three times leaves room for ordinary random init (about 1-1.5 times) while a scale
    error (weights ×10 and more, a summed loss) lands far above it."""
    if ev.initial_loss is None or ev.nan_at_init or not ev.expected_loss \
            or ev.expected_loss <= 0:  # not finite: nan_loss_at_init speaks
        return None
    ratio = ev.initial_loss / ev.expected_loss
    if ratio <= high_ratio:
        return None
    evidence = {"initial_loss": ev.initial_loss, "expected_loss": ev.expected_loss,
                "ratio": ratio}
    if ev.best_constant_loss is not None:
        evidence["best_constant_loss"] = ev.best_constant_loss
    return make_finding(
        "bad_initial_loss", evidence,
        f"Before any training the loss is {ratio:.3g} times what a network with neutral outputs "
        f"scores ({ev.expected_loss:.4g}: {_NEUTRAL_WORDS.get(ev.task, 'all outputs zero')}). "
        "The network starts out confidently wrong, so the first updates are spent undoing the "
        "initialisation.",
        ["Use an initialisation matched to the activation (He for ReLU, Glorot for tanh) "
         "with scale 1 and zero biases.",
         "Check that the loss averages over the batch (reduction='mean', not 'sum') and that "
         "regression targets are standardised.",
         "On imbalanced classes, start the output bias at the log class priors."],
        {"model.init": "auto", "model.init_scale": 1.0, "model.bias_init": 0.0})


_NEUTRAL_WORDS = {"binary": "probability ½ for every row, ln 2",
                  "multiclass": "equal probabilities, ln C for C classes",
                  "regression": "predicting 0, i.e. var(y) + mean(y)² for MSE"}


def nan_loss_at_init(ev: PreflightEvidence) -> Finding | None:
    """The loss of the untrained network is already NaN or infinite: before any step, so
    the learning rate is not the cause; the inputs, the targets or the loss are."""
    if not ev.nan_at_init:
        return None
    where = [f"{n} {what}" for n, what in ((ev.non_finite_inputs, "input rows"),
                                          (ev.non_finite_targets, "targets")) if n]
    found = (f"{' and '.join(where)} of the {ev.n_rows} checked hold a NaN or an infinity"
             if where else "no input or target is NaN or infinite, so the network or the "
             "loss makes it (a log or a division by zero, a square root of a negative)")
    advice = ["Find the rows with torch.isfinite(x).all(dim=1) and drop or impute them; "
              "check what the loader does with empty fields."] if where else []
    advice.append("In a hand-written forward or loss, guard logs and divisions (log of "
                  "softmax: use log_softmax; divide by std + eps).")
    return make_finding(
        "nan_loss",
        {"loss": str(ev.initial_loss), "when": "initialisation",
         "non_finite_input_rows": ev.non_finite_inputs,
         "non_finite_targets": ev.non_finite_targets, "rows_checked": ev.n_rows},
        f"Before any training the loss is {ev.initial_loss}: {found}. Every gradient is then "
        "NaN and the first step turns the weights into NaN.", advice)


def no_gradient(ev: PreflightEvidence) -> Finding | None:
    """A trainable parameter gets a gradient that is missing, all zero, or not finite (not
    counted when the loss itself is not finite: nan_loss_at_init speaks for that)."""
    bad = ev.no_grad + ev.zero_grad + ([] if ev.nan_at_init else ev.bad_grad)
    if not bad:
        return None
    shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
    why = [f"{len(names)} {text}" for names, text in (
        (ev.no_grad, "never reached by the loss (unused in forward, or behind .detach())"),
        (ev.zero_grad, "with an exactly zero gradient"),
        (ev.bad_grad, "with a NaN or infinite gradient")) if names]
    advice = []
    if ev.zero_weights:
        advice.append(f"{len(ev.zero_weights)} weight tensors start at all zeros "
                      f"({', '.join(ev.zero_weights[:4])}): every unit in a layer then gets "
                      "the same (zero) update and symmetry is never broken; use random init.")
    if ev.no_grad:
        advice.append("A layer the loss never reaches wastes memory and silently does nothing: "
                      "wire it into forward, or freeze it on purpose with requires_grad=False.")
    if ev.bad_grad:
        advice.append("Non-finite gradients at step 0 come from the data or the loss (NaN "
                      "inputs, log of 0): check the inputs and targets first.")
    advice.append("Check that every layer sits on the path from the input to the loss.")
    fix = {"model.init": "auto"} if ev.zero_grad or ev.zero_weights else None
    return make_finding(
        "no_gradient",
        {"count": len(bad), "trainable": ev.n_trainable, "none": len(ev.no_grad),
         "zero": len(ev.zero_grad), "non_finite": len(ev.bad_grad), "parameters": shown},
        f"After one backward pass {len(bad)} of {ev.n_trainable} trainable parameter tensors "
        f"cannot learn: {'; '.join(why)}.", advice, fix, layer=bad[0])


def cannot_overfit_batch(ev: PreflightEvidence, *, max_final_ratio: float = FIT_RATIO,
                         floor: float = FIT_FLOOR, min_lr: float = 1e-5) -> Finding | None:
    """The tiny batch's loss did not get under ``max_final_ratio`` of the way from the
    lowest loss the batch allows to where it started (nor within ``floor`` of that lowest
    loss), or it rose at the caller's rate. A working network memorises 16 rows in a couple
    of hundred steps (Karpathy 2019, "overfit one batch"); the retry at ten times the rate
    keeps a merely slow rate from raising the alarm, while a rate at which the loss rises is
    reported either way.

    The lowest loss is zero unless rows with identical inputs carry different targets: no
    network tells them apart, so the best it can do is the label distribution within each
    group of identical inputs, whose cross-entropy is that distribution's entropy (BCE: the
    binary entropy per output), or the group mean, whose squared error is the within-group
    variance (MSE). A table with conflicting duplicates reaches that floor, not zero, and
    is not a network that cannot learn."""
    if not ev.overfit:
        return None
    low = ev.overfit_floor
    memorised = [_memorised(a, b, ev.expected_loss, max_final_ratio, floor, low)
                 for _, a, b in ev.overfit]
    base_lr, first_initial, first_final = ev.overfit[0]
    diverged = not memorised[0] and _rose(first_initial, first_final)
    if memorised[0] or (any(memorised) and not diverged):
        return None
    lr, initial, final = ev.overfit[-1] if not diverged else ev.overfit[0]
    if diverged:
        fix = {"optimizer.lr": base_lr / 10}
        cause = "the loss rose: the step is too large" + (
            f" (at {base_lr / 10:.3g} the batch was memorised)" if any(memorised) else "")
    elif base_lr < min_lr:
        fix = {"optimizer.lr": 1e-3, "model.init": "auto"}
        cause = f"a learning rate of {base_lr:.3g} barely moves the weights"
    elif final - low > 0.9 * (initial - low):
        fix, cause = {"model.init": "auto"}, "the loss barely moved: look at the gradients first"
    else:
        fix = {"model.init": "auto"}
        cause = "the loss fell but stalled: too little capacity, or a bug between data and loss"
    floor_words = "" if low <= 0 else (
        f" ({ev.overfit_duplicates} of the rows repeat another row's inputs with a different "
        f"target, so the lowest loss this batch allows is {low:.4g}, not zero)")
    return make_finding(
        "cannot_overfit_batch",
        {"initial_loss": initial, "final_loss": final, "lowest_possible_loss": low,
         "ratio": (final - low) / (initial - low) if initial > low else math.inf,
         "steps": ev.overfit_steps, "rows": ev.overfit_rows,
         "duplicate_input_rows": ev.overfit_duplicates, "lr": base_lr,
         "retry_lr": ev.overfit[-1][0]},
        f"Trained on only {ev.overfit_rows} rows for {ev.overfit_steps} steps at learning rate "
        f"{lr:.3g} (dropout and weight decay off), the loss went from {initial:.4g} to "
        f"{final:.4g}{floor_words}; "
        f"{cause}. A network that cannot memorise a tiny batch will not learn the full data "
        "set either.",
        ["Overfit a tiny batch first: until the loss reaches about zero (or the floor that "
         "rows with identical inputs and different labels set) here, there is no point in a "
         "long run.",
         "Check that inputs and labels stay paired (no shuffling of one without the other) "
         "and that the loss sees the right target shape.",
         "If the loss moves but stalls, raise capacity (more width or layers); if it does "
         "not move, raise the learning rate or fix the initialisation."], fix)


def no_signal(ev: PreflightEvidence, *, margin: float = 0.9, z: float = 2.0,
              min_train_drop: float = 0.02, max_start_ratio: float = 3.0) -> Finding | None:
    """On held-out rows the real-input network is not clearly better than the one trained
    on zeroed inputs: neither ``real <= margin × zeroed`` nor a gain of ``z`` standard
    errors. Skipped when the comparison is unfair: the real-input network did not learn at
    all (the tiny-batch check speaks to that), or it started ``max_start_ratio`` times above
    the neutral loss (zeroed inputs hide a bad init; bad_initial_loss speaks to that)."""
    if ev.real_loss is None or ev.zeroed_loss is None or ev.gain_se is None:
        return None
    if ev.real_train_drop is None or ev.real_train_drop < min_train_drop:
        return None
    if ev.initial_loss is not None and ev.expected_loss and not \
            ev.initial_loss <= max_start_ratio * ev.expected_loss:
        return None
    gain = ev.zeroed_loss - ev.real_loss
    if ev.real_loss <= margin * ev.zeroed_loss or gain > z * ev.gain_se:
        return None
    return make_finding(
        "no_signal",
        {"real_input_loss": ev.real_loss, "zeroed_input_loss": ev.zeroed_loss,
         "ratio": ev.real_loss / ev.zeroed_loss if ev.zeroed_loss else math.inf,
         "gain_se": ev.gain_se, "holdout_rows": ev.n_holdout, "steps": ev.signal_steps},
        f"Trained for {ev.signal_steps} steps, the network scores {ev.real_loss:.4g} on "
        f"{ev.n_holdout} held-out rows with the real inputs and {ev.zeroed_loss:.4g} with every "
        "input set to zero. It predicts no better than an input-independent baseline: "
        "whatever it learns from the inputs does not carry over to new rows.",
        ["Check that features and labels are aligned row by row (a join or shuffle that "
         "scrambled them makes labels look like noise).",
         "Look at a few rows by hand: can a person predict the label from the inputs?",
         "If the signal is real but weak, more rows or better features help more than a "
         "bigger network."])


RULES: tuple[Callable[[PreflightEvidence], Finding | None], ...] = (
    nan_loss_at_init, bad_initial_loss, no_gradient, cannot_overfit_batch, no_signal)


# ---------------------------------------------------------------------- measurements

def _measure_init(ev, model, loss_fn, x, y, priors) -> None:
    net = _working_copy(model)
    ev.n_rows = len(x)
    ev.non_finite_inputs, ev.non_finite_targets = _non_finite_rows(x), _non_finite_rows(y)
    with torch.no_grad():
        out = net(x)
        ev.initial_loss = loss_fn(out, y).item()
        expected = loss_fn(_neutral_output(loss_fn, out), y).item()
    ev.expected_loss = expected if math.isfinite(expected) and expected > 0 else None
    ev.best_constant_loss = _best_constant_loss(loss_fn, out, y, priors)


def _non_finite_rows(t: Tensor) -> int:
    if not t.is_floating_point():
        return 0
    return int((~torch.isfinite(t.reshape(len(t), -1))).any(dim=1).sum())


def _measure_gradients(ev, model, loss_fn, x, y) -> None:
    net = _working_copy(model)
    loss_fn(net(x), y).backward()
    for name, p in net.named_parameters():
        if not p.requires_grad:
            continue
        ev.n_trainable += 1
        g = p.grad.to_dense() if p.grad is not None and p.grad.is_sparse else p.grad
        if p.dim() > 1 and not p.detach().any():
            ev.zero_weights.append(name)
        if g is None:
            ev.no_grad.append(name)
        elif not torch.isfinite(g).all():
            ev.bad_grad.append(name)
        elif not g.any():
            ev.zero_grad.append(name)


def _measure_overfit(ev, model, loss_fn, make_optimizer, x, y, lr, steps) -> None:
    if len(x) < 2 or steps < 1:  # BatchNorm needs two rows
        return
    ev.overfit_rows, ev.overfit_steps = len(x), steps
    ev.overfit_floor, ev.overfit_duplicates = _lowest_loss(loss_fn, x, y)
    net = _working_copy(model)
    opt = _optimizer(make_optimizer, net, lr, decay=False)
    lr = float(opt.param_groups[0]["lr"])
    first, final = _train(net, opt, loss_fn, x, y, steps)
    ev.overfit.append((lr, first, final))
    if _memorised(first, final, ev.expected_loss, FIT_RATIO, FIT_FLOOR, ev.overfit_floor):
        return
    retry_lr = lr / RETRY_LR_FACTOR if _rose(first, final) else lr * RETRY_LR_FACTOR
    net = _working_copy(model)
    first, final = _train(net, _optimizer(make_optimizer, net, retry_lr, decay=False), loss_fn,
                          x, y, steps)
    ev.overfit.append((retry_lr, first, final))


def _measure_signal(ev, model, loss_fn, make_optimizer, x, y, lr, steps, seed, *,
                    check_every: int = 5) -> None:
    """Train on the last 3/4 of the rows, score the first 1/4, with real and zeroed inputs.
    Each network is scored at its best held-out point (checked every ``check_every``
    steps), as early stopping would: a wide network memorises a few hundred rows within
    the step budget, and its final held-out loss would hide the signal it found on the way."""
    n_hold = len(x) // 4
    if n_hold < MIN_HOLDOUT or steps < 1:
        return
    rows = []
    for inputs in (x, torch.zeros_like(x)):
        torch.manual_seed(seed)  # the same draws for both: only the inputs differ
        net = _working_copy(model)
        opt = _optimizer(make_optimizer, net, lr)
        if isinstance(opt, torch.optim.LBFGS):
            return  # one L-BFGS step is a whole inner optimisation: no held-out path to read
        best, first, final = None, math.nan, math.nan
        for done in range(0, steps, check_every):
            f0, final = _train(net, opt, loss_fn, inputs[n_hold:], y[n_hold:],
                               min(check_every, steps - done))
            first = f0 if done == 0 else first
            if not math.isfinite(final):
                break
            with torch.no_grad():
                held = _per_row_loss(loss_fn, net(inputs[:n_hold]), y[:n_hold])
            if best is None or held.mean() < best.mean():
                best = held
        if best is None:
            return
        rows.append(best)
        if inputs is x:
            ev.real_train_drop = 1 - final / first if first > 0 and math.isfinite(final) else 0.0
    gain = rows[1] - rows[0]  # (n_hold,) per-row loss given up by zeroing the inputs
    ev.signal_steps, ev.n_holdout = steps, n_hold
    ev.real_loss, ev.zeroed_loss = rows[0].mean().item(), rows[1].mean().item()
    ev.gain_se = (gain.std() / math.sqrt(n_hold)).item()


# ------------------------------------------------------------------------- helpers

def _working_copy(model: nn.Module) -> nn.Module:
    """A deep copy in train mode (BatchNorm keeps batch statistics) with dropout off."""
    net = copy.deepcopy(model)
    net.train()
    for m in net.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.p = 0.0
        elif isinstance(m, nn.RNNBase | nn.MultiheadAttention):
            m.dropout = 0.0
    return net


def _optimizer(make_optimizer: OptimizerFactory, net: nn.Module, lr: float | None, *,
               decay: bool = True) -> Optimizer:
    """``decay=False``: weight decay off (the memorisation check)."""
    opt = make_optimizer(p for p in net.parameters() if p.requires_grad)
    for group in opt.param_groups:
        if lr is not None:
            group["lr"] = lr
        if not decay and "weight_decay" in group:
            group["weight_decay"] = 0.0
    return opt


def _train(net, opt, loss_fn, x, y, steps) -> tuple[float, float]:
    """Full-batch steps; the loss before the first and after the last step."""
    first = math.nan
    for i in range(steps):
        loss = loss_fn(net(x), y)
        if i == 0:
            first = loss.item()
        if not torch.isfinite(loss):
            return first, math.inf
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if isinstance(opt, torch.optim.LBFGS):  # it re-evaluates the loss in a line search
            opt.step(lambda: _closure_loss(net, opt, loss_fn, x, y))
        else:
            opt.step()
    with torch.no_grad():
        final = loss_fn(net(x), y).item()
    return first, final if math.isfinite(final) else math.inf


def _closure_loss(net, opt, loss_fn, x, y) -> Tensor:
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(net(x), y)
    loss.backward()
    return loss


def _memorised(initial: float, final: float, expected: float | None, ratio: float,
               floor: float, low: float = 0.0) -> bool:
    """Near the lowest loss ``low`` the batch allows: within ``ratio`` of the way from
    ``low`` to the starting loss (or to the neutral-output loss when a bad init made the
    start huge), or within ``floor`` of ``low``."""
    if not math.isfinite(final):
        return False
    ref = min(initial, expected) if expected else initial
    return final - low <= ratio * max(ref - low, 0.0) or final - low <= floor


@torch.no_grad()
def _lowest_loss(loss_fn: nn.Module, x: Tensor, y: Tensor) -> tuple[float, int]:
    """(the lowest mean loss any network can reach on ``x``/``y``, the number of rows whose
    input another row repeats). Rows with identical inputs get identical outputs, so the
    best a network can do for a group of them is the best constant prediction for that
    group's targets: the entropy of the group's label distribution (cross-entropy; binary
    entropy for BCE) or its variance (MSE). Other losses get 0 (no floor is assumed)."""
    if len(x) < 2:
        return 0.0, 0
    _, group = torch.unique(x.detach().reshape(len(x), -1), dim=0, return_inverse=True)
    counts = torch.bincount(group)
    duplicates = int((counts[group] > 1).sum())
    if duplicates == 0:
        return 0.0, 0
    n_groups = len(counts)
    if isinstance(loss_fn, nn.CrossEntropyLoss) and y.dim() == 1 and not y.is_floating_point():
        joint = torch.zeros(n_groups, int(y.max()) + 1, dtype=torch.float64, device=y.device)
        joint.index_put_((group, y), torch.ones(len(y), dtype=torch.float64,
                                                device=y.device), accumulate=True)
        p = joint / joint.sum(1, keepdim=True)
        ent = -(p * p.clamp_min(1e-300).log()).sum(1)          # per group
        return float((ent * counts.double()).sum() / len(y)), duplicates
    per_row = y.detach().double().reshape(len(y), -1)
    means = torch.zeros(n_groups, per_row.shape[1], dtype=torch.float64, device=y.device)
    means.index_add_(0, group, per_row)
    means = means / counts.double().unsqueeze(1)
    if isinstance(loss_fn, nn.BCEWithLogitsLoss | nn.BCELoss):
        p = means[group].clamp(1e-12, 1 - 1e-12)
        return float((-(p * p.log() + (1 - p) * (1 - p).log())).mean()), duplicates
    if isinstance(loss_fn, nn.MSELoss):
        return float(((per_row - means[group]) ** 2).mean()), duplicates
    return 0.0, duplicates


def _rose(initial: float, final: float) -> bool:
    return not math.isfinite(final) or final > initial


def _infer_task(loss_fn: nn.Module) -> str | None:
    kinds = {"multiclass": (nn.CrossEntropyLoss, nn.NLLLoss),
             "binary": (nn.BCEWithLogitsLoss, nn.BCELoss),
             "regression": (nn.MSELoss, nn.L1Loss, nn.HuberLoss, nn.SmoothL1Loss)}
    return next((task for task, types in kinds.items() if isinstance(loss_fn, types)), None)


def _neutral_output(loss_fn: nn.Module, out: Tensor) -> Tensor:
    """What a network that knows nothing outputs: probability ½ for BCELoss, uniform
    log-probabilities for NLLLoss, zero (logits or values) otherwise."""
    if isinstance(loss_fn, nn.BCELoss):
        return torch.full_like(out, 0.5)
    if isinstance(loss_fn, nn.NLLLoss):
        return torch.full_like(out, -math.log(out.shape[1]))
    return torch.zeros_like(out)


def _best_constant_loss(loss_fn, out, y, priors) -> float | None:
    """Entropy of the class priors (cross-entropy, BCE) or var(y) (MSE): the loss of the
    best prediction that ignores the inputs."""
    if isinstance(loss_fn, nn.CrossEntropyLoss) and y.dim() == 1 and not y.is_floating_point():
        p = torch.tensor(priors, dtype=torch.float64) if priors else \
            torch.bincount(y.cpu(), minlength=out.shape[1]).double()
        p = p / p.sum()
        return -(p[p > 0] * p[p > 0].log()).sum().item()
    if isinstance(loss_fn, nn.BCEWithLogitsLoss | nn.BCELoss):
        p1 = torch.tensor([priors[-1]], dtype=torch.float64) if priors and len(priors) == 2 \
            else y.double().reshape(len(y), -1).mean(0).cpu()
        p1 = p1.clamp(1e-12, 1 - 1e-12)
        return (-(p1 * p1.log() + (1 - p1) * (1 - p1).log())).mean().item()
    if isinstance(loss_fn, nn.MSELoss) and y.is_floating_point():
        return y.double().reshape(len(y), -1).var(0, unbiased=False).mean().item()
    return None


def _per_row_loss(loss_fn: nn.Module, out: Tensor, y: Tensor) -> Tensor:
    """(N,) loss of each row: the loss with reduction 'none' when it has one."""
    if hasattr(loss_fn, "reduction"):
        per = copy.copy(loss_fn)
        per.reduction = "none"
        return per(out, y).reshape(len(out), -1).float().mean(1)
    return torch.stack([loss_fn(out[i:i + 1], y[i:i + 1]) for i in range(len(out))]).float()
