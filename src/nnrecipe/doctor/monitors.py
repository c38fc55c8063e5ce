"""LiveMonitor: the doctor's watcher inside the training loop.

Every ``sample_every`` steps (and on the first ``first_steps`` steps) it measures, on any
``nn.Module``:

* the loss of the batch;
* per layer with a trainable ``weight`` (Linear, Conv*, the ``weight_*`` matrices of
  RNN/LSTM/GRU; not norm layers, embeddings or PReLU), in registration order: the L2 norm
  of the gradient and its share of exactly-zero entries. The gradient is the one the step
  just used (after clipping), still on the parameters until the next ``zero_grad``;
* per ``nn.ReLU``/``nn.ReLU6`` module: the share of zero outputs and the share of units
  zero for every row of the batch (dim 0 is taken as the batch; counted only for batches of
  at least ``MIN_ROWS_FOR_DEAD`` rows, 0 below). Leaky/parametric ReLU,
  ELU, SELU and GELU are never exactly zero, so they cannot die and are not measured;
* per ``nn.Sigmoid``/``nn.Tanh`` module: the share of outputs at an end of the range
  (tanh ``|y| >= 0.99``, sigmoid ``y <= 0.01`` or ``>= 0.99``).

Activation modules registered after the last weight layer are taken as the output
activation and skipped: a confident classifier's output is meant to saturate. Activations
called as functions (``F.relu``) are not seen; gradient norms still are.

Forward hooks exist only during sampled steps (armed in ``before_step``, removed in
``after_step``); an unsampled step costs one modulo. The numbers of a sample cross to the
CPU in one transfer. A step finding is reported once its rule fires on ``persist``
consecutive samples (a NaN loss at once); the epoch rules run on the learning curve at each
epoch's end. Each code is reported at most once per layer (the first time; later sightings
only raise ``times_seen``).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from typing import Any

import torch
from torch import nn

from ..train.callbacks import TrainState, Watcher
from .findings import Finding
from .rules.live import (
    SATURATION_AT,
    HistoryEvidence,
    StepEvidence,
    check_history,
    check_step,
    non_finite_weights,
)

__all__ = ["LiveMonitor", "weight_layers"]

KEEP_SAMPLES = 1000  # samples kept in LiveMonitor.samples
LAYER_LOG_MAX = 1000  # entries of LiveMonitor.layer_log (even: thinning halves it exactly)
MIN_ROWS_FOR_DEAD = 8  # fewer rows: a live unit is too often zero on all of them by chance
IMMEDIATE_TRIGGERS = ("non_finite_gradient", "loss_growth")
_ZERO_ACTS = (nn.ReLU, nn.ReLU6)
_SATURATING = (nn.Sigmoid, nn.Tanh)
_NOT_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.Embedding,
               nn.EmbeddingBag, nn.PReLU)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, weight) of each layer with a trainable weight, in registration order."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, _NOT_LAYERS) or type(m).__name__.endswith("Norm"):  # e.g. RMSNorm
            continue
        if isinstance(m, nn.RNNBase):
            out += [(f"{name}.{pn}", p) for pn, p in m.named_parameters(recurse=False)
                    if pn.startswith("weight") and p.requires_grad]
            continue
        w = m._parameters.get("weight")
        if w is not None and w.requires_grad:
            out.append((name, w))
    return out


class LiveMonitor(Watcher):
    """Watch a training run for the live failure modes; see the module docstring."""

    wants_steps = True

    def __init__(self, sample_every: int = 50, stop_on_error: bool = False,
                 metric_name: str | None = None, higher_is_better: bool = True,
                 baseline_loss: float | None = None, *, persist: int = 3,
                 first_steps: int = 3):
        self.sample_every = max(1, int(sample_every))
        self.stop_on_error = stop_on_error
        self.metric_name, self.higher_is_better = metric_name, higher_is_better
        self.baseline_loss = baseline_loss
        self.persist, self.first_steps = max(1, persist), first_steps
        self.findings: list[Finding] = []
        # the latest samples, for reports and tests (bounded: a long run takes thousands)
        self.samples: deque[StepEvidence] = deque(maxlen=KEEP_SAMPLES)
        # per-layer numbers over the whole run, for the report: {step, epoch, grad_norm:
        # {layer: norm}, dead_share: {relu: share}}; thinned to every 2nd, 4th... sample
        # once it holds LAYER_LOG_MAX, so it spans the run at a bounded size
        self.layer_log: list[dict[str, Any]] = []
        self._log_stride, self._n_observed = 1, 0
        self._seen: dict[tuple[str, str | None], int] = {}  # (code, layer) -> findings index
        self._streak: dict[tuple[str, str | None], int] = {}
        self._handles: list[Any] = []
        self._acts: dict[str, list[torch.Tensor]] = {}
        self._history: list[dict[str, Any]] = []
        self._armed = False
        self._layers: list[tuple[str, nn.Parameter]] = []
        self._watched: list[tuple[str, nn.Module]] = []
        self.initial_loss: float | None = None

    @property
    def history(self) -> list[dict[str, Any]]:
        """The per-epoch logs seen so far (``train_loss``, ``val_loss``, ``val_<metric>``,
        ``lr``), oldest first; a copy."""
        return [dict(h) for h in self._history]

    # --- a checkpoint of what was seen (a resumed run carries on from it) -----------------

    def state_dict(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings],
                "layer_log": self.layer_log, "log_stride": self._log_stride,
                "n_observed": self._n_observed, "initial_loss": self.initial_loss,
                "seen": [[c, layer, i] for (c, layer), i in self._seen.items()],
                "streak": [[c, layer, n] for (c, layer), n in self._streak.items()],
                "history": self._history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.findings = [Finding.from_dict(f) for f in state["findings"]]
        self.layer_log = list(state["layer_log"])
        self._log_stride, self._n_observed = state["log_stride"], state["n_observed"]
        self.initial_loss = state["initial_loss"]
        self._seen = {(c, layer): i for c, layer, i in state["seen"]}
        self._streak = {(c, layer): n for c, layer, n in state["streak"]}
        self._history = list(state["history"])

    # --- the watcher hooks ----------------------------------------------------------------

    def on_train_begin(self, state: TrainState) -> None:
        self._layers = weight_layers(state.model)
        modules = list(state.model.named_modules())
        weights = {id(w) for _, w in self._layers}
        last = max((i for i, (_, m) in enumerate(modules)
                    if any(id(p) in weights for p in m.parameters(recurse=False))), default=-1)
        self._watched = [(n, m) for i, (n, m) in enumerate(modules)
                         if i < last and isinstance(m, _ZERO_ACTS + _SATURATING)]

    def before_step(self, state: TrainState) -> None:
        step = state.step + 1  # the step about to run
        if step % self.sample_every and step > self.first_steps:
            return
        self._acts = {}
        for name, m in self._watched:
            hook = self._zero_hook if isinstance(m, _ZERO_ACTS) else self._saturation_hook
            self._handles.append(m.register_forward_hook(_bound(hook, name)))
        self._armed = True

    def after_step(self, state: TrainState) -> None:
        if not self._armed:
            return
        self._disarm()
        self.observe(self._evidence(state), state)

    def skipped_step(self, state: TrainState) -> None:
        """fp16's scaler skipped the step (overflowed gradients): nothing to judge; the
        activation hooks armed for it come off, and the next step arms them again."""
        if self._armed:
            self._disarm()

    def _disarm(self) -> None:
        self._armed = False
        for h in self._handles:
            h.remove()
        self._handles = []

    def observe(self, ev: StepEvidence, state: TrainState | None = None) -> list[Finding]:
        """Judge one sample: run the step rules, keep the streaks, report what persisted.
        Returns the findings new with this sample."""
        self.samples.append(ev)
        self._log_layers(ev)
        if self.initial_loss is None and math.isfinite(ev.loss):
            self.initial_loss = ev.loss
        fired = {(f.code, f.layer): f for f in check_step(ev)}
        for key in list(self._streak):
            if key not in fired:
                del self._streak[key]
        new = []
        for key, f in fired.items():
            self._streak[key] = self._streak.get(key, 0) + 1
            if (_at_once(f) or self._streak[key] >= self.persist) and self._report(f, state):
                new.append(f)
        return new

    def _log_layers(self, ev: StepEvidence) -> None:
        self._n_observed += 1
        if (self._n_observed - 1) % self._log_stride:
            return
        self.layer_log.append({"step": ev.step, "epoch": ev.epoch,
                               "grad_norm": dict(ev.grad_norms),
                               "dead_share": dict(ev.dead_unit_share)})
        if len(self.layer_log) > LAYER_LOG_MAX:
            del self.layer_log[1::2]
            self._log_stride *= 2

    def on_epoch_end(self, state: TrainState) -> None:
        self._history.append(dict(state.logs))
        val_metric = None
        if self.metric_name:
            val_metric = [h.get(f"val_{self.metric_name}", math.nan) for h in self._history]
        ev = HistoryEvidence(
            train_loss=[h.get("train_loss", math.nan) for h in self._history],
            val_loss=[h["val_loss"] for h in self._history if "val_loss" in h],
            val_metric=val_metric, metric_name=self.metric_name,
            higher_is_better=self.higher_is_better, baseline_loss=self.baseline_loss,
            lr=state.logs.get("lr", _lr(state)), initial_loss=self.initial_loss)
        for f in check_history(ev):
            self._report(f, state)
        if ("nan_loss", None) not in self._seen and state.model is not None:
            bad = [name for name, v in state.model.state_dict().items()
                   if v.is_floating_point() and not bool(torch.isfinite(v).all())]
            f = non_finite_weights(bad, epoch=state.logs.get("epoch", 0), lr=ev.lr)
            if f is not None:
                self._report(f, state)

    def on_train_end(self, state: TrainState) -> None:
        for h in self._handles:  # training stopped inside a sampled step
            h.remove()
        self._handles = []

    # --- measuring ------------------------------------------------------------------------

    def _zero_hook(self, name: str, module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or output.dim() == 0:
            return
        zero = output.detach() == 0
        if zero.dim() > 1 and zero.shape[0] >= MIN_ROWS_FOR_DEAD:
            dead = zero.reshape(zero.shape[0], -1).all(0).float().mean()
        else:
            dead = torch.zeros((), device=zero.device)
        self._acts.setdefault(name, []).append(torch.stack([zero.float().mean(), dead]))

    def _saturation_hook(self, name: str, module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or output.numel() == 0:
            return
        y = output.detach()
        if isinstance(module, nn.Sigmoid):
            y = 2 * y - 1  # onto tanh's range [-1, 1]
        share = (y.abs() >= 1 - 2 * SATURATION_AT).float().mean()
        self._acts.setdefault(name, []).append(share.reshape(1))

    @torch.no_grad()
    def _evidence(self, state: TrainState) -> StepEvidence:
        loss = state.loss if state.loss is not None else torch.tensor(math.nan)
        device = loss.device
        names, parts = [], [loss.detach().float().reshape(1)]
        for name, w in self._layers:
            if w.grad is None or w.grad.is_sparse:
                continue
            g = w.grad.detach()
            names.append(name)
            zero_share = 1.0 - torch.count_nonzero(g) / g.numel()
            parts.append(torch.stack([torch.linalg.vector_norm(g.float()),
                                      zero_share.float()]).to(device))
        act_names = list(self._acts)
        parts += [torch.stack(v).mean(0).to(device) for v in self._acts.values()]
        self._acts = {}
        sample = torch.cat(parts)
        if state.group is not None:  # several processes: the mean over every rank's share
            sample = state.group.mean(sample)
        values = sample.tolist()  # the one transfer of this sample
        loss_value, pos = values[0], 1
        grad_norms, grad_zero = {}, {}
        for name in names:
            grad_norms[name], grad_zero[name] = values[pos], values[pos + 1]
            pos += 2
        act_zero, dead, saturation = {}, {}, {}
        modules = dict(self._watched)
        for name in act_names:
            if isinstance(modules[name], _ZERO_ACTS):
                act_zero[name], dead[name] = values[pos], values[pos + 1]
                pos += 2
            else:
                saturation[name] = values[pos]
                pos += 1
        return StepEvidence(state.epoch, state.step, loss_value, grad_norms, grad_zero,
                            act_zero, saturation, dead, lr=_lr(state),
                            initial_loss=self.initial_loss)

    # --- reporting ------------------------------------------------------------------------

    def _report(self, f: Finding, state: TrainState | None) -> bool:
        """Keep ``f`` if its (code, layer) is new, else count the repeat; True if new."""
        key = (f.code, f.layer)
        if key in self._seen:
            i = self._seen[key]
            old = self.findings[i]
            seen = int(old.evidence.get("times_seen", 1)) + 1
            self.findings[i] = dataclasses.replace(old, evidence={**old.evidence,
                                                                  "times_seen": seen})
            return False
        self._seen[key] = len(self.findings)
        self.findings.append(f)
        if self.stop_on_error and f.severity == "error" and state is not None:
            where = f" in {f.layer}" if f.layer else ""
            state.request_stop(f"doctor: {f.title.lower()}{where} ({f.code}) at epoch "
                               f"{f.epoch}" + (f", step {f.step}" if f.step else ""))
        return True


def _at_once(f: Finding) -> bool:
    """A NaN loss, non-finite gradients or a loss 1000x its start are never noise."""
    return f.code == "nan_loss" or f.evidence.get("trigger") in IMMEDIATE_TRIGGERS


def _bound(hook: Any, name: str) -> Any:
    return lambda module, inputs, output: hook(name, module, inputs, output)


def _lr(state: TrainState) -> float | None:
    groups = getattr(state.optimizer, "param_groups", None)
    return float(groups[0]["lr"]) if groups else None
