"""One readable training loop.

    for each epoch:
        1. shuffle the training rows once (one gather), then slice contiguous batches
        2. for each batch (moved to train.device): forward → loss (+ L1) → backward →
           clip → step (L-BFGS: step(closure), the closure doing forward → ... → clip);
           with train.precision bf16/fp16 the forward and the loss run under autocast, and
           fp16 scales the loss, unscales the gradients before clipping and skips a step
           whose gradients overflowed (the step watchers never see it as a step)
        3. evaluate on the validation split (no grad, in chunks)
        4. log the epoch to metrics.jsonl, save checkpoints/last.pt (and best.pt)
        5. watchers see the epoch; early stopping or a watcher may stop here
    with train.swa: the averaged weights of the epochs after train.swa_start;
    otherwise restore the best weights (lowest validation loss)

The model trains on ``train.device`` and is handed back where it was; the data stays on the
CPU. torch's CPU threads are ``train.threads`` for the call, the caller's afterwards.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, update_bn

from ..errors import PlanError
from ..runs import RUN_FILES, atomic_write_text, json_safe
from . import distributed
from .callbacks import TrainState, Watcher
from .checkpoint import save_checkpoint
from .devices import Amp, device_of, make_amp, placed, training_device
from .devices import device_rng_state as rng_of
from .devices import set_device_rng_state as set_rng_of
from .early_stopping import EarlyStopping
from .optim import make_optimizer, parameter_groups
from .progress import TrainProgress
from .schedules import ScheduleSpec, make_schedule
from .streams import Stream, shard_order, used_rows

if TYPE_CHECKING:  # train/ never imports plan/ at run time: plan/ reads our records
    from ..plan.schema import Plan

__all__ = ["History", "fit", "predict_batches", "predict_stream"]

EVAL_CHUNK = 65_536  # rows per forward pass when evaluating: bounds memory on big splits
#: seconds between the checkpoints written after an epoch (last.pt, best.pt): a short
#: epoch is not slowed by writing them every time (they and metrics.jsonl, each fsync'd,
#: took 17 ms, a third of a 50 ms epoch), and a crash loses at most this much work. The
#: first and the last epoch, a stop and Ctrl-C always write them. metrics.jsonl is
#: rewritten after every epoch (live progress), without fsync: last.pt holds the same
#: history durably, and a resumed run rewrites it from there.
EPOCH_SAVE_GAP = 2.0
CPU = torch.device("cpu")


@dataclass
class History:
    epochs: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = ""
    best_epoch: int | None = None
    best_val_loss: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "stop_reason": self.stop_reason,
                "best_epoch": self.best_epoch, "best_val_loss": self.best_val_loss,
                "seconds": self.seconds}


@torch.no_grad()
def predict_batches(model: nn.Module, x: torch.Tensor | Stream, chunk: int = EVAL_CHUNK
                    ) -> torch.Tensor:
    """Outputs for ``x`` in eval mode, ``chunk`` rows at a time; (N, n_outputs). Each chunk
    runs where the model is (in fp32); the outputs come back on ``x``'s device. A
    :class:`Stream` is read in order, ``chunk`` rows per batch (outputs on the CPU)."""
    if isinstance(x, Stream):
        return predict_stream(model, x, chunk)[0]
    was_training = model.training
    model.eval()
    device = device_of(model)
    if device == x.device:
        out = torch.cat([model(x[i:i + chunk]) for i in range(0, len(x), chunk)])
    else:
        out = torch.cat([model(x[i:i + chunk].to(device)).to(x.device)
                         for i in range(0, len(x), chunk)])
    model.train(was_training)
    return out


@torch.no_grad()
def predict_stream(model: nn.Module, stream: Stream, chunk: int = EVAL_CHUNK
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and targets of every row of ``stream``, in order, on the CPU."""
    was_training = model.training
    model.eval()
    device = device_of(model)
    outs, ys = [], []
    for xb, yb in stream.epoch(chunk, None):
        outs.append(model(xb.to(device, non_blocking=True)).cpu())
        ys.append(yb)
    model.train(was_training)
    return torch.cat(outs), torch.cat(ys)


