"""Images as arrays: a folder of class subfolders or an ``.npz`` file in, uint8 arrays out.

The network never sees a file: ``load_image_folder`` / ``load_array_npz`` give an
:class:`ArraySet` (``x`` channels-last, ``y`` integer class codes), ``channel_stats`` is
fitted on the training split only, and ``to_tensor`` turns any split into the normalised,
channels-first float tensor a convolution reads. The stats are plain lists, so they go into
``preprocess.json`` as they are.

A folder too large to decode at once stays on disk: ``scan_image_folder`` reads only the
headers into :class:`ImageFiles` (file names and how to decode them), and
``ImageFiles.decode`` turns any batch of them into the same uint8 array
``load_image_folder`` would hold for those images.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..runs import atomic_write_bytes

__all__ = ["ArraySet", "IMAGE_EXTENSIONS", "ImageFiles", "MAX_SIDE", "STD_FLOOR",
           "class_folder_files", "common_size", "load_image_folder", "load_array_npz",
           "labels_to_codes", "channel_stats", "file_stats", "scaled_size", "scan_image_folder",
           "stats_positions", "to_tensor", "save_thumbnail_grid"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# The networks nnrecipe plans are small and often train on a CPU: the cost of a convolution
# grows with the pixel count, and 64x64 keeps the cues a small network can use (shape,
# texture, colour) while costing 1/12 of a 224x224 image.
MAX_SIDE = 64
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
_STATS_CHUNK = 4096  # samples per step when summing, so stats never copy the whole set to float
STD_FLOOR = 1e-6  # a constant channel would otherwise divide by zero
# The channel statistics are a mean and a standard deviation per channel: a few thousand
# images pin them to about 1% of their spread (the standard error falls as 1/sqrt(n), and
# each image holds thousands of pixels), so decoding every training image of a large folder
# only to fit six numbers would cost a pass over the disk for nothing.
STATS_SAMPLE = 2048


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


@dataclass
class ImageFiles:
    """A folder's images left on disk: what a streamed split reads a batch at a time.

    Memory grows with the number of images by a file name and a flag each, never by pixels.
    ``paths``: each image's file; ``grey``: decode it as greyscale (its folder held only grey
    images) rather than RGB; ``channels``: the channels every decoded image ends with (grey
    repeated into colour, colour averaged into grey, as :func:`match_colours`);
    ``size``: (height, width) that :func:`load_image_folder` would have read the training
    folder at (its :func:`common_size`), kept so the in-memory path decodes the same array;
    ``native``: the median (height, width) before any cap (what a larger planned size can
    use)."""

    paths: list[str]
    grey: np.ndarray
    channels: int
    size: tuple[int, int]
    native: tuple[int, int]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, ...]:
        """As the array :meth:`decode` would make at ``size``, so shape checks read alike."""
        return (len(self.paths), *self.size, self.channels)

    def decode(self, pos: Sequence[int] | np.ndarray, size: Sequence[int] | None = None
               ) -> np.ndarray:
        """The images at ``pos`` as uint8 (n, H, W, C) at ``size`` (default ``self.size``),
        decoded exactly as :func:`load_image_folder` decodes them. Draws no random numbers
        (a DataLoader worker calls it)."""
        h, w = tuple(size) if size is not None else self.size
        pos = np.asarray(pos, dtype=np.int64).reshape(-1)
        out = np.empty((len(pos), h, w, self.channels), dtype=np.uint8)
        for i, p in enumerate(pos):
            f = Path(self.paths[p])  # named in an error as class/file, as the folder lists it
            px = _decode(f, f.parent.parent, "L" if self.grey[p] else "RGB", h, w)
            out[i] = match_colours(px, self.channels)
        return out

    def take(self, pos: np.ndarray) -> ImageFiles:
        pos = np.asarray(pos, dtype=np.int64)
        return replace(self, paths=[self.paths[p] for p in pos], grey=self.grey[pos])

    def __add__(self, other: ImageFiles) -> ImageFiles:
        """These files, then ``other`` 's (a separate test folder), decoded with these
        files' channels and size."""
        return replace(self, paths=self.paths + other.paths,
                       grey=np.concatenate([self.grey, other.grey]))

    def digests(self) -> list[bytes]:
        """A 16-byte digest of each file's bytes (read a file at a time, once: the
        duplicate count and the split overlap both ask)."""
        if getattr(self, "_digests", None) is None:  # replace() makes a new object: no stale
            self._digests = [hashlib.blake2b(Path(f).read_bytes(), digest_size=16).digest()
                             for f in self.paths]
        return self._digests

    def duplicates(self) -> int:
        """Files with the same bytes as an earlier one."""
        return len(self.paths) - len(set(self.digests()))


