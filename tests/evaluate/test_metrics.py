import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier

from nnrecipe.evaluate import baseline_metrics, classification_metrics, regression_metrics


def _proba(n=200, c=3, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random((n, c))
    return rng.integers(0, c, n), p / p.sum(1, keepdims=True)


def test_multiclass_metrics_match_scikit_learn():
    y, p = _proba()
    m = classification_metrics(y, p, ["a", "b", "c"])
    pred = p.argmax(1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert m["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert m["per_class"]["b"]["recall"] == pytest.approx(
        skm.recall_score(y, pred, average=None)[1])


def test_binary_auc_uses_the_positive_class_and_is_skipped_when_a_class_is_absent():
    y, p = _proba(c=2)
    assert classification_metrics(y, p, [0, 1])["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, p[:, 1]))
    assert "roc_auc" not in classification_metrics(np.zeros(5, int), p[:5], [0, 1])


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=50), rng.normal(size=50)
    m = regression_metrics(y, pred)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))


def test_baselines_are_the_majority_class_and_the_training_mean():
    y, _ = _proba(c=3)
    m = baseline_metrics("multiclass", {"counts": [10, 70, 20]}, y, ["a", "b", "c"])
    ref = DummyClassifier(strategy="prior").fit(np.zeros((100, 1)), [0] * 10 + [1] * 70 + [2] * 20)
    assert m["accuracy"] == pytest.approx(np.mean(y == 1))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, ref.predict_proba(np.zeros((200, 1)))))
    r = baseline_metrics("regression", {"mean": 2.0}, np.array([1.0, 3.0]), [])
    assert r["rmse"] == pytest.approx(1.0)