def fit(model: nn.Module, plan: Plan, train: tuple[torch.Tensor, torch.Tensor] | Stream,
        val: tuple[torch.Tensor, torch.Tensor] | Stream | None, *, loss_fn: nn.Module,
        val_metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None = None,
        main_metric: str | None = None, watchers: Sequence[Watcher] = (),
        run_dir: Path | None = None, progress: bool | str = True,
        resume: History | None = None,
        tag: dict[str, Any] | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        order: Callable[[torch.Generator, int], torch.Tensor] | None = None,
        restore: dict[str, Any] | None = None,
        checkpoint_extra: Callable[[], dict[str, Any]] | None = None,
        should_stop: Callable[[], bool] | None = None) -> History:
    """Train ``model`` in place by ``plan``; return the history. ``train``/``val`` are
    (x, y) tensors already shaped for ``loss_fn``, or :class:`~.streams.Stream` s that read
    them a batch at a time (data larger than memory; the same loop, the same draws).

    ``resume``: a history to continue (after a repair): epochs are numbered on from it and
    ``plan["train.max_epochs"]`` stays the total budget; the best weights are tracked
    afresh. ``tag``: fields added to every epoch's log line (e.g. the repair attempt).
    ``augment``: applied to each training batch's inputs (never to validation).
    ``order(generator, batch_size)``: each epoch's order of the training rows (by default
    a random permutation; text: batches by length, data/text.length_order).

    ``restore``: a checkpoint (checkpoints/last.pt of an interrupted run, loaded): training
    continues where it stopped, at the end of an epoch or mid-epoch, with every random
    stream as it was, so the result is the run that was never interrupted.
    ``checkpoint_extra()``: more to store in each checkpoint (the caller's own state).
    ``should_stop()``: checked after every step (Ctrl-C): when true, a checkpoint is written
    where the run stands and training stops, as if a watcher had asked.

    Dropout and other random layers draw from torch's global RNG, seeded with
    ``plan["seed"]`` for the run; the caller's global RNG state (CPU, and the CUDA devices
    the model is on or trains on) is the same after the call as before it.

    The model trains on ``plan["train.device"]`` (PlanError when this machine lacks it) and
    is moved back to where it was before the call returns; ``train``/``val`` may stay on the
    CPU (each batch is moved). ``plan["train.threads"]``: torch's CPU threads for the call."""
    target = training_device(plan)
    group = distributed.join(target.type)  # None: one process
    seed = plan["seed"] + (group.rank if group else 0)  # each rank its own dropout masks
    with distributed.guard(group), _run_rng(model, target, seed), placed(model, plan) as device:
        return _fit(model, plan, train, val, loss_fn=loss_fn, val_metrics=val_metrics,
                    main_metric=main_metric, watchers=watchers, run_dir=run_dir,
                    progress=progress, resume=resume, tag=tag, augment=augment, order=order,
                    restore=restore, checkpoint_extra=checkpoint_extra,
                    should_stop=should_stop, device=device, group=group)


