"""Checkpoints: everything a run needs to go on, written atomically.

``checkpoints/last.pt`` holds the model, the optimizer, the schedule, every random stream
(torch's, the shuffling generator's, the augmentation's), the history, the best weights so
far, the watchers' state and the caller's (``extra``), after each epoch and, during a long
epoch, every ``train.checkpoint_minutes``. ``checkpoints/best.pt`` holds the weights of the
epoch with the lowest validation loss. Both load with ``torch.load(..., weights_only=True)``:
everything in them is tensors and plain values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import RunError
from ..runs import atomic_torch_save, plain

__all__ = ["save_checkpoint", "load_checkpoint"]

#: parts of a checkpoint that are plain data (no tensors): stored as JSON-like values
PLAIN_PARTS = ("history", "watchers", "extra")


def save_checkpoint(path: Path, content: dict[str, Any]) -> None:
    atomic_torch_save(path, {k: plain(v) if k in PLAIN_PARTS else v
                             for k, v in content.items()})


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint, or RunError (one line) when it is missing, damaged or not ours."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path} not found: the run was stopped before its first checkpoint; "
                       "start it again")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # damaged or foreign: say which file, never how to unpickle it
        raise RunError(f"{path} cannot be read as a checkpoint ({type(e).__name__}); it is "
                       "damaged or not from nnrecipe") from None

