"""Training-time augmentation in plain torch: random affine for images and volumes, jitter
and scaling for series. Each augmenter owns a seeded ``torch.Generator``, so a run with the
same seed sees the same augmented batches; ``to_dict`` gives the settings as JSON.

Apply them to training batches only; evaluation sees the data as it is.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import PlanError

__all__ = ["ImageAugment", "SeriesAugment", "VolumeAugment"]


class _Augment:
    """Shared plumbing: the enabled flag, the seeded generator, settings as a dict."""

    _fields: tuple[str, ...] = ()

    def __init__(self, enabled: bool, seed: int):
        self.enabled, self.seed = bool(enabled), int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._device_gens: dict[str, torch.Generator] = {}

    def to_dict(self) -> dict[str, Any]:
        out = {"enabled": self.enabled, "seed": self.seed}
        for name in self._fields:
            v = getattr(self, name)
            out[name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, state: dict[str, Any]):
        return cls(**state)

    def get_rng_state(self) -> torch.Tensor:
        """For a checkpoint: resuming with this state continues the same random stream."""
        return self.generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def _rand(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.generator, dtype=torch.float64)

    def _randn_like(self, x: torch.Tensor) -> torch.Tensor:
        """Gaussian noise made on x's device, seeded from the CPU generator (one draw)."""
        key = str(x.device)
        if key not in self._device_gens:
            self._device_gens[key] = torch.Generator(device=x.device)
        gen = self._device_gens[key]
        gen.manual_seed(int(torch.randint(2**62, (1,), generator=self.generator)))
        return torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)


def _check(name: str, value: float, low: float, high: float = math.inf) -> float:
    if not low <= value <= high:
        bound = f"between {low} and {high}" if high < math.inf else f">= {low}"
        raise PlanError(f"augmentation {name} must be {bound}, got {value}")
    return float(value)