@contextmanager
def _run_rng(model: nn.Module, device: torch.device, seed: int) -> Iterator[None]:
    """Seed torch's global RNG with ``seed`` for the block (the same draws as
    ``torch.manual_seed(seed)``: the CPU generator and those of the CUDA devices the model
    is on or trains on; Apple's MPS generator when it trains there), then give the caller's
    RNG state back."""
    if device.type == "mps":
        with torch.random.fork_rng(devices=[0], device_type="mps"):
            torch.random.default_generator.manual_seed(seed)
            torch.mps.manual_seed(seed)
            yield
        return
    cuda = {p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"}
    if device.type == "cuda":
        cuda.add(device.index if device.index is not None else torch.cuda.current_device())
    with torch.random.fork_rng(devices=sorted(cuda)):
        torch.random.default_generator.manual_seed(seed)
        for d in sorted(cuda):
            torch.cuda.default_generators[d].manual_seed(seed)
        yield


def _fit(model: nn.Module, plan: Plan, train: tuple[torch.Tensor, torch.Tensor] | Stream,
         val: tuple[torch.Tensor, torch.Tensor] | Stream | None, *, loss_fn: nn.Module,
         val_metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None,
         main_metric: str | None, watchers: Sequence[Watcher], run_dir: Path | None,
         progress: bool | str, resume: History | None, tag: dict[str, Any] | None,
         augment: Callable[[torch.Tensor], torch.Tensor] | None,
         order: Callable[[torch.Generator, int], torch.Tensor] | None,
         restore: dict[str, Any] | None, checkpoint_extra: Callable[[], dict[str, Any]] | None,
         should_stop: Callable[[], bool] | None, device: torch.device = CPU,
         group: distributed.Group | None = None) -> History:
    """:func:`fit`'s work, run inside the seeded RNG, with the model on ``device``.
    ``group``: the processes training together (DDP; train/distributed.py), None alone."""
    gen = torch.Generator().manual_seed(plan["seed"])  # shuffling: the same on every rank
    shard = group.shard if group is not None else (0, 1)
    net = model if group is None else DistributedDataParallel(  # averages the gradients
        model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(plan, parameter_groups(model, plan))  # transfer: per-group lr
    move = device.type != "cpu"  # batches are sliced on the CPU, then moved
    amp = make_amp(plan, device)  # None: fp32, the plain path
    scaler = amp.scaler if amp is not None else None
    bs, max_epochs = plan["train.batch_size"], plan["train.max_epochs"]
    l1 = plan["regularization.l1"]
    l1_params = [p for n, p in model.named_parameters() if p.dim() > 1]  # weights, not biases
    clip = _clipper(plan["train.grad_clip.kind"], plan["train.grad_clip.max"])
    schedule_spec = ScheduleSpec(name=plan["schedule.name"], step_size=plan["schedule.step_size"],
                                 gamma=plan["schedule.gamma"], k=plan["schedule.k"],
                                 warmup_epochs=plan["schedule.warmup_epochs"])
    params = list(model.parameters())  # frozen ones have no grad: clipping skips them
    lbfgs = isinstance(optimizer, torch.optim.LBFGS)
    if lbfgs and scaler is not None:
        raise PlanError("train.precision=fp16 does not work with optimizer.name=lbfgs (the "
                        "gradient scaler cannot skip a step inside its line search); use fp32 "
                        "or bf16")
    # SWA averages the weights after each epoch from swa_first on (None: off)
    swa_first = math.floor(plan["train.swa_start"] * max_epochs) + 1 if plan["train.swa"] else None
    swa_model: AveragedModel | None = None
    watchers = list(watchers)
    if plan["train.early_stopping.patience"] > 0 and val is not None:
        watchers.append(EarlyStopping(plan["train.early_stopping.patience"]))
    step_watchers = [w for w in watchers if w.wants_steps]

    streamed = isinstance(train, Stream)
    if streamed:
        n = len(train)
        steps_per_epoch = train.n_batches(bs, shard)
    else:
        x, y = train
        n = len(x)
    n_used = used_rows(n, bs)  # a batch of one breaks BatchNorm
    n_here = math.ceil(n_used / shard[1])  # this rank's rows (all of them alone)
    if not streamed:
        steps_per_epoch = math.ceil(n_here / bs)
    state = TrainState(model=model, optimizer=optimizer, plan=plan, max_epochs=max_epochs,
                       group=group)
    history, best_state = resume or History(), None
    swa_epochs: list[int] = []
    history.best_epoch = history.best_val_loss = None
    first_epoch = len(history.epochs) + 1  # of this call (after a repair: of this attempt)
    resumed = None  # where a restored checkpoint stopped mid-epoch: that epoch, its batch
    if restore is not None:
        first_epoch = restore["first_epoch"]
    # the schedule spans the epochs this call may run (after a repair: the ones left)
    schedule = make_schedule(schedule_spec, optimizer, epochs=max(1, max_epochs - first_epoch + 1),
                             steps_per_epoch=steps_per_epoch)
    if restore is not None:
        best_state, swa_model, resumed = _restore(restore, model, optimizer, schedule, gen,
                                                  augment, watchers, history, state, device,
                                                  group)
        swa_epochs = list(restore["swa"]["epochs"]) if restore["swa"] else []
        if scaler is not None and restore.get("scaler"):
            scaler.load_state_dict(restore["scaler"])
    scale = scaler.get_scale() if scaler is not None else 0.0  # a drop: the step was skipped
    lines = [json.dumps(json_safe(e)) for e in history.epochs]
    every = 60.0 * plan["train.checkpoint_minutes"]  # seconds between mid-epoch checkpoints
    gap = min(every, EPOCH_SAVE_GAP)  # seconds between end-of-epoch saves
    t_start = t_saved = time.perf_counter()
    best_saved = history.best_epoch  # the epoch whose weights best.pt holds
    for w in watchers:
        w.on_train_begin(state)

    def rng_now() -> dict[str, Any]:
        """The random streams as they stand (with several ranks: every rank's, gathered,
        a collective every rank calls at the same point)."""
        mine = _get_rng(augment, device)
        return mine if group is None else {**mine, "ranks": group.gather(mine)}

    def checkpoint(epoch_done: int, in_epoch: dict[str, Any] | None,
                   rng: dict[str, Any]) -> None:
        """checkpoints/last.pt: everything a resumed run needs to go on exactly as this one."""
        save_checkpoint(Path(run_dir) / RUN_FILES["checkpoint_last"], {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict() if schedule else None,
            "epoch": epoch_done, "step": state.step, "first_epoch": first_epoch,
            "in_epoch": in_epoch, "best_model": best_state,
            "swa": {"model": swa_model.state_dict(), "epochs": swa_epochs} if swa_model
            else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": {**rng, "shuffle": gen.get_state()},
            "history": {"epochs": history.epochs, "best_epoch": history.best_epoch,
                        "best_val_loss": history.best_val_loss,
                        "seconds": history.seconds + time.perf_counter() - t_start},
            "watchers": [w.state_dict() for w in watchers],
            "extra": checkpoint_extra() if checkpoint_extra else {}})

    def save(epoch_done: int, in_epoch: dict[str, Any] | None, rng: dict[str, Any]) -> None:
        """checkpoints/last.pt, and best.pt when the best epoch changed."""
        nonlocal t_saved, best_saved
        checkpoint(epoch_done, in_epoch, rng)
        if best_state is not None and history.best_epoch != best_saved:
            save_checkpoint(Path(run_dir) / RUN_FILES["checkpoint_best"],
                            {"model": best_state, "epoch": history.best_epoch,
                             "val_loss": history.best_val_loss})
            best_saved = history.best_epoch
        t_saved = time.perf_counter()

    label = progress if isinstance(progress, str) else "epoch"  # a string: the bar's label
    with TrainProgress(max_epochs, steps_per_epoch, main_metric, enabled=bool(progress),
                       label=label) as bar:
        start = resumed["epoch"] if resumed else len(history.epochs) + 1
        for epoch in range(start, max_epochs + 1):
            t0 = time.perf_counter()
            state.epoch = epoch
            lr_used = optimizer.param_groups[0]["lr"]  # for one_cycle: at the epoch's first step
            model.train()
            # 1. one gather per epoch; batches below are contiguous views
            gen_before = gen.get_state()  # a mid-epoch checkpoint redraws this epoch's order
            if resumed and resumed["epoch"] == epoch:
                gen.set_state(resumed["gen_before"])
                gen_before, lr_used = resumed["gen_before"], resumed["lr"]
            if not streamed:
                perm = order(gen, bs) if order is not None else torch.randperm(n, generator=gen)
                if group is not None:  # this rank's share of the rows the epoch uses
                    perm = shard_order(perm[:n_used], shard)
                xs, ys = x[perm], y[perm]                       # (N, F), (N,) or (N, k)
            total = torch.zeros((), device=device)
            skip = n_skipped = seen = 0  # batches done (resumed); skipped steps; rows read
            if resumed and resumed["epoch"] == epoch:
                total, skip = torch.tensor(resumed["total"], device=device), resumed["batches"]
                seen = resumed.get("rows", 0)
                n_skipped = resumed.get("scaler_skipped", 0)
                _set_rng(_ranks_rng(resumed["rng"], group), augment, device)  # as they stood
                resumed = None
            if streamed:  # the stream draws the epoch's order from gen, as above
                batches = enumerate(train.epoch(bs, gen, skip=skip, shard=shard),
                                    start=skip + 1)
            else:
                batches = ((k, (xs[i:i + bs], ys[i:i + bs]))  # (B, F), (B, ...): views
                           for k, i in enumerate(range(0, n_here, bs), start=1) if k > skip)
            for k, (xb, yb) in batches:
                if augment is not None:
                    xb = augment(xb)
                if move:
                    xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                if step_watchers:
                    state.batch = (xb, yb)
                    for w in step_watchers:
                        w.before_step(state)
                # 2. zero_grad, forward, loss (+ L1), backward, clip; then step
                grads = partial(_loss_and_grad, net, loss_fn, xb, yb, optimizer, l1,
                                l1_params, clip, params, amp)
                skipped = False
                if lbfgs:  # the line search re-evaluates the loss: step takes a closure
                    loss = optimizer.step(grads)
                elif scaler is None:
                    loss = grads()
                    optimizer.step()
                else:  # fp16: the scaler steps unless the gradients overflowed
                    loss = grads()
                    scaler.step(optimizer)
                    scaler.update()
                    new_scale = scaler.get_scale()  # (a sync with the GPU)
                    skipped, scale = new_scale < scale, new_scale
                if schedule is not None and schedule.per_batch:
                    schedule.step_batch()
                total += loss.detach() * len(xb)
                seen += len(xb)
                if skipped:  # not a step: the weights did not change, the gradients are inf
                    n_skipped += 1
                    for w in step_watchers:
                        w.skipped_step(state)
                else:
                    state.step += 1
                    if step_watchers:
                        state.loss = loss.detach()
                        for w in step_watchers:
                            w.after_step(state)
                stop_now = should_stop is not None and should_stop()
                save_now = run_dir is not None and (stop_now or (
                    k < steps_per_epoch and time.perf_counter() - t_saved >= every))
                if group is not None:  # one decision for every rank, at the same step
                    asked, stop_now, save_now = group.any(bool(state.stop_reason), stop_now,
                                                          save_now)
                    if asked:
                        state.stop_reason = next(r for r in group.gather(state.stop_reason)
                                                 if r)
                if state.stop_reason:
                    break
                bar.step(k)
                if save_now:
                    rng = rng_now()
                    if run_dir is not None:
                        save(epoch - 1, {"epoch": epoch, "batches": k, "total": total.item(),
                                         "gen_before": gen_before, "lr": lr_used, "rng": rng,
                                         "scaler_skipped": n_skipped, "rows": seen}, rng)
                if stop_now:
                    state.request_stop(f"interrupted (Ctrl-C) at epoch {epoch}, step "
                                       f"{state.step}")
                    break
            if state.stop_reason and state.stop_reason.startswith("interrupted"):
                break  # mid-epoch: the epoch is not logged; the checkpoint holds it
            if group is None:
                train_loss = total.item() / n_used
            else:  # every rank's rows (with the padding rows of a short share)
                summed, rows = group.sum(total.item(), float(seen))
                train_loss = summed / rows
            logs: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, **(tag or {})}
            if scaler is not None:  # fp16 steps skipped for overflowing gradients
                logs["scaler_skipped"] = n_skipped
            # 3. validation
            if val is not None:
                out, y_val = (predict_stream(model, val, bs) if isinstance(val, Stream)
                              else (predict_batches(model, val[0]), val[1]))
                logs["val_loss"] = loss_fn(out, y_val).item()
                if val_metrics is not None:
                    logs.update({f"val_{k}": v for k, v in val_metrics(out, y_val).items()})
            logs["lr"] = lr_used
            if schedule is not None and not schedule.per_batch:
                schedule.step_epoch(logs.get("val_loss"))
            logs["seconds"] = time.perf_counter() - t0
            state.logs = logs
            history.epochs.append(logs)
            # 4. files: metrics.jsonl, last.pt, best.pt
            improved = val is not None and math.isfinite(logs["val_loss"]) and (
                history.best_val_loss is None or logs["val_loss"] < history.best_val_loss)
            if improved:
                history.best_epoch, history.best_val_loss = epoch, logs["val_loss"]
                best_state = copy.deepcopy(model.state_dict())
            if swa_first is not None and epoch >= swa_first:
                swa_model = swa_model or AveragedModel(model)
                swa_model.update_parameters(model)
                swa_epochs.append(epoch)
            # 5. watchers and stopping
            if not math.isfinite(logs["train_loss"]):
                state.request_stop(f"the training loss became {logs['train_loss']} at epoch "
                                   f"{epoch}: training cannot recover from non-finite weights")
            state.history = history.epochs  # includes this epoch
            for w in watchers:
                w.on_epoch_end(state)
            save_now = run_dir is not None and (
                bool(state.stop_reason) or epoch in (first_epoch, max_epochs)
                or time.perf_counter() - t_saved >= gap)
            if group is not None:  # rank 0 decides whether to stop, and to save
                state.stop_reason, save_now = group.broadcast((state.stop_reason, save_now))
            if run_dir is not None:  # after the watchers: the checkpoint holds what they saw
                lines.append(json.dumps(json_safe(logs)))  # NaN → null
                atomic_write_text(Path(run_dir) / RUN_FILES["metrics"],
                                  "".join(line + "\n" for line in lines), durable=False)
            if save_now:
                rng = rng_now()
                if run_dir is not None:
                    save(epoch, None, rng)
            bar.epoch(logs)
            if state.stop_reason:
                break
        bar.finish(len(history.epochs))

    state.stop_reason = state.stop_reason or f"reached train.max_epochs ({max_epochs})"
    history.stop_reason = state.stop_reason
    if swa_model is not None:  # the averaged weights replace the best ones
        with torch.no_grad():
            for p, avg in zip(model.parameters(), swa_model.module.parameters(), strict=True):
                p.copy_(avg)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            update_bn((xb for xb, _ in train.epoch(bs, None)) if streamed  # running stats
                      else (xs[i:i + bs] for i in range(0, n_here, bs)), model,
                      device=device if move else None)
        history.stop_reason += ("; stochastic weight averaging over epochs "
                                f"{swa_epochs[0]}–{swa_epochs[-1]}")
    elif best_state is not None:
        model.load_state_dict(best_state)
        history.stop_reason += f"; restored the best weights (epoch {history.best_epoch})"
    for w in watchers:
        w.on_train_end(state)
    history.seconds += time.perf_counter() - t_start
    return history


def _get_rng(augment: Any, device: torch.device) -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "device": rng_of(device),
            "augment": augment.get_rng_state() if hasattr(augment, "get_rng_state") else None}


