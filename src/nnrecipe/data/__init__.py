"""Data stages: load, profile, split, preprocess, batch."""

from .load import COLUMN_KINDS, infer_kinds, load_table
from .preprocess import Preprocessor
from .profile import DataProfile, profile_table, split_overlap
from .split import Splits, split_table

__all__ = [
    "COLUMN_KINDS",
    "DataProfile",
    "Preprocessor",
    "Splits",
    "infer_kinds",
    "load_table",
    "profile_table",
    "split_overlap",
    "split_table",
]
