"""From a plan's ``model.arch`` to a network: a convnet (images, volumes, sound, labelled
sequences), a recurrent network or a transformer (text, time series), or a packaged
pretrained network. Tables build their MLP directly (models/mlp.py)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..plan.schema import Plan
from .cnn import build_cnn
from .packaged import build_packaged
from .pretrained import apply_transfer
from .sequence import build_rnn, build_transformer

__all__ = ["build_network"]


def build_network(plan: Plan, inputs: Any, pretrained: Any = None) -> nn.Module:
    """``inputs``: the modality's fitted encoder; it knows the input's shape
    (``input_shape``) and, for text, the vocabulary (``vocab_size``). ``pretrained``
    (models/pretrained.py): load and freeze its blocks as the plan's ``transfer.*`` keys
    say."""
    model = _build(plan, inputs)
    if pretrained is not None:
        apply_transfer(model, plan, pretrained)
    return model


def _build(plan: Plan, inputs: Any) -> nn.Module:
    arch, shape = plan["model.arch"], inputs.input_shape
    n_out, dropout = plan["model.n_outputs"], plan["model.dropout"]
    if arch.startswith("efficientnet"):  # a packaged pretrained network (models/packaged.py)
        return build_packaged(arch, n_out, dropout)
    if arch == "cnn":  # shape: (channels, *spatial)
        return build_cnn(dims=len(shape) - 1, in_channels=shape[0], input_size=tuple(shape[1:]),
                         n_outputs=n_out, blocks=plan["model.blocks"],
                         filters=plan["model.filters"], kernel=plan["model.kernel"],
                         residual=plan["model.residual"], separable=plan["model.separable"],
                         dropout=dropout, activation=plan["model.activation"])
    if arch == "transformer":
        d = plan["model.hidden"]
        return build_transformer(vocab_size=inputs.vocab_size, n_outputs=n_out, d_model=d,
                                 heads=plan["model.heads"], layers=plan["model.layers"],
                                 ff=2 * d, max_len=shape[0], dropout=dropout)
    tokens = inputs.vocab_size is not None  # text: token ids; series: (window, features)
    return build_rnn(kind=arch, n_outputs=n_out, hidden=plan["model.hidden"],
                     layers=plan["model.layers"], dropout=dropout,
                     bidirectional=plan["model.bidirectional"],
                     vocab_size=inputs.vocab_size if tokens else None,
                     embedding_dim=plan["model.embedding_dim"] if tokens else None,
                     n_features=None if tokens else shape[-1])
