"""Training: the loop, optimizers, losses, checkpoints and the watcher protocol."""

from .callbacks import TrainState, Watcher
from .early_stopping import EarlyStopping
from .loop import History, fit, predict_batches, predict_stream
from .losses import make_loss, target_tensor
from .optim import make_optimizer

__all__ = ["EarlyStopping", "History", "TrainState", "Watcher", "fit", "make_loss",
           "make_optimizer", "predict_batches", "predict_stream", "target_tensor"]
