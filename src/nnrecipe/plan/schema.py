"""The plan: every training decision as ``{value, reason, rule}``, and the keys a user may set.

Keys are dotted (``optimizer.lr``). Values given with ``--set key=value`` or
``overrides={...}`` are checked here, at the edge, all at once: one error lists every
problem. Inner code trusts a plan's values.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import PlanError
from ..train import optimizers, schedules
from ..train.devices import DEVICES, PRECISIONS

__all__ = ["Decision", "Plan", "KEYS", "parse_set_options", "validate_overrides",
           "ACTIVATIONS", "INITS", "OUTPUT_ACTIVATIONS", "LOSSES", "LiveChoices"]

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "gelu", "tanh", "sigmoid")
INITS = ("auto", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal",
         "normal", "uniform", "zeros")
OUTPUT_ACTIVATIONS = ("auto", "linear", "sigmoid", "softmax", "tanh", "softplus", "relu")
LOSSES = ("auto", "bce", "cross_entropy", "mse", "huber", "mae")
GRAD_CLIP = ("none", "value", "norm", "global_norm")
SCALES = ("standard", "minmax", "none")
ARCHS = ("cnn", "gru", "lstm", "transformer", "efficientnet_lite0", "minilm_l6")


class LiveChoices(Sequence[str]):
    """The names in a registry, read each time they are used: a record added to the
    registry (or patched in by a test) is a valid choice at once, with no copy to update."""

    def __init__(self, names: Callable[[], Sequence[str]]):
        self._names = names

    def __getitem__(self, i: Any) -> Any:
        return tuple(self._names())[i]

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return repr(tuple(self._names()))


def _optimizer_names() -> Sequence[str]:
    return tuple(optimizers.OPTIMIZERS)


def _schedule_names() -> Sequence[str]:
    return tuple(schedules.SCHEDULE_KINDS)


@dataclass(frozen=True)
class Decision:
    value: Any
    reason: str
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason, "rule": self.rule}


@dataclass(frozen=True)
class KeySpec:
    kind: str  # int | float | bool | choice | betas
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: value must be > low (not >=)
    high_open: bool = False
    choices: Sequence[str] = ()
    help: str = ""
    auto: bool = False  # "auto" is also accepted (decided at run time, e.g. by a range test)

    def describe(self) -> str:
        if self.auto:
            return "auto or " + KeySpec(self.kind, self.low, self.high, self.low_open,
                                        self.high_open, self.choices).describe()
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "betas":
            return "two numbers in [0, 1), e.g. 0.9,0.999"
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        what = "an integer" if self.kind == "int" else "a number"
        return f"{what} {lo}{' and ' if lo and hi else ''}{hi}".strip()


def _num(kind, low=None, high=None, *, low_open=False, high_open=False, help="", auto=False):
    return KeySpec(kind, low, high, low_open, high_open, help=help, auto=auto)


KEYS: Mapping[str, KeySpec] = MappingProxyType({
    "model.hidden_layers": _num("int", 0, 64, help="hidden layers; 0 is a linear model"),
    "model.width": _num("int", 1, 8192, help="units in each hidden layer"),
    "model.activation": KeySpec("choice", choices=ACTIVATIONS, help="hidden activation"),
    "model.init": KeySpec("choice", choices=INITS, help="weight initialisation"),
    "model.init_scale": _num("float", 0, 1000, low_open=True, help="multiplies initial weights"),
    "model.bias_init": _num("float", -1e6, 1e6, help="initial value of every bias"),
    "model.batchnorm": KeySpec("bool", help="BatchNorm before each hidden activation"),
    "model.dropout": _num("float", 0, 1, high_open=True, help="dropout rate"),
    "model.ensemble": _num("int", 1, 32, help="networks trained from seeds seed, seed+1, … "
                           "and averaged (a deep ensemble); 1 is one network"),
    "model.output_activation": KeySpec("choice", choices=OUTPUT_ACTIVATIONS),
    "loss.name": KeySpec("choice", choices=LOSSES),
    "optimizer.name": KeySpec("choice", choices=LiveChoices(_optimizer_names)),
    "optimizer.lr": _num("float", 0, 100, low_open=True, auto=True,
                         help="learning rate; auto: an LR range test before training"),
    "optimizer.momentum": _num("float", 0, 1, high_open=True, help="SGD/RMSprop momentum"),
    "optimizer.nesterov": KeySpec("bool", help="Nesterov momentum (SGD)"),
    "optimizer.betas": KeySpec("betas", help="Adam-family betas"),
    "optimizer.weight_decay": _num("float", 0, 10, help="L2 penalty / decoupled decay"),
    "regularization.l1": _num("float", 0, 10, help="L1 penalty on weights"),
    "train.batch_size": _num("int", 1, 10_000_000),
    "train.max_epochs": _num("int", 1, 100_000),
    "train.early_stopping.patience": _num("int", 0, 100_000, help="0 turns it off"),
    "train.grad_clip.kind": KeySpec("choice", choices=GRAD_CLIP),
    "train.grad_clip.max": _num("float", 0, 1e9, low_open=True),
    "train.swa": KeySpec("bool", help="stochastic weight averaging over the last epochs"),
    "train.checkpoint_minutes": _num("float", 0, 1e6, low_open=True,
                                     help="minutes between checkpoints inside a long epoch"),
    "train.swa_start": _num("float", 0, 1, low_open=True, high_open=True,
                            help="fraction of train.max_epochs after which averaging starts"),
    "train.device": KeySpec("choice", choices=DEVICES, auto=True,
                            help="where to train; auto: a CUDA GPU, then Apple MPS, then CPU"),
    "train.precision": KeySpec("choice", choices=PRECISIONS, auto=True,
                               help="arithmetic; auto: bf16 autocast on a GPU that has it, "
                                    "fp16 with loss scaling on one without, fp32 on the CPU"),
    "train.threads": _num("int", 1, 1024, auto=True,
                          help="torch's CPU threads while training (restored afterwards)"),
    "schedule.name": KeySpec("choice", choices=LiveChoices(_schedule_names),
                             help="learning-rate schedule"),
    "schedule.step_size": _num("int", 1, 100_000, help="step: epochs between decays"),
    "schedule.gamma": _num("float", 0, 1, low_open=True, high_open=True,
                           help="step: decay factor"),
    "schedule.k": _num("float", 0, 100, low_open=True,
                       help="exponential / inverse_time: decay rate per epoch"),
    "schedule.warmup_epochs": _num("int", 0, 100_000, help="linear warmup epochs"),
    "data.scale": KeySpec("choice", choices=SCALES),
    # non-tabular data (images, volumes, audio, text, time series): plan/modality.py
    "model.arch": KeySpec("choice", choices=ARCHS, help="network family (non-tabular data)"),
    "model.blocks": _num("int", 1, 32, help="convolution blocks (each halves the size)"),
    "model.filters": _num("int", 1, 1024, help="filters in the first block (doubling after)"),
    "model.kernel": _num("int", 1, 15, help="convolution kernel size (odd)"),
    "model.residual": KeySpec("bool", help="residual connections in the conv blocks"),
    "model.separable": KeySpec("bool", help="depthwise-separable convolutions"),
    "model.hidden": _num("int", 1, 4096, help="RNN hidden units / transformer width"),
    "model.layers": _num("int", 1, 12, help="RNN or transformer layers"),
    "model.bidirectional": KeySpec("bool", help="read sequences both ways (RNN)"),
    "model.embedding_dim": _num("int", 1, 4096, help="token embedding size (text)"),
    "model.heads": _num("int", 1, 64, help="attention heads (transformer)"),
    "augment.enabled": KeySpec("bool", help="augment training batches (off in pre-flight)"),
    "augment.shift": _num("float", 0, 0.5, help="images: random shift, fraction of the side"),
    "augment.rotation": _num("float", 0, 180, help="images: random rotation, degrees"),
    "augment.zoom": _num("float", 0, 0.5, help="images: random zoom, fraction"),
    "augment.shear": _num("float", 0, 45, help="images: random shear, degrees"),
    "augment.flip": _num("float", 0, 1, help="images: probability of a horizontal flip"),
    "augment.noise": _num("float", 0, 1, help="images: gaussian noise std (normalised units)"),
    "augment.jitter": _num("float", 0, 1, help="series/audio: noise, fraction of the std"),
    "augment.scaling": _num("float", 0, 1, help="series/audio: random magnitude scaling std"),
    "data.image_size": _num("int", 4, 512, help="images: resize to this side (pixels)"),
    "data.loader": KeySpec("choice", choices=("memory", "stream"),
                           help="memory: each split as one tensor (fast on small data); "
                                "stream: read and decode a batch at a time (larger than memory)"),
    "data.workers": _num("int", 0, 64, help="stream: DataLoader worker processes that read "
                                            "batches ahead (0: the main process reads)"),
    "series.window": _num("int", 1, 100_000, help="time steps the forecaster sees"),
    "series.horizon": _num("int", 1, 10_000, help="time steps to forecast"),
    "text.max_len": _num("int", 4, 4096, help="tokens kept per text"),
    "text.min_freq": _num("int", 1, 1000, help="a word needs this many uses to get an id"),
    "audio.n_mels": _num("int", 8, 256, help="mel bands of the log-mel features"),
    "transfer.strategy": KeySpec("choice", choices=("freeze", "early", "fine_tune", "retrain"),
                                 help="with --pretrained: what to keep, freeze and train"),
    "transfer.keep_blocks": _num("int", 1, 32, help="pretrained blocks kept"),
    "transfer.backbone_lr": _num("float", 0, 1, low_open=True,
                                 help="pretrained blocks' learning rate, × optimizer.lr"),
    "transfer.head_epochs": _num("int", 0, 100_000,
                                 help="epochs of the new head alone before unfreezing"),
    "seed": _num("int", 0, 2**32 - 1),
})


def parse_set_options(items: list[str] | None) -> dict[str, str]:
    """``["a.b=1", ...]`` from the CLI into ``{"a.b": "1"}`` (values checked later)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PlanError(f"--set expects key=value, got '{item}' (e.g. --set optimizer.lr=0.01)")
        out[key.strip()] = value.strip()
    return out


