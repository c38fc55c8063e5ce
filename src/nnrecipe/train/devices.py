"""Where training runs, in what precision, and on how many CPU threads.

    train.device      auto | cpu | cuda | mps    auto: CUDA, then Apple's MPS, then the CPU
    train.precision   auto | fp32 | bf16 | fp16  auto: bf16 autocast on a GPU that has it,
                                                 fp16 autocast with a gradient scaler on
                                                 one that does not, fp32 on the CPU
    train.threads     auto | n                   torch's intra-op threads during training

The plan's rules (plan/rules.py) call :func:`find_device`, :func:`precision_for` and
:func:`threads_for` for the ``auto`` values and :func:`setting_problems` for a user's; the
loop (train/loop.py) calls :func:`training_device`, :func:`make_amp` and
:func:`training_threads`. Data stays on the CPU: the loop moves each batch to the device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import PlanError

__all__ = ["Amp", "DEVICES", "PRECISIONS", "bf16_on_gpu", "device_of", "device_rng_state",
           "find_device", "make_amp", "mps_available", "placed", "precision_for",
           "set_device_rng_state", "setting_problems", "threads_for", "training_device",
           "training_threads", "with_threads"]

DEVICES = ("cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")
#: the gradient scaler's first loss scale (torch's default, 2^16): the scaler halves it at
#: each overflow and doubles it after 2,000 clean steps (Micikevicius et al. 2018)
INIT_SCALE = 2.0 ** 16
#: autocast's dtype for each reduced precision
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: a plan made before these keys existed trains as it did then
BEFORE_THE_KEYS = {"train.device": "cpu", "train.precision": "fp32", "train.threads": None}


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def find_device() -> tuple[str, str]:
    """The device ``train.device=auto`` picks, and why: CUDA, then MPS, then the CPU."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        n = torch.cuda.device_count()
        more = f" (the first of {n})" if n > 1 else ""
        return "cuda", f"a CUDA GPU was found: {name}{more}; training runs there"
    if mps_available():
        return "mps", "no CUDA GPU; Apple's Metal GPU (MPS) was found: training runs there"
    return "cpu", "no CUDA GPU and no Apple MPS device was found: training runs on the CPU"


