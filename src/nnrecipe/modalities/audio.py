"""Sound: a folder with one subfolder of WAV files per class. Waves are cut or padded to the
training length, turned into log-mel frames (standardised per mel band) and read by a 1-D
convnet with the mel bands as channels; jitter and scaling augmentation when turned on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.audio import load_wav_folder, log_mel
from ..data.augment import SeriesAugment
from ..data.images import STD_FLOOR
from ..plan.network_rules import CONV_RULES, const, dropout_rule
from ..plan.schema import Plan
from .convnet import ConvModality
from .image import IMAGE_EXT
from .samples import SampleEncoder, Samples, class_samples

__all__ = ["AudioEncoder", "AudioModality", "channels_last_augment"]

AUDIO_EXT = (".wav",)
MEL_FFT = 512  # log_mel's default FFT size

#: jitter and scaling, off unless asked for (sound and labelled sequences)
SIGNAL_AUGMENT_RULES = (
    ("augment.enabled", const(False, "augmentation off: the values themselves carry the "
                              "signal; turn on with augment.enabled=true (jitter, scaling)",
                              "augment.off"), False),
    ("augment.jitter", const(0.03, "noise of 3% of each feature's spread when on",
                             "augment.series"), False),
    ("augment.scaling", const(0.1, "loudness scaling by N(1, 0.1) when on", "augment.audio"),
     False),
)


class AudioEncoder(SampleEncoder):
    """Log-mel frames of the waves, standardised per mel band with the training sounds."""

    @property
    def input_shape(self) -> list[int]:
        return [self.state["n_mels"], self.state["frames"]]

    def encode(self, data: Samples, pos: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        s = self.state
        feats = _log_mel(data.x[pos], s["sample_rate"], s["n_mels"])
        mean, std = (torch.tensor(s[k]).view(1, -1, 1) for k in ("mean", "std"))
        return (feats - mean) / std, data.y[pos]


class AudioModality(ConvModality):
    name = "audio"
    encoder = AudioEncoder
    encoder_keys = ("audio.n_mels",)
    own_rules = (
        ("data.modality", const("audio", "sound: WAV files, one folder per class",
                                "data.modality"), True),
        ("audio.n_mels", const(40, "40 log-mel bands: the usual resolution for speech",
                               "audio.log_mel"), False),
        ("model.arch", const("cnn", "sound → a 1-D convnet over log-mel frames (mel bands as "
                             "channels)", "model.arch_by_modality"), False),
        *CONV_RULES,
        ("model.dropout", dropout_rule, False),
        *SIGNAL_AUGMENT_RULES,
    )

    def detect(self, source: Any, *, horizon: int | None, window: int | None) -> bool:
        if not (isinstance(source, str | Path) and Path(source).is_dir()):
            return False
        files = [f.suffix.lower() for f in Path(source).rglob("*") if f.is_file()]
        return any(s in AUDIO_EXT for s in files) and not any(s in IMAGE_EXT for s in files)

    def load(self, source: Any, target: str | None, task: str, *, like: Samples | None = None,
             min_classes: int = 2) -> Samples:
        s = load_wav_folder(source, min_classes=min_classes)
        hop = MEL_FFT // 4  # log_mel's default hop: frames = samples // hop + 1 (centred)
        return class_samples("audio", s, target or "label", {
            "sample_rate": s.sample_rate, "samples": int(s.x.shape[1]),
            "spatial": [int(s.x.shape[1]) // hop + 1]}, min_classes)

    def read_for_run(self, source: Any, state: dict[str, Any], labelled: bool) -> Samples:
        s = load_wav_folder(source, state["sample_rate"], unlabelled=not labelled,
                            length=state.get("samples", (state["frames"] - 1) * MEL_FFT // 4),
                            min_classes=1)
        return Samples("audio", s.x, s.y, s.classes, s.names, state["target"], state["task"],
                       "", {})

    def like(self, x: np.ndarray, ref: np.ndarray, where: str) -> np.ndarray:
        """Test waves padded with silence or cut to the training length."""
        out = np.zeros((len(x), ref.shape[1]), dtype=ref.dtype)
        n = min(x.shape[1], ref.shape[1])
        out[:, :n] = x[:, :n]
        return out

    def fit_features(self, data: Samples, train: np.ndarray, plan: Plan) -> AudioEncoder:
        feats = _log_mel(data.x[train], data.info["sample_rate"], plan["audio.n_mels"])
        state = SampleEncoder.base_state(data)
        state.update(sample_rate=data.info["sample_rate"], n_mels=plan["audio.n_mels"],
                     samples=int(data.x.shape[1]), mean=feats.mean((0, 2)).tolist(),
                     std=feats.std((0, 2)).clamp_min(STD_FLOOR).tolist(),
                     frames=int(feats.shape[2]))
        return AudioEncoder(state)

    def augment(self, plan: Plan) -> Any:
        return channels_last_augment(plan)


def channels_last_augment(plan: Plan) -> Any:
    """Jitter and scaling on (N, channels, steps) inputs: SeriesAugment reads (N, steps,
    channels), so transpose there and back."""
    if not plan["augment.enabled"]:
        return None
    aug = SeriesAugment(jitter=plan["augment.jitter"], scale=plan["augment.scaling"],
                        seed=plan["seed"])
    return lambda x: aug(x.transpose(1, 2)).transpose(1, 2)


def _log_mel(waves: np.ndarray, sample_rate: int, n_mels: int) -> torch.Tensor:
    return log_mel(torch.as_tensor(np.asarray(waves, dtype=np.float32)), sample_rate,
                   n_mels=n_mels)
