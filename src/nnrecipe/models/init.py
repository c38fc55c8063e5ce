"""Weight initialisation by name, following the activation it feeds."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["init_weights"]

_GAIN_NAME = {"relu": "relu", "leaky_relu": "leaky_relu", "prelu": "leaky_relu",
              "rrelu": "leaky_relu", "gelu": "relu", "elu": "linear", "selu": "linear",
              "tanh": "tanh", "sigmoid": "sigmoid"}


@torch.no_grad()
def init_weights(model: nn.Module, init: str, activation: str, *, scale: float = 1.0,
                 bias: float = 0.0) -> None:
    """Initialise every ``nn.Linear`` in ``model``.

    he_*: variance 2/fan_in (ReLU family); glorot_*: 2/(fan_in+fan_out) times the
    activation's gain; lecun_normal: 1/fan_in (SELU/ELU); normal: N(0, 0.01²) and uniform:
    U(-0.05, 0.05), the naive small random numbers; zeros: all zero (symmetry is never
    broken: kept for the doctor to catch). ``scale`` multiplies the weights."""
    nonlin = _GAIN_NAME[activation]
    for m in model.modules():
        if not isinstance(m, nn.Linear):
            continue
        w = m.weight
        if init == "he_normal":
            nn.init.kaiming_normal_(w, a=0.01 if nonlin == "leaky_relu" else 0, nonlinearity=nonlin
                                    if nonlin in ("relu", "leaky_relu") else "relu")
        elif init == "he_uniform":
            nn.init.kaiming_uniform_(w, a=0.01 if nonlin == "leaky_relu" else 0,
                                     nonlinearity=nonlin if nonlin in ("relu", "leaky_relu")
                                     else "relu")
        elif init == "glorot_normal":
            nn.init.xavier_normal_(w, gain=_gain(nonlin))
        elif init == "glorot_uniform":
            nn.init.xavier_uniform_(w, gain=_gain(nonlin))
        elif init == "lecun_normal":
            nn.init.normal_(w, 0.0, 1.0 / math.sqrt(w.shape[1]))
        elif init == "normal":
            nn.init.normal_(w, 0.0, 0.01)
        elif init == "uniform":
            nn.init.uniform_(w, -0.05, 0.05)
        elif init == "zeros":
            nn.init.zeros_(w)
        else:
            raise ValueError(f"unknown init {init!r}")  # the plan schema rejects it first
        w.mul_(scale)
        if m.bias is not None:
            nn.init.constant_(m.bias, bias)


def _gain(nonlin: str) -> float:
    return nn.init.calculate_gain(nonlin, 0.01) if nonlin == "leaky_relu" else \
        nn.init.calculate_gain(nonlin)
