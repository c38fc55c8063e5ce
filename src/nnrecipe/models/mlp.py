"""The tabular network: [embeddings] → (Linear → BatchNorm → activation)×L → [dropout] → Linear."""

from __future__ import annotations

import torch
from torch import nn

from ..plan import Plan
from .heads import output_activation
from .init import init_weights

__all__ = ["TabularMLP", "build_mlp", "make_activation"]


def make_activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "prelu": nn.PReLU, "rrelu": nn.RReLU,
            "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU, "tanh": nn.Tanh,
            "sigmoid": nn.Sigmoid}[name]()


class TabularMLP(nn.Module):
    """Input: float (batch, n_numeric + n_embedded); the last ``n_embedded`` columns hold
    integer category codes, looked up in their embedding tables."""

    def __init__(self, n_numeric: int, embedding_sizes: list[tuple[int, int]], *,
                 hidden_layers: int, width: int, activation: str, batchnorm: bool,
                 dropout: float, n_outputs: int, output: str):
        super().__init__()
        self.n_numeric = n_numeric
        self.embeddings = nn.ModuleList(nn.Embedding(n, d) for n, d in embedding_sizes)
        n_in = n_numeric + sum(d for _, d in embedding_sizes)
        layers: list[nn.Module] = []
        for i in range(hidden_layers):
            # bias is redundant before BatchNorm (its shift β plays that part)
            layers.append(nn.Linear(n_in if i == 0 else width, width, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(make_activation(activation))
            # With BatchNorm, dropout only after the last block: dropout feeding a BatchNorm
            # layer shifts the variance it learned (Li et al., 2019).
            if dropout > 0 and (not batchnorm or i == hidden_layers - 1):
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width if hidden_layers else n_in, n_outputs)
        self.output = output_activation(output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.embeddings):
            codes = x[:, self.n_numeric:].long()  # (B, n_embedded)
            x = torch.cat([x[:, :self.n_numeric]]
                          + [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)], dim=1)
        return self.output(self.head(self.body(x)))  # (B, n_outputs)


def build_mlp(plan: Plan, n_numeric: int, embedding_sizes: list[tuple[int, int]]) -> TabularMLP:
    model = TabularMLP(
        n_numeric, embedding_sizes,
        hidden_layers=plan["model.hidden_layers"], width=plan["model.width"],
        activation=plan["model.activation"], batchnorm=plan["model.batchnorm"],
        dropout=plan["model.dropout"], n_outputs=plan["model.n_outputs"],
        output=plan["model.output_activation"],
    )
    init_weights(model, plan["model.init"], plan["model.activation"],
                 scale=plan["model.init_scale"], bias=plan["model.bias_init"])
    return model
