"""One entry point from a plan to a network, whatever the data: tables get the MLP; images,
volumes and sound a convnet; text and time series a recurrent network or a transformer."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..plan import Plan
from .mlp import build_mlp

__all__ = ["build_network"]


def build_network(plan: Plan, inputs: Any, pretrained: Any = None) -> nn.Module:
    """``inputs``: the fitted Preprocessor (tables) or ArrayEncoder (everything else); it
    knows the input's width, shape or vocabulary. ``pretrained`` (models/pretrained.py):
    load and freeze its blocks as the plan's ``transfer.*`` keys say."""
    model = _build(plan, inputs)
    if pretrained is not None:
        from .pretrained import apply_transfer

        apply_transfer(model, plan, pretrained)
    return model


def _build(plan: Plan, inputs: Any) -> nn.Module:
    if "model.arch" not in plan:
        return build_mlp(plan, inputs.n_numeric, inputs.embedding_sizes)
    from .cnn import build_cnn
    from .sequence import build_rnn, build_transformer

    arch, shape = plan["model.arch"], inputs.input_shape
    n_out, dropout = plan["model.n_outputs"], plan["model.dropout"]
    if arch.startswith("efficientnet"):  # a packaged pretrained network (models/packaged.py)
        from .packaged import build_packaged

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
