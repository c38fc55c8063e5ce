"""Every kind of data nnrecipe reads, one module each, and the registry that names them.

Adding a kind of data is one new module with a :class:`~nnrecipe.modalities.base.Modality`
subclass and one line in the tuple below (or one :func:`register` call from outside the
package). ``--modality auto`` asks each kind in that order whether a source is its kind;
the fallback (tables) comes last and takes whatever the others leave.
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError
from ..plan.rules import RULE_SETS
from .audio import AudioModality
from .base import Inputs, Modality, Prepared
from .image import ImageModality
from .sequence import SequenceModality
from .series import SeriesModality
from .table import TableModality
from .text import TextModality
from .volume import VolumeModality

__all__ = ["Inputs", "Modality", "Prepared", "REGISTRY", "detect", "get", "names", "register"]

REGISTRY: dict[str, Modality] = {}


def register(modality: Modality) -> Modality:
    """Make ``modality`` a kind of data nnrecipe reads: ``--modality NAME``, detection with
    ``auto``, its plan rules in make_plan, its runs loadable. Returns it."""
    REGISTRY[modality.name] = modality
    RULE_SETS[modality.name] = modality.plan_rules
    return modality


for _kind in (AudioModality, VolumeModality, ImageModality, SeriesModality, TextModality,
              SequenceModality, TableModality):
    register(_kind())


def names() -> tuple[str, ...]:
    """The values ``--modality`` takes."""
    return ("auto", *REGISTRY)


def get(name: str) -> Modality:
    """The modality called ``name`` (DataError naming the choices otherwise)."""
    if name not in REGISTRY:
        raise DataError(f"--modality must be one of {', '.join(names())}, got '{name}'")
    return REGISTRY[name]


def detect(source: Any, modality: str = "auto", *, horizon: int | None = None,
           window: int | None = None) -> Modality:
    """The modality asked for, or with ``auto`` the first that recognises ``source``."""
    if modality != "auto":
        return get(modality)
    ordered = sorted(REGISTRY.values(), key=lambda m: m.fallback)  # tables last
    return next(m for m in ordered if m.detect(source, horizon=horizon, window=window))
