"""Images: a folder with one subfolder of PNG/JPEG files per class, or an .npz with ``x``
(N, H, W[, C]) and ``y``. Normalised per channel with the training images' statistics,
resized to the plan's side, augmented (shift, rotation, zoom, shear), read by a 2-D convnet;
the worst test images are drawn into ``mistakes.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.augment import ImageAugment
from ..data.images import (
    channel_stats,
    load_array_npz,
    load_image_folder,
    save_thumbnail_grid,
    to_tensor,
)
from ..errors import DataError
from ..plan.network_rules import CONV_RULES, const, dropout_rule
from ..plan.rules import Ctx, Decision
from ..plan.schema import Plan
from ..runs import RUN_FILES
from .convnet import ConvModality
from .samples import SampleEncoder, Samples, class_samples

__all__ = ["ImageEncoder", "ImageModality", "IMAGE_EXT", "as_uint8", "match_channels"]

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MAX_IMAGE_SIDE = 64  # small networks on a CPU: larger images cost time, rarely accuracy here


class ImageEncoder(SampleEncoder):
    """Per-channel mean and std from the training images; images resized to ``spatial``."""

    @property
    def input_shape(self) -> list[int]:
        return [len(self.state["mean"]), *self.state["spatial"]]

    def encode(self, data: Samples, pos: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        s = self.state
        x = to_tensor(data.x[pos], s["mean"], s["std"])
        if list(x.shape[2:]) != s["spatial"]:
            x = F.interpolate(x, size=tuple(s["spatial"]), mode="bilinear",
                              align_corners=False)
        return x, data.y[pos]


def image_size_rule(ctx: Ctx) -> Decision:
    side = ctx.profile.inputs["side"]
    why = (f"the median image side, capped at {MAX_IMAGE_SIDE} (small networks on a CPU)"
           if ctx.profile.inputs.get("capped") else "the images' common side")
    return Decision(side, f"{side}×{side} pixels: {why}", "data.image_size")


AUGMENT_RULES = (
    ("augment.shift", const(0.1, "shift up to 10% of the side", "augment.images"), False),
    ("augment.rotation", const(10.0, "rotate up to 10°", "augment.images"), False),
    ("augment.zoom", const(0.1, "zoom by up to 10%", "augment.images"), False),
)
FLIP_NOISE_RULES = (
    ("augment.flip", const(0.0, "no flips: they change the meaning of digits and text; "
                           "0.5 suits natural photos", "augment.images"), False),
    ("augment.noise", const(0.0, "no added noise", "augment.images"), False),
)


class ImageModality(ConvModality):
    name = "image"
    encoder = ImageEncoder
    encoder_keys = ("data.image_size",)
    own_rules = (
        ("data.modality", const("image", "images: one class per folder or an .npz of "
                                "(N, H, W[, C])", "data.modality"), True),
        ("data.image_size", image_size_rule, False),
        ("model.arch", const("cnn", "images → a 2-D convnet: local patterns, shared weights, "
                             "translation tolerance (LeCun et al. 1998)",
                             "model.arch_by_modality"), False),
        *CONV_RULES,
        ("model.dropout", dropout_rule, False),
        ("augment.enabled", const(True, "small shifts, rotations, zooms and shears make more "
                                  "training images; off during the pre-flight overfit check",
                                  "augment.images"), False),
        *AUGMENT_RULES,
        ("augment.shear", const(5.0, "shear up to 5°", "augment.images"), False),
        *FLIP_NOISE_RULES,
    )

    def detect(self, source: Any, *, horizon: int | None, window: int | None) -> bool:
        if not isinstance(source, str | Path):
            return False
        p = Path(source)
        return p.is_dir() or (p.suffix.lower() == ".npz" and not load_array_npz(p).is_volume)

    def read(self, source: Any, size: tuple[int, int] | None = None,
             unlabelled: bool = False, min_classes: int = 2) -> Any:
        """An ArraySet from a folder of class subfolders or an .npz."""
        if Path(source).is_dir():
            return load_image_folder(source, size, unlabelled=unlabelled,
                                     min_classes=min_classes)
        return load_array_npz(source, unlabelled=unlabelled)

    def load(self, source: Any, target: str | None, task: str, *, like: Samples | None = None,
             min_classes: int = 2) -> Samples:
        size = tuple(like.x.shape[1:3]) if like is not None else None
        s = self.read(source, size, min_classes=min_classes)
        return class_samples(self.name, s, target or "label", {
            "spatial": list(s.x.shape[1:-1]), "channels": int(s.x.shape[-1])}, min_classes)

    def read_for_run(self, source: Any, state: dict[str, Any], labelled: bool) -> Samples:
        size = tuple(state["spatial"]) if self.name == "image" else None  # as the test images
        s = self.read(source, size, unlabelled=not labelled, min_classes=1)
        x = match_channels(s.x, len(state["mean"]))  # grey ↔ colour, as the run's inputs
        if x.ndim - 2 != len(state["spatial"]):
            raise DataError(f"{source} holds {'volumes' if x.ndim == 5 else 'images'}; the "
                            f"run was trained on {self.name}s")
        return Samples(self.name, x, s.y, s.classes, s.names, state["target"], state["task"],
                       "", {})

    def profile_inputs(self, data: Samples) -> dict[str, Any]:
        return {**data.info, "side": int(max(data.info["spatial"]))}

    def adopt_pretrained(self, data: Samples, source: Any) -> Any:
        pre = super().adopt_pretrained(data, source)
        if pre.in_channels == 3 and data.x.shape[-1] == 1:
            data.x = match_channels(data.x, 3)  # grey into the colour channels it reads
            data.info["channels"] = 3
        return pre

    def like(self, x: np.ndarray, ref: np.ndarray, where: str) -> np.ndarray:
        return super().like(match_channels(x, ref.shape[-1]), ref, where)

    def fit_features(self, data: Samples, train: np.ndarray, plan: Plan) -> ImageEncoder:
        state = SampleEncoder.base_state(data)
        mean, std = channel_stats(data.x[train])
        state.update(mean=mean, std=std, spatial=self.spatial(data, plan))
        return ImageEncoder(state)

    def spatial(self, data: Samples, plan: Plan) -> list[int]:
        """The size the network reads: the images' own, scaled to data.image_size."""
        spatial = list(data.x.shape[1:-1])
        if plan["data.image_size"] != max(spatial):
            k = plan["data.image_size"] / max(spatial)
            spatial = [max(1, round(s * k)) for s in spatial]
        return spatial

    def augment(self, plan: Plan) -> Any:
        if not plan["augment.enabled"]:
            return None
        z = plan["augment.zoom"]
        return ImageAugment(shift=plan["augment.shift"], rotation=plan["augment.rotation"],
                            zoom=(1 - z, 1 + z), shear=plan["augment.shear"],
                            flip=plan["augment.flip"], noise=plan["augment.noise"],
                            seed=plan["seed"])

    def show_worst(self, data: Samples, pos: np.ndarray, rows: list[dict[str, Any]],
                   run_dir: Path) -> None:
        captions = [f"true {r['true']} / pred {r['pred']} (p={r['p_pred']:.2f})" for r in rows]
        save_thumbnail_grid(as_uint8(self.thumbnails(data.x[pos])), captions,
                            run_dir / RUN_FILES["mistakes"])

    def thumbnails(self, x: np.ndarray) -> np.ndarray:
        return x

    def describe_inputs(self, profile: Any) -> str:
        inputs = profile.inputs or {}
        if not inputs.get("spatial"):
            return super().describe_inputs(profile)
        size = "×".join(map(str, inputs["spatial"]))
        return f"{self.name}s of {size} pixels, {inputs.get('channels', 1)} channel(s)"


def match_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Channels-last images with ``channels`` channels: grey repeated into colour, colour
    averaged into grey; unchanged when they already match."""
    if x.shape[-1] == channels:
        return x
    if x.shape[-1] == 1:
        return np.repeat(x, channels, axis=-1)
    return x.mean(axis=-1, keepdims=True).astype(x.dtype)


def as_uint8(pics: np.ndarray) -> np.ndarray:
    if pics.dtype == np.uint8:
        return pics
    lo, hi = float(pics.min()), float(pics.max())
    return ((pics - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)
