"""The Python API: one function per command, each a few lines over the one pipeline
(``nnrecipe.pipeline``):

    prepare (the modality loads, profiles, splits, plans, fits its encoder, builds)
      → train under the doctor → score on the test split → save the run directory

The same path serves tables, images, volumes, sound, text, time series and labelled
sequences; ``modality="auto"`` finds which from the source.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pandas as pd

from . import runs
from .doctor.findings import sort_findings
from .pipeline import crossval, experiments
from .pipeline.prepare import prepare
from .pipeline.run import (
    Run,
    follow,
    load_run,
    new_run_dir,
    resume_run,
    train_and_save,
    write_inputs,
)
from .pipeline.study import search_and_retrain
from .pipeline.supervise import run_range_test, train_with_doctor
from .plan import Plan
from .report import rebuild as rebuild_report
from .report.compare import write_compare
from .runs import RUN_FILES
from .timing import recording
from .train import distributed, make_loss
from .train.devices import training_device
from .train.lr_find import LRFindResult
from .train.mlflow_tracking import (
    MlflowWatcher,
    log_cv,
    log_finished_run,
    log_tune,
    open_experiment,
)
from .train.tensorboard import TensorBoardWatcher, require_tensorboard

__all__ = ["Run", "compare", "cv", "diagnose", "experiment", "find_lr", "fit", "plan", "load_run",
           "report", "resume", "tune"]

Source = str | Path | pd.DataFrame


def plan(data: Source, target: str | None = None, *, task: str = "auto",
         overrides: dict | None = None, test: Source | None = None,
         valid: Source | None = None, modality: str = "auto") -> Plan:
    """The plan nnrecipe would train with, every decision with its reason; trains nothing."""
    return prepare(data, target, task=task, overrides=overrides, test=test, valid=valid,
                   modality=modality).plan


def fit(data: Source, target: str | None = None, *, task: str = "auto",
        overrides: dict | None = None, test: Source | None = None,
        valid: Source | None = None, out: str | Path | None = None, progress: bool = False,
        watchers: list | None = None, auto_fix: bool = False, max_repairs: int = 3,
        preflight: bool = True, tensorboard: bool = False, modality: str = "auto",
        pretrained: str | Path | None = None, mlflow: bool | str = False) -> Run:
    """Profile, plan, train (watched by the doctor), evaluate and save a network for
    ``target``; returns the Run. ``auto_fix``: repair error-level symptoms and go on.
    ``tensorboard``: also log to RUN/tensorboard/ (needs the ``tensorboard`` package).
    ``mlflow``: also log the run to MLflow (True: MLflow's own tracking URI; a string: that
    URI): the plan as parameters, each epoch's metrics, the test metrics, the findings, the
    report and the model (needs the ``mlflow`` extra).
    ``modality``: auto (a folder of class subfolders: images or WAV sound; an .npz: images
    or volumes; a table with ``series.horizon`` set: a forecast), or one of table, image,
    volume, audio, text, series, sequence. ``pretrained``: a finished convnet run (or its
    model.pt) to start from; the plan's ``transfer.*`` keys say what is kept, frozen and
    trained.

    Every check on the input happens before the run directory is created, so bad input
    leaves nothing behind."""
    _check_trackers(tensorboard, mlflow)
    with recording():  # the stage timings (environment.json)
        prep = prepare(data, target, task=task, overrides=overrides, test=test, valid=valid,
                       modality=modality, pretrained=pretrained)
        group = distributed.join(training_device(prep.plan).type)
        if group is not None and not group.main:  # torchrun: rank 0 writes the run
            return follow(prep, auto_fix=auto_fix, max_repairs=max_repairs,
                          preflight=preflight)
        call = {"data": _path(data), "target": target, "task": task, "modality": modality,
                "overrides": prep.overrides, "test": _path(test), "valid": _path(valid),
                "pretrained": _path(pretrained), "auto_fix": auto_fix,
                "max_repairs": max_repairs, "preflight": preflight,
                "tensorboard": tensorboard, "mlflow": mlflow}
        with new_run_dir(out, prep.name) as run_dir, \
                _trackers(run_dir, call, watchers) as (all_watchers, tracker):
            run = train_and_save(prep, run_dir, progress, all_watchers, auto_fix=auto_fix,
                                 max_repairs=max_repairs, preflight=preflight, call=call)
            if tracker is not None:
                log_finished_run(run, watcher=tracker)
            return run


def _check_trackers(tensorboard: bool, mlflow: bool | str) -> None:
    """A missing package or an unusable MLflow store stops here, before any work."""
    if tensorboard:
        require_tensorboard()
    if mlflow:
        open_experiment(_mlflow_uri(mlflow))


def _mlflow_uri(mlflow: bool | str) -> str | None:
    return None if mlflow is True else str(mlflow)


@contextmanager
def _trackers(run_dir: Path, call: dict[str, Any], watchers: list | None
              ) -> Iterator[tuple[list, MlflowWatcher | None]]:
    """The caller's watchers plus the loggers ``call`` asks for (TensorBoard, MLflow): the
    same list, in the same order, when a run is resumed (each keeps its state in the
    checkpoint). An MLflow run ends FAILED or KILLED when training does not finish."""
    out = list(watchers or [])
    if call.get("tensorboard"):
        out.append(TensorBoardWatcher(run_dir / RUN_FILES["tensorboard"]))
    tracker = None
    if call.get("mlflow"):
        tracker = MlflowWatcher(_mlflow_uri(call["mlflow"]), run_name=run_dir.name)
        out.append(tracker)
    with tracker if tracker is not None else nullcontext():
        yield out, tracker


def resume(run_dir: str | Path, data: Source | None = None, *, progress: bool = False,
           watchers: list | None = None) -> Run:
    """Go on with a run that was killed, interrupted (Ctrl-C) or stopped by a full disk,
    from its checkpoints/last.pt: the model, optimizer, schedule, every random stream, the
    doctor's and early stopping's state and the history are restored, so on the same
    machine the result equals the uninterrupted run's. ``data``: the same training data,
    needed only when the run was made from a DataFrame."""
    call = (runs.read_run_files(run_dir, require=("status",)).status or {}).get("call") or {}
    _check_trackers(call.get("tensorboard", False), call.get("mlflow", False))
    with recording(), _trackers(Path(run_dir), call, watchers) as (all_watchers, tracker):
        run = resume_run(run_dir, data, progress=progress, watchers=all_watchers)
        if tracker is not None:
            log_finished_run(run, watcher=tracker)
        return run


def _path(source: Any) -> str | None:
    """A source as status.json records it for --resume: an absolute path, a packaged
    network's name as given; data in memory (a DataFrame) is not recorded."""
    if source is None or isinstance(source, pd.DataFrame):
        return None
    p = Path(source)
    return str(p.resolve()) if p.exists() else str(source)


