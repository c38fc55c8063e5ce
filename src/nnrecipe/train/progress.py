"""The progress display: a rich bar per run (epochs) and per epoch (steps), with losses."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["TrainProgress"]


class TrainProgress:
    """``with TrainProgress(max_epochs, steps_per_epoch, metric) as p: ...``; a no-op when
    ``enabled`` is False (``--quiet``)."""

    STEP_EVERY = 64  # redraw the step bar every 64 steps: cheap enough for tiny batches

    def __init__(self, max_epochs: int, steps_per_epoch: int, metric: str | None,
                 enabled: bool = True, console: Console | None = None, label: str = "epoch"):
        self.enabled, self.metric, self.steps = enabled, metric, steps_per_epoch
        self.max_epochs = max_epochs
        if not enabled:
            return
        self._p = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=console or Console(stderr=True), transient=False)
        self._epochs = self._p.add_task(label, total=max_epochs, stats="")
        self._batch = self._p.add_task("  step", total=steps_per_epoch, stats="",
                                       visible=steps_per_epoch >= 500)

    def __enter__(self) -> TrainProgress:
        if self.enabled:
            self._p.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self._p.stop()

    def step(self, step_in_epoch: int) -> None:
        if self.enabled and step_in_epoch % self.STEP_EVERY == 0:
            self._p.update(self._batch, completed=step_in_epoch)

    def epoch(self, logs: dict[str, Any]) -> None:
        if not self.enabled:
            return
        stats = f"train {logs['train_loss']:.4f}"
        if "val_loss" in logs:
            stats += f"  val {logs['val_loss']:.4f}"
        key = f"val_{self.metric}" if self.metric else None
        if key in logs:
            stats += f"  {self.metric} {logs[key]:.4f}"
        self._p.update(self._epochs, completed=logs["epoch"], stats=stats)
        self._p.update(self._batch, completed=0)

    def finish(self, epochs_done: int) -> None:
        if self.enabled:  # stopped early: show the bar as done, not stalled
            self._p.update(self._epochs, total=epochs_done, completed=epochs_done)
            self._p.update(self._batch, visible=False)
