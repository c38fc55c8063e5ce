"""Live logging to TensorBoard: a watcher that writes, with PyTorch's SummaryWriter,

* scalars each epoch: ``loss/train``, ``loss/val``, ``metric/<val metric>``, ``lr``;
* histograms each epoch: ``weights/<parameter>`` and ``gradients/<parameter>`` (the last
  step's gradient, still on the parameters at the epoch's end);
* the graph, once, traced on two rows of a training batch in eval mode (no dropout draw,
  no BatchNorm update: the run's numbers stay those of a run without logging).

The ``tensorboard`` package is an optional extra (``pip install 'nnrecipe[tensorboard]'``);
:func:`require_tensorboard` says so before any work when it is missing.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import NnrecipeError
from .callbacks import TrainState, Watcher

__all__ = ["TensorBoardWatcher", "require_tensorboard"]

INSTALL_HINT = "pip install 'nnrecipe[tensorboard]'"


def require_tensorboard() -> Any:
    """PyTorch's SummaryWriter class, or a user-facing error naming the missing package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch raises ImportError when tensorboard is absent or broken
        raise NnrecipeError(f"--tensorboard needs the tensorboard package, which is not "
                            f"installed ({e}); install it with {INSTALL_HINT}, or drop "
                            "--tensorboard") from e
    return SummaryWriter


class TensorBoardWatcher(Watcher):
    """Write a run's scalars, histograms and graph to ``log_dir`` (RUN/tensorboard/).

    ``histograms``: write weight and gradient histograms every that many epochs (0: never).
    Works on a user's own loop too: call the hooks, or pass it to ``nnrecipe.train.fit``."""

    def __init__(self, log_dir: str | Path, *, histograms: int = 1, graph: bool = True):
        self.log_dir = Path(log_dir)
        self.histograms, self.graph = histograms, graph
        self._writer_class = require_tensorboard()
        self._writer: Any = None
        self._graph_done = False

    @property
    def writer(self) -> Any:
        if self._writer is None:
            self._writer = self._writer_class(log_dir=str(self.log_dir))
        return self._writer

    def on_epoch_end(self, state: TrainState) -> None:
        epoch, logs = state.epoch, state.logs
        for key, value in logs.items():
            tag = _tag(key)
            if tag and isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(tag, value, epoch)
        if self.histograms and epoch % self.histograms == 0:
            for name, p in state.model.named_parameters():
                self.writer.add_histogram(f"weights/{name}", p.detach().cpu(), epoch)
                if p.grad is not None and torch.isfinite(p.grad).all():
                    self.writer.add_histogram(f"gradients/{name}", p.grad.detach().cpu(), epoch)
        if self.graph and not self._graph_done and state.batch is not None:
            self._add_graph(state.model, state.batch[0][:2])
        self.writer.flush()

    def on_train_end(self, state: TrainState) -> None:
        if self._writer is not None:
            self._writer.close()  # a later fit (after a repair) opens a new event file
            self._writer = None

    def _add_graph(self, model: torch.nn.Module, example: torch.Tensor) -> None:
        self._graph_done = True
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                self.writer.add_graph(model, example)
        except Exception as e:  # a model jit.trace cannot follow: keep logging the rest
            warnings.warn(f"TensorBoard: the model graph could not be traced ({e}); "
                          "scalars and histograms are still written", stacklevel=2)
        finally:
            model.train(was_training)


def _tag(key: str) -> str | None:
    """metrics.jsonl field → TensorBoard tag (None: not a curve)."""
    if key.endswith("_loss"):
        return f"loss/{key[:-5]}"
    if key.startswith("val_"):
        return f"metric/{key}"
    return "lr" if key == "lr" else None