class ImageAugment(_Augment):
    """One random affine per image (shift, rotation, zoom, shear), an optional horizontal
    flip, then Gaussian noise, on a float batch (N, C, H, W).

    shift: largest move, as a fraction of the width/height. rotation, shear: largest angle in
    degrees. zoom: (min, max) scale; > 1 enlarges. flip: probability of a left-right flip;
    off by default, since a flipped digit or letter is another symbol (or none).
    noise: std of the added noise, in the units of the batch (after normalisation, std 1).
    Pixels moved in from outside the image are 0, which after normalisation is the channel
    mean (before it, black).
    """

    _fields = ("shift", "rotation", "zoom", "shear", "flip", "noise")

    def __init__(self, shift: float = 0.0, rotation: float = 0.0,
                 zoom: tuple[float, float] = (1.0, 1.0), shear: float = 0.0, flip: float = 0.0,
                 noise: float = 0.0, enabled: bool = True, seed: int = 0):
        super().__init__(enabled, seed)
        self.shift = _check("shift", shift, 0.0, 1.0)
        self.rotation = _check("rotation", rotation, 0.0, 180.0)
        self.shear = _check("shear", shear, 0.0, 60.0)  # tan(60 deg) already skews by 1.7
        self.flip = _check("flip", flip, 0.0, 1.0)
        self.noise = _check("noise", noise, 0.0)
        lo, hi = (float(v) for v in zoom)
        if not 0 < lo <= hi:
            raise PlanError(f"augmentation zoom must be (min, max) with 0 < min <= max, "
                            f"got {tuple(zoom)}")
        self.zoom = (lo, hi)

    @property
    def geometric(self) -> bool:
        return bool(self.shift or self.rotation or self.shear or self.zoom != (1.0, 1.0))

    def sample_params(self, n: int) -> dict[str, torch.Tensor]:
        """Random settings for n images: shift tx, ty (fractions), angle and shear (degrees),
        scale, flip (bool)."""
        def spread(limit: float) -> torch.Tensor:
            return (self._rand(n) * 2 - 1) * limit

        lo, hi = self.zoom
        return {"tx": spread(self.shift), "ty": spread(self.shift),
                "angle": spread(self.rotation), "shear": spread(self.shear),
                "scale": lo + self._rand(n) * (hi - lo), "flip": self._rand(n) < self.flip}

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Flip the chosen images, then move each by its affine (bilinear, zero padding)."""
        n, _, h, w = x.shape
        if "flip" in params and bool(params["flip"].any()):
            x = torch.where(params["flip"].to(x.device)[:, None, None, None], x.flip(-1), x)
        theta = self._theta(params, n, h, w).to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)

    @staticmethod
    def _theta(params: dict[str, torch.Tensor], n: int, h: int, w: int) -> torch.Tensor:
        """(N, 2, 3) for affine_grid: where each output pixel samples the input.

        The move A (input -> output) is built in pixel units about the centre, so a rotation
        of a non-square image stays a rotation: linear part L = rotate @ shear @ zoom, then
        shift t. Sampling needs the inverse, p_in = L^-1 (p_out - t), and affine_grid works
        in [-1, 1] units, hence the conjugation by P = diag(w/2, h/2)."""
        def get(key: str, default: float) -> torch.Tensor:
            v = params.get(key)
            return torch.full((n,), default, dtype=torch.float64) if v is None else v.double()

        a, s = torch.deg2rad(get("angle", 0.0)), torch.deg2rad(get("shear", 0.0))
        zoom = get("scale", 1.0)
        cos, sin, tan = torch.cos(a), torch.sin(a), torch.tan(s)
        lin = torch.stack([torch.stack([cos, cos * tan - sin], -1),
                           torch.stack([sin, sin * tan + cos], -1)], -2) * zoom[:, None, None]
        t = torch.stack([get("tx", 0.0) * w, get("ty", 0.0) * h], -1)  # pixels, (N, 2)
        inv = torch.linalg.inv(lin)  # (N, 2, 2)
        p = torch.tensor([w / 2, h / 2], dtype=torch.float64)
        lin_n = inv * p[None, None, :] / p[None, :, None]  # P^-1 L^-1 P
        t_n = -(inv @ t[:, :, None])[:, :, 0] / p  # P^-1 (-L^-1 t)
        return torch.cat([lin_n, t_n[:, :, None]], dim=2).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or len(x) == 0:
            return x
        if self.geometric:
            x = self.apply(x, self.sample_params(len(x)))
        elif self.flip:  # a flip alone needs no resampling
            mask = (self._rand(len(x)) < self.flip).to(x.device)
            x = torch.where(mask[:, None, None, None], x.flip(-1), x)
        if self.noise:
            x = x + self.noise * self._randn_like(x)
        return x


class VolumeAugment(ImageAugment):
    """One random 3-D affine per volume (shift along each axis, rotation in the height-width
    plane, zoom), an optional left-right flip, then Gaussian noise, on (N, C, D, H, W);
    trilinear resampling, zeros moved in from outside (the channel mean after
    normalisation). Settings and their checks as :class:`ImageAugment`'s, without shear."""

    _fields = ("shift", "rotation", "zoom", "flip", "noise")

    def __init__(self, shift: float = 0.0, rotation: float = 0.0,
                 zoom: tuple[float, float] = (1.0, 1.0), flip: float = 0.0,
                 noise: float = 0.0, enabled: bool = True, seed: int = 0):
        super().__init__(shift=shift, rotation=rotation, zoom=zoom, flip=flip, noise=noise,
                         enabled=enabled, seed=seed)

    def theta(self, n: int, d: int, h: int, w: int) -> torch.Tensor:
        """(N, 3, 4) for affine_grid, as ImageAugment._theta in three dimensions: the move
        L = zoom · rotate(height-width plane), shift t (voxels), sampled through
        P^-1 L^-1 P and -P^-1 L^-1 t with P = diag(w/2, h/2, d/2) (x, y, z order)."""
        def spread(limit: float) -> torch.Tensor:
            return (self._rand(n) * 2 - 1) * limit

        a = torch.deg2rad(spread(self.rotation))
        lo, hi = self.zoom
        zoom = lo + self._rand(n) * (hi - lo)
        lin = torch.zeros(n, 3, 3, dtype=torch.float64)
        lin[:, 0, 0], lin[:, 0, 1] = torch.cos(a), -torch.sin(a)
        lin[:, 1, 0], lin[:, 1, 1] = torch.sin(a), torch.cos(a)
        lin[:, 2, 2] = 1.0
        lin = lin * zoom[:, None, None]
        p = torch.tensor([w / 2, h / 2, d / 2], dtype=torch.float64)
        t = torch.stack([spread(self.shift) * w, spread(self.shift) * h,
                         spread(self.shift) * d], -1)
        inv = torch.linalg.inv(lin)
        lin_n = inv * p[None, None, :] / p[None, :, None]
        t_n = -(inv @ t[:, :, None])[:, :, 0] / p
        return torch.cat([lin_n, t_n[:, :, None]], dim=2).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or len(x) == 0:
            return x
        if self.flip:
            mask = (self._rand(len(x)) < self.flip).to(x.device)
            x = torch.where(mask[:, None, None, None, None], x.flip(-1), x)
        if self.geometric:
            n, _, d, h, w = x.shape
            theta = self.theta(n, d, h, w).to(device=x.device, dtype=x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)  # 5-D input: trilinear
        if self.noise:
            x = x + self.noise * self._randn_like(x)
        return x


class SeriesAugment(_Augment):
    """Jitter and magnitude scaling for windows (N, W, F).

    jitter: std of the added noise as a fraction of each feature's std (``feature_std``, the
    training stds, or else the batch's own). scale: std of one factor per window drawn from
    N(1, scale) that multiplies the whole window. For forecasting pass the targets too, so
    they are scaled by the same factor and still follow from the inputs.
    """

    _fields = ("jitter", "scale", "feature_std")

    def __init__(self, jitter: float = 0.0, scale: float = 0.0,
                 feature_std: list[float] | None = None, enabled: bool = True, seed: int = 0):
        super().__init__(enabled, seed)
        self.jitter = _check("jitter", jitter, 0.0)
        self.scale = _check("scale", scale, 0.0)
        self.feature_std = None if feature_std is None else [float(v) for v in feature_std]

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None):
        if not self.enabled or len(x) == 0:
            return x if y is None else (x, y)
        if self.scale:
            factor = 1 + self.scale * torch.randn(len(x), generator=self.generator)
            factor = factor.to(device=x.device, dtype=x.dtype)
            x = x * factor.view(-1, *([1] * (x.dim() - 1)))
            if y is not None:
                y = y * factor.to(y.dtype).view(-1, *([1] * (y.dim() - 1)))
        if self.jitter:
            if self.feature_std is not None:
                std = torch.tensor(self.feature_std, device=x.device, dtype=x.dtype)
            else:
                std = x.reshape(-1, x.shape[-1]).std(dim=0, unbiased=False)
            x = x + self._randn_like(x) * (self.jitter * std)
        return x if y is None else (x, y)
