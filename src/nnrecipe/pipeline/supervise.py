"""Training under the doctor's eye, with auto-repair (``fit`` and ``diagnose``).

    1. data and configuration checks, then the pre-flight checks
    2. train with the live monitor watching
    3. with auto-fix: when an error-level symptom fires, apply its fix (continue from the
       last good weights when only the optimizer or training changes, else re-initialise),
       go on training within the same epoch budget; escalate if the symptom comes back;
       at most ``max_repairs`` times
    4. the learning-curve checks and label issues
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..doctor.findings import Finding
from ..doctor.monitors import LiveMonitor
from ..doctor.repair import choose_fix, keeps_weights, repairable_symptom
from ..doctor.run import after_training, before_training, constant_baseline_loss, linear_reference
from ..errors import PlanError
from ..evaluate import MAIN_METRIC
from ..lazy import lazy
from ..modalities import Inputs, Prepared
from ..models import outputs_to_predictions
from ..models.ensemble import ensemble_size
from ..models.pretrained import Unfreeze
from ..plan import Decision, Plan, add_parameter_count, make_plan
from ..plan.sizing import values_per_sample
from ..runs import RUN_FILES, atomic_write_json
from ..timing import stage
from ..train import History, distributed, make_loss, make_optimizer, predict_batches, predict_stream
from ..train import fit as train_fit
from ..train.devices import placed, training_device
from ..train.lr_find import LRFindResult, lr_find, plot_lr_find
from ..train.streams import Stream
from .ensemble import finite_weights, train_members

__all__ = ["TrainOutcome", "lr_decision", "run_range_test", "train_with_doctor"]

# A torch optimizer's first step imports torch._dynamo (about a second on 2 cores with torch
# 2.13); loaded before the pre-flight, its time is counted as the import it is.
torch_dynamo = lazy("torch._dynamo")


@dataclass
class TrainOutcome:
    plan: Plan
    model: torch.nn.Module
    history: History
    findings: list[Finding] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    layer_log: list[dict[str, Any]] = field(default_factory=list)  # the monitors' samples
    members: list[dict[str, Any]] = field(default_factory=list)  # an ensemble's networks


def train_with_doctor(prep: Prepared, inputs: Inputs, *, run_dir: Any, progress: bool,
                      watchers: list, auto_fix: bool, max_repairs: int,
                      preflight: bool, resume: dict[str, Any] | None = None,
                      should_stop: Any = None) -> TrainOutcome:
    """``resume``: the checkpoint of an interrupted run (checkpoints/last.pt): the plan,
    repairs and findings so far come from it, and training goes on where it stopped.
    ``should_stop()``: asked after every step (Ctrl-C).

    With several processes (torchrun), rank 0 runs the pre-flight and the range test and
    sends the plan and the findings to the others; each repair is rank 0's choice, sent;
    the learning-curve checks and label issues run on rank 0 alone."""
    torch_dynamo.load()
    plan, model = prep.plan, prep.model
    group = distributed.join(training_device(plan).type)
    if group is not None and _stages(plan):
        raise PlanError("staged unfreezing (transfer.head_epochs) changes which weights train "
                        "in the middle of a run, which DistributedDataParallel cannot follow: "
                        "set transfer.head_epochs=0 or train in one process")
    leads = group is None or group.main
    train, val_metrics = inputs.train, inputs.val_metrics  # train: a sample when streamed
    task, loss_name = plan["task"], plan["loss.name"]
    loss_fn = make_loss(loss_name)
    baseline = constant_baseline_loss(loss_fn, loss_name, train[1])
    if resume is not None:
        out, overrides, tried = _resumed(prep, resume["extra"]["supervisor"])
    else:
        overrides = dict(prep.overrides)
        findings = []
        with stage("preflight"):
            if "optimizer.lr_find" in plan and leads:  # lr=auto: the range test sets the rate
                result = run_range_test(plan, model, loss_fn, train, run_dir)
                decision = lr_decision(result, plan)
                overrides["optimizer.lr"] = decision.value  # a repair re-plans with it
                plan = plan.with_decision("optimizer.lr", decision)
            if leads:
                findings = before_training(plan, prep.profile,
                                           prep.modality.numeric_columns(prep), model, *train,
                                           loss_fn, lambda ps: make_optimizer(plan, ps),
                                           preflight=preflight)
        if group is not None:  # the leader's plan and findings, on every rank
            plan_d, found, overrides = group.broadcast(
                (plan.to_dict(), [f.to_dict() for f in findings], overrides))
            plan, findings = Plan.from_dict(plan_d), [Finding.from_dict(f) for f in found]
        out, tried = TrainOutcome(plan, model, History(), findings), []
    symptom = repairable_symptom(out.findings) if auto_fix and resume is None else None
    trained = resume is not None

    def supervisor() -> dict[str, Any]:  # our part of each checkpoint
        return {"supervisor": {"plan": out.plan.to_dict(), "overrides": overrides,
                               "repairs": out.repairs, "tried": tried,
                               "findings": [f.to_dict() for f in out.findings],
                               "layer_log": out.layer_log}}

    while True:
        if symptom is not None:  # 3. repair, then train on
            fix = choose_fix(symptom, out.plan, tried) if len(out.repairs) < max_repairs else None
            if fix is not None:
                tried.append(fix)
                overrides.update(fix)
                with stage("plan"):
                    _apply_fix(out, prep, overrides, fix, symptom, baseline)
            elif trained:
                break  # nothing left to try: keep the best weights seen
        monitor = LiveMonitor(stop_on_error=auto_fix, metric_name=MAIN_METRIC[task],
                              higher_is_better=task != "regression", baseline_loss=baseline)
        with stage("epochs"):
            out.history = train_fit(out.model, out.plan, inputs.train_data, inputs.val_data,
                                    loss_fn=loss_fn,
                                    val_metrics=val_metrics, main_metric=MAIN_METRIC[task],
                                    watchers=[monitor, *watchers, *_stages(out.plan)],
                                    run_dir=run_dir,
                                    progress=progress, resume=out.history,
                                    tag={"attempt": len(out.repairs)} if auto_fix else None,
                                    augment=prep.augment, order=prep.order, restore=resume,
                                    checkpoint_extra=supervisor, should_stop=should_stop)
        resume, trained = None, True
        out.findings += monitor.findings
        out.layer_log += [{**s, "attempt": len(out.repairs)} for s in monitor.layer_log]
        if out.repairs:
            out.repairs[-1]["after"] = _snapshot(out.history)
        interrupted = out.history.stop_reason.startswith("interrupted")
        symptom = repairable_symptom(monitor.findings) if auto_fix and not interrupted else None
        if group is not None and auto_fix:  # the leader's diagnosis decides the repair
            sent = group.broadcast(symptom.to_dict() if symptom is not None else None)
            symptom = Finding.from_dict(sent) if sent is not None else None
        if symptom is None:
            break
    if not leads:
        return out
    with stage("after_training"):
        out.findings += _after(out, inputs.val_data, baseline, prep, train, loss_fn)
    if run_dir is not None:  # per-layer gradient norms and dead units over time (the report)
        atomic_write_json(Path(run_dir) / RUN_FILES["monitor"],
                          {"sample_every": monitor.sample_every, "samples": out.layer_log})
    if (ensemble_size(out.plan) > 1 and not out.history.stop_reason.startswith("interrupted")
            and finite_weights(out.model)):  # the doctor's network first, then the others
        with stage("ensemble"):
            out.model, out.plan, out.members, stopped = train_members(
                prep, inputs, out.plan, out.model, out.history, progress=progress,
                should_stop=should_stop)
        if stopped is not None:
            out.history.stop_reason = stopped
    return out


def _resumed(prep: Prepared, saved: dict[str, Any]) -> tuple[TrainOutcome, dict, list]:
    """The supervisor's state from a checkpoint: the plan in force (with the range test's
    rate and any repairs), a network of that plan (the loop loads its weights), the
    repairs and findings so far."""
    plan = Plan.from_dict(saved["plan"])
    model = prep.model
    if saved["repairs"]:  # a repair may have changed the network's shape
        model = prep.modality.build(plan, prep.preprocessor, prep.pretrained)
    out = TrainOutcome(plan, model, History(), [Finding.from_dict(f) for f in saved["findings"]],
                       list(saved["repairs"]), list(saved["layer_log"]))
    return out, dict(saved["overrides"]), list(saved["tried"])


def _stages(plan: Plan) -> list:
    """Staged unfreezing (transfer learning): the new head first, then the pretrained blocks."""
    if "transfer.head_epochs" not in plan or plan["transfer.strategy"] != "fine_tune" \
            or plan["transfer.head_epochs"] == 0:
        return []
    return [Unfreeze(plan["transfer.head_epochs"])]


def run_range_test(plan: Plan, model: torch.nn.Module, loss_fn: torch.nn.Module,
                   train: tuple, run_dir: Any) -> LRFindResult:
    """The LR range test on the training rows, on the plan's device (each batch moved
    there; in fp32); lr_find.json and lr_find.png in the run."""
    optimizer = make_optimizer(plan, model.parameters())
    with placed(model, plan):
        result = lr_find(model, loss_fn, optimizer, train, batch_size=plan["train.batch_size"],
                         seed=plan["seed"])
    if run_dir is not None:
        atomic_write_json(Path(run_dir) / RUN_FILES["lr_find"], result.to_dict())
        plot_lr_find(result, Path(run_dir) / RUN_FILES["lr_find_png"])
    return result


def lr_decision(result: LRFindResult, plan: Plan | None = None) -> Decision:
    """The range test's rate as the plan's; with several processes (``train.processes``
    in ``plan``), scaled from one process's batch to the global batch by the optimizer's
    rule (train/distributed.lr_scale)."""
    where = (f"; the loss diverged from {result.divergence_lr:.3g}"
             if result.divergence_lr else "")
    lr, why = result.suggestion, f"LR range test ({result.rule} rule): {result.suggestion:.3g}"
    if plan is not None and "train.processes" in plan:
        k, rule = distributed.lr_scale(plan["optimizer.name"], plan["train.processes"])
        if k != 1.0:
            lr, why = lr * k, f"{why} on one process's batch; for the global batch, {rule}"
    return Decision(lr, why + where, "optimizer.lr_range_test")


def _apply_fix(out: TrainOutcome, prep: Prepared, overrides: dict, fix: dict,
               symptom: Finding, baseline: float) -> None:
    """Re-plan with the fix; keep the last good weights or re-initialise.

    Weights are kept only when the fix leaves the network's shape alone and they are good:
    their validation loss (the best epoch's) is finite and below ``baseline``, the loss of
    an input-independent prediction. A network whose steps blew up is usually worse than
    that already (weights thousands of times too large, outputs saturated), and a lower
    rate from there only crawls back; training again from a fresh initialisation at the
    repaired rate is what a practitioner does."""
    n_train = len(prep.splits.train)
    plan = make_plan(prep.profile, n_train, overrides)
    when = f"epoch {symptom.epoch}" if symptom.epoch else "pre-flight"
    for key in fix:  # the value make_plan resolved ("auto" becomes the rule's choice)
        plan = plan.with_decision(key, Decision(
            plan[key], f"auto-fix after '{symptom.title}' ({when}): {symptom.explanation}",
            "doctor.repair"))
    best = out.history.best_val_loss
    keep = (keeps_weights(fix) and out.history.best_epoch is not None and best is not None
            and np.isfinite(best) and (not np.isfinite(baseline) or best < baseline))
    if not keep:
        out.model = prep.modality.build(plan, prep.preprocessor, prep.pretrained)
    n_params = sum(p.numel() for p in out.model.parameters() if p.requires_grad)
    out.plan = add_parameter_count(plan, n_params, n_train,
                                   values_per_sample(plan, prep.profile.inputs))
    out.repairs.append({
        "attempt": len(out.repairs) + 1, "finding": symptom.code, "title": symptom.title,
        "evidence": symptom.evidence, "epoch": symptom.epoch, "change": fix,
        "restart": ("continued from the last good weights (epoch "
                    f"{out.history.best_epoch})" if keep else "re-initialised the network"
                    + ("" if not keeps_weights(fix) or best is None else
                       f" (the best validation loss so far, {best:.4g}, was no better than "
                       f"an input-independent prediction's, {baseline:.4g})")),
        "before": _snapshot(out.history), "after": None,
    })


def _snapshot(history: History) -> dict[str, Any] | None:
    """The last epoch's numbers (the state a repair starts from, or ends in)."""
    if not history.epochs:
        return None
    last = history.epochs[-1]
    return {k: v for k, v in last.items() if k not in ("seconds", "lr")}


def _after(out: TrainOutcome, val: tuple | Stream, baseline: float, prep: Prepared,
           train: tuple, loss_fn: torch.nn.Module) -> list[Finding]:
    """The learning-curve checks and label issues, on the whole validation split; the
    linear reference when the validation split is in memory (``train``: the training rows,
    a sample when streamed)."""
    plan, task = out.plan, out.plan["task"]
    val_out, y = (predict_stream(out.model, val) if isinstance(val, Stream)
                  else (predict_batches(out.model, val[0]), val[1]))
    codes = proba = None
    if task != "regression":
        proba = outputs_to_predictions(val_out, task, plan["loss.name"])
        # y: class codes (cross-entropy), or 0/1 or one-hot floats
        codes = (y.argmax(1) if y.dim() == 2 and y.shape[1] > 1 else y.reshape(-1)).long()
        codes = codes.numpy()
        if not np.all(np.isfinite(proba)):
            codes = proba = None
    reference = None
    if not isinstance(val, Stream) and finite_weights(out.model):
        reference = linear_reference(out.model, loss_fn, plan["loss.name"], train, val,
                                     seed=plan["seed"])
    found = after_training(plan, out.history, n_val=len(y), baseline_loss=baseline,
                           metric_name=MAIN_METRIC[task], val_codes=codes, val_proba=proba,
                           val_ids=prep.modality.val_ids(prep), reference=reference)
    live = {f.code for f in out.findings}  # said once: slow convergence, seen live too
    return [f for f in found if f.code not in live]