def validate_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Typed values for ``overrides``, or PlanError listing every problem (one short line:
    an unknown key names the closest valid ones, `nnrecipe plan DATA` lists them all)."""
    problems, out = [], {}
    for key, raw in (overrides or {}).items():
        spec = KEYS.get(key)
        if spec is None:
            close = _closest_keys(str(key))
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            problems.append(f"unknown plan key '{_clip(key)}'{hint}")
            continue
        try:
            out[key] = _coerce(key, raw, spec)
        except ValueError:
            problems.append(f"'{key}' must be {spec.describe()}, got {_clip(repr(raw))}")
    if any(p.startswith("unknown") for p in problems):
        problems.append("`nnrecipe plan DATA` lists the valid keys")
    if problems:
        raise PlanError("; ".join(problems))
    return out


def _closest_keys(key: str) -> list[str]:
    """The valid keys a user most likely meant: one whose last part abbreviates the
    given one (optimizer.learning_rate → optimizer.lr), else the nearest spellings."""
    if len(key) > 100:  # a huge string is no typo
        return []
    head, _, last = key.rpartition(".")
    initials = "".join(w[:1] for w in last.split("_"))
    short = [k for k in KEYS if len(initials) > 1 and k == f"{head}.{initials}"]
    return short or difflib.get_close_matches(key, KEYS, n=2, cutoff=0.6)


def _clip(text: object, most: int = 60) -> str:
    """A user's string shortened for a one-line message."""
    text = str(text)
    return text if len(text) <= most else text[:most - 1] + "…"


