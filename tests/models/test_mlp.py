import math

import pytest
import torch
from torch import nn

from nnrecipe.models import TabularMLP, init_weights


def _mlp(**kw):
    cfg = dict(hidden_layers=3, width=64, activation="relu", batchnorm=True, dropout=0.3,
               n_outputs=2, output="linear")
    cfg.update(kw)
    return TabularMLP(20, [], **cfg)


def test_batchnorm_sits_before_the_activation_and_dropout_only_after_the_last_block():
    kinds = [type(m).__name__ for m in _mlp().body]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear", "BatchNorm1d", "ReLU",
                                                               "Dropout"]
    assert all(m.bias is None for m in _mlp().body if isinstance(m, nn.Linear))


def test_without_batchnorm_dropout_follows_every_activation():
    kinds = [type(m).__name__ for m in _mlp(batchnorm=False).body]
    assert kinds == ["Linear", "ReLU", "Dropout"] * 3


def test_zero_hidden_layers_is_a_linear_model():
    m = _mlp(hidden_layers=0)
    assert len(m.body) == 0 and m.head.in_features == 20


def test_embeddings_read_the_code_columns():
    m = TabularMLP(2, [(5, 3), (4, 2)], hidden_layers=1, width=8, activation="relu",
                   batchnorm=False, dropout=0, n_outputs=1, output="linear")
    x = torch.tensor([[0.5, -1.0, 4.0, 3.0], [0.0, 0.0, 0.0, 1.0]])
    assert m(x).shape == (2, 1)
    assert m.body[0].in_features == 2 + 3 + 2


@pytest.mark.parametrize("init,act,expected_std", [
    ("he_normal", "relu", lambda fi, fo: math.sqrt(2 / fi)),
    ("glorot_normal", "sigmoid", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("glorot_uniform", "tanh", lambda fi, fo: 5 / 3 * math.sqrt(2 / (fi + fo))),
    ("lecun_normal", "selu", lambda fi, fo: math.sqrt(1 / fi)),
    ("normal", "relu", lambda fi, fo: 0.01),
])
def test_initial_weight_spread_follows_the_formula(init, act, expected_std):
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Linear(400, 300))
    init_weights(lin, init, act)
    assert lin[0].weight.std().item() == pytest.approx(expected_std(400, 300), rel=0.03)


def test_scale_zeros_and_bias():
    a, b = nn.Sequential(nn.Linear(50, 50)), nn.Sequential(nn.Linear(50, 50))
    torch.manual_seed(0)
    init_weights(a, "he_normal", "relu")
    torch.manual_seed(0)
    init_weights(b, "he_normal", "relu", scale=3.0, bias=0.5)
    torch.testing.assert_close(b[0].weight, 3 * a[0].weight)
    assert torch.all(b[0].bias == 0.5)
    init_weights(a, "zeros", "relu")
    assert torch.count_nonzero(a[0].weight) == 0
