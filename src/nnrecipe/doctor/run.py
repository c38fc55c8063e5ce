"""The doctor inside an nnrecipe run: build each family's evidence and run its rules.

Before training: data rules (profile + the inputs as the network sees them) and
configuration rules (plan + model), then the pre-flight checks on a sample of rows. During
training: :class:`LiveMonitor`. After: the learning-curve rules and label issues on the
validation rows (held out from training, so the model's probabilities there are out of
fold).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ..lazy import lazy
from ..plan import Plan
from ..train.loop import predict_batches
from .findings import Finding
from .preflight import MAX_ROWS, run_preflight
from .rules.after import AfterEvidence, check_after, label_issues_if_learned
from .rules.config import check_config, config_evidence_from_plan
from .rules.data import DataEvidence, check_data

__all__ = ["before_training", "after_training", "constant_baseline_loss", "linear_reference",
           "PREFLIGHT_ROWS"]

sk_exceptions = lazy("sklearn.exceptions")
sk_linear = lazy("sklearn.linear_model")
sk_pipeline = lazy("sklearn.pipeline")
sk_preprocessing = lazy("sklearn.preprocessing")

PREFLIGHT_ROWS = 2048  # rows handed to the pre-flight checks: enough signal, a few seconds
REFERENCE_ROWS = 2000  # training rows the linear reference is fitted on (about a second)
REFERENCE_INPUTS = 2048  # wider inputs (large images, spectrograms): no linear reference


@torch.no_grad()
def constant_baseline_loss(loss_fn: torch.nn.Module, loss_name: str, y: torch.Tensor) -> float:
    """The loss of the best input-independent prediction on ``y``: class priors as logits
    for bce / cross-entropy, the mean (mse) or median (mae, huber) otherwise."""
    if loss_name == "cross_entropy":
        priors = torch.bincount(y).float().clamp_min(1) / len(y)
        return loss_fn(priors.log().expand(len(y), -1), y).item()
    if loss_name == "bce":
        p = y.float().mean(0).clamp(1e-6, 1 - 1e-6)
        return loss_fn((p / (1 - p)).log().expand_as(y), y).item()
    center = y.float().mean(0) if loss_name == "mse" else y.float().median(0).values
    return loss_fn(center.expand_as(y), y).item()


@torch.no_grad()
def linear_reference(model: torch.nn.Module, loss_fn: torch.nn.Module, loss_name: str,
                     train: tuple[torch.Tensor, torch.Tensor],
                     val: tuple[torch.Tensor, torch.Tensor], *, seed: int = 0
                     ) -> dict[str, Any] | None:
    """A linear model's loss on the training and the validation rows, in the network's own
    loss, beside the trained network's loss on the same training rows in eval mode (no
    dropout, no augmentation): the simple baseline a network should beat (Karpathy 2019's
    recipe, "dumb baselines"). Logistic regression for bce / cross-entropy, ridge for mse,
    both on standardised inputs, fitted on at most ``REFERENCE_ROWS`` training rows.

    None where a linear model on the encoded inputs means nothing or costs too much: inputs
    that are not numbers (token ids), wider than ``REFERENCE_INPUTS``, not finite, a loss
    other than those three, several labels per row (multi-label bce)."""
    (xt, yt), (xv, yv) = train, val
    if loss_name not in ("cross_entropy", "bce", "mse") or not xt.is_floating_point():
        return None
    if xt[0].numel() > REFERENCE_INPUTS or len(xv) == 0 or len(xt) < 10:
        return None
    if loss_name == "bce" and yt.dim() == 2 and yt.shape[1] != 1:
        return None
    rows = torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed))
    rows = rows[:REFERENCE_ROWS]
    xt, yt = xt[rows], yt[rows]
    a = xt.reshape(len(xt), -1).double().cpu().numpy()
    b = xv.reshape(len(xv), -1).double().cpu().numpy()
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return None
    def scored(outputs: np.ndarray, y: torch.Tensor) -> float:
        return float(loss_fn(torch.as_tensor(outputs, dtype=torch.float32, device=y.device), y))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sk_exceptions.ConvergenceWarning)
        if loss_name == "mse":
            ya = yt.double().cpu().numpy()
            if len(np.unique(ya.reshape(len(ya), -1), axis=0)) < 2:
                return None
            fitted = sk_pipeline.make_pipeline(sk_preprocessing.StandardScaler(),
                                              sk_linear.Ridge(alpha=1.0)).fit(a, ya)
            name = "ridge regression"

            def outputs(x: np.ndarray, y: torch.Tensor) -> np.ndarray:
                return fitted.predict(x).reshape(tuple(y.shape))
        else:
            codes = yt.reshape(-1).long().cpu().numpy()
            if len(np.unique(codes)) < 2:
                return None
            fitted = sk_pipeline.make_pipeline(
                sk_preprocessing.StandardScaler(),
                sk_linear.LogisticRegression(max_iter=200)).fit(a, codes)
            name = "logistic regression"
            classes = fitted.classes_.astype(int)

            def outputs(x: np.ndarray, y: torch.Tensor) -> np.ndarray:
                p = np.clip(fitted.predict_proba(x), 1e-7, 1 - 1e-7)
                if loss_name == "bce":  # one logit: log-odds of the positive class
                    return np.log(p[:, 1] / p[:, 0]).reshape(tuple(y.shape))
                k = max(int(classes.max()) + 1, int(y.max()) + 1)
                full = np.full((len(x), k), 1e-7)
                full[:, classes] = p
                return np.log(full / full.sum(1, keepdims=True))
        ref_train, ref_val = scored(outputs(a, yt), yt), scored(outputs(b, yv), yv)
    net_train = float(loss_fn(predict_batches(model, xt).float(), yt).item())
    return {"model": name, "rows": len(xt), "train_loss": ref_train, "val_loss": ref_val,
            "net_train_loss": net_train}


def before_training(plan: Plan, profile: Any, numeric_columns: list[str] | None,
                    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                    loss_fn: torch.nn.Module, make_optimizer: Any, *, preflight: bool
                    ) -> list[Finding]:
    """Data, configuration and (unless turned off) pre-flight findings. The data rules
    read the profile (leaks, shared samples, classes) for every kind of data; the scale
    check reads table columns: ``numeric_columns`` names the first columns of ``x`` (None
    when the inputs are not columns: images, text...)."""
    findings: list[Finding] = []
    means: dict[str, float] = {}
    stds: dict[str, float] = {}
    if numeric_columns is not None:
        n_num = len(numeric_columns)
        means = dict(zip(numeric_columns, x[:, :n_num].mean(0).tolist(), strict=True))
        stds = dict(zip(numeric_columns, x[:, :n_num].std(0).tolist(), strict=True))
    findings += check_data(DataEvidence(profile, plan, means, stds))
    findings += check_config(config_evidence_from_plan(plan, model, len(x),
                                                       profile.target_summary))
    if preflight:
        rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(plan["seed"]))
        rows = rows[:PREFLIGHT_ROWS]
        x = x[rows]
        if getattr(model, "frozen", 0):  # transfer: run the frozen blocks once, not per step
            model, x = model.trainable_part(x[:MAX_ROWS])
            rows = rows[:MAX_ROWS]
        findings += run_preflight(model, loss_fn, make_optimizer, x, y[rows],
                                  task=plan["task"], class_priors=_priors(profile),
                                  lr=plan["optimizer.lr"], seed=plan["seed"])
    return findings


def after_training(plan: Plan, history: Any, *, n_val: int, baseline_loss: float,
                   metric_name: str, val_codes: np.ndarray | None,
                   val_proba: np.ndarray | None, val_ids: list[Any],
                   reference: dict[str, Any] | None = None,
                   min_gain_for_labels: float = 0.7) -> list[Finding]:
    """``reference``: :func:`linear_reference`'s losses, when it could be computed."""
    epochs = history.epochs
    metric = [e.get(f"val_{metric_name}") for e in epochs]
    ev = AfterEvidence(
        train_loss=[e["train_loss"] for e in epochs],
        val_loss=[e.get("val_loss") for e in epochs],
        n_val=n_val, task=plan["task"], baseline_loss=baseline_loss,
        val_metric=metric if all(m is not None for m in metric) else None,
        metric_name=metric_name, reference=reference,
        fix_context={k: plan[k] for k in ("model.dropout", "optimizer.weight_decay",
                                          "model.width", "model.hidden_layers",
                                          "optimizer.name", "optimizer.lr",
                                          "train.early_stopping.patience")
                     if k in plan},
    )
    findings = check_after(ev)
    if val_codes is not None and val_proba is not None:
        issue = label_issues_if_learned(val_codes, val_proba, val_ids,
                                        min_gain=min_gain_for_labels)
        if issue is not None:
            findings.append(issue)
    return findings


def _priors(profile: Any) -> list[float] | None:
    classes = profile.target_summary.get("classes")
    if not classes:
        return None
    total = sum(classes.values())
    return [v / total for v in classes.values()]
