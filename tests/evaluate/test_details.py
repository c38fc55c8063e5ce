"""The numbers behind the report's evaluation plots, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from nnrecipe.evaluate.details import THRESHOLDS, evaluation_details, threshold_table


def test_threshold_table_matches_precision_recall_and_roc_curves():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    score = np.clip(0.3 * y + rng.normal(0.35, 0.25, 500), 0, 1).round(2)  # many ties
    precision, recall, pr_thr = skm.precision_recall_curve(y, score)
    fpr, tpr, roc_thr = skm.roc_curve(y, score, drop_intermediate=False)
    rows = threshold_table(y, score)
    assert [r["threshold"] for r in rows] == list(THRESHOLDS)
    for r in rows:
        t = r["threshold"]
        i = np.searchsorted(pr_thr, t)  # lowest curve threshold >= t: the same predictions
        j = np.nonzero(roc_thr >= t)[0][-1]
        assert r["precision"] == pytest.approx(precision[i])
        assert r["recall"] == pytest.approx(recall[i]) == pytest.approx(tpr[j])
        assert r["false_positive_rate"] == pytest.approx(fpr[j])
        p, q = precision[i], recall[i]
        assert r["f1"] == pytest.approx(2 * p * q / (p + q))
        assert r["tp"] + r["fp"] + r["fn"] + r["tn"] == len(y)


def test_nothing_predicted_positive_has_no_precision():
    rows = threshold_table(np.array([0, 1, 1]), np.array([0.01, 0.02, 0.05]), (0.5,))
    assert rows[0]["precision"] is None and rows[0]["recall"] == 0 and rows[0]["f1"] is None


def test_binary_details_curves_and_worst_rows():
    rng = np.random.default_rng(1)
    n = 2000
    codes = rng.integers(0, 2, n)
    p1 = np.clip(0.5 * codes + rng.uniform(0, 0.5, n), 0.001, 0.999)
    proba = np.column_stack([1 - p1, p1])
    features = pd.DataFrame({"x": rng.normal(size=n), "<i>name</i>": ["a"] * n},
                            index=pd.RangeIndex(100, 100 + n))
    d = evaluation_details("binary", codes, proba, ["neg", "pos"], features)
    b = d["binary"]
    assert b["positive_class"] == "pos"
    assert b["roc"]["auc"] == pytest.approx(skm.roc_auc_score(codes, p1))
    assert b["pr"]["average_precision"] == pytest.approx(skm.average_precision_score(codes, p1))
    assert len(b["roc"]["fpr"]) <= 300 and b["roc"]["fpr"][0] == 0 and b["roc"]["tpr"][-1] == 1
    worst = d["worst_rows"]
    losses = -np.log(proba[np.arange(n), codes])
    assert [w["loss"] for w in worst] == pytest.approx(np.sort(losses)[::-1][:10])
    assert int(worst[0]["row"]) >= 100 and set(worst[0]["features"]) == {"x", "<i>name</i>"}


def test_regression_details_keep_a_bounded_sample():
    rng = np.random.default_rng(2)
    y = rng.normal(size=3000)
    pred = y + rng.normal(scale=0.1, size=3000)
    d = evaluation_details("regression", y, pred, [], pd.DataFrame({"x": y}))
    r = d["residuals"]
    assert r["n_rows"] == 3000 and r["shown"] == len(r["actual"]) == 1000
    assert d["worst_rows"][0]["loss"] == pytest.approx(np.abs(pred - y).max())
    assert "binary" not in d and d["loss_name"] == "absolute error"
