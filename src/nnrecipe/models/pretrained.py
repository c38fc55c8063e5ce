"""Transfer learning: start a convnet from the weights of one trained on other data.

The four-case table of the Stanford CS231n course ("Transfer Learning"), by the size of
the new data and its similarity to the old:

    small, similar     freeze      keep every pretrained block, frozen; train a new head
    small, different   early       keep only the early blocks (generic edges and blobs),
                                   frozen; re-learn the later blocks and a new head
    large, similar     fine_tune   every block; a new head first (staged unfreezing), then
                                   all of it, the blocks at a lower learning rate
    large, different   retrain     the pretrained weights as the starting point, everything
                                   trained at the full rate

Similarity is measured, not guessed, twice. A convnet's BatchNorm layers remember the mean
and variance of their inputs on the data the network was trained on: passing the new
training samples through the pretrained blocks and comparing their statistics with the
remembered ones (Gaussian KL, averaged over channels and layers) gives a number near 0 for
inputs like the old (:func:`bn_divergence`). And a linear probe asks whether the blocks'
features separate the new classes at least as well as the raw inputs do
(:func:`feature_probe`); plan/transfer.py counts data as similar when both agree.

The source is a finished nnrecipe run (its plan names the architecture and its
preprocess.json the input normalisation, both reused), a bare ``state_dict`` of an nnrecipe
convnet (the architecture is read off the weights' names and shapes), or a network whose
weights ship in a package (models/packaged.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ..errors import DataError
from ..runs import RUN_FILES, read_json
from ..train.callbacks import TrainState, Watcher
from .cnn import ConvNet
from .packaged import PACKAGED, load_packaged

__all__ = ["Pretrained", "Unfreeze", "apply_transfer", "bn_divergence", "feature_probe",
           "load_pretrained"]

CONV_MODALITIES = {1: "audio", 2: "image", 3: "volume"}  # conv dims → the data it reads
CONV_DIMS = {"audio": 1, "sequence": 1, "image": 2, "volume": 3}  # the data → its conv dims
ARCH_KEYS = ("model.arch", "model.blocks", "model.filters", "model.kernel", "model.residual",
             "model.separable", "model.activation", "data.image_size", "audio.n_mels")
PROBE = 512  # training samples passed through the blocks to measure similarity


@dataclass
class Pretrained:
    """Weights and what is known about the network they came from."""

    source: str
    kind: str  # "run", "state_dict" or "package"
    modality: str
    state: dict[str, torch.Tensor]
    arch: dict[str, Any]  # plan keys of the source network's architecture
    normalisation: dict[str, list[float]] | None = None  # the source run's input mean/std

    @property
    def in_channels(self) -> int:
        """Channels of the input the first conv reads (a separable conv: its depthwise part
        has one filter per input channel)."""
        if "blocks.0.conv1.0.weight" in self.state:
            return int(self.state["blocks.0.conv1.0.weight"].shape[0])
        first = "blocks.0.conv1.weight" if "blocks.0.conv1.weight" in self.state else \
            "blocks.0.conv.weight"  # a packaged network's stem
        return int(self.state[first].shape[1])

    def describe(self) -> dict[str, Any]:
        """What the plan rules and profile.json see."""
        return {"source": self.source, "kind": self.kind, "modality": self.modality,
                "arch": dict(self.arch), "blocks": self.arch["model.blocks"]}


def load_pretrained(path: str | Path, modality: str) -> Pretrained:
    """Read a run directory, a state-dict file or a packaged network; DataError when it is
    none of them or not a convnet. Its ``modality`` says what data it was trained on (bare
    1-D conv weights take ``modality``'s name when it reads 1-D data too): the modality
    adopting it checks that against its own (modalities/convnet.py)."""
    if str(path) in PACKAGED:
        return Pretrained(str(path), "package", "image", *load_packaged(str(path)))
    p = Path(path)
    if not p.exists():
        raise DataError(f"--pretrained {path}: no such file or run directory (or a packaged "
                        f"network: {', '.join(PACKAGED)})")
    if modality not in CONV_DIMS:  # the modalities read by convnets say so themselves
        raise DataError(f"--pretrained works for convnets; {modality} networks train from "
                        "scratch")
    pre = _from_run(p) if p.is_dir() else _from_state_dict(p)
    if pre.kind == "state_dict" and CONV_DIMS.get(modality) == CONV_DIMS[pre.modality]:
        pre.modality = modality  # bare 1-D conv weights: sound or labelled sequences alike
    return pre


def _from_run(p: Path) -> Pretrained:
    files = [p / RUN_FILES[k] for k in ("plan", "model", "preprocess")]
    if not all(f.exists() for f in files):
        raise DataError(f"--pretrained {p} is not a finished nnrecipe run (it needs "
                        "plan.yaml, model.pt and preprocess.json)")
    try:
        plan = yaml.safe_load(files[0].read_text(encoding="utf-8"))
        plan["decisions"], plan["derived"]  # noqa: B018 (the shape a plan has)
    except (yaml.YAMLError, UnicodeDecodeError, TypeError, KeyError):
        raise DataError(f"--pretrained {p}: {files[0].name} is unreadable or unsafe (not a "
                        "plan nnrecipe wrote)") from None
    values = {k: d["value"] for part in ("decisions", "derived") for k, d in plan[part].items()}
    if values.get("model.arch") != "cnn":
        raise DataError(f"--pretrained {p} is a {values.get('model.arch', 'tabular')} network;"
                        " transfer works from convnets (a run on images, volumes or sound)")
    state = _read_weights(files[1])
    enc = read_json(files[2])
    norm = {"mean": enc["mean"], "std": enc["std"]} if "mean" in enc else None
    arch = {k: values[k] for k in ARCH_KEYS if k in values}
    return Pretrained(str(p), "run", values["data.modality"], state, arch, norm)


def _from_state_dict(p: Path) -> Pretrained:
    state = _read_weights(p)
    if isinstance(state.get("model"), dict):  # a checkpoint (checkpoints/best.pt)
        state = state["model"]
    arch = infer_cnn_arch(state, str(p))
    dims = arch.pop("_dims")
    return Pretrained(str(p), "state_dict", CONV_MODALITIES[dims], state, arch)


def _read_weights(f: Path) -> dict[str, Any]:
    try:
        state = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise DataError(f"--pretrained {f}: not a PyTorch state dict ({type(e).__name__}); "
                        "give model.pt of a run, or the run directory") from None
    if not isinstance(state, dict):
        raise DataError(f"--pretrained {f}: holds a {type(state).__name__}, not a state dict")
    return state


_BLOCK = re.compile(r"^blocks\.(\d+)\.")


def infer_cnn_arch(state: dict[str, torch.Tensor], where: str = "the state dict"
                   ) -> dict[str, Any]:
    """The plan keys of the nnrecipe convnet these weights belong to (``_dims``: 1, 2, 3)."""
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK.match(k))}
    if not blocks or "blocks.0.bn1.running_mean" not in state:
        raise DataError(f"--pretrained {where}: not the weights of an nnrecipe convnet (no "
                        "blocks.N.conv1 / bn1 entries); give a run directory or its model.pt")
    separable = "blocks.0.conv1.0.weight" in state
    conv = state["blocks.0.conv1.0.weight" if separable else "blocks.0.conv1.weight"]
    first_out = state["blocks.0.bn1.running_mean"].shape[0]
    return {"model.arch": "cnn", "model.blocks": max(blocks) + 1, "model.filters": first_out,
            "model.kernel": int(conv.shape[-1]), "model.separable": separable,
            "model.residual": any(".shortcut" in k for k in state), "_dims": conv.dim() - 2}


def _block_prefixes(n: int) -> tuple[str, ...]:
    return tuple(f"blocks.{i}." for i in range(n))


def load_blocks(model: nn.Module, state: dict[str, torch.Tensor], n: int) -> list[str]:
    """Copy the first ``n`` blocks' weights (those whose names and shapes match) into
    ``model``; returns the names copied. The head is never copied: the classes differ."""
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k.startswith(_block_prefixes(n))
            and k in own and own[k].shape == v.shape}
    model.load_state_dict(take, strict=False)
    return sorted(take)


@torch.no_grad()
def bn_divergence(model: ConvNet, x: torch.Tensor, n_blocks: int) -> float:
    """Mean KL(new ‖ pretrained) of the BatchNorm inputs of the first ``n_blocks`` blocks,
    per channel: log(σs/σn) + (σn² + (μn − μs)²) / (2σs²) − ½, averaged. About 0 when the
    new data looks to the blocks like the data they learned from."""
    stats: list[torch.Tensor] = []

    def hook(bn: nn.Module, args: tuple) -> None:
        h = args[0].transpose(0, 1).flatten(1).double()  # (C, N·spatial)
        mu_n, var_n = h.mean(1), h.var(1).clamp_min(bn.eps)
        mu_s, var_s = bn.running_mean.double(), bn.running_var.double().clamp_min(bn.eps)
        kl = 0.5 * torch.log(var_s / var_n) + (var_n + (mu_n - mu_s) ** 2) / (2 * var_s) - 0.5
        stats.append(kl.mean())

    bns = [m for b in model.blocks[:n_blocks] for m in b.modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    handles = [bn.register_forward_pre_hook(hook) for bn in bns]
    was_training = model.training
    model.eval()
    try:
        model.features(x[:PROBE])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return float(torch.stack(stats).mean()) if stats else float("nan")


@torch.no_grad()
def feature_probe(model: ConvNet, x: torch.Tensor, y: Any, n_blocks: int, seed: int,
                  chunk: int = 64) -> dict[str, float] | None:
    """Do the pretrained features carry the new classes? Cross-validated accuracy of a
    logistic regression on the first ``n_blocks`` blocks' globally pooled output, and of the
    same model on the raw inputs (average-pooled to at most 8 per side). None when some
    class has fewer than 2 samples (no stratified folds)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y)
    counts = np.bincount(y)[np.bincount(y) > 0]
    if len(counts) < 2 or counts.min() < 2:
        return None
    was_training = model.training
    model.eval()
    feats, raw = [], []
    dims = tuple(range(2, x.dim()))
    pool = {3: nn.functional.adaptive_avg_pool1d, 4: nn.functional.adaptive_avg_pool2d,
            5: nn.functional.adaptive_avg_pool3d}[x.dim()]
    for i in range(0, len(x), chunk):
        h = x[i:i + chunk]
        raw.append(pool(h, [min(8, s) for s in h.shape[2:]]).flatten(1))
        for block in model.blocks[:n_blocks]:
            h = block(h)
        feats.append(h.mean(dims))
    model.train(was_training)
    folds = StratifiedKFold(int(min(5, counts.min())), shuffle=True, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return {name: float(cross_val_score(probe, torch.cat(v).numpy(), y, cv=folds).mean())
            for name, v in (("features", feats), ("raw", raw))}


def apply_transfer(model: nn.Module, plan: Any, pre: Pretrained) -> list[str]:
    """Load the blocks the plan's strategy keeps and freeze what it freezes; returns the
    names of the weights loaded. (The head stays freshly initialised.)"""
    if not isinstance(model, ConvNet):
        raise DataError("transfer needs a convnet (model.arch=cnn)")
    strategy, keep = plan["transfer.strategy"], plan["transfer.keep_blocks"]
    loaded = load_blocks(model, pre.state, keep)
    if not any(p.rsplit(".", 1)[-1] in ("weight", "bias") for p in loaded):
        raise DataError(f"--pretrained {pre.source}: none of its weights fit this network "
                        "(different filters, kernel or channels); leave the model.* settings "
                        "at the pretrained network's")
    frozen = {"freeze": keep, "early": keep, "fine_tune": keep if
              plan["transfer.head_epochs"] > 0 else 0, "retrain": 0}[strategy]
    model.freeze(frozen)
    _zero_head(model)
    return loaded


@torch.no_grad()
def _zero_head(model: ConvNet) -> None:
    """Start the new head near zero: every class about equally likely, the loss at init
    about ln(classes) (the debugging recipe's check). The pretrained features are large
    (ReLU outputs of trained blocks), so a head initialised for unit inputs would start
    confidently wrong and spend its first epochs, and the blocks' gradients, undoing that.
    Tiny random weights rather than zeros: with all logits equal, a batch holding every
    class equally often would give the bias an exactly zero gradient."""
    last = model.head[-1]
    nn.init.normal_(last.weight, std=1e-3)
    nn.init.zeros_(last.bias)


class Unfreeze(Watcher):
    """Staged unfreezing: after ``epochs`` epochs of training the new head alone, let the
    pretrained blocks learn too (at their lower rate, from the optimizer's param groups)."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.unfrozen_at: int | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"unfrozen_at": self.unfrozen_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.unfrozen_at = state["unfrozen_at"]

    def on_train_begin(self, state: TrainState) -> None:
        if self.unfrozen_at is not None and state.model.frozen:  # resumed after unfreezing
            state.model.freeze(0)

    def on_epoch_end(self, state: TrainState) -> None:
        model = state.model
        if self.unfrozen_at is None and state.epoch >= self.epochs and model.frozen:
            model.freeze(0)
            self.unfrozen_at = state.epoch