def _coerce(key: str, raw: Any, spec: KeySpec) -> Any:
    if spec.auto and str(raw).strip().lower() == "auto":
        return "auto"
    if spec.kind == "choice":
        value = str(raw).strip().lower()
        if value not in spec.choices:
            raise ValueError
        return value
    if spec.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise ValueError
    if spec.kind == "betas":
        parts = raw if isinstance(raw, list | tuple) else str(raw).strip("[]() ").split(",")
        b = [float(p) for p in parts]
        if len(b) != 2 or not all(0 <= x < 1 for x in b):
            raise ValueError
        return b
    if isinstance(raw, bool):
        raise ValueError
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError
    if spec.kind == "int":
        if value != int(value):
            raise ValueError
        value = int(value)
    if spec.low is not None and (value < spec.low or (spec.low_open and value == spec.low)):
        raise ValueError
    if spec.high is not None and (value > spec.high or (spec.high_open and value == spec.high)):
        raise ValueError
    return value


class Plan:
    """A frozen set of decisions. ``plan["optimizer.lr"]`` is the value; ``plan.decisions``
    has the reasons. ``derived`` holds facts the rules computed (task, input width, parameter
    count) that cannot be set."""

    def __init__(self, decisions: Mapping[str, Decision], derived: Mapping[str, Decision]):
        self._decisions = MappingProxyType(dict(decisions))
        self._derived = MappingProxyType(dict(derived))

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and deepcopy (read-only views cannot)
        return (Plan, (dict(self._decisions), dict(self._derived)))

    @property
    def decisions(self) -> Mapping[str, Decision]:
        return self._decisions

    @property
    def derived(self) -> Mapping[str, Decision]:
        return self._derived

    def __getitem__(self, key: str) -> Any:
        if key in self._decisions:
            return self._decisions[key].value
        return self._derived[key].value

    def __contains__(self, key: str) -> bool:
        return key in self._decisions or key in self._derived

    def with_derived(self, key: str, decision: Decision) -> Plan:
        return Plan(self._decisions, {**self._derived, key: decision})

    def with_decision(self, key: str, decision: Decision) -> Plan:
        return Plan({**self._decisions, key: decision}, self._derived)

    def overrides(self) -> dict[str, Any]:
        """The settable values, as overrides that rebuild this plan."""
        return {k: d.value for k, d in self._decisions.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"decisions": {k: d.to_dict() for k, d in self._decisions.items()},
                "derived": {k: d.to_dict() for k, d in self._derived.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        return cls({k: Decision(**v) for k, v in d["decisions"].items()},
                   {k: Decision(**v) for k, v in d["derived"].items()})

    def __repr__(self) -> str:
        return f"Plan({', '.join(f'{k}={d.value!r}' for k, d in self._decisions.items())})"