def match_colours(x: np.ndarray, channels: int) -> np.ndarray:
    """Channels-last images with ``channels`` channels: grey repeated into colour, colour
    averaged into grey; unchanged when they already match."""
    if x.shape[-1] == channels:
        return x
    if x.shape[-1] == 1:
        return np.repeat(x, channels, axis=-1)
    return x.mean(axis=-1, keepdims=True).astype(x.dtype)


def scaled_size(hw: Sequence[int], side: int) -> list[int]:
    """(height, width) ``hw`` scaled, keeping its aspect ratio, so its longer side is
    ``side`` (up or down)."""
    if side == max(hw):
        return [int(v) for v in hw]
    k = side / max(hw)
    return [max(1, round(v * k)) for v in hw]


def stats_positions(train: np.ndarray, seed: int, n: int = STATS_SAMPLE) -> np.ndarray:
    """The training positions the channel statistics are fitted on: all of them up to
    ``n`` (STATS_SAMPLE says why), else ``n`` drawn with ``seed``, in order."""
    train = np.asarray(train)
    if len(train) <= n:
        return train
    return np.sort(np.random.default_rng(seed).choice(train, size=n, replace=False))


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
def scan_image_folder(path: str | Path, size: tuple[int, int] | None = None,
                      unlabelled: bool = False, min_classes: int = 2
                      ) -> tuple[ImageFiles, np.ndarray, list[str], list[str]]:
    """The images under ``path/<class>/`` without their pixels: (files, class codes, class
    names, each image's name). Reads only the headers (size, mode): cheap, and it finds
    non-images early. ``size``: as :func:`load_image_folder`."""
    root = Path(path)
    classes, files = class_folder_files(root, IMAGE_EXTENSIONS, "image", unlabelled,
                                        min_classes)
    sizes, grey = [], True
    for f in (f for group in files for f in group):
        with _open_image(f, root) as im:
            sizes.append((im.height, im.width))
            grey = grey and _is_grey(im)
    h, w = size if size is not None else common_size(sizes)
    if h < 1 or w < 1:
        raise DataError(f"image size must be positive (height, width), got {size}")
    native = common_size(sizes, max_side=10**9)
    paths = [str(f) for group in files for f in group]
    y = np.asarray([code for code, group in enumerate(files) for _ in group], dtype=np.int64)
    names = [f.relative_to(root).as_posix() for group in files for f in group]
    image_files = ImageFiles(paths, np.full(len(paths), grey), 1 if grey else 3, (h, w),
                             native)
    return image_files, y, classes, names


def load_image_folder(path: str | Path, size: tuple[int, int] | None = None,
                      unlabelled: bool = False, min_classes: int = 2) -> ArraySet:
    """Read ``path/<class>/<image>`` into uint8 (N, H, W, C): RGB, or greyscale (C=1) when
    every image is greyscale; resized (bilinear) to ``size`` = (height, width), by default
    :func:`common_size` of the images. ``unlabelled``: every image under ``path``."""
    files, y, classes, names = scan_image_folder(path, size, unlabelled, min_classes)
    return ArraySet(files.decode(np.arange(len(files))), y, classes, names)


