"""Images as arrays: a folder of class subfolders or an ``.npz`` file in, uint8 arrays out.

The network never sees a file: ``load_image_folder`` / ``load_array_npz`` give an
:class:`ArraySet` (``x`` channels-last, ``y`` integer class codes), ``channel_stats`` is
fitted on the training split only, and ``to_tensor`` turns any split into the normalised,
channels-first float tensor a convolution reads. The stats are plain lists, so they go into
``preprocess.json`` as they are.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..runs import atomic_write_bytes

__all__ = ["ArraySet", "IMAGE_EXTENSIONS", "MAX_SIDE", "STD_FLOOR", "class_folder_files",
           "common_size", "load_image_folder", "load_array_npz", "labels_to_codes", "channel_stats",
           "to_tensor", "save_thumbnail_grid"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# The networks nnrecipe plans are small and often train on a CPU: the cost of a convolution
# grows with the pixel count, and 64x64 keeps the cues a small network can use (shape,
# texture, colour) while costing 1/12 of a 224x224 image.
MAX_SIDE = 64
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
_STATS_CHUNK = 4096  # samples per step when summing, so stats never copy the whole set to float
STD_FLOOR = 1e-6  # a constant channel would otherwise divide by zero


@dataclass
class ArraySet:
    """Samples as one array. ``x``: (N, H, W, C) images, (N, D, H, W, C) volumes or (N, T)
    waveforms; ``y``: int64 codes into ``classes``; ``names``: where each sample came from."""

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    names: list[str]
    spatial_dims: int = 2  # 1 waveform, 2 image, 3 volume
    sample_rate: int | None = None  # audio only

    @property
    def is_volume(self) -> bool:
        return self.spatial_dims == 3

    def __len__(self) -> int:
        return len(self.y)


# ---- folders of class subfolders (shared with audio) --------------------------------------
def class_folder_files(path: str | Path, extensions: Sequence[str], what: str,
                       unlabelled: bool = False, min_classes: int = 2
                       ) -> tuple[list[str], list[list[Path]]]:
    """The class names (subfolders, sorted) and each class's files with one of ``extensions``
    (any case), or a DataError saying what the folder lacks. ``unlabelled`` (samples to
    predict): the files may also lie in the folder itself, as one unnamed group.
    ``min_classes``: 1 for a test set, which may hold some of the classes only."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{what} folder {root} not found; check the path")
    if not root.is_dir():
        raise DataError(f"{what} path {root} is a file; give a folder with one subfolder "
                        "per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    exts = {e.lower() for e in extensions}
    if unlabelled:
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        if not files:
            raise DataError(f"{what} folder {root} holds no {what} files "
                            f"({', '.join(sorted(exts))})")
        return [""], [files]
    if len(classes) < min_classes:
        raise DataError(f"{what} folder {root} has {len(classes)} class subfolder(s); "
                        f"give at least {min_classes}, one per class, each holding that "
                        "class's files")
    files = []
    for name in classes:
        found = sorted(p for p in (root / name).iterdir()
                       if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."))
        if not found:
            raise DataError(f"class folder {root / name} holds no {what} files "
                            f"({', '.join(sorted(exts))}); add some or remove the folder")
        files.append(found)
    return classes, files


def common_size(sizes: Sequence[tuple[int, int]], max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The median (height, width), shrunk keeping its aspect ratio so no side exceeds
    ``max_side`` (see MAX_SIDE for why)."""
    h, w = (float(np.median([s[i] for s in sizes])) for i in (0, 1))
    shrink = min(1.0, max_side / max(h, w))
    return max(1, round(h * shrink)), max(1, round(w * shrink))


# ---- image folders ------------------------------------------------------------------------
def load_image_folder(path: str | Path, size: tuple[int, int] | None = None,
                      unlabelled: bool = False, min_classes: int = 2) -> ArraySet:
    """Read ``path/<class>/<image>`` into uint8 (N, H, W, C): RGB, or greyscale (C=1) when
    every image is greyscale; resized (bilinear) to ``size`` = (height, width), by default
    :func:`common_size` of the images. ``unlabelled``: every image under ``path``."""
    from PIL import Image, ImageOps

    root = Path(path)
    classes, files = class_folder_files(root, IMAGE_EXTENSIONS, "image", unlabelled,
                                        min_classes)
    # Pass 1 reads only the headers (size, mode): cheap, and it finds non-images early.
    sizes, grey = [], True
    for f in (f for group in files for f in group):
        with _open_image(f, root) as im:
            sizes.append((im.height, im.width))
            grey = grey and _is_grey(im)
    h, w = size if size is not None else common_size(sizes)
    if h < 1 or w < 1:
        raise DataError(f"image size must be positive (height, width), got {size}")
    mode = "L" if grey else "RGB"
    x = np.empty((len(sizes), h, w, 1 if grey else 3), dtype=np.uint8)
    y, names, i = [], [], 0
    for code, group in enumerate(files):
        for f in group:
            with _open_image(f, root) as im:
                try:  # pass 2 decodes the pixels: a truncated file fails here
                    im = ImageOps.exif_transpose(im)  # phone photos: upright
                    if im.mode.startswith("I") or im.mode == "F":
                        im = _to_8bit(im)
                    im = im.convert(mode)
                    if im.size != (w, h):
                        im = im.resize((w, h), Image.Resampling.BILINEAR)
                    x[i] = np.asarray(im).reshape(h, w, -1)
                except (OSError, ValueError, SyntaxError) as e:
                    raise _unreadable(f, root, e) from None
            y.append(code)
            names.append(f.relative_to(root).as_posix())
            i += 1
    return ArraySet(x, np.asarray(y, dtype=np.int64), classes, names)


def _is_grey(im) -> bool:
    """A greyscale mode, or a palette of greys only (GIFs and some PNGs store grey so)."""
    if im.mode in _GREY_MODES:
        return True
    if im.mode != "P" or im.palette is None or im.palette.mode != "RGB":
        return False
    rgb = np.asarray(im.getpalette() or [], dtype=np.int64).reshape(-1, 3)
    return bool(len(rgb) and np.all(rgb == rgb[:, :1]))


def _to_8bit(im):
    """16-bit, 32-bit and float greyscale to 0-255 (Pillow's own conversion clips at 255)."""
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    top = float(a.max()) if a.size else 0.0
    if im.mode.startswith("I;16") or 255 < top <= 65535:
        a = a / 257  # the 16-bit range onto the 8-bit one
    elif top > 65535:
        a = a * (255 / top)
    return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8), "L")


def _open_image(f: Path, root: Path):
    from PIL import Image

    try:
        return Image.open(f)
    except (OSError, ValueError, SyntaxError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise _unreadable(f, root, e) from None


def _unreadable(f: Path, root: Path, e: Exception) -> DataError:
    why = str(e).splitlines()[0] if str(e) else type(e).__name__
    return DataError(f"image {f.relative_to(root).as_posix()} in {root} could not be read "
                     f"({why}); replace or delete it")


# ---- arrays in an .npz file -----------------------------------------------------------------
def load_array_npz(path: str | Path, unlabelled: bool = False) -> ArraySet:
    """Read ``x`` and ``y`` from an ``.npz``. ``x``: (N,H,W) or (N,H,W,C) with C in 1/3/4 is
    an image; any other 4-d shape is a greyscale volume (N,D,H,W); (N,D,H,W,C) a volume.
    ``y``: integer or string class labels (``unlabelled``: may be missing)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"array file {p} not found; check the path")
    if not zipfile.is_zipfile(p):
        raise DataError(f"{p} is not an .npz file; save one with np.savez(path, x=..., y=...)")
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = sorted(z.files)
            missing = [k for k in ("x", "y") if k not in keys
                       and not (unlabelled and k == "y")]
            if missing:
                raise DataError(f"{p} has no array named {' or '.join(map(repr, missing))} "
                                f"(found {keys}); save it with np.savez(path, x=..., y=...)")
            x = z["x"]
            y = z["y"] if "y" in keys else np.zeros(len(x), dtype=np.int64)
    except ValueError as e:
        if "pickle" in str(e):  # object arrays need pickle, which nnrecipe never loads
            raise DataError(f"{p} holds Python objects; save numbers, and labels as "
                            "strings or ints, e.g. y.astype(str)") from None
        raise DataError(f"{p} could not be read as .npz: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{p} could not be read as .npz: {e}") from None
    x, spatial = _check_x(x, p)
    codes, classes = labels_to_codes(y, str(p))
    if len(codes) != len(x):
        raise DataError(f"{p}: x has {len(x)} samples but y has {len(codes)} labels; "
                        "give one label per sample")
    return ArraySet(x, codes, classes, [f"row {i}" for i in range(len(x))], spatial)


def _check_x(x: np.ndarray, p: Path) -> tuple[np.ndarray, int]:
    if x.dtype.kind not in "biuf":
        raise DataError(f"{p}: x has dtype {x.dtype}; give numbers (uint8 0-255 or floats)")
    if x.ndim not in (3, 4, 5) or len(x) == 0:
        raise DataError(f"{p}: x has shape {x.shape}; expected (N,H,W), (N,H,W,C), "
                        "(N,D,H,W) or (N,D,H,W,C) with N > 0")
    if x.dtype != np.uint8:
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise DataError(f"{p}: x holds NaN or infinite values; replace them first")
    if x.ndim == 3:
        return x[..., None], 2
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        return x, 2
    if x.ndim == 4:
        return x[..., None], 3
    return x, 3


def labels_to_codes(y: np.ndarray, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer or string labels to int64 codes 0..K-1 and the sorted class names."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: y has shape {y.shape}; give one class label per sample")
    if y.dtype.kind == "f":
        if not (np.isfinite(y).all() and np.all(y == np.round(y))):
            raise DataError(f"{where}: y holds non-integer numbers; give class labels "
                            "(ints or strings)")
        y = y.astype(np.int64)
    if y.dtype.kind not in "biuUS":
        raise DataError(f"{where}: y has dtype {y.dtype}; give ints or strings")
    values, codes = np.unique(y, return_inverse=True)
    classes = [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
    return codes.astype(np.int64).reshape(-1), classes


# ---- normalisation ------------------------------------------------------------------------
def channel_stats(x_train: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of channels-last ``x_train`` (uint8 read on the 0-1 scale)."""
    c = x_train.shape[-1]
    scale = 1 / 255 if x_train.dtype == np.uint8 else 1.0
    total, total_sq, count = np.zeros(c), np.zeros(c), 0
    for start in range(0, len(x_train), _STATS_CHUNK):
        part = x_train[start:start + _STATS_CHUNK].reshape(-1, c).astype(np.float64) * scale
        total += part.sum(axis=0)
        total_sq += np.square(part).sum(axis=0)
        count += len(part)
    if count == 0:
        raise DataError("cannot compute image statistics of an empty training split")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return [float(v) for v in mean], [float(v) for v in std]


def to_tensor(x: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Channels-last ``x`` to a float32 channels-first tensor, (N,C,H,W) or (N,C,D,H,W),
    with each channel normalised by the training ``mean`` and ``std``."""
    if x.shape[-1] != len(mean) or len(mean) != len(std):
        raise DataError(f"images have {x.shape[-1]} channel(s) but the statistics were "
                        f"fitted on {len(mean)}; give images with {len(mean)} channel(s)")
    t = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32)
    if x.dtype == np.uint8:
        t = t / 255
    m = torch.tensor(list(mean), dtype=torch.float32)
    s = torch.tensor(list(std), dtype=torch.float32).clamp_min(STD_FLOOR)
    t = (t - m) / s
    return t.movedim(-1, 1).contiguous()


# ---- a grid of thumbnails -----------------------------------------------------------------
def save_thumbnail_grid(images: np.ndarray, captions: Sequence[str], path: str | Path,
                        cols: int = 8) -> Path:
    """Write a PNG grid of uint8 images (N,H,W,C) or (N,H,W), each with its caption
    (e.g. "true 3 / pred 8 (p=0.91)"). Used for the highest-loss test images."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure


    images = np.asarray(images)
    if len(images) == 0 or len(images) != len(captions):
        raise ValueError(f"need one caption per image, got {len(images)} images "
                         f"and {len(captions)} captions")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    cols = max(1, min(cols, len(images)))
    rows = math.ceil(len(images) / cols)
    fig = Figure(figsize=(1.6 * cols, 1.8 * rows))
    FigureCanvasAgg(fig)
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.axis("off")
        if i < len(images):
            grey = images[i].ndim == 2
            ax.imshow(images[i], cmap="gray" if grey else None, vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_title(captions[i], fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
