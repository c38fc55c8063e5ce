"""Tuning by the book: k-fold cross-validation (LR range test and schedules live in train/)."""

from .cv import fold_indices, summarise_folds

__all__ = ["fold_indices", "summarise_folds"]
