"""``nnrecipe tune``: an Optuna study over the plan, then the best plan retrained.

    1. prepare the data once (profile, split) and check the search space before any work
    2. the LR range test on the default plan centres the learning-rate range
    3. the study: the default plan is enqueued as the first trial of a new study (so the
       search can only improve on it); each trial re-plans, trains in memory and reports
       its validation loss per epoch to the median pruner
    4. ``workers`` processes share the study through its storage (Optuna's journal file or
       a database URL): no scheduler of our own
    5. the best trial's plan is retrained like ``train`` (doctor, evaluation, files) in the
       run directory, and ``tune.json`` lists every trial
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import runs
from ..errors import PlanError, RunError
from ..evaluate import MAIN_METRIC
from ..lazy import lazy
from ..modalities import Prepared
from ..plan import validate_overrides
from ..report import rebuild as rebuild_report
from ..runs import RUN_FILES
from ..train import fit as train_fit
from ..train import make_loss
from ..tune.search import (
    WORKER_ATTR,
    Dim,
    PruneOnValLoss,
    check_storage,
    default_space,
    finished,
    merge_space,
    open_study,
    parse_space,
    storage_for,
    study_summary,
    worker_record,
)
from .prepare import prepare
from .run import new_run_dir, train_and_save
from .supervise import run_range_test

optuna = lazy("optuna")

__all__ = ["search_and_retrain"]

WORKER_SEED_STRIDE = 1000  # each worker's sampler gets its own seed, or they'd propose alike


@dataclass(frozen=True)
class _Job:
    """What a worker process needs to join the study (picklable)."""

    data: Any
    target: str | None
    task: str
    modality: str
    fixed: dict[str, Any]
    dims: dict[str, Dim]
    storage: str  # a journal file path or a database URL
    study: str
    seed: int
    timeout: float | None
    threads: int


def search_and_retrain(data: Any, target: str | None, *, trials: int = 20,
                       timeout: float | None = None, storage: str | None = None,
                       study: str | None = None, workers: int = 1,
                       space: list[str] | None = None, task: str = "auto",
                       overrides: dict | None = None, out: str | Path | None = None,
                       progress: bool = False, modality: str = "auto") -> dict[str, Any]:
    _check_counts(trials, workers, timeout)
    fixed = validate_overrides(overrides)
    searched = parse_space(space)
    base = prepare(data, target, task=task, overrides=fixed, modality=modality)
    target = base.profile.target
    network = base.modality.search_space(base.plan)
    if not merge_space(default_space(base.plan, None, network=network), searched, fixed):
        raise PlanError("nothing left to search: every searched key is fixed with --set; "
                        "drop a --set or add a --space")
    name = study or base.name
    check_storage(storage)  # before the run directory: a bad --storage leaves nothing
    with new_run_dir(out, f"{base.name}-tune") as run_dir:
        center, rule = _lr_center(base, fixed, searched, run_dir)
        dims = merge_space(default_space(base.plan, center, rule, network), searched, fixed)
        store, store_name = storage_for(storage, run_dir)
        the_study = open_study(store, name, fixed.get("seed", 0))
        first = _claim_study(the_study, base, target, dims)
        # the workers get the storage as given (a URL with its password), not the shown name
        job = _Job(data, target, task, base.profile.modality, fixed, dims,
                   storage or store_name, name, fixed.get("seed", 0), timeout,
                   torch.get_num_threads())
        _run_workers(job, the_study, trials, workers, progress)
        summary = study_summary(the_study)
        if summary["best"] is None:
            raise RunError(f"no trial of study '{name}' finished (every trial was pruned or "
                           "failed); widen the space, raise --trials or train.max_epochs")
        best = base.modality.replan(base, validate_overrides(
            {**fixed, **summary["best"]["params"]}))
        run = train_and_save(best, run_dir, progress, [], auto_fix=False, max_repairs=0,
                             preflight=True)
        result = {"study": name, "storage": store_name, "objective": "val_loss",
                  "direction": "minimize", "data": base.name, "target": target,
                  "space": {k: d.to_dict() for k, d in dims.items()}, "fixed": fixed,
                  "default_trial": first, **summary,
                  "retrained": {"metrics": run.evaluation["metrics"],
                                "baseline": run.evaluation["baseline"],
                                "main_metric": run.evaluation["main_metric"]}}
        runs.atomic_write_json(run_dir / RUN_FILES["tune"], result)
        rebuild_report(run_dir)  # again, now with the Search section (every trial)
        return {**result, "path": str(run_dir), "run": run}


def _check_counts(trials: int, workers: int, timeout: float | None) -> None:
    problems = []
    if trials < 1:
        problems.append(f"--trials must be at least 1, got {trials}")
    if workers < 1:
        problems.append(f"--workers must be at least 1, got {workers}")
    if timeout is not None and timeout <= 0:
        problems.append(f"--timeout must be > 0 seconds, got {timeout}")
    if problems:
        raise PlanError("; ".join(problems))


def _lr_center(base: Prepared, fixed: dict, searched: dict, run_dir: Path
               ) -> tuple[float | None, str]:
    """The range test's suggestion, when the learning rate is searched around it."""
    if "optimizer.lr" in searched or fixed.get("optimizer.lr", "auto") != "auto":
        return None, ""
    inputs = base.modality.inputs(base)
    result = run_range_test(base.plan, base.model, make_loss(base.plan["loss.name"]),
                            inputs.train, run_dir)
    return result.suggestion, result.rule


