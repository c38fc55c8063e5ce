"""The doctor on a user's own PyTorch loop, with no nnrecipe plan behind it.

    doctor = Doctor(model, loss_fn=loss_fn, optimizer=opt)   # configuration checks, hooks
    doctor.preflight(x_batch, y_batch)                       # the debugging recipe's checks
    for x, y in loader:
        ...; loss.backward(); doctor.after_backward(loss); opt.step()
    doctor.end_epoch(train_loss, val_loss)                   # optional: learning-curve rules
    doctor.after_training(val_rows=len(val_set))             # overfitting, underfitting...
    doctor.findings; doctor.report()

Works on any ``nn.Module`` (MLP, CNN, RNN). Statistics are sampled every ``sample_every``
steps, so the cost between samples is one integer test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from rich.console import Console
from torch import nn

from ..train.callbacks import TrainState
from .findings import Finding, findings_table, sort_findings
from .monitors import LiveMonitor
from .preflight import PreflightEvidence, check_preflight, measure_preflight
from .rules.after import AfterEvidence, check_after, label_issues_if_learned
from .rules.config import check_config, config_evidence_from_objects

__all__ = ["Doctor"]


class Doctor:
    def __init__(self, model: nn.Module, loss_fn: nn.Module | None = None,
                 optimizer: torch.optim.Optimizer | None = None, *, sample_every: int = 50,
                 batch_size: int | None = None, metric_name: str | None = None,
                 higher_is_better: bool = True):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self._static: list[Finding] = check_config(
            config_evidence_from_objects(model, loss_fn, optimizer, batch_size=batch_size))
        self.monitor = LiveMonitor(sample_every=sample_every, metric_name=metric_name,
                                   higher_is_better=higher_is_better)
        self._state = TrainState(model=model, optimizer=optimizer, plan=None, max_epochs=0)
        self._preflight: PreflightEvidence | None = None
        self._after: list[Finding] = []
        self.monitor.on_train_begin(self._state)
        self.monitor.before_step(self._state)  # arm the hooks for the first forward pass

    def preflight(self, x: torch.Tensor, y: torch.Tensor, *, task: str | None = None,
                  class_priors: Sequence[float] | None = None) -> list[Finding]:
        """Loss at init, overfit a tiny batch, gradients reach every parameter, inputs beat
        zeroed inputs. Runs on copies: the model and optimizer are left as they were."""
        if self.loss_fn is None:
            raise ValueError("Doctor.preflight needs loss_fn")
        opt = self.optimizer
        lr = opt.param_groups[0]["lr"] if opt is not None else None

        def make_optimizer(params: Any) -> torch.optim.Optimizer:
            if opt is None:
                return torch.optim.Adam(params, lr=1e-3)
            return type(opt)(params, **opt.defaults)

        self._preflight = measure_preflight(
            self.model, self.loss_fn, make_optimizer, x, y, task=task,
            class_priors=list(class_priors) if class_priors else None, lr=lr)
        found = check_preflight(self._preflight)
        self._static += found
        return found

    def after_backward(self, loss: torch.Tensor) -> None:
        """Call once per step, after ``loss.backward()`` and before ``optimizer.step()``."""
        self._state.step += 1
        self._state.loss = loss.detach()
        self.monitor.after_step(self._state)
        self.monitor.before_step(self._state)  # arm the hooks if the next step is sampled

    def end_epoch(self, train_loss: float, val_loss: float | None = None,
                  **val_metrics: float) -> None:
        """Optional, once per epoch: the learning-curve rules (divergence, oscillation...)."""
        self._state.epoch += 1
        logs = {"epoch": self._state.epoch, "train_loss": float(train_loss)}
        if val_loss is not None:
            logs["val_loss"] = float(val_loss)
        logs.update({f"val_{k}": float(v) for k, v in val_metrics.items()})
        if self.optimizer is not None:
            logs["lr"] = self.optimizer.param_groups[0]["lr"]
        self._state.logs = logs
        self.monitor.on_epoch_end(self._state)

    def after_training(self, *, val_rows: int | None = None, task: str | None = None,
                       baseline_loss: float | None = None, early_stopping_patience: int = 0,
                       val_labels: Any = None, val_probs: Any = None) -> list[Finding]:
        """Call once when training ends: the learning-curve checks on what ``end_epoch``
        recorded, as after an nnrecipe run. Overfitting (the validation loss rising while
        the training loss falls, with the epoch where they part), underfitting (the losses
        no better than predicting the class priors or the mean: ``baseline_loss``, else the
        loss of that prediction the pre-flight measured) and, given ``val_rows`` (the
        validation set's size), a validation set too small to trust.

        ``early_stopping_patience``: the patience your loop stopped with (0: none), so that
        a rise the stopping cut short is an info note rather than a warning.

        ``val_labels`` (class codes) and ``val_probs`` (the model's probabilities on those
        rows, (N, C), or P(class 1) for two classes) add the label check: validation rows
        whose label the model firmly rejects (cleanlab), a warning only when they are clearly
        more than the mistakes the model expects of itself; judged only when the model
        learned (its median row's loss under 0.7 times predicting the class shares). Rows
        are named by their position in the validation set.

        Returns the new findings; they join :attr:`findings`. Codes the live checks already
        reported are not repeated."""
        if val_rows is None and val_labels is not None:
            val_rows = len(val_labels)
        pre = self._preflight
        task = task or (pre.task if pre is not None else None)
        if baseline_loss is None and pre is not None:
            baseline_loss = pre.best_constant_loss
        history = self.monitor.history
        train = [h.get("train_loss", math.nan) for h in history]
        val = [h["val_loss"] for h in history if "val_loss" in h]
        name = self.monitor.metric_name
        metric = [h.get(f"val_{name}") for h in history] if name else None
        context: dict[str, Any] = {"train.early_stopping.patience": early_stopping_patience}
        if self.optimizer is not None:
            group = self.optimizer.param_groups[0]
            context["optimizer.name"] = type(self.optimizer).__name__.lower()  # Adam → adam
            context["optimizer.lr"] = group["lr"]
            context["optimizer.weight_decay"] = group.get("weight_decay", 0.0)
        ev = AfterEvidence(
            train_loss=train, val_loss=val if len(val) == len(train) else [],
            n_val=val_rows or 0, task=task or "", baseline_loss=baseline_loss,
            val_metric=metric if metric and all(m is not None for m in metric) else None,
            metric_name=name, fix_context=context)
        found = check_after(ev)
        if val_labels is not None and val_probs is not None:
            labels = torch.as_tensor(val_labels).detach().cpu().reshape(-1).long().numpy()
            probs = torch.as_tensor(val_probs).detach().cpu().double().numpy()
            issue = label_issues_if_learned(labels, probs,
                                            [f"val[{i}]" for i in range(len(labels))])
            if issue is not None:
                found.append(issue)
        live = {f.code for f in self.monitor.findings}
        self._after = [f for f in found if f.code not in live
                       and (val_rows is not None or f.code != "noisy_validation")]
        return list(self._after)

    @property
    def findings(self) -> list[Finding]:
        before = {(f.code, f.layer) for f in self._static}  # a NaN loss at init, again live
        return sort_findings(self._static + [f for f in self.monitor.findings
                                             if (f.code, f.layer) not in before] + self._after)

    def report(self, console: Console | None = None) -> None:
        console = console or Console()
        if not self.findings:
            console.print("The doctor found nothing to report.")
            return
        console.print(findings_table(self.findings, advice=True))

    def close(self) -> None:
        """Remove any forward hooks still attached (when training stops mid-sample)."""
        self.monitor.on_train_end(self._state)
