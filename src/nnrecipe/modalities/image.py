"""Images: a folder with one subfolder of PNG/JPEG files per class, or an .npz with ``x``
(N, H, W[, C]) and ``y``. Normalised per channel with the training images' statistics,
resized to the plan's side, augmented (shift, rotation, zoom, shear), read by a 2-D convnet;
the worst test images are drawn into ``mistakes.png``.

A folder is first read as file names only (data/images.ImageFiles). The plan then decides
``data.image_size`` (from the images' sizes, the device and the network) and
``data.loader``: ``memory`` decodes every image into one uint8 array, as small folders
always were; ``stream`` leaves them on disk and DataLoader workers decode, resize and
normalise a batch at a time, so memory does not grow with the number of images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.augment import ImageAugment
from ..data.images import (
    ImageFiles,
    channel_stats,
    file_stats,
    load_array_npz,
    match_colours,
    save_thumbnail_grid,
    scaled_size,
    scan_image_folder,
    stats_positions,
    to_tensor,
)
from ..data.profile import DataProfile
from ..errors import DataError
from ..plan.network_rules import CONV_RULES, const, dropout_rule
from ..plan.rules import Ctx, Decision, Rule, workers_rule
from ..plan.schema import Plan
from ..runs import RUN_FILES
from .convnet import ConvModality
from .samples import SampleEncoder, Samples, class_samples, streaming

__all__ = ["ImageEncoder", "ImageModality", "IMAGE_EXT", "STREAM_BYTES", "as_uint8",
           "match_channels"]

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MAX_IMAGE_SIDE = 64  # small networks on a CPU: larger images cost time, rarely accuracy here
#: a scratch convnet on a GPU: the ImageNet networks' input side (Krizhevsky et al. 2012 to
#: EfficientNet-B0), the scale most photo features are learned at; a GPU convolves a batch
#: of 224-pixel images in milliseconds
GPU_IMAGE_SIDE = 224
#: the training split as float32 tensors above this size streams from disk: 1 GiB is what a
#: laptop can spare beside the network, the optimizer and the validation split, and
#: decoding a batch ahead in a worker costs little once the images are that many
STREAM_BYTES = 2**30


class ImageEncoder(SampleEncoder):
    """Per-channel mean and std from the training images; images resized to ``spatial``."""

    @property
    def input_shape(self) -> list[int]:
        return [len(self.state["mean"]), *self.state["spatial"]]

    def encode(self, data: Samples, pos: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """The images at ``pos`` as the network reads them. Files are decoded straight to
        ``spatial`` (PIL, bilinear); an array in memory is resized by interpolation."""
        s = self.state
        if isinstance(data.x, ImageFiles):
            px = data.x.decode(pos, s["spatial"])
            return to_tensor(px, s["mean"], s["std"]), data.y[pos]
        x = to_tensor(data.x[pos], s["mean"], s["std"])
        if list(x.shape[2:]) != s["spatial"]:
            x = F.interpolate(x, size=tuple(s["spatial"]), mode="bilinear",
                              align_corners=False)
        return x, data.y[pos]


def image_size_rule(ctx: Ctx) -> Decision:
    """The side the network reads. An .npz: its own (the arrays are already in memory at
    that size). A folder: the median image side, capped by where a scratch convnet trains:
    64 px on the CPU (a convolution's cost grows with the pixel count; 64 px keeps the
    shape, texture and colour cues a small network uses at 1/12 of 224 px's cost), 224 px
    on a GPU (GPU_IMAGE_SIDE). A pretrained network reads its own input size (224 for the
    packaged ImageNet network): plan/transfer.py fixes it in place of this rule."""
    inputs = ctx.profile.inputs
    side = inputs["side"]
    native = inputs.get("native_side")
    if native is None:
        return Decision(side, f"{side}×{side} pixels: the images' own side (an .npz is read "
                        "at the size it was saved)", "data.image_size")
    device = ctx["train.device"]
    if device == "cpu":
        cap = MAX_IMAGE_SIDE
        where = (f"a scratch convnet on the CPU reads at most {cap} px (its cost grows with "
                 f"the pixel count; {cap} px keeps shape, texture and colour at 1/12 of 224 "
                 "px's cost)")
    else:
        cap, side = GPU_IMAGE_SIDE, min(native, GPU_IMAGE_SIDE)
        where = (f"a scratch convnet on the GPU ({device}) reads up to {cap} px, the "
                 "ImageNet networks' input side, which a GPU convolves in milliseconds")
    kept = "capped" if native > side else "kept: below the cap"
    return Decision(side, f"{side} px on the longer side: the median image side is {native} "
                    f"px ({kept}); {where}; a pretrained network would read its own size "
                    "(224 for ImageNet networks)", "data.image_size")


def loader_rule(ctx: Ctx) -> Decision:
    """memory or stream, by the size of the training split as the network reads it."""
    inputs = ctx.profile.inputs
    spatial = scaled_size(inputs.get("spatial") or [inputs["side"]] * 2,
                          ctx["data.image_size"])
    channels = int(inputs.get("channels", 3))
    need = ctx.n_train * channels * int(np.prod(spatial)) * 4
    size = f"{ctx.n_train:,} training images of {channels}×{'×'.join(map(str, spatial))}"
    gib, limit = need / 2**30, f"{STREAM_BYTES / 2**30:g} GiB"
    if need > STREAM_BYTES:
        return Decision("stream", f"stream: {size} take {gib:.1f} GiB as float32 tensors, "
                        f"over {limit} (what a laptop spares beside the network and the "
                        "optimizer); read from disk and decoded a batch at a time in "
                        "DataLoader workers, so memory does not grow with the number of "
                        "images", "data.loader_by_size")
    return Decision("memory", f"memory: {size} take {gib * 1024:.0f} MiB as float32 tensors, "
                    f"under {limit}: decoded once and held as tensors, the fastest path "
                    "(one gather per epoch); --set data.loader=stream reads them from disk a "
                    "batch at a time", "data.loader_by_size")


#: decided after train.device (the size reads it), in this order
LATE_RULES: tuple[tuple[str, Rule, bool], ...] = (
    ("data.loader", loader_rule, False),
    ("data.workers", workers_rule, False),
)


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

    #: rules decided after train.device (see plan_rules)
    late_rules: tuple[tuple[str, Rule, bool], ...] = LATE_RULES

    def plan_rules(self, table_rules: tuple, pretrained: dict | None) -> list:
        """The shared composition, with data.image_size moved after train.device (the size
        depends on where the network trains; no rule before it reads the size) and followed
        by data.loader and data.workers (the loader depends on the size, the workers on the
        loader and the device)."""
        rules = super().plan_rules(table_rules, pretrained)
        if not self.late_rules:
            return rules
        late = [r for r in rules if r[0] == "data.image_size"] + list(self.late_rules)
        rest = [r for r in rules if r[0] != "data.image_size"]
        at = next(i for i, r in enumerate(rest) if r[0] == "train.device") + 1
        return rest[:at] + late + rest[at:]

    def detect(self, source: Any, *, horizon: int | None, window: int | None) -> bool:
        if not isinstance(source, str | Path):
            return False
        p = Path(source)
        return p.is_dir() or (p.suffix.lower() == ".npz" and not load_array_npz(p).is_volume)

    def read(self, source: Any, size: tuple[int, int] | None = None,
             unlabelled: bool = False, min_classes: int = 2) -> Any:
        """An ArraySet from an .npz; from a folder of class subfolders, one whose ``x`` is
        the folder's :class:`ImageFiles` (file names: nothing decoded yet)."""
        if Path(source).is_dir():
            files, y, classes, names = scan_image_folder(source, size, unlabelled=unlabelled,
                                                         min_classes=min_classes)
            return FolderSet(files, y, classes, names)
        return load_array_npz(source, unlabelled=unlabelled)

    def load(self, source: Any, target: str | None, task: str, *, like: Samples | None = None,
             min_classes: int = 2) -> Samples:
        size = tuple(like.x.shape[1:3]) if like is not None else None
        s = self.read(source, size, min_classes=min_classes)
        info = {"spatial": list(s.x.shape[1:-1]), "channels": int(s.x.shape[-1])}
        if isinstance(s.x, ImageFiles):
            info["native"] = list(s.x.native)
        return class_samples(self.name, s, target or "label", info, min_classes)

    def read_for_run(self, source: Any, state: dict[str, Any], labelled: bool) -> Samples:
        size = tuple(state["spatial"]) if self.name == "image" else None  # as the test images
        s = self.read(source, size, unlabelled=not labelled, min_classes=1)
        channels = len(state["mean"])
        if isinstance(s.x, ImageFiles):  # grey ↔ colour as the run's inputs, when decoded
            x: Any = replace(s.x, channels=channels)
            if 4 * len(x) * channels * int(np.prod(x.size)) <= STREAM_BYTES:
                x = x.decode(np.arange(len(x)))  # small: decoded at once, as always
        else:
            x = match_channels(s.x, channels)
        if len(x.shape) - 2 != len(state["spatial"]):
            raise DataError(f"{source} holds {'volumes' if len(x.shape) == 5 else 'images'}; "
                            f"the run was trained on {self.name}s")
        return Samples(self.name, x, s.y, s.classes, s.names, state["target"], state["task"],
                       "", {})

    def profile_inputs(self, data: Samples) -> dict[str, Any]:
        out = {**data.info, "side": int(max(data.info["spatial"]))}
        if "native" in data.info:
            out["native_side"] = int(max(data.info["native"]))
        return out

    def duplicates(self, data: Samples) -> int:
        if isinstance(data.x, ImageFiles):
            return data.x.duplicates()  # the same file bytes (the pixels are not read yet)
        return super().duplicates(data)

    def on_disk(self, data: Samples) -> bool:
        return isinstance(data.x, ImageFiles)

    def settle(self, data: Samples, plan: Plan, profile: DataProfile | None) -> Samples:
        """data.loader=memory: the files decoded into one uint8 array, as a folder was
        always loaded (at the size load_image_folder reads, or the planned one when that is
        larger), and the duplicates counted on the pixels; stream: the files as they are."""
        if not isinstance(data.x, ImageFiles) or streaming(plan):
            return data
        files = data.x
        out = replace(data, x=files.decode(np.arange(len(files)), self.held_size(data, plan)))
        if profile is not None:
            profile.duplicate_rows = self.duplicates(out)
        return out

    def concat(self, a: Any, b: Any) -> Any:
        if isinstance(a, ImageFiles) and isinstance(b, ImageFiles):
            return a + b
        if isinstance(a, ImageFiles):  # an .npz test set after a folder: both in memory
            a = a.decode(np.arange(len(a)))
        return np.concatenate([a, b])

    def adopt_pretrained(self, data: Samples, source: Any) -> Any:
        pre = super().adopt_pretrained(data, source)
        if pre.in_channels == 3 and data.x.shape[-1] == 1:
            if isinstance(data.x, ImageFiles):
                data.x = replace(data.x, channels=3)  # decoded grey, repeated into colour
            else:
                data.x = match_channels(data.x, 3)  # grey into the colour channels it reads
            data.info["channels"] = 3
        return pre

    def like(self, x: Any, ref: Any, where: str) -> Any:
        if isinstance(x, ImageFiles):
            x = replace(x, channels=ref.shape[-1])
            if not isinstance(ref, ImageFiles):
                x = x.decode(np.arange(len(x)))
            if x.shape[1:] != ref.shape[1:]:
                raise DataError(f"{where} holds samples of shape {x.shape[1:]}, the training "
                                f"data {ref.shape[1:]}; give both at the same size")
            return x
        return super().like(match_channels(x, ref.shape[-1]), ref, where)

    def fit_features(self, data: Samples, train: np.ndarray, plan: Plan) -> ImageEncoder:
        """Per-channel mean and std of a seeded sample of the training images
        (data/images.STATS_SAMPLE: all of them up to 2,048), read at the size the
        in-memory path holds them."""
        state = SampleEncoder.base_state(data)
        pick = stats_positions(train, plan["seed"])
        if isinstance(data.x, ImageFiles):
            mean, std = file_stats(data.x, pick, self.held_size(data, plan))
        else:
            mean, std = channel_stats(data.x[pick])
        state.update(mean=mean, std=std, spatial=self.spatial(data, plan),
                     stats_images=len(pick), stats_of=len(train),
                     stats_from=(f"all {len(train):,} training images" if len(pick) ==
                                 len(train) else f"a seeded sample of {len(pick):,} of the "
                                 f"{len(train):,} training images"))
        return ImageEncoder(state)

    def held_size(self, data: Samples, plan: Plan) -> tuple[int, int]:
        """The size a folder is decoded at to be held in memory: the size it was listed at
        (its common size, at most 64 px: as folders were always loaded), or the planned
        size when the plan reads them larger. The channel statistics are fitted at this size
        on both paths, so a streamed run normalises exactly as the in-memory one."""
        size = data.x.size
        return tuple(self.spatial(data, plan)) if plan["data.image_size"] > max(size) else size

    def spatial(self, data: Samples, plan: Plan) -> list[int]:
        """The size the network reads: the images' own, scaled to data.image_size (files:
        from their median size when the plan reads them larger than they were listed)."""
        side = plan["data.image_size"]
        if isinstance(data.x, ImageFiles) and side > max(data.x.size):
            return scaled_size(data.x.native, side)
        return scaled_size(list(data.x.shape[1:-1]), side)

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
        x = data.x.decode(pos) if isinstance(data.x, ImageFiles) else data.x[pos]
        save_thumbnail_grid(as_uint8(self.thumbnails(x)), captions,
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
    return match_colours(x, channels)


@dataclass
class FolderSet:
    """A folder as read before the plan: the ArraySet fields, ``x`` its ImageFiles."""

    x: ImageFiles
    y: np.ndarray
    classes: list[str]
    names: list[str]


def as_uint8(pics: np.ndarray) -> np.ndarray:
    if pics.dtype == np.uint8:
        return pics
    lo, hi = float(pics.min()), float(pics.max())
    return ((pics - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)
