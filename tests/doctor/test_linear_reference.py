"""The linear reference the doctor compares a trained network with: its losses are
scikit-learn's own model scored with the network's loss, checked against scikit-learn's
metrics; where a linear model means nothing, there is none."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from nnrecipe.doctor.run import REFERENCE_ROWS, linear_reference
from nnrecipe.train import make_loss


def _split(x, y, n=300):
    return (torch.as_tensor(x[:n]), torch.as_tensor(y[:n])), \
        (torch.as_tensor(x[n:]), torch.as_tensor(y[n:]))


def test_cross_entropy_reference_is_logistic_regressions_log_loss():
    d = load_digits()
    x, y = d.data.astype(np.float32).reshape(-1, 1, 8, 8), d.target
    train, val = _split(x, y, 500)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    ref = linear_reference(net, make_loss("cross_entropy"), "cross_entropy", train, val)
    sk = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(
        x[:500].reshape(500, -1), y[:500])
    expect = log_loss(y[500:], sk.predict_proba(x[500:].reshape(len(x) - 500, -1)),
                      labels=range(10))
    assert ref["model"] == "logistic regression" and ref["rows"] == 500
    assert ref["val_loss"] == pytest.approx(expect, rel=1e-3)
    with torch.no_grad():  # the network's training loss, in eval mode
        net.eval()
        mine = nn.functional.cross_entropy(net(train[0]), train[1]).item()
    assert ref["net_train_loss"] == pytest.approx(mine, rel=1e-5)


def test_bce_reference_scores_the_positive_class_log_odds():
    x, y = make_classification(n_samples=500, n_features=8, random_state=0)
    x = x.astype(np.float32)
    yf = y.astype(np.float32).reshape(-1, 1)
    train, val = _split(x, yf)
    ref = linear_reference(nn.Linear(8, 1), make_loss("bce"), "bce", train, val)
    sk = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(x[:300], y[:300])
    assert ref["val_loss"] == pytest.approx(log_loss(y[300:], sk.predict_proba(x[300:])),
                                            rel=1e-3)
    assert ref["train_loss"] == pytest.approx(log_loss(y[:300], sk.predict_proba(x[:300])),
                                              rel=1e-3)


def test_mse_reference_is_ridge_regressions_mean_squared_error():
    x, y = make_regression(n_samples=500, n_features=6, noise=5.0, random_state=0)
    x, y = x.astype(np.float32), (y / y.std()).astype(np.float32).reshape(-1, 1)
    train, val = _split(x, y)
    ref = linear_reference(nn.Linear(6, 1), make_loss("mse"), "mse", train, val)
    sk = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x[:300], y[:300])
    assert ref["model"] == "ridge regression"
    assert ref["val_loss"] == pytest.approx(mean_squared_error(y[300:], sk.predict(x[300:])),
                                            rel=1e-4)


def test_the_reference_is_fitted_on_at_most_its_row_budget():
    x, y = make_classification(n_samples=REFERENCE_ROWS + 700, n_features=5, random_state=1)
    train, val = _split(x.astype(np.float32), y, REFERENCE_ROWS + 500)
    ref = linear_reference(nn.Linear(5, 2), make_loss("cross_entropy"), "cross_entropy",
                           train, val)
    assert ref["rows"] == REFERENCE_ROWS


@pytest.mark.parametrize("case", ["token ids", "too wide", "multi-label", "huber", "not finite"])
def test_no_reference_where_a_linear_model_means_nothing(case):
    x = torch.randn(200, 12)
    y = torch.randint(0, 2, (200,))
    loss = "cross_entropy"
    if case == "token ids":
        x = torch.randint(0, 50, (200, 12))
    elif case == "too wide":
        x = torch.randn(200, 3, 32, 32)  # 3,072 inputs
    elif case == "multi-label":
        y, loss = torch.randint(0, 2, (200, 3)).float(), "bce"
    elif case == "huber":
        y, loss = torch.randn(200, 1), "huber"
    else:
        x[5, 3] = float("nan")
    train, val = (x[:150], y[:150]), (x[150:], y[150:])
    assert linear_reference(nn.Identity(), make_loss(loss), loss, train, val) is None
