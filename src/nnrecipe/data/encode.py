"""The encoder for non-tabular data: fitted on the training split, saved as JSON.

images / volumes  per-channel mean and std (then resized when data.image_size asks)
audio             log-mel frames, standardised per mel band
text              a vocabulary (ids 0 = padding, 1 = unknown) and a length cap
series            per-column mean and std, the window and the horizon
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .arrays import ArrayData
from .images import channel_stats, to_tensor
from .series import fit_scaler, make_windows, scale, unscale

__all__ = ["ArrayEncoder"]

STD_FLOOR = 1e-6


class ArrayEncoder:
    """``encode(data, positions) -> (x, y)``: x shaped for the network, y the class codes
    or, for a series, the scaled future values (N, horizon)."""

    # what the tabular doctor checks read from a Preprocessor: nothing for arrays
    n_numeric = 0
    embedding_sizes: list = []
    feature_names: list = []

    def __init__(self, state: dict[str, Any]):
        self.state = state

    @classmethod
    def fit(cls, data: ArrayData, train: np.ndarray, plan: Any) -> ArrayEncoder:
        m = data.modality
        state: dict[str, Any] = {"version": 1, "modality": m, "target": data.target,
                                 "task": data.task, "classes": data.classes}
        if m in ("image", "volume"):
            mean, std = channel_stats(data.x[train])
            spatial = list(data.x.shape[1:-1])
            if m == "image" and plan["data.image_size"] != max(spatial):
                k = plan["data.image_size"] / max(spatial)
                spatial = [max(1, round(s * k)) for s in spatial]
            state.update(mean=mean, std=std, spatial=spatial)
        elif m == "audio":
            feats = _log_mel(data.x[train], data.info["sample_rate"], plan["audio.n_mels"])
            state.update(sample_rate=data.info["sample_rate"], n_mels=plan["audio.n_mels"],
                         samples=int(data.x.shape[1]),
                         mean=feats.mean((0, 2)).tolist(),
                         std=feats.std((0, 2)).clamp_min(STD_FLOOR).tolist(),
                         frames=int(feats.shape[2]))
        elif m == "sequence":  # one scale for every step: the shape is the signal
            mean, std = channel_stats(data.x[train])
            state.update(mean=mean, std=[max(v, STD_FLOOR) for v in std],
                         length=int(data.x.shape[1]),
                         value_columns=data.info["value_columns"])
        elif m == "text":
            from .text import Vocabulary

            vocab = Vocabulary().fit(list(data.x[train]), min_freq=plan["text.min_freq"])
            state.update(vocab=vocab.to_dict(), vocab_size=len(vocab), max_len=plan["text.max_len"],
                         text_column=data.info["text_column"])
        else:  # series: scale with the rows before the validation period only
            w, h = plan["series.window"], plan["series.horizon"]
            state.update(**fit_scaler(data.x[: int(train.max()) + w + h]), window=w, horizon=h,
                         target_index=data.info["target_index"],
                         value_columns=data.info["value_columns"])
        return cls(state)

    # ---- what the network and the API need to know -------------------------------------
    @property
    def modality(self) -> str:
        return self.state["modality"]

    @property
    def classes(self) -> list[str]:
        return self.state["classes"]

    @property
    def vocab_size(self) -> int | None:
        return self.state["vocab_size"] if self.modality == "text" else None

    @property
    def input_shape(self) -> list[int]:
        s = self.state
        if self.modality in ("image", "volume"):
            return [len(s["mean"]), *s["spatial"]]
        if self.modality == "audio":
            return [s["n_mels"], s["frames"]]
        if self.modality == "text":
            return [s["max_len"]]
        if self.modality == "sequence":
            return [len(s["mean"]), s["length"]]
        return [s["window"], len(s["mean"])]

    def encode(self, data: ArrayData, pos: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        s, m = self.state, self.modality
        if m in ("image", "volume"):
            x = to_tensor(data.x[pos], s["mean"], s["std"])
            if list(x.shape[2:]) != s["spatial"]:
                x = F.interpolate(x, size=tuple(s["spatial"]), mode="bilinear",
                                  align_corners=False)
            return x, data.y[pos]
        if m == "audio":
            feats = _log_mel(data.x[pos], s["sample_rate"], s["n_mels"])
            mean, std = (torch.tensor(s[k]).view(1, -1, 1) for k in ("mean", "std"))
            return (feats - mean) / std, data.y[pos]
        if m == "sequence":  # (N, T, F) → standardised (N, F, T): channels first for conv1d
            mean, std = (torch.tensor(s[k], dtype=torch.float32) for k in ("mean", "std"))
            x = (torch.from_numpy(np.ascontiguousarray(data.x[pos], np.float32)) - mean) / std
            return x.transpose(1, 2).contiguous(), data.y[pos]
        if m == "text":
            from .text import Vocabulary

            ids = Vocabulary.from_dict(s["vocab"]).encode(list(data.x[pos]), s["max_len"])
            return torch.from_numpy(ids), data.y[pos]
        return self._windows(data.x, pos)

    def _windows(self, values: np.ndarray, starts: np.ndarray
                 ) -> tuple[torch.Tensor, np.ndarray]:
        s = self.state
        w, h = s["window"], s["horizon"]
        scaled = scale(values, s)
        x, y = make_windows(scaled[starts[0]:starts[-1] + w + h], w, h, s["target_index"])
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)), y  # (N, W, F), (N, H)

    def inverse_target(self, values: np.ndarray) -> np.ndarray:
        """Scaled series values back to the data's units (identity for classes)."""
        if self.modality != "series":
            return values
        return unscale(values, self.state, self.state["target_index"])

    def to_dict(self) -> dict[str, Any]:
        return self.state

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArrayEncoder:
        return cls(d)


def _log_mel(waves: np.ndarray, sample_rate: int, n_mels: int) -> torch.Tensor:
    from .audio import log_mel

    return log_mel(torch.as_tensor(np.asarray(waves, dtype=np.float32)), sample_rate,
                   n_mels=n_mels)
