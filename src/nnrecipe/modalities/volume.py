"""Volumes: an .npz with ``x`` (N, D, H, W[, C]) and ``y``. Normalised per channel, augmented
in 3-D (shift, in-plane rotation, zoom), read by a 3-D convnet; the middle slice of each
of the worst test volumes is drawn into ``mistakes.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data.augment import VolumeAugment
from ..data.images import load_array_npz
from ..errors import DataError
from ..plan.network_rules import CONV_RULES, const, dropout_rule
from ..plan.schema import Plan
from .image import AUGMENT_RULES, FLIP_NOISE_RULES, ImageModality
from .samples import Samples

__all__ = ["VolumeModality"]


class VolumeModality(ImageModality):
    name = "volume"
    encoder_keys = ()
    late_rules = ()  # an .npz in memory at its own size: no image size or loader to decide
    own_rules = (
        ("data.modality", const("volume", "volumes: an .npz of (N, D, H, W[, C])",
                                "data.modality"), True),
        ("model.arch", const("cnn", "volumes → a 3-D convnet (3-D convnets for video and "
                             "volumes: Tran et al. 2015)", "model.arch_by_modality"), False),
        *CONV_RULES,
        ("model.dropout", dropout_rule, False),
        ("augment.enabled", const(True, "small 3-D shifts, in-plane rotations and zooms make "
                                  "more training volumes; off during the pre-flight overfit "
                                  "check", "augment.volumes"), False),
        *AUGMENT_RULES,
        *FLIP_NOISE_RULES,
    )

    def detect(self, source: Any, *, horizon: int | None, window: int | None) -> bool:
        return (isinstance(source, str | Path) and Path(source).suffix.lower() == ".npz"
                and load_array_npz(source).is_volume)

    def load(self, source: Any, target: str | None, task: str, *, like: Samples | None = None,
             min_classes: int = 2) -> Samples:
        data = super().load(source, target, task, min_classes=min_classes)
        if data.x.ndim != 5:
            raise DataError(f"{source} holds images (N, H, W[, C]), not volumes; leave out "
                            "--modality or use --modality image")
        return data

    def profile_inputs(self, data: Samples) -> dict[str, Any]:
        return dict(data.info)

    def spatial(self, data: Samples, plan: Plan) -> list[int]:
        return list(data.x.shape[1:-1])  # volumes are read at their own size

    def augment(self, plan: Plan) -> Any:
        if not plan["augment.enabled"]:
            return None
        z = plan["augment.zoom"]
        return VolumeAugment(shift=plan["augment.shift"], rotation=plan["augment.rotation"],
                             zoom=(1 - z, 1 + z), flip=plan["augment.flip"],
                             noise=plan["augment.noise"], seed=plan["seed"])

    def thumbnails(self, x: np.ndarray) -> np.ndarray:
        return x[:, x.shape[1] // 2]  # the middle slice of each volume
