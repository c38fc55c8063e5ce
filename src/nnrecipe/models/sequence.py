"""Networks for sequences: recurrent (GRU/LSTM) and a small transformer encoder.

Token input is (N, L) int64 ids padded with ``pad_id`` at the end; float input (for the
RNN) is (N, L, F) with every sequence full length. Both return raw scores (N, n_outputs).
1D convnets for series and audio are ``build_cnn(dims=1)``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..errors import PlanError

__all__ = ["RecurrentNet", "TransformerNet", "build_rnn", "build_transformer"]

_RNN = {"gru": nn.GRU, "lstm": nn.LSTM}


def _lengths(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """True length of each padded row: one past its last non-pad token. An all-pad row
    counts as length 1 (its single pad token is read), so it yields an output, not a crash."""
    positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device)  # (L,)
    return ((tokens != pad_id) * positions).amax(dim=1).clamp(min=1)  # (N,)


class RecurrentNet(nn.Module):
    """[embedding] → GRU/LSTM → last layer's final hidden state (both directions when
    bidirectional) → dropout → Linear. ``embedding`` is None for float-feature input."""

    def __init__(self, embedding: nn.Embedding | None, rnn: nn.RNNBase, head: nn.Sequential,
                 pad_id: int):
        super().__init__()
        self.embedding = embedding
        self.rnn = rnn
        self.head = head
        self.pad_id = pad_id

    def summary(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L) ids or (N, L, F) floats → one vector per sequence (N, directions·hidden)."""
        if self.embedding is not None:
            lengths = _lengths(x, self.pad_id)
            x = x[:, :int(lengths.max())]  # a batch of short texts: drop the padding columns
            # Packing makes the RNN stop at each row's true end, so the final state is
            # that of the last real token, not of the padding after it (and the backward
            # direction starts at the real end).
            x = pack_padded_sequence(self.embedding(x), lengths.cpu(), batch_first=True,
                                     enforce_sorted=False)
        _, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM also returns c_n
        dirs = 2 if self.rnn.bidirectional else 1
        last = h_n[-dirs:]  # (dirs, N, H): the top layer's forward [and backward] state
        return last.transpose(0, 1).reshape(last.shape[1], -1)  # (N, dirs·H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.summary(x))  # (N, n_outputs)


def build_rnn(*, kind: Literal["gru", "lstm"], n_outputs: int, hidden: int, layers: int = 2,
              dropout: float = 0.3, bidirectional: bool = False, vocab_size: int | None = None,
              embedding_dim: int | None = None, n_features: int | None = None,
              pad_id: int = 0) -> RecurrentNet:
    """Give ``vocab_size`` for token ids or ``n_features`` for float steps (exactly one).
    ``embedding_dim`` defaults to ``hidden``. ``dropout`` 0.3 (the usual rate for RNNs)
    applies between stacked layers and before the output layer."""
    if kind not in _RNN:
        raise ValueError(f"kind must be 'gru' or 'lstm', got {kind!r}")
    if (vocab_size is None) == (n_features is None):
        raise ValueError("give exactly one of vocab_size (token ids) or n_features (floats)")
    embedding = None
    if vocab_size is not None:
        embedding = nn.Embedding(vocab_size, embedding_dim or hidden, padding_idx=pad_id)
        n_in = embedding.embedding_dim
    else:
        n_in = n_features
    # PyTorch's between-layer dropout does nothing (and warns) with a single layer.
    rnn = _RNN[kind](n_in, hidden, num_layers=layers, batch_first=True,
                     dropout=dropout if layers > 1 else 0.0, bidirectional=bidirectional)
    head = nn.Sequential(nn.Dropout(dropout),
                         nn.Linear(hidden * (2 if bidirectional else 1), n_outputs))
    _init_rnn(rnn)
    return RecurrentNet(embedding, rnn, head, pad_id)


@torch.no_grad()
def _init_rnn(rnn: nn.RNNBase) -> None:
    """Glorot for input weights (the gates are sigmoid/tanh), orthogonal recurrent weights
    (repeated multiplication by an orthogonal matrix neither shrinks nor grows the state,
    which delays vanishing and exploding gradients), zero biases except the LSTM forget
    gate at 1, so the cell remembers by default early on (Jozefowicz et al., 2015)."""
    hidden = rnn.hidden_size
    for name, p in rnn.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(p)
        elif name.startswith("weight_hh"):
            for gate in p.split(hidden, dim=0):  # one square block per gate
                nn.init.orthogonal_(gate)
        elif name.startswith("bias"):
            nn.init.zeros_(p)
            if isinstance(rnn, nn.LSTM) and name.startswith("bias_ih"):
                p[hidden:2 * hidden] = 1.0  # gate order: input, forget, cell, output


class TransformerNet(nn.Module):
    """Token + learned position embeddings → TransformerEncoder (pad positions masked) →
    mean over the non-pad positions → dropout → Linear."""

    def __init__(self, vocab_size: int, n_outputs: int, *, d_model: int, heads: int,
                 layers: int, ff: int, max_len: int, dropout: float, pad_id: int):
        super().__init__()
        self.pad_id, self.max_len = pad_id, max_len
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.position = nn.Embedding(max_len, d_model)
        # Pre-norm layers (norm_first) train stably without a warmup; they need a final
        # LayerNorm on the output.
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model),
                                             enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_model, n_outputs))
        # Small embeddings (std 0.02, as in BERT/GPT) keep the first layers near linear.
        nn.init.normal_(self.embedding.weight, std=0.02)
        nn.init.normal_(self.position.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()

    def summary(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, L) ids → (N, d_model), the mean of the encoded non-pad positions."""
        n, length = tokens.shape
        if length > self.max_len:
            raise PlanError(f"sequences of {length} tokens are longer than the transformer's "
                            f"{self.max_len} positions; use --set text.max_len={self.max_len} "
                            f"to truncate them, or build it with max_len={length}")
        keep = tokens != self.pad_id  # (N, L)
        longest = int(_lengths(tokens, self.pad_id).max())  # padding after it: not needed
        tokens, keep, length = tokens[:, :longest], keep[:, :longest], longest
        # An all-pad row would mask every key and give NaN: let it read its first token.
        keep[:, 0] |= ~keep.any(dim=1)
        positions = torch.arange(length, device=tokens.device)
        x = self.embedding(tokens) + self.position(positions)  # (N, L, D)
        x = self.encoder(x, src_key_padding_mask=~keep)  # (N, L, D)
        weights = keep.unsqueeze(-1).to(x.dtype)  # (N, L, 1)
        return (x * weights).sum(dim=1) / weights.sum(dim=1)  # (N, D)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.summary(tokens))  # (N, n_outputs)


def build_transformer(*, vocab_size: int, n_outputs: int, d_model: int = 64, heads: int = 4,
                      layers: int = 2, ff: int = 128, max_len: int = 512, dropout: float = 0.1,
                      pad_id: int = 0) -> TransformerNet:
    """A small encoder-only transformer classifier/regressor over token ids."""
    if d_model % heads:
        divisors = [h for h in range(1, min(d_model, 64) + 1) if d_model % h == 0]
        raise PlanError(f"the transformer width {d_model} must be divisible by the number of "
                        f"heads, got {heads}; use --set model.heads=N with N in {divisors} "
                        f"(or a model.hidden that {heads} divides)")
    return TransformerNet(vocab_size, n_outputs, d_model=d_model, heads=heads, layers=layers,
                          ff=ff, max_len=max_len, dropout=dropout, pad_id=pad_id)