def diagnose(data: Source, target: str | None = None, *, task: str = "auto",
             overrides: dict | None = None, test: Source | None = None,
             valid: Source | None = None, out: str | Path | None = None,
             probe_epochs: int = 5, progress: bool = False, preflight: bool = True,
             modality: str = "auto") -> Run:
    """The doctor on its own: data and configuration checks, pre-flight, and a short probe
    training (``probe_epochs``) under the live monitors; nothing is trained to completion.
    Writes plan.yaml, profile.json, metrics.jsonl and findings.json. ``modality``: as in
    :func:`fit`."""
    prep = prepare(data, target, task=task, overrides={
        **(overrides or {}), "train.max_epochs": probe_epochs}, test=test, valid=valid,
        modality=modality)
    with new_run_dir(out, prep.name) as run_dir:
        inputs = write_inputs(prep, run_dir)
        outcome = train_with_doctor(prep, inputs, run_dir=run_dir, progress=progress,
                                    watchers=[], auto_fix=False, max_repairs=0,
                                    preflight=preflight)
        findings = sort_findings(outcome.findings)
        runs.atomic_write_json(run_dir / RUN_FILES["findings"], [f.to_dict() for f in findings])
        return Run(outcome.plan, prep.profile, prep.preprocessor, outcome.model,
                   outcome.history, path=run_dir, findings=findings)


