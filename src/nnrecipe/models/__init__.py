"""Networks built from a plan."""

from .heads import outputs_to_predictions
from .init import init_weights
from .mlp import TabularMLP, build_mlp

__all__ = ["TabularMLP", "build_mlp", "init_weights", "outputs_to_predictions"]
