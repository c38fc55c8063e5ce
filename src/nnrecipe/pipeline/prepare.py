"""Everything before training, for any kind of data: find the modality, let it load,
profile, split, plan, fit its encoder and build the network."""

from __future__ import annotations

from typing import Any

from .. import modalities
from ..modalities import Prepared
from ..plan import validate_overrides

__all__ = ["prepare"]


def prepare(source: Any, target: str | None, *, task: str = "auto",
            overrides: dict | None = None, test: Any = None, valid: Any = None,
            modality: str = "auto", pretrained: Any = None) -> Prepared:
    """``modality``: ``auto`` (a folder of class subfolders: images or WAV sound; an .npz:
    images or volumes; ``series.horizon`` or ``series.window`` set: a forecast; else a
    table) or a name from :data:`nnrecipe.modalities.REGISTRY`."""
    given = validate_overrides(overrides)  # bad --set values fail before any work
    kind = modalities.detect(source, modality, horizon=given.get("series.horizon"),
                             window=given.get("series.window"))
    return kind.prepare(source, target, task=task, given=given, test=test, valid=valid,
                        pretrained=pretrained)
