"""Evaluation on held-out data, beside dumb baselines."""

from .baselines import BASELINE_NAME, baseline_metrics
from .metrics import MAIN_METRIC, classification_metrics, regression_metrics

__all__ = ["BASELINE_NAME", "MAIN_METRIC", "baseline_metrics", "classification_metrics",
           "regression_metrics"]