def _set_rng(rng: dict[str, Any], augment: Any, device: torch.device) -> None:
    torch.set_rng_state(rng["torch"])
    set_rng_of(device, rng.get("device"))
    if rng.get("augment") is not None:
        augment.set_rng_state(rng["augment"])


def _ranks_rng(rng: dict[str, Any], group: distributed.Group | None) -> dict[str, Any]:
    """This rank's random streams from a checkpoint's (rank 0's alone: the top level)."""
    if group is None or len(rng.get("ranks") or ()) != group.world:  # not the same ranks
        return rng
    return rng["ranks"][group.rank]


def _restore(ckpt: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
             schedule: Any, gen: torch.Generator, augment: Any, watchers: list[Watcher],
             history: History, state: TrainState, device: torch.device,
             group: distributed.Group | None = None) -> tuple[Any, Any, dict | None]:
    """Put a checkpoint's state back: weights, optimizer, schedule, every random stream,
    the history and the watchers. Returns (the best weights so far, the SWA average,
    where the checkpoint stopped mid-epoch or None)."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if schedule is not None and ckpt["schedule"] is not None:
        schedule.load_state_dict(ckpt["schedule"])
    gen.set_state(ckpt["rng"]["shuffle"])
    _set_rng(_ranks_rng(ckpt["rng"], group), augment, device)
    h = ckpt["history"]
    history.epochs = list(h["epochs"])
    history.best_epoch, history.best_val_loss = h["best_epoch"], h["best_val_loss"]
    history.seconds = h["seconds"]
    state.step = ckpt["step"]
    state.history = history.epochs
    for w, saved in zip(watchers, ckpt["watchers"], strict=True):
        w.load_state_dict(saved)
    swa_model = None
    if ckpt["swa"] is not None:
        swa_model = AveragedModel(model)
        swa_model.load_state_dict(ckpt["swa"]["model"])
    return ckpt["best_model"], swa_model, ckpt["in_epoch"]


def _loss_and_grad(model, loss_fn, xb, yb, optimizer, l1, l1_params, clip, params,
                   amp: Amp | None) -> torch.Tensor:
    """One step's gradients: zero_grad → forward → loss (+ L1) → backward → clip; returns
    the loss. Called once per step, or as L-BFGS's closure (it may call it several times).

    With ``amp``: the forward pass and the loss under autocast (the L1 term in fp32, on the
    fp32 weights); with its scaler (fp16), backward from the scaled loss, then the gradients
    unscaled in place, so clipping and the step watchers see their true size."""
    optimizer.zero_grad(set_to_none=True)
    if amp is None:
        loss = loss_fn(model(xb), yb)
    else:
        with amp.autocast():
            loss = loss_fn(model(xb), yb)
        loss = loss.float()
    if l1:
        loss = loss + l1 * sum(p.abs().sum() for p in l1_params)
    if amp is None or amp.scaler is None:
        loss.backward()
    else:
        amp.scaler.scale(loss).backward()
        amp.scaler.unscale_(optimizer)
    if clip is not None:
        clip(params)
    return loss


def _clipper(kind: str, max_value: float) -> Callable[[list[torch.Tensor]], None] | None:
    if kind == "value":
        return lambda ps: nn.utils.clip_grad_value_(ps, max_value)
    if kind == "norm":  # each tensor on its own
        return lambda ps: [nn.utils.clip_grad_norm_(p, max_value) for p in ps]
    if kind == "global_norm":  # all tensors as one vector
        return lambda ps: nn.utils.clip_grad_norm_(ps, max_value)
    return None

