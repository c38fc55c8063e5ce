"""Convolutional networks for grids: series and audio (1D), images (2D), volumes (3D).

Each block: conv → BatchNorm → activation → conv → BatchNorm [+ shortcut] → activation →
max pool 2. Block i has ``filters·2^i`` channels: every pool halves the grid, so doubling
the channels keeps the work per block roughly level while later blocks combine the simple
early features into many more complex ones. After the blocks, global average pooling
makes the head independent of the input size and far smaller than flattening the grid.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import PlanError
from .init import init_weights
from .mlp import make_activation

__all__ = ["ConvBlock", "ConvNet", "build_cnn", "conv_output_size", "max_blocks"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVGPOOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
_NOUN = {1: "sequences of length", 2: "images of", 3: "volumes of"}
# How to make the grid big enough for a depth whose last block sees a side of `side`.
_LARGER = {1: lambda side: f"sequences of at least {side} steps",
           2: lambda side: f"larger images (--set data.image_size={max(side, 4)})",
           3: lambda side: f"volumes of at least {side} per side"}


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Length of one side after a convolution or pooling window:
    floor((size + 2p − d(k−1) − 1) / s) + 1. Below 1 the window no longer fits."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _pooled(size: int) -> int:
    return conv_output_size(size, 2, stride=2)


def _block_inputs(input_size: tuple[int, ...], blocks: int) -> list[tuple[int, ...]]:
    """The grid entering each block, and after the last one, as if every block pooled.
    The convs keep the size (odd kernel, zero padding k//2), so only the pools shrink it."""
    sizes = [tuple(input_size)]
    for _ in range(blocks):
        sizes.append(tuple(max(_pooled(s), 0) for s in sizes[-1]))
    return sizes


def max_blocks(input_size: tuple[int, ...] | int) -> int:
    """The most pooling blocks a grid of ``input_size`` supports: each block's conv must
    see at least one cell along every side. (The last block skips its pool when a side is
    already 1, so it never produces an empty grid.)"""
    sides = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    smallest = min(sides)
    return 0 if smallest < 1 else int(math.floor(math.log2(smallest))) + 1


def _check_sizes(dims: int, input_size: tuple[int, ...], blocks: int, kernel: int) -> None:
    if kernel < 1 or kernel % 2 == 0:
        # An even kernel cannot be padded equally on both sides, so the size would grow by
        # one per conv and a residual sum would not line up.
        raise PlanError(f"the convolution kernel must be odd so zero padding keeps the size, "
                        f"got {kernel}; use --set model.kernel={max(1, kernel - 1)}")
    fits = max_blocks(input_size)
    if blocks <= fits:
        return
    square = len(set(input_size)) == 1  # then one number per step reads better: 6→3→1→0
    chain: list[str] = []
    for size in _block_inputs(input_size, blocks):
        chain.append(str(size[0]) if square else "×".join(str(s) for s in size))
        if min(size) == 0:  # the rest of the chain is empty grids too
            break
    shown = "×".join(str(s) for s in input_size)
    larger = _LARGER[dims](2 ** (blocks - 1))
    fix = f"use --set model.blocks={fits} or {larger}" if fits >= 1 else f"use {larger}"
    raise PlanError(f"{_NOUN[dims]} {shown} are too small for {blocks} pooling blocks "
                    f"({'→'.join(chain)}); at most {fits} fit; {fix}")


def _conv(dims: int, c_in: int, c_out: int, kernel: int, separable: bool) -> nn.Module:
    """A size-keeping conv without bias (the BatchNorm after it supplies the shift).
    Separable: a per-channel spatial filter, then a 1×1 conv that mixes channels; about
    k^d + c_out parameters per input channel instead of k^d · c_out."""
    conv = _CONV[dims]
    if not separable:
        return conv(c_in, c_out, kernel, padding=kernel // 2, bias=False)
    return nn.Sequential(conv(c_in, c_in, kernel, padding=kernel // 2, groups=c_in, bias=False),
                         conv(c_in, c_out, 1, bias=False))


class ConvBlock(nn.Module):
    """Two convs and an optional pool; with ``residual`` the block's input is added back
    before the last activation (through a 1×1 conv when the channel count changes)."""

    def __init__(self, dims: int, c_in: int, c_out: int, *, kernel: int, residual: bool,
                 separable: bool, activation: str, pool: bool):
        super().__init__()
        self.conv1 = _conv(dims, c_in, c_out, kernel, separable)
        self.bn1 = _BATCHNORM[dims](c_out)
        self.act1 = make_activation(activation)
        self.conv2 = _conv(dims, c_out, c_out, kernel, separable)
        self.bn2 = _BATCHNORM[dims](c_out)
        self.act2 = make_activation(activation)
        self.shortcut: nn.Module | None = None
        if residual:
            self.shortcut = nn.Identity() if c_in == c_out else nn.Sequential(
                _CONV[dims](c_in, c_out, 1, bias=False), _BATCHNORM[dims](c_out))
        # A pool on a side of 1 would empty the grid; such a block keeps its size.
        self.pool = _MAXPOOL[dims](2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, c_in, *S)
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))  # (N, c_out, *S)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.pool(self.act2(out))  # (N, c_out, *S/2)


class ConvNet(nn.Module):
    """``blocks`` (an nn.ModuleList of ConvBlock) then ``head`` (global average pool →
    flatten → dropout → Linear). Input (N, C, *spatial); output raw scores (N, n_outputs)."""

    def __init__(self, blocks: list[ConvBlock], head: nn.Sequential):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.frozen = 0  # leading blocks frozen (transfer learning): see freeze()

    def freeze(self, n: int) -> None:
        """Freeze the first ``n`` blocks and unfreeze the rest: no gradients, and their
        BatchNorm layers keep the statistics they learned (eval mode even in training, as
        Keras does for frozen layers), so the features the head learns from stay put."""
        self.frozen = n
        for i, block in enumerate(self.blocks):
            for p in block.parameters():
                p.requires_grad_(i >= n)
        self.train(self.training)

    @torch.no_grad()
    def trainable_part(self, x: torch.Tensor, chunk: int = 64
                       ) -> tuple[ConvNet, torch.Tensor]:
        """(the blocks after the frozen ones with the head, the frozen blocks' output for
        ``x``): frozen blocks are a fixed function, so whoever trains on the same rows many
        times (the pre-flight checks) can run them once. Shares the modules."""
        frozen = list(self.blocks[:self.frozen])
        was = [b.training for b in frozen]
        for b in frozen:
            b.eval()
        out = []
        for i in range(0, len(x), chunk):
            h = x[i:i + chunk]
            for block in frozen:
                h = block(h)
            out.append(h)
        for b, mode in zip(frozen, was, strict=True):
            b.train(mode)
        rest = ConvNet(list(self.blocks[self.frozen:]), self.head)
        return rest, torch.cat(out) if out else x

    def train(self, mode: bool = True) -> ConvNet:
        super().train(mode)
        for block in self.blocks[:self.frozen]:
            block.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x  # (N, C_last, *spatial_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (N, n_outputs)


def build_cnn(*, dims: int, in_channels: int, input_size: tuple[int, ...], n_outputs: int,
              blocks: int, filters: int, kernel: int = 3, residual: bool = False,
              separable: bool = False, dropout: float = 0.5,
              activation: str = "relu") -> ConvNet:
    """A convnet for ``dims``-dimensional grids of ``input_size`` (spatial sides only).
    Raises PlanError when the grid is too small for ``blocks`` pools or the kernel is even.
    ``dropout`` 0.5 by default: the usual rate in front of a CNN's classifier."""
    if dims not in _CONV:
        raise ValueError(f"dims must be 1, 2 or 3, got {dims}")
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != dims:
        raise ValueError(f"input_size needs {dims} sides for dims={dims}, got {input_size}")
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")
    _check_sizes(dims, input_size, blocks, kernel)
    sizes = _block_inputs(input_size, blocks)
    layers, c_in = [], in_channels
    for i in range(blocks):
        c_out = filters * 2 ** i
        layers.append(ConvBlock(dims, c_in, c_out, kernel=kernel, residual=residual,
                                separable=separable, activation=activation,
                                pool=min(sizes[i]) >= 2))
        c_in = c_out
    head = nn.Sequential(_AVGPOOL[dims](1), nn.Flatten(), nn.Dropout(dropout),
                         nn.Linear(c_in, n_outputs))
    model = ConvNet(layers, head)
    _init_cnn(model, activation)
    return model


@torch.no_grad()
def _init_cnn(model: ConvNet, activation: str) -> None:
    """He initialisation (the activations are ReLU-family), BatchNorm as the identity.
    fan_out for convs keeps the backward signal's variance level (He et al., 2015), the
    same choice torchvision's ResNets make."""
    leaky = activation in ("leaky_relu", "prelu", "rrelu")
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, a=0.01 if leaky else 0, mode="fan_out",
                                    nonlinearity="leaky_relu" if leaky else "relu")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    init_weights(model, "he_normal", activation)  # the Linear in the head
