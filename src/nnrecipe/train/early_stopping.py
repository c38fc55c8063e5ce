"""Early stopping: a watcher that stops when validation stops improving, and says why."""

from __future__ import annotations

import math

from .callbacks import TrainState, Watcher

__all__ = ["EarlyStopping"]


class EarlyStopping(Watcher):
    """Stop after ``patience`` epochs without ``monitor`` improving by more than ``min_delta``
    (relative to the best so far)."""

    def __init__(self, patience: int, monitor: str = "val_loss", min_delta: float = 1e-4):
        self.patience, self.monitor, self.min_delta = patience, monitor, min_delta
        self.best, self.best_epoch, self.wait = math.inf, 0, 0

    def state_dict(self) -> dict[str, float | int]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]

    def on_epoch_end(self, state: TrainState) -> None:
        value = state.logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if value < self.best - self.min_delta * abs(self.best if math.isfinite(self.best) else 0):
            self.best, self.best_epoch, self.wait = value, state.epoch, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.request_stop(
                f"early stopping: {self.monitor} has not improved for {self.patience} epochs "
                f"(best {self.best:.4g} at epoch {self.best_epoch})")
