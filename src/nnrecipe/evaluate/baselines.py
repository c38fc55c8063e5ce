"""Dumb baselines, so a user sees whether the network learned anything at all.

Classification: always the majority class, with the training class shares as probabilities
(scikit-learn's DummyClassifier, strategy "prior"). Regression: always the training mean
(DummyRegressor). Fitted from the class counts / mean saved in preprocess.json, so a
finished run can score its baseline on new data too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..lazy import lazy
from .metrics import classification_metrics, regression_metrics

dummy_models = lazy("sklearn.dummy")

__all__ = ["baseline_metrics", "BASELINE_NAME"]

BASELINE_NAME = {"binary": "majority_class", "multiclass": "majority_class",
                 "regression": "mean_predictor"}


def baseline_metrics(task: str, target_state: dict[str, Any], y: np.ndarray,
                     classes: list[Any]) -> dict[str, Any]:
    """Metrics of the dumb baseline on ``y`` (codes, or values in original units)."""
    x = np.zeros((len(y), 1))
    if task == "regression":
        dummy = dummy_models.DummyRegressor(strategy="constant",
                                           constant=np.asarray([target_state["mean"]]))
        dummy.fit(np.zeros((1, 1)), [target_state["mean"]])
        return regression_metrics(y, dummy.predict(x))
    codes = np.repeat(np.arange(len(classes)), target_state["counts"])  # the training labels
    dummy = dummy_models.DummyClassifier(strategy="prior").fit(np.zeros((len(codes), 1)), codes)
    return classification_metrics(y, dummy.predict_proba(x), classes)