def bf16_on_gpu() -> bool:
    """True when the CUDA GPU does bf16 arithmetic in hardware (Ampere and later)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def precision_for(device: str, optimizer: str) -> tuple[str, str]:
    """The precision ``train.precision=auto`` picks on ``device``, and why."""
    if device == "cpu":
        return "fp32", ("fp32 on the CPU: most CPUs have no fast 16-bit arithmetic (bf16 pays "
                        "off only with AMX / AVX512-BF16 units), and rounding would cost "
                        "accuracy for no speed")
    if optimizer == "lbfgs":
        return "fp32", ("fp32 for L-BFGS: its line search compares losses closely, and half "
                        "precision's rounding misleads it")
    if device == "mps":
        return "fp32", ("fp32 on Apple's MPS: PyTorch's autocast there covers fewer operations "
                        "and has not been measured with nnrecipe; set train.precision=fp16 or "
                        "bf16 to try it")
    if bf16_on_gpu():
        return "bf16", ("bf16 autocast (mixed precision: fp32 weights, bf16 matrix products): "
                        "the GPU computes bf16 in hardware at about twice fp32's speed, and "
                        "bf16 keeps fp32's exponent range, so no loss scaling is needed "
                        "(Kalamkar et al. 2019, 'A Study of BFLOAT16 for Deep Learning "
                        "Training')")
    return "fp16", ("fp16 autocast with dynamic loss scaling (Micikevicius et al. 2018, 'Mixed "
                    "Precision Training'): the GPU has no bf16 units; the scaler multiplies the "
                    "loss so small gradients do not flush to zero, and skips a step whose "
                    "gradients overflow")


def threads_for(device: str, network: str | None) -> tuple[int, str]:
    """The CPU threads ``train.threads=auto`` picks, and why. ``network``: the plan's
    ``model.arch`` (None for a table's MLP)."""
    if device != "cpu":
        return 1, (f"1: on {device} the GPU does the arithmetic; the CPU only slices batches")
    if network is None:
        return 1, ("1 for a table's small network: extra threads only spin, and on a busy "
                   "2-core machine a second thread made a breast-cancer run 10x slower "
                   "(measured: 45.9 s against 4.5 s)")
    return 1, (f"1 for the {network} network too: measured on a busy 2-core machine (load "
               "about 4), 3 epochs of the digits convnet took 0.87 s on one thread and 19.4 s "
               "on two; raise it on a machine with idle cores and a large network")


def setting_problems(device: str, precision: str, optimizer: str) -> list[str]:
    """What is wrong with a user's train.device / train.precision, one phrase each."""
    problems = []
    if device == "cuda" and not torch.cuda.is_available():
        problems.append("train.device=cuda but no CUDA GPU is available here (torch "
                        f"{torch.__version__}, built {'with' if torch.version.cuda else 'without'}"
                        " CUDA); use train.device=auto or cpu")
    if device == "mps" and not mps_available():
        problems.append("train.device=mps but Apple's MPS is not available here; use "
                        "train.device=auto or cpu")
    if precision == "fp16" and optimizer == "lbfgs":
        problems.append("train.precision=fp16 does not work with optimizer.name=lbfgs (the "
                        "gradient scaler cannot skip a step inside its line search); use fp32 "
                        "or bf16")
    return problems


def plan_value(plan: Any, key: str) -> Any:
    return plan[key] if key in plan else BEFORE_THE_KEYS[key]


def training_device(plan: Any) -> torch.device:
    """The plan's device, checked here (a plan made on another machine may name a GPU this
    one lacks): PlanError in one line when it is missing."""
    name = plan_value(plan, "train.device")
    if name == "auto":
        name = find_device()[0]
    problems = setting_problems(name, "fp32", "")
    if problems:
        raise PlanError(problems[0])
    return torch.device(name)


def training_threads(plan: Any) -> int | None:
    """The plan's CPU threads (None: leave torch's setting alone)."""
    n = plan_value(plan, "train.threads")
    if n == "auto":
        arch = plan["model.arch"] if "model.arch" in plan else None
        n = threads_for(plan_value(plan, "train.device"), arch)[0]
    return n


def device_of(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@contextmanager
def with_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block, the caller's value restored."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def placed(model: nn.Module, plan: Any) -> Iterator[torch.device]:
    """The model on the plan's device and torch's threads at the plan's count for the block;
    afterwards the model back where it was and the caller's thread count. Yields the
    device."""
    device = training_device(plan)
    home = device_of(model)
    with with_threads(training_threads(plan)):
        model.to(device)
        try:
            yield device
        finally:
            model.to(home)


@dataclass
class Amp:
    """Mixed precision: autocast to ``dtype`` for the forward pass and the loss, and for
    fp16 a gradient scaler (``scaler``; None for bf16, whose range needs none)."""

    device: torch.device
    dtype: torch.dtype
    scaler: torch.amp.GradScaler | None

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype)


def make_amp(plan: Any, device: torch.device) -> Amp | None:
    """The plan's mixed precision on ``device``; None for fp32 (the loop then runs exactly
    as it always has)."""
    precision = plan_value(plan, "train.precision")
    if precision == "auto":
        precision = precision_for(device.type, plan["optimizer.name"])[0]
    if precision == "fp32":
        return None
    scaler = (torch.amp.GradScaler(device.type, init_scale=INIT_SCALE)
              if precision == "fp16" else None)
    return Amp(device, DTYPES[precision], scaler)


def device_rng_state(device: torch.device) -> torch.Tensor | None:
    """The random state of ``device``'s own generator (dropout on a GPU draws from it)."""
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    if device.type == "mps":
        return torch.mps.get_rng_state()
    return None


def set_device_rng_state(device: torch.device, state: torch.Tensor | None) -> None:
    if state is None:
        return
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    elif device.type == "mps":
        torch.mps.set_rng_state(state)
