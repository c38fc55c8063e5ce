"""Checkpoints: model, optimizer and RNG state, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..runs import atomic_torch_save

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    epoch: int, step: int, best_val_loss: float,
                    generator: torch.Generator, extra: dict[str, Any] | None = None) -> None:
    atomic_torch_save(path, {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "step": step,
        "best_val_loss": best_val_loss,
        "rng": {"torch": torch.get_rng_state(), "shuffle": generator.get_state()},
        **(extra or {}),
    })


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)
