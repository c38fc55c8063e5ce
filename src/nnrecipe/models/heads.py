"""Output activations, and how a network's outputs become predictions."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["output_activation", "outputs_to_predictions"]


_OUTPUTS = {"linear": nn.Identity, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
            "softplus": nn.Softplus, "relu": nn.ReLU, "softmax": lambda: nn.Softmax(dim=1)}


def output_activation(name: str) -> nn.Module:
    return _OUTPUTS[name]()


def outputs_to_predictions(out: torch.Tensor, task: str, loss: str) -> np.ndarray:
    """Network outputs → class probabilities (N, C) or regression values (N,) (still scaled).

    With bce / cross_entropy the outputs are read as logits (those losses apply the
    sigmoid / softmax themselves). With a distance loss on classes they are read as
    probabilities directly, clipped to [0, 1]."""
    out = out.detach().float()
    if task == "regression":
        return out[:, 0].numpy().astype(np.float64)
    if loss == "bce":
        p = torch.sigmoid(out)
    elif loss == "cross_entropy":
        p = torch.softmax(out, dim=1)
    else:
        p = out.clamp(0, 1)
    p = p.numpy().astype(np.float64)
    if p.shape[1] == 1:  # one unit: P(positive class)
        p = np.hstack([1 - p, p])
    elif loss != "cross_entropy":  # independent scores: normalise to sum to one
        s = p.sum(axis=1, keepdims=True)
        p = np.where(s > 0, p / np.where(s > 0, s, 1), 1 / p.shape[1])
    return p
