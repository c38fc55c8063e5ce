"""Held-out metrics, all from scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..lazy import lazy

skm = lazy("sklearn.metrics")

__all__ = ["classification_metrics", "regression_metrics", "MAIN_METRIC"]

# The number a user looks at first, per task (also shown in the progress bar).
MAIN_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "rmse"}


def classification_metrics(y: np.ndarray, proba: np.ndarray, classes: list[Any]
                           ) -> dict[str, Any]:
    """``y``: class codes (N,); ``proba``: (N, C) probabilities in class-code order."""
    labels = list(range(len(classes)))
    pred = proba.argmax(axis=1)
    p, r, f, support = skm.precision_recall_fscore_support(y, pred, labels=labels,
                                                           zero_division=0)
    out: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)),
        "precision_macro": float(p.mean()),
        "recall_macro": float(r.mean()),
        "f1_macro": float(f.mean()),
        "per_class": {str(c): {"precision": float(p[i]), "recall": float(r[i]),
                               "f1": float(f[i]), "support": int(support[i])}
                      for i, c in enumerate(classes)},
        "confusion_matrix": {"labels": [str(c) for c in classes],
                             "matrix": skm.confusion_matrix(y, pred, labels=labels).tolist()},
    }
    clipped = np.clip(proba, 1e-15, 1)
    out["log_loss"] = float(skm.log_loss(y, clipped / clipped.sum(1, keepdims=True),
                                         labels=labels))
    present = np.unique(y)
    if len(present) == len(classes):  # ROC-AUC needs every class in y
        out["roc_auc"] = float(skm.roc_auc_score(y, proba[:, 1]) if len(classes) == 2 else
                               skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels))
    return out


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    return {
        "mae": float(skm.mean_absolute_error(y, pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "r2": float(skm.r2_score(y, pred)) if len(y) > 1 else float("nan"),
    }