def _decode(f: Path, root: Path, mode: str, h: int, w: int) -> np.ndarray:
    """One image's pixels, (h, w, C) uint8: upright, 8-bit, in ``mode``, resized (bilinear)."""
    from PIL import Image, ImageOps

    with _open_image(f, root) as im:
        try:  # the pixels are decoded here: a truncated file fails here
            im = ImageOps.exif_transpose(im)  # phone photos: upright
            if im.mode.startswith("I") or im.mode == "F":
                im = _to_8bit(im)
            im = im.convert(mode)
            if im.size != (w, h):
                im = im.resize((w, h), Image.Resampling.BILINEAR)
            return np.asarray(im).reshape(h, w, -1)
        except (OSError, ValueError, SyntaxError) as e:
            raise _unreadable(f, root, e) from None


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
    sums = _Sums()
    for start in range(0, len(x_train), _STATS_CHUNK):
        sums.add(x_train[start:start + _STATS_CHUNK])
    return sums.stats()


def file_stats(files: ImageFiles, pos: np.ndarray, size: Sequence[int], chunk: int = 256
               ) -> tuple[list[float], list[float]]:
    """:func:`channel_stats` of the files at ``pos`` decoded at ``size``, ``chunk`` images
    at a time, so their pixels are never all in memory at once. The same numbers as
    channel_stats of the decoded array: uint8 sums are exact integers, whatever the chunks."""
    sums = _Sums()
    pos = np.asarray(pos)
    for start in range(0, len(pos), chunk):
        sums.add(files.decode(pos[start:start + chunk], size))
    return sums.stats()


class _Sums:
    """Per-channel sums and sums of squares. uint8 pixels are summed as int64: exact, so
    the result does not depend on how the images were chunked."""

    def __init__(self) -> None:
        self.total: np.ndarray | float = 0
        self.total_sq: np.ndarray | float = 0
        self.count = 0
        self.scale = 1.0

    def add(self, x: np.ndarray) -> None:
        part = x.reshape(-1, x.shape[-1])
        if x.dtype == np.uint8:
            part, self.scale = part.astype(np.int64), 1 / 255
        else:
            part = part.astype(np.float64)
        self.total = self.total + part.sum(axis=0)
        self.total_sq = self.total_sq + np.square(part).sum(axis=0)
        self.count += len(part)

    def stats(self) -> tuple[list[float], list[float]]:
        if self.count == 0:
            raise DataError("cannot compute image statistics of an empty training split")
        mean = np.asarray(self.total, dtype=np.float64) * self.scale / self.count
        sq = np.asarray(self.total_sq, dtype=np.float64) * self.scale**2 / self.count
        std = np.sqrt(np.maximum(sq - mean**2, 0.0))
        return [float(v) for v in mean], [float(v) for v in std]


def to_tensor(x: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Channels-last ``x`` to a float32 channels-first tensor, (N,C,H,W) or (N,C,D,H,W),
    with each channel normalised by the training ``mean`` and ``std``."""
    if x.shape[-1] != len(mean) or len(mean) != len(std):
        raise DataError(f"images have {x.shape[-1]} channel(s) but the statistics were "
                        f"fitted on {len(mean)}; give images with {len(mean)} channel(s)")
    # one float copy, channels-first, then normalised in place: a batch of a streamed split
    # costs its float size once, not four times (the same arithmetic, element by element)
    t = torch.from_numpy(np.ascontiguousarray(x)).movedim(-1, 1).to(
        torch.float32, memory_format=torch.contiguous_format, copy=True)
    if x.dtype == np.uint8:
        t.div_(255)
    shape = (1, len(mean)) + (1,) * (t.dim() - 2)
    m = torch.tensor(list(mean), dtype=torch.float32).reshape(shape)
    s = torch.tensor(list(std), dtype=torch.float32).clamp_min(STD_FLOOR).reshape(shape)
    return t.sub_(m).div_(s)


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
