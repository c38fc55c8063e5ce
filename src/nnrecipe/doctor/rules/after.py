"""After-training rules: read the finished learning curves (and the held-out predictions)
the way a practitioner would.

    train falls, validation rises for several epochs   → overfitting
    training rows scored 10x better than validation    → overfitting (the gap)
    train stays near the input-free baseline, val ≈ train → underfitting
    both near the baseline, train still falling at the end → slow_convergence
    a linear model gets much further on the same rows    → underfitting (flat at the end),
                                                           slow_convergence (still falling)
    too few validation rows, or epoch-to-epoch jitter
    as large as the improvement                         → noisy_validation
    held-out rows whose label the model firmly rejects  → label_issues (cleanlab)

Each rule is ``rule(evidence) -> Finding | None`` with its thresholds as keyword defaults;
``check_after`` runs the registry ``RULES``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..findings import Finding, make_finding
from .config import lr_ranges
from .live import best_gain

__all__ = ["AfterEvidence", "RULES", "behind_a_linear_model", "check_after",
           "find_label_issues", "label_issues_if_learned", "memorised", "overfitting",
           "stopped_before_learning", "underfitting", "noisy_validation"]

CLASSIFICATION = ("binary", "multiclass")


@dataclass
class AfterEvidence:
    """A finished run. Losses are per epoch; ``baseline_loss`` is the loss of the
    input-independent prediction (class priors, or the mean) on the training split with
    the same loss function. ``fix_context`` holds the current plan values the fixes build
    on and the rules read, by plan key (``model.dropout``, ``optimizer.weight_decay``,
    ``model.width``, ``model.hidden_layers``, ``optimizer.name``, ``optimizer.lr``)."""
    train_loss: list[float]
    val_loss: list[float]
    n_val: int
    task: str
    baseline_loss: float | None
    val_metric: list[float] | None = None
    metric_name: str | None = None
    fix_context: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] | None = None


def check_after(ev: AfterEvidence) -> list[Finding]:
    return [f for rule in RULES if (f := rule(ev)) is not None]


def overfitting(ev: AfterEvidence, *, rising_epochs: int = 3,
                min_rise: float = 0.02) -> Finding | None:
    """Validation loss ended at least ``rising_epochs`` epochs past its best, trending up
    (a positive least-squares slope since the best epoch) with its last ``rising_epochs``
    values on average ``min_rise`` (relative) above the best, while the training loss kept
    falling and ended below the validation loss. Averaging three epochs and asking 2% keeps
    one noisy epoch from counting.

    ``parting_epoch`` in the evidence is where the curves part: the lowest point of the
    validation loss averaged over three neighbouring epochs, so that one lucky epoch on a
    small validation set does not set it (Prechelt 1998 reads the same curve to stop).

    With early stopping on, the validation loss rises for up to ``patience`` epochs before
    it stops, and the loop keeps the best epoch's weights: that is the cure working, not a
    fault, so a rise no longer than the patience is an info note (a warning when training
    went on past it: no early stopping, or a patience too long to matter)."""
    train, val = _finite(ev.train_loss), _finite(ev.val_loss)
    if train is None or val is None or len(val) != len(train) or len(val) <= rising_epochs:
        return None
    best = int(np.argmin(val))
    since = len(val) - 1 - best
    if since < rising_epochs:
        return None
    recent = float(np.mean(val[-rising_epochs:])) - val[best]
    slope = float(np.polyfit(np.arange(since + 1), val[best:], 1)[0])
    if slope <= 0 or recent <= min_rise * abs(val[best]):
        return None
    rise = val[-1] - val[best]
    if train[-1] >= train[best]:  # training did not improve either: not overfitting
        return None
    if val[-1] <= train[-1]:  # validation still no worse than training: no gap to close
        return None
    fix = _regularised(ev)
    smooth = np.convolve(val, np.ones(3), "same") / np.convolve(np.ones(len(val)), np.ones(3),
                                                                "same")
    parting = int(np.argmin(smooth)) + 1
    patience = int(_ctx(ev, "train.early_stopping.patience", 0) or 0)
    caught = 0 < patience and since <= patience
    return make_finding(
        "overfitting",
        {"parting_epoch": parting, "best_epoch": best + 1, "best_val_loss": val[best],
         "final_val_loss": val[-1], "val_rise": rise, "final_train_loss": train[-1],
         "train_loss_at_parting": train[parting - 1], "gap": val[-1] - train[-1],
         "epochs_since_best": since, "patience": patience},
        f"The curves part at about epoch {parting}: the validation loss was lowest at epoch "
        f"{best + 1} ({val[best]:.4g}) and rose to {val[-1]:.4g} over the next {since} epochs "
        f"while the training loss kept falling (from {train[parting - 1]:.4g} to "
        f"{train[-1]:.4g}): the network is memorising the training rows instead of learning "
        "what carries over." + (f" Early stopping (patience {patience}) ended it and kept "
                                f"epoch {best + 1}'s weights, so the saved model is the one "
                                "from before the curves parted." if caught else ""),
        REGULARISE, fix or None, epoch=best + 1, severity="info" if caught else None)


REGULARISE = [
    "Regularise: more dropout (0.1 to 0.5 is the usual range), weight decay, or early "
    "stopping on validation loss (the best epoch's weights are the ones to keep).",
    "More training data (or augmentation) helps more than any regulariser.",
    "A smaller network is the other lever if regularising is not enough."]


def _regularised(ev: AfterEvidence) -> dict[str, Any]:
    """The overfitting fix: 0.1 more dropout (to 0.5 at most), ten times the weight decay
    (1e-4 from none)."""
    dropout = _ctx(ev, "model.dropout", 0.0)
    wd = _ctx(ev, "optimizer.weight_decay", 0.0)
    fix = {"model.dropout": round(min(0.5, dropout + 0.1), 3),
           "optimizer.weight_decay": 1e-4 if wd < 1e-4 else min(10.0, wd * 10)}
    if fix["model.dropout"] <= dropout:
        del fix["model.dropout"]
    return fix


def memorised(ev: AfterEvidence, *, ratio: float = 10.0, min_share: float = 0.01
              ) -> Finding | None:
    """Overfitting seen in the gap rather than in the curve: the trained network's loss on
    its own training rows (scored in eval mode, so dropout and augmentation do not hide
    it: ``reference["net_train_loss"]``) is under 1/``ratio`` of its best validation loss,
    and that validation loss is at least ``min_share`` of the input-independent
    prediction's (two near-perfect losses make big ratios of nothing). The curve rule
    above needs the validation loss to turn upwards; on a few validation rows it may keep
    creeping down while the network memorises (digits on 100 images, no regularisation:
    0.0016 on training rows, 0.063 on validation, a test accuracy of 0.83 where the
    default plan gets 0.99). Healthy plans measured 0.6 to 1.9 times (the benchmark's).

    A warning without early stopping; with it, an info note (the saved weights are the
    best epoch's). Quiet when the curve rule speaks."""
    ref, val = ev.reference, _finite(ev.val_loss)
    if not ref or val is None or not ev.baseline_loss or overfitting(ev) is not None:
        return None
    net_train, best = ref["net_train_loss"], min(val)
    if not (math.isfinite(net_train) and best >= min_share * ev.baseline_loss
            and net_train * ratio <= best):
        return None
    patience = int(_ctx(ev, "train.early_stopping.patience", 0) or 0)
    return make_finding(
        "overfitting",
        {"net_train_loss": net_train, "best_val_loss": best, "gap_ratio": best / net_train
         if net_train > 0 else "", "baseline_loss": ev.baseline_loss, "patience": patience},
        f"The network scores {net_train:.3g} on its own training rows and {best:.3g} at best "
        f"on validation, {best / max(net_train, 1e-12):.0f} times as much: it has memorised "
        "the training rows, and what it learned carries over far less well."
        + (f" Early stopping (patience {patience}) kept the best epoch's weights." if patience
           else " Nothing held it back: no early stopping."),
        REGULARISE, _regularised(ev) or None, severity="info" if patience else None)


def stopped_before_learning(ev: AfterEvidence, *, near_baseline: float = 0.9,
                            window: int = 3, min_gain: float = 0.03,
                            bottom: float = 3.0) -> Finding | None:
    """Training ended (early stopping or the epoch cap) with neither loss past
    ``near_baseline`` × the input-free baseline (the best validation loss, and the lowest
    training loss), and either the training loss was still falling (its best of the last
    ``window`` epochs beat the best before by at least ``min_gain``, relative) or the
    learning rate was within a factor ``bottom`` of the lowest of its optimizer's usual
    range. The network had not got anywhere, but not for lack of capacity (the
    underfitting curve is flat, at an ordinary rate): its steps are too small, so
    ``slow_convergence``. Seen with Adam at 3e-5 on a small convnet: the training loss fell
    from 1.74 to 1.36 in six epochs, the validation loss (in eval mode, BatchNorm's running
    statistics still settling) rose from 1.12 at epoch 1, and patience 5 stopped the run
    with the weights of epoch 1, at chance; at 1e-5 the training loss only wobbled (1.76,
    1.70, 1.56, 1.77, 1.74, 1.58), and only the rate tells it from a network held back."""
    train, val = _finite(ev.train_loss), _finite(ev.val_loss)
    base = ev.baseline_loss
    if train is None or len(train) <= window or not base or not math.isfinite(base):
        return None
    if min(train) < near_baseline * base or (val is not None and min(val) < near_baseline * base):
        return None
    gain = best_gain(train, window)
    lr = _ctx(ev, "optimizer.lr", None)
    low = lr_ranges().get(str(_ctx(ev, "optimizer.name", "")).lower(), (None,))[0]
    at_bottom = isinstance(lr, int | float) and low is not None and lr <= bottom * low
    if gain < min_gain and not at_bottom:
        return None  # flat at an ordinary rate: the underfitting rule's case
    evidence = {"baseline_loss": base, "best_train_loss": min(train),
                "best_val_loss": min(val) if val is not None else "",
                "train_gain_last_epochs": gain, "window": window,
                "lr": lr if lr is not None else "unknown",
                "usual_low": low if low is not None else ""}
    how = (f"the training loss still falling ({gain:.0%} in its last {window} epochs)"
           if gain >= min_gain else
           f"the learning rate {lr:g} at the bottom of its optimizer's usual range (from "
           f"{low:g})")
    return make_finding(
        "slow_convergence", evidence,
        f"Training ended at epoch {len(train)} with {how} and no loss yet below "
        f"{near_baseline:.0%} of what predicting the "
        f"{'class shares' if ev.task in CLASSIFICATION else 'mean'} scores ({base:.4g}): the "
        "network was learning, in steps too small to get anywhere before training stopped.",
        ["Raise the learning rate (an LR range test finds the largest stable one).",
         "If the validation loss rose at first and early stopping ended the run, a higher "
         "rate is still the fix: the first epochs then move the weights far enough to "
         "show."],
        {"optimizer.lr": lr * 10} if isinstance(lr, int | float) and lr > 0 else None,
        epoch=len(train))


def underfitting(ev: AfterEvidence, *, near_baseline: float = 0.8,
                 max_gap: float = 0.1) -> Finding | None:
    """The final training loss is above ``near_baseline`` × the input-free baseline and
    validation is within ``max_gap`` (relative) of it: the network learned little beyond
    the class priors / the mean, and it is not a generalisation problem. Quiet where
    :func:`stopped_before_learning` speaks (the loss was still falling: too slow, not held
    back)."""
    train = _finite(ev.train_loss)
    if train is None or not ev.baseline_loss or not math.isfinite(ev.baseline_loss):
        return None
    if stopped_before_learning(ev) is not None:
        return None
    final = train[-1]
    if final <= near_baseline * ev.baseline_loss:
        return None
    val = _finite(ev.val_loss)
    if val is not None and abs(val[-1] - final) > max_gap * max(abs(final), 1e-12):
        return None
    fix = {}
    layers, width = _ctx(ev, "model.hidden_layers", None), _ctx(ev, "model.width", None)
    if layers is not None:
        fix["model.hidden_layers"] = min(64, int(layers) + 1)
    if width is not None:
        fix["model.width"] = min(8192, int(width) * 2)
    evidence = {"final_train_loss": final, "baseline_loss": ev.baseline_loss,
                "ratio": final / ev.baseline_loss}
    if val is not None:
        evidence["final_val_loss"] = val[-1]
    return make_finding(
        "underfitting", evidence,
        f"After {len(train)} epochs the training loss ({final:.4g}) is still "
        f"{final / ev.baseline_loss:.0%} of what predicting the "
        f"{'class priors' if ev.task in CLASSIFICATION else 'mean'} for every row scores "
        f"({ev.baseline_loss:.4g}), and validation is no better: the network has learned "
        "little from the inputs.",
        ["Train longer, or raise capacity: more layers or more units per layer.",
         "Try a higher learning rate (an LR range test finds it) if the loss fell slowly "
         "throughout.",
         "If no setting beats the baseline, check that the inputs carry the signal (the "
         "pre-flight's zeroed-input comparison) and that features are scaled."],
        fix or None)


def behind_a_linear_model(ev: AfterEvidence, *, share: float = 0.7, window: int = 5,
                          min_gain: float = 0.01, min_epochs: int = 10) -> Finding | None:
    """The network does not get ``share`` of the way a linear model gets, on the same rows
    and in the same loss, from the input-independent prediction: neither on its own
    training rows (scored in eval mode) nor on validation. A network with hidden layers
    that cannot fit its training rows as well as logistic or ridge regression is held
    back (Karpathy 2019: beat the dumb baselines first). The share, not a ratio of losses,
    because a linear model's loss near zero would turn noise into big ratios.

    Measured (benchmarks/doctor_graded.py): healthy plans close at least 0.80 of the gap
    on training rows and 0.86 on validation (breast cancer with a cosine schedule, the
    lowest; digits with SGD and momentum 0.92); weight decay 0.3 on breast cancer closes
    0.45 and 0.52, weight decay 1 on digits 0.62 and 0.60.

    Two causes, told apart by the end of the curve: a validation loss still improving in
    the last ``window`` epochs (by ``min_gain`` relative) means training stopped on the
    epoch cap while learning slowly (``slow_convergence``: a higher rate, more epochs); a
    flat one, an early stop, means the network cannot get further (``underfitting``: less
    regularisation, more capacity). Quiet where the near-baseline rules above already
    speak, and for runs shorter than ``min_epochs`` (the ``doctor`` command's probe, a
    quick look): too short to say which."""
    ref = ev.reference
    train, val = _finite(ev.train_loss), _finite(ev.val_loss)
    base = ev.baseline_loss
    if not ref or train is None or val is None or not base or not math.isfinite(base):
        return None
    if len(val) < min_epochs or underfitting(ev) is not None \
            or stopped_before_learning(ev) is not None:
        return None
    net_val = min(val)
    closed = {}
    for part, net in (("train", ref["net_train_loss"]), ("val", net_val)):
        gap = base - ref[f"{part}_loss"]
        if not (math.isfinite(net) and gap > 0):
            return None
        closed[part] = (base - net) / gap
    if max(closed.values()) >= share:
        return None
    evidence = {"reference_model": ref["model"], "reference_rows": ref["rows"],
                "baseline_loss": base,
                "reference_train_loss": ref["train_loss"], "net_train_loss": ref["net_train_loss"],
                "reference_val_loss": ref["val_loss"], "net_best_val_loss": net_val,
                "share_closed_train": closed["train"], "share_closed_val": closed["val"],
                "share_needed": share}
    compared = (f"On the training rows the network's loss is {ref['net_train_loss']:.4g} "
                f"against {ref['train_loss']:.4g} for {ref['model']}, and its best validation "
                f"loss {net_val:.4g} against {ref['val_loss']:.4g}: from the "
                f"input-independent prediction's {base:.4g} it got "
                f"{closed['train']:.0%} and {closed['val']:.0%} of the way the linear model "
                "gets")
    gain = best_gain(val, window) if len(val) > window else 0.0
    lr = _ctx(ev, "optimizer.lr", None)
    if gain >= min_gain:  # still falling when the epochs ran out
        evidence["val_gain_last_epochs"] = gain
        return make_finding(
            "slow_convergence", evidence,
            f"{compared}, and the validation loss was still falling when training ended at "
            f"epoch {len(val)}: the network learns, but too slowly to get there in the "
            "epochs it had.",
            ["Raise the learning rate (an LR range test finds the largest stable one), or "
             "use momentum or Adam.",
             "Train for more epochs if a higher rate is not stable."],
            {"optimizer.lr": lr * 3} if isinstance(lr, int | float) and lr > 0 else None,
            epoch=len(val))
    wd = float(_ctx(ev, "optimizer.weight_decay", 0.0) or 0.0)
    fix = {"optimizer.weight_decay": wd / 100} if wd >= 1e-3 else None
    return make_finding(
        "underfitting", evidence,
        f"{compared}. The validation loss had stopped improving, so more epochs would not "
        "help: the network is held back"
        + (f" (weight decay {wd:g} pulls every weight towards zero)." if wd >= 1e-3 else "."),
        (["Lower the weight decay (the usual range is 1e-5 to 1e-2)."] if wd >= 1e-3 else [])
        + ["Less dropout, or more capacity: more layers or units.",
           "Check the learning rate with an LR range test."],
        fix)


def noisy_validation(ev: AfterEvidence, *, min_rows: int = 100, warn_rows: int = 20,
                     max_noise_share: float = 0.5, min_epochs: int = 5) -> Finding | None:
    """A warning when the validation metric's epoch-to-epoch noise is at least
    ``max_noise_share`` of its whole improvement over training (the noise from second
    differences, std(Δ²m)/√6, which a smooth learning curve leaves near zero), or when there
    are fewer than ``warn_rows`` validation rows: one row then moves accuracy by more than 5
    points and the standard error at 90% accuracy is over ±6.7 points, so even a steady
    curve says little. An info note for fewer than ``min_rows`` (wine's 27 validation rows,
    say: small, worth knowing, nothing a user must act on)."""
    se = _binomial_se(ev)
    evidence: dict[str, Any] = {"n_val": ev.n_val}
    if se is not None:
        evidence["standard_error"] = se
    m = _finite(ev.val_metric) if ev.val_metric is not None else None
    noise = gain = 0.0
    if m is not None and len(m) >= min_epochs:
        noise = float(np.std(np.diff(m, 2)) / math.sqrt(6))
        gain = max(abs(max(m) - m[0]), abs(min(m) - m[0]))
    if noise > 0 and noise >= max_noise_share * gain:
        severity = "warning"  # measured: the curve is mostly noise
        evidence.update(metric_noise=noise, metric_improvement=gain)
        why = (f"{ev.metric_name or 'the metric'} jitters by about {noise:.3g} from epoch to "
               f"epoch against an improvement of {gain:.3g} over the whole run")
    elif ev.n_val < min_rows:
        # small, but the curve was steady: worth knowing; too small to trust: a warning
        severity = "warning" if ev.n_val < warn_rows else "info"
        why = f"only {ev.n_val} rows" + (f": one row moves accuracy by {1 / max(ev.n_val, 1):.1%}"
                                         if ev.task in CLASSIFICATION else "")
    else:
        return None
    extra = "" if se is None else (
        f" At {ev.metric_name or 'accuracy'} {_last(ev):.3g} the standard error on {ev.n_val} "
        f"rows is ±{se:.3g}, so differences under about {2 * se:.2g} are chance.")
    return make_finding(
        "noisy_validation", evidence,
        f"The validation set is too small for a stable metric ({why}). Model choices and "
        f"early stopping made on it follow noise.{extra}",
        ["Use a bigger validation split if the data allows it.",
         "With little data, use k-fold cross-validation and compare models on the mean "
         "over folds.",
         "Compare models on validation loss (less noisy than accuracy) and treat "
         "differences within two standard errors as ties."], severity=severity)


RULES: tuple[Callable[[AfterEvidence], Finding | None], ...] = (
    overfitting, memorised, stopped_before_learning, underfitting, behind_a_linear_model,
    noisy_validation)


def find_label_issues(labels: np.ndarray, pred_probs: np.ndarray, row_ids: list, *,
                      max_listed: int = 20, warn_share: float = 0.03,
                      max_p_value: float = 0.01) -> Finding | None:
    """Rows whose given label the model (out of sample) finds unlikely, by cleanlab's
    confident learning; listed worst first (lowest probability of the given label).

    Any model errs on some rows, and those rows look mislabelled to it, so a warning needs
    more than suspects. Two things earn one; anything else is listed as an info note:

    * **slips in the held-out labels**: the suspects are clearly more than the errors the
      model expects of itself (the sum over rows of 1 − its top probability, the number of
      mistakes a model as sure as this one makes if its probabilities are right: a
      one-sided Poisson test, p < ``max_p_value``), and at least ``warn_share`` of the rows;
    * **a noise floor the model learned**: on the half of the rows it finds easiest, the
      model still keeps ``warn_share`` or more of its probability for other classes on
      average (its doubt there is its learned share of labels that no input explains; a
      network trained on consistent labels is near-sure of its easiest rows: 0.2% to 1.2%
      on the healthy runs of the graded benchmark), and the held-out labels bear that out:
      at least ``warn_share`` of the rows are suspects, and at least half as many as the
      floor implies (a model that merely hedges, from weight decay say, keeps doubt on
      easy rows whose labels still agree with it). Labels flipped at random in every split
      look like this, and so do classes that overlap even where they are clearest: the
      two are the same to any model whose probabilities are right, so the message names
      both. The 1% of labels ``make_classification`` flips by default stays an info note
      (a floor of 0.4%).

    ``labels``: class codes 0..C-1, shape (N,); ``pred_probs``: (N, C) out-of-sample
    probabilities (held-out rows, or cross-validated); ``row_ids``: how to find each row."""
    from cleanlab.filter import find_label_issues as cl_find  # import only when used

    labels, probs = np.asarray(labels).astype(int), _class_probs(pred_probs)
    if len(labels) == 0 or len(np.unique(labels)) < 2:
        return None
    # n_jobs=1: no worker processes forked from a process that holds torch and its threads
    ranked = cl_find(labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    if len(ranked) == 0:
        return None
    listed = [(row_ids[i], int(labels[i]), float(probs[i, labels[i]]))
              for i in ranked[:max_listed]]
    rows = "; ".join(f"{rid} (label {lab}, p={p:.3f})" for rid, lab, p in listed)
    from scipy.stats import poisson

    n, count = len(labels), len(ranked)
    doubt = 1.0 - probs.max(axis=1)
    expected = float(np.sum(doubt))
    p_value = float(poisson.sf(count - 1, max(expected, 1e-9)))  # P(X >= count)
    floor = float(np.mean(np.sort(doubt)[:max(1, n // 2)]))  # the easiest half's doubt
    enough = count / n >= warn_share
    slips = p_value < max_p_value and enough
    noise_floor = floor >= warn_share and enough and count >= 0.5 * floor * n
    evidence = {"count": count, "share": count / n, "rows_checked": n,
                "expected_model_errors": expected, "p_value": p_value, "noise_floor": floor,
                "listed": len(listed), "rows": rows}
    said = (f"{count} of {n} held-out rows ({count / n:.1%}) carry a label the model "
            f"confidently disagrees with; from its own confidence the model expects about "
            f"{expected:.1f} mistakes on these rows, ")
    if slips:
        said += (f"so the suspects are clearly more than its errors explain (p = {p_value:.2g}): "
                 "wrong labels are likely among them, and they cap any model's accuracy and "
                 "mislead evaluation.")
    elif noise_floor:
        evidence["basis"] = "noise_floor"
        said += (f"but even on the half of the rows it finds easiest it keeps {floor:.1%} for "
                 "other classes: it learned from the training labels that about that share "
                 "disagree with every input. Either labels are wrong at about that rate "
                 "(wrong labels cap any model's accuracy and mislead evaluation), or the "
                 "inputs cannot tell the classes apart even where they are clearest.")
    else:
        said += ("which explains them as well as wrong labels would: look at them if you can, "
                 "but nothing says the labels are at fault.")
    return make_finding(
        "label_issues", evidence, said,
        ["Look at these rows (worst first): " + rows,
         "Fix labels that are wrong; if they are right, the model fails on them: find "
         "what they have in common and add more rows like them (or inputs that tell "
         "their classes apart)."],
        severity="warning" if slips or noise_floor else "info")


def label_issues_if_learned(labels: np.ndarray, pred_probs: np.ndarray, row_ids: list, *,
                            min_gain: float = 0.7, min_rows: int = 20) -> Finding | None:
    """:func:`find_label_issues`, asked only of a model that learned: a model that learned
    little calls every hard row mislabelled. Learned: the median row's loss, -log of the
    probability given to its label, under ``min_gain`` times the median row's loss of the
    class shares predicted for every row. The median, not the mean: mislabelled rows are
    the ones the model contradicts, so they inflate the mean loss (20% of breast cancer's
    labels flipped: the best validation loss 0.536, 0.78 of the class shares' 0.685, so the
    mean-loss gate never asked), while
    the typical row still says what the model learned. Fewer than ``min_rows`` rows: not
    judged."""
    labels, probs = np.asarray(labels).astype(int), _class_probs(pred_probs)
    if len(labels) < min_rows or probs.shape[0] != len(labels) or not np.all(np.isfinite(probs)):
        return None
    shares = np.bincount(labels, minlength=probs.shape[1]) / len(labels)
    given = probs[np.arange(len(labels)), labels]
    model = float(np.median(-np.log(np.clip(given, 1e-12, 1.0))))
    prior = float(np.median(-np.log(shares[labels])))
    if not model < min_gain * prior:
        return None
    return find_label_issues(labels, probs, row_ids)


# ------------------------------------------------------------------------- helpers

def _class_probs(pred_probs: np.ndarray) -> np.ndarray:
    """(N, C) probabilities; P(class 1) alone, shape (N,), becomes its two columns."""
    probs = np.asarray(pred_probs, dtype=float)
    return np.column_stack([1 - probs, probs]) if probs.ndim == 1 else probs


def _finite(values: list[float] | None) -> list[float] | None:
    """The values as floats, or None when missing, empty or not all finite (a run that
    went NaN is the live rules' business)."""
    if not values or any(v is None for v in values):
        return None
    out = [float(v) for v in values]
    return out if all(math.isfinite(v) for v in out) else None


def _ctx(ev: AfterEvidence, key: str, default: Any) -> Any:
    short = key.split(".")[-1]
    return ev.fix_context.get(key, ev.fix_context.get(short, default))


def _last(ev: AfterEvidence) -> float:
    return float(ev.val_metric[-1]) if ev.val_metric else math.nan


def _binomial_se(ev: AfterEvidence) -> float | None:
    """sqrt(p(1-p)/n) when the metric is accuracy-like (classification, within [0, 1])."""
    p = _last(ev)
    if ev.task not in CLASSIFICATION or not 0 <= p <= 1 or ev.n_val <= 0:
        return None
    return math.sqrt(max(p * (1 - p), 0.25 / ev.n_val) / ev.n_val)
