"""Loss functions by plan name, and the target tensor each one expects."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["make_loss", "target_tensor"]


def make_loss(name: str) -> nn.Module:
    return {"bce": nn.BCEWithLogitsLoss, "cross_entropy": nn.CrossEntropyLoss,
            "mse": nn.MSELoss, "huber": nn.HuberLoss, "mae": nn.L1Loss}[name]()


def target_tensor(y: np.ndarray, task: str, loss: str, n_outputs: int) -> torch.Tensor:
    """Targets shaped for the loss, built once (not per batch).

    regression: float (N, 1); cross_entropy: class codes, long (N,); any other loss on
    classes: float (N, 1) for one output unit, one-hot float (N, C) for several."""
    if task == "regression":
        return torch.as_tensor(y, dtype=torch.float32).reshape(-1, 1)
    codes = torch.as_tensor(y, dtype=torch.long)
    if loss == "cross_entropy":
        return codes
    if n_outputs == 1:
        return codes.float().reshape(-1, 1)
    return nn.functional.one_hot(codes, n_outputs).float()
