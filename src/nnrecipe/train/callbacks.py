"""The watcher protocol: code that observes training and may ask it to stop.

A watcher subclasses :class:`Watcher` and overrides the hooks it needs. Step hooks run only
for watchers that set ``wants_steps = True``, so a run without such watchers pays nothing
per step (``skipped_step`` replaces ``after_step`` for a step that fp16's gradient scaler
skipped). A watcher stops training with ``state.request_stop(reason)``; the reason ends up
in the history and the summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Watcher", "TrainState"]


@dataclass
class TrainState:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    plan: Any
    max_epochs: int
    epoch: int = 0           # current epoch, 1-based once training starts
    step: int = 0            # optimizer steps taken so far
    batch: tuple[torch.Tensor, torch.Tensor] | None = None  # (x, y) of the current step
    loss: torch.Tensor | None = None  # the current step's loss (a tensor: no sync forced)
    logs: dict[str, Any] = field(default_factory=dict)  # the last epoch's metrics
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    #: the processes training together (train/distributed.Group) in nnrecipe's loop under
    #: DDP, None otherwise: a watcher may reduce what it measured across them (every rank
    #: calls the watchers at the same steps)
    group: Any = None

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason


class Watcher:
    wants_steps: bool = False

    def on_train_begin(self, state: TrainState) -> None: ...
    def before_step(self, state: TrainState) -> None: ...
    def after_step(self, state: TrainState) -> None: ...

    def skipped_step(self, state: TrainState) -> None:
        """Instead of ``after_step`` when fp16's gradient scaler skipped the step (its
        gradients overflowed): the weights did not change, ``state.step`` did not advance,
        and the gradients on the parameters are inf/NaN: not a finding."""
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What the watcher has learned so far, for a checkpoint (plain values and tensors
        only: checkpoints load with ``weights_only=True``). A resumed run hands it back to
        :meth:`load_state_dict`; a watcher that keeps nothing across epochs keeps this."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
