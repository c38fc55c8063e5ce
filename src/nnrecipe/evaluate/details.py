"""The numbers behind the report's evaluation plots, kept in evaluation.json (``details``)
so a report can be rebuilt from the run directory alone:

* binary: ROC and precision-recall curves (scikit-learn), and a threshold table —
  precision, recall and F1 when the positive class is predicted from a probability of
  0.1, 0.2, ... 0.9 — so a user can trade false positives against false negatives;
* regression: (actual, predicted) pairs for the residual plot;
* every task: the test rows with the highest loss, with their feature values.

Curves and scatter points are thinned to a bounded size: a report stays small on a big
test split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..lazy import lazy

skm = lazy("sklearn.metrics")

__all__ = ["evaluation_details", "threshold_table", "THRESHOLDS"]

THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))
MAX_CURVE_POINTS = 300  # points kept per ROC / PR curve
MAX_SCATTER_POINTS = 1000  # (actual, predicted) pairs kept for the residual plot
WORST_ROWS = 10  # highest-loss test rows listed
MAX_FEATURES_SHOWN = 8  # feature values shown per listed row
EPS = 1e-15  # probability floor for the per-row log loss


def evaluation_details(task: str, truth: np.ndarray, values: np.ndarray, classes: list[Any],
                 features: pd.DataFrame) -> dict[str, Any]:
    """``truth``: class codes (N,) or target values; ``values``: (N, C) probabilities or
    (N,) predictions in the target's units; ``features``: the test rows' inputs."""
    if task == "regression":
        pred = np.asarray(values, dtype=float).reshape(-1)
        truth = np.asarray(truth, dtype=float)
        loss = np.abs(pred - truth)
        out: dict[str, Any] = {"residuals": _scatter(truth, pred)}
        shown_truth, shown_pred, extra = truth, pred, {}
    else:
        proba = np.asarray(values, dtype=float)
        codes = np.asarray(truth).astype(int)
        p_true = proba[np.arange(len(codes)), codes]
        loss = -np.log(np.clip(p_true, EPS, 1.0))
        names = np.asarray([str(c) for c in classes], dtype=object)
        shown_truth, shown_pred = names[codes], names[proba.argmax(axis=1)]
        extra = {"p_given_label": p_true}
        out = {}
        if task == "binary" and len(np.unique(codes)) == 2:
            out["binary"] = _binary(codes, proba[:, 1], str(classes[1]))
    out["worst_rows"] = _worst(loss, shown_truth, shown_pred, extra, features)
    out["loss_name"] = "absolute error" if task == "regression" else "log loss"
    return out


def threshold_table(y: np.ndarray, score: np.ndarray,
                    thresholds: tuple[float, ...] = THRESHOLDS) -> list[dict[str, Any]]:
    """Predict positive when ``score >= t``: counts, precision, recall, F1 and the false
    positive rate at each ``t``. Precision is None when nothing is predicted positive."""
    y = np.asarray(y).astype(bool)
    rows = []
    for t in thresholds:
        pred = np.asarray(score) >= t
        tp, fp = int(np.sum(pred & y)), int(np.sum(pred & ~y))
        fn, tn = int(np.sum(~pred & y)), int(np.sum(~pred & ~y))
        precision = tp / (tp + fp) if tp + fp else None
        recall = tp / (tp + fn) if tp + fn else None
        f1 = (2 * precision * recall / (precision + recall)
              if precision and recall else 0.0 if precision is not None else None)
        rows.append({"threshold": t, "precision": precision, "recall": recall, "f1": f1,
                     "false_positive_rate": fp / (fp + tn) if fp + tn else None,
                     "tp": tp, "fp": fp, "fn": fn, "tn": tn})
    return rows


def _binary(codes: np.ndarray, score: np.ndarray, positive: str) -> dict[str, Any]:
    fpr, tpr, _ = skm.roc_curve(codes, score)
    precision, recall, _ = skm.precision_recall_curve(codes, score)
    return {
        "positive_class": positive,
        "prevalence": float(np.mean(codes)),
        "roc": {"fpr": _thin(fpr), "tpr": _thin(tpr), "auc": float(skm.auc(fpr, tpr))},
        "pr": {"precision": _thin(precision), "recall": _thin(recall),
               "average_precision": float(skm.average_precision_score(codes, score))},
        "thresholds": threshold_table(codes, score),
    }


def _thin(values: np.ndarray) -> list[float]:
    """At most MAX_CURVE_POINTS evenly spaced points, the ends kept."""
    if len(values) <= MAX_CURVE_POINTS:
        return [float(v) for v in values]
    idx = np.unique(np.linspace(0, len(values) - 1, MAX_CURVE_POINTS).round().astype(int))
    return [float(values[i]) for i in idx]


def _scatter(truth: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    idx = np.arange(len(truth))
    if len(idx) > MAX_SCATTER_POINTS:  # a seeded sample: the same report every time
        idx = np.sort(np.random.default_rng(0).choice(idx, MAX_SCATTER_POINTS, replace=False))
    return {"actual": truth[idx].tolist(), "predicted": pred[idx].tolist(),
            "n_rows": len(truth), "shown": len(idx)}


def _worst(loss: np.ndarray, truth: np.ndarray, pred: np.ndarray, extra: dict[str, Any],
           features: pd.DataFrame) -> list[dict[str, Any]]:
    """The WORST_ROWS rows with the highest loss, worst first (NaN losses first)."""
    order = np.argsort(-np.nan_to_num(loss, nan=np.inf), kind="stable")[:WORST_ROWS]
    shown = list(features.columns[:MAX_FEATURES_SHOWN])
    rows = []
    for i in order:
        row = {"row": str(features.index[i]), "target": _plain(truth[i]),
               "prediction": _plain(pred[i]), "loss": float(loss[i]),
               "features": {str(c): _plain(features.iloc[i][c]) for c in shown}}
        row.update({k: float(v[i]) for k, v in extra.items()})
        rows.append(row)
    return rows


def _plain(v: Any) -> Any:
    """A JSON-ready cell: numbers stay numbers (rounded), everything else becomes text."""
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return None if not np.isfinite(v) else float(f"{float(v):.6g}")
    return None if v is None or v is pd.NaT else str(v)