def _claim_study(study: optuna.Study, base: Prepared, target: str | None, dims: dict[str, Dim]
                 ) -> int | None:
    """Mark a new study with its data; enqueue the default plan as its first trial.
    Returns that trial's number (None when resuming a study)."""
    attrs = study.user_attrs
    if attrs.get("target", target) != target or attrs.get("data", base.name) != base.name:
        raise PlanError(f"study '{study.study_name}' was tuned on {attrs['data']} for target "
                        f"'{attrs['target']}'; give another --study name")
    if study.get_trials(deepcopy=False):
        return None
    study.set_user_attr("target", target)
    study.set_user_attr("data", base.name)
    default = {k: base.plan[k] for k, d in dims.items() if d.contains(base.plan[k])}
    study.enqueue_trial(default)
    return 0


def _objective(trial: optuna.Trial, base: Prepared, job: _Job, cache: dict) -> float:
    """Train one sampled plan in memory; the best validation loss it reached."""
    trial.set_user_attr(WORKER_ATTR, worker_record())  # first: a resume can tell it was killed
    params = {key: dim.suggest(trial) for key, dim in job.dims.items()}
    try:
        prep = base.modality.replan(base, validate_overrides({**job.fixed, **params}))
    except PlanError as e:  # a combination the rules refuse: the trial fails, the study goes on
        trial.set_user_attr("pruned_because", str(e))
        raise
    if id(prep.preprocessor) not in cache:
        cache[id(prep.preprocessor)] = prep.modality.inputs(prep)
    inputs = cache[id(prep.preprocessor)]
    task = prep.plan["task"]
    history = train_fit(prep.model, prep.plan, inputs.train_data, inputs.val_data,
                        loss_fn=make_loss(prep.plan["loss.name"]),
                        val_metrics=inputs.val_metrics, main_metric=MAIN_METRIC[task],
                        watchers=[PruneOnValLoss(trial)], run_dir=None, progress=False,
                        augment=prep.augment, order=prep.order)
    best = min((e for e in history.epochs if math.isfinite(e["val_loss"])),
               key=lambda e: e["val_loss"], default=None)
    if best is None:
        raise optuna.TrialPruned("no finite validation loss")
    trial.set_user_attr("best_epoch", best["epoch"])
    trial.set_user_attr(f"val_{MAIN_METRIC[task]}", best.get(f"val_{MAIN_METRIC[task]}"))
    return float(best["val_loss"])


def _work(job: _Job, n_trials: int, worker: int, callbacks: list | None = None) -> None:
    """One worker: join the study and run ``n_trials`` trials (or until the timeout)."""
    torch.set_num_threads(job.threads)
    base = prepare(job.data, job.target, task=job.task, overrides=job.fixed,
                   modality=job.modality)
    store, _ = storage_for(job.storage, Path("."))
    study = open_study(store, job.study, job.seed)
    # a fresh seed per worker and per resumption, so no two samplers propose alike
    study.sampler = optuna.samplers.TPESampler(
        seed=job.seed + WORKER_SEED_STRIDE * worker + len(study.get_trials(deepcopy=False)))
    cache: dict = {}
    study.optimize(lambda t: _objective(t, base, job, cache), n_trials=n_trials,
                   timeout=job.timeout, catch=(PlanError,), callbacks=callbacks or [],
                   gc_after_trial=False)


def _run_workers(job: _Job, study: optuna.Study, trials: int, workers: int,
                 progress: bool) -> None:
    """Split ``trials`` over ``workers`` processes (in this process when there is one) and
    show the study's progress."""
    shares = [trials // workers + (i < trials % workers) for i in range(workers)]
    shares = [n for n in shares if n > 0]
    done0 = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
    with _TrialProgress(trials, enabled=progress) as bar:
        if len(shares) == 1:
            _work(job, shares[0], 0, callbacks=[lambda s, t: bar.update(s, done0)])
            return
        # fresh interpreters (`python -m nnrecipe.pipeline.study`), not multiprocessing: a spawned
        # child re-imports the caller's main script, and fork does not suit torch's threads
        with tempfile.TemporaryDirectory(prefix="nnrecipe-tune-") as tmp:
            job_file = Path(tmp) / "job.pickle"  # transient hand-over, never in the run dir
            job_file.write_bytes(pickle.dumps(job))
            procs = [subprocess.Popen([sys.executable, "-m", "nnrecipe.pipeline.study",
                                       str(job_file), str(n), str(i)])
                     for i, n in enumerate(shares)]
            while any(p.poll() is None for p in procs):
                time.sleep(0.5)
                bar.update(study, done0)
            bar.update(study, done0)
    failed = [p.returncode for p in procs if p.returncode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} tuning worker(s) failed (exit codes {failed}); "
                           "their error is printed above")


class _TrialProgress:
    """A bar of finished trials with the best validation loss so far."""

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled
        if enabled:
            self._p = Progress(TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(),
                               TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                               console=Console(stderr=True))
            self._task = self._p.add_task("trials", total=total, stats="")

    def __enter__(self) -> _TrialProgress:
        if self.enabled:
            self._p.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self._p.stop()

    def update(self, study: optuna.Study, done0: int) -> None:
        if not self.enabled:
            return
        trials = study.get_trials(deepcopy=False)
        ended = [t for t in trials if t.state.is_finished()]
        n_pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in ended)
        values = [t.value for t in finished(study) if t.value is not None]
        stats = f"best val loss {min(values):.4g}" if values else ""
        self._p.update(self._task, completed=max(0, len(ended) - done0),
                       stats=f"{stats}  pruned {n_pruned}")


if __name__ == "__main__":  # a worker process started by _run_workers
    _job_path, _n, _worker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    _work(pickle.loads(Path(_job_path).read_bytes()), _n, _worker)