def find_lr(data: Source, target: str | None = None, *, task: str = "auto",
            overrides: dict | None = None, out: str | Path | None = None,
            modality: str = "auto") -> tuple[LRFindResult, Path]:
    """The LR range test for the network nnrecipe plans for this data (trains nothing to
    keep). Writes plan.yaml, profile.json, lr_find.json and lr_find.png; returns the result
    and the run directory. ``modality``: as in :func:`fit`."""
    prep = prepare(data, target, task=task, overrides=overrides, modality=modality)
    with new_run_dir(out, prep.name) as run_dir:
        inputs = write_inputs(prep, run_dir)
        result = run_range_test(prep.plan, prep.model, make_loss(prep.plan["loss.name"]),
                                inputs.train, run_dir)
        return result, run_dir


def cv(data: Source, target: str | None = None, *, folds: int = 5, task: str = "auto",
       overrides: dict | None = None, out: str | Path | None = None,
       progress: bool = False, modality: str = "auto", mlflow: bool | str = False
       ) -> dict[str, Any]:
    """K-fold cross-validation: each fold held out once as the test split of a full run
    (``fold_<k>/`` in the run directory; a time series: expanding windows, each fold a
    later period); ``cv.json`` holds every fold's test metrics and their mean ± std.
    Returns that content."""
    _check_trackers(False, mlflow)
    result = crossval.cross_validate(data, target, folds=folds, task=task,
                                     overrides=overrides, out=out, progress=progress,
                                     modality=modality)
    if mlflow:  # a parent run with the mean ± std, a nested run per fold
        log_cv(result, tracking_uri=_mlflow_uri(mlflow))
    return result


def experiment(data: Source, target: str | None = None, *, hypothesis: str,
               changes: dict[str, Any], expect: str = "better", metric: str | None = None,
               repeats: int = 5, task: str = "auto", overrides: dict | None = None,
               out: str | Path | None = None, progress: bool = False,
               modality: str = "auto", journal: str | Path | None = None) -> dict[str, Any]:
    """Test a hypothesis: train the baseline plan and the plan with ``changes`` on the same
    split and seed, ``repeats`` times (seeds seed, seed+1, ...), compare the test ``metric``
    pairwise, and give a verdict. Appends the experiment to the journal ``journal`` (a
    JSON-lines file; default ``runs/experiments.jsonl`` in the current directory) and
    returns the entry (with ``run_dir``, and ``journal``: the file it was appended to)."""
    return experiments.run_experiment(
        data, target, hypothesis=hypothesis, changes=changes, expect=expect, metric=metric,
        repeats=repeats, task=task, overrides=overrides, out=out, progress=progress,
        modality=modality, journal=journal)


def tune(data: Source, target: str | None = None, *, trials: int = 20,
         timeout: float | None = None, storage: str | None = None, study: str | None = None,
         workers: int = 1, space: list[str] | None = None, task: str = "auto",
         overrides: dict | None = None, out: str | Path | None = None, progress: bool = False,
         modality: str = "auto", mlflow: bool | str = False) -> dict[str, Any]:
    """Search the plan with Optuna (TPE sampler, median pruner on the per-epoch validation
    loss), then retrain the best plan like ``fit`` in the run directory.

    ``space``: ``["key=low:high", "key=a,b,c", ...]`` narrows or adds searched keys; keys
    in ``overrides`` are fixed. ``storage``: an Optuna URL or a journal file path (default:
    ``study.journal`` in the run directory); the same ``study`` name and storage resume a
    study. ``workers``: processes sharing the study. Writes ``tune.json`` (every trial)
    and returns its content with ``path`` and the retrained ``run``."""
    _check_trackers(False, mlflow)
    result = search_and_retrain(data, target, trials=trials, timeout=timeout, storage=storage,
                                study=study, workers=workers, space=space, task=task,
                                overrides=overrides, out=out, progress=progress,
                                modality=modality)
    if mlflow:  # the retrained best plan as the parent run, a nested run per trial
        log_tune(result, tracking_uri=_mlflow_uri(mlflow))
    return result


def report(run_dir: str | Path) -> Path:
    """Rebuild report.html and summary.md of a finished run directory (``train``,
    ``tune``, a cv fold) or of a cross-validation directory; returns the page's path."""
    return rebuild_report(run_dir)


def compare(run_dirs: list[str | Path], out: str | Path = "compare.html",
            diff: tuple[str | Path, str | Path] | None = None) -> Path:
    """A leaderboard page of finished runs (``out``): one row per run, the learning
    curves overlaid, and the plan differences of two runs (``diff``, default the first
    two). Returns ``out``."""
    return write_compare(run_dirs, Path(out), diff)
