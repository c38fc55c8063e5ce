"""Tracking in MLflow: a watcher that logs every epoch's numbers live, and functions that log
a finished run directory (``train``), a cross-validation (``cv``) or a search (``tune``).

One MLflow run per nnrecipe run directory holds:

* parameters: every plan decision and derived fact, ``key → value`` (a value longer than
  MLflow's limit is cut to it, ends with "…" and is named in the tag
  ``nnrecipe.truncated_params``; the artifact plan.yaml keeps it whole, with every
  decision's reason and rule);
* metrics per epoch (step = epoch): every number of the epoch's record (metrics.jsonl):
  ``train_loss``, ``val_loss``, ``val_<metric>``, ``lr``, ``seconds``;
* metrics at the end: ``test_<metric>`` and ``baseline_<metric>`` (evaluation.json);
* tags: ``nnrecipe.*`` (status, task, modality, run directory, stop reason, best epoch, the
  findings' count, per severity too, and their codes); summary.md as the run's description;
* artifacts: plan.yaml, findings.json, evaluation.json, metrics.jsonl, report.html,
  summary.md, model.pt and the other files of the run directory (not the checkpoints).

``cv``: a parent run (the folds' mean, std, min and max of every test metric, cv.json and
the cv report) with one nested run per fold. ``tune``: the retrained best plan's run as the
parent (with tune.json) and one nested run per trial (its sampled values, its per-epoch
validation losses, its state).

The tracking URI: the one given, else MLflow's own (``MLFLOW_TRACKING_URI``, else its
default, ``sqlite:///mlflow.db`` in the current directory since MLflow 3.7). The experiment:
the one given, else ``MLFLOW_EXPERIMENT_NAME``, else ``nnrecipe``. Runs are written with
:class:`mlflow.MlflowClient` and explicit run ids: no active run of the caller's is touched.

MLflow (``mlflow-skinny`` is enough) is an optional extra (``pip install 'nnrecipe[mlflow]'``);
:func:`require_mlflow` says so before any work when it is missing.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import NnrecipeError
from ..runs import RUN_FILES
from .callbacks import TrainState, Watcher

__all__ = ["DEFAULT_EXPERIMENT", "MlflowTrackingError", "MlflowWatcher", "log_cv",
           "log_finished_run", "log_tune", "open_experiment", "plan_params", "require_mlflow"]

INSTALL_HINT = "pip install 'nnrecipe[mlflow]'"
DEFAULT_EXPERIMENT = "nnrecipe"
# the files of a run directory logged as artifacts, when present (not the checkpoints)
ARTIFACTS = ("plan", "findings", "evaluation", "metrics", "report", "summary", "model",
             "profile", "preprocess", "repairs", "monitor", "environment", "status",
             "lr_find", "lr_find_png", "mistakes", "tune", "cv")
PARAM_LIMIT = 500  # MLflow's limit on a parameter's value before 2.x raised it; read if known
TAG_LIMIT = 5000  # the same for a tag's value
PARAMS_PER_CALL = 100  # MLflow's batch limits: parameters and tags, metrics
METRICS_PER_CALL = 1000
RUN_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
TRIAL_STATUS = {"COMPLETE": "FINISHED", "FAIL": "FAILED"}  # pruned, running, waiting: KILLED


class MlflowTrackingError(NnrecipeError):
    """MLflow is not installed, or its tracking store cannot be used."""


def require_mlflow() -> Any:
    """The ``mlflow`` module, or a user-facing error naming the missing package."""
    try:
        import mlflow
    except ImportError as e:
        raise MlflowTrackingError(f"--mlflow needs the mlflow package, which is not installed "
                                  f"({e}); install it with {INSTALL_HINT}, or drop "
                                  "--mlflow") from e
    return mlflow


def open_experiment(tracking_uri: str | None = None, experiment: str | None = None) -> str:
    """The id of ``experiment`` in the store at ``tracking_uri`` (created when new). Call it
    before any work to stop on a store that cannot be used."""
    client = _client(tracking_uri)
    return _experiment_id(client, experiment)


def plan_params(plan: Mapping[str, Any], limit: int | None = None
                ) -> tuple[dict[str, str], list[str]]:
    """A plan (plan.yaml's layout: ``decisions`` and ``derived``, each ``{key: {value,
    reason, rule}}``) as MLflow parameters: ``{key: value as text}``, and the keys whose
    text was cut to ``limit`` characters (default: MLflow's limit)."""
    values = {k: d["value"] for part in ("derived", "decisions")
              for k, d in (plan.get(part) or {}).items()}  # decisions win, as in Plan[key]
    return _texts(values, limit or _limit("MAX_PARAM_VAL_LENGTH", PARAM_LIMIT))


class MlflowWatcher(Watcher):
    """Log each epoch's numbers to an MLflow run, live (step = epoch).

    The run is created when training begins (named ``run_name``, under ``parent_run_id``
    when given) and stays open across the doctor's repairs; :func:`log_finished_run` with
    ``watcher=`` adds the plan, test metrics, findings and files, and ends it. Used as a
    context manager, it ends the run as FAILED (KILLED on Ctrl-C) when an exception leaves
    the block first. Its checkpointed state is the run id, so a resumed training goes on
    in the same MLflow run."""

    def __init__(self, tracking_uri: str | None = None, *, experiment: str | None = None,
                 run_name: str | None = None, tags: Mapping[str, Any] | None = None,
                 parent_run_id: str | None = None):
        self.client = _client(tracking_uri)
        self.experiment_id = _experiment_id(self.client, experiment)
        self.run_name, self.tags, self.parent_run_id = run_name, dict(tags or {}), parent_run_id
        self._run_id: str | None = None
        self._open = False  # created (or reopened) and not ended yet
        self._restored = False  # the id came from a checkpoint: reopen it when training begins

    @property
    def run_id(self) -> str:
        """The MLflow run's id (the run is created on first use)."""
        return self._run_id if self._run_id is not None and not self._restored else self.start()

    def start(self) -> str:
        """Create the run, or reopen the one a restored checkpoint named; its id."""
        if self._restored and self._run_id is not None and _reopen(self.client, self._run_id):
            self._open = True
        elif self._run_id is None or self._restored:
            self._run_id = _create_run(self.client, self.experiment_id, self.run_name,
                                       self.tags, self.parent_run_id)
            self._open = True
        self._restored = False
        return self._run_id

    def end(self, status: str = "FINISHED") -> None:
        """End the run (FINISHED, FAILED or KILLED); nothing when it is not open."""
        if self._open and self._run_id is not None:
            self.client.set_terminated(self._run_id, status)
            self._open = False

    def on_train_begin(self, state: TrainState) -> None:
        self.start()

    def on_epoch_end(self, state: TrainState) -> None:
        _log_batch(self.client, self.run_id, metrics=[(state.epoch, state.logs)])

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self._run_id} if self._run_id is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("run_id"):
            self._run_id, self._open, self._restored = str(state["run_id"]), False, True

    def __enter__(self) -> MlflowWatcher:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: Any) -> None:
        if kind is not None:
            self.end("KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")


def log_finished_run(run: Any, *, watcher: MlflowWatcher | None = None,
                     tracking_uri: str | None = None, experiment: str | None = None,
                     run_name: str | None = None, tags: Mapping[str, Any] | None = None,
                     parent_run_id: str | None = None) -> str:
    """Log a finished run (a ``Run`` or its directory) and end its MLflow run; returns the
    MLflow run id. ``watcher``: the :class:`MlflowWatcher` that logged its epochs (its run
    gets the rest); without one, a new run (named ``run_name``, default the directory's
    name) gets everything, the epochs read back from metrics.jsonl."""
    run_dir = Path(getattr(run, "path", None) or run)
    files = runs.read_run_files(run_dir, require=("plan",))
    if watcher is not None:
        client, run_id = watcher.client, watcher.run_id
    else:
        client = _client(tracking_uri)
        run_id = _create_run(client, _experiment_id(client, experiment),
                             run_name or run_dir.name, tags, parent_run_id)
    status = _finish(client, run_id, lambda: _log_run_files(
        client, run_id, files, epochs=watcher is None, tags=tags if watcher else None))
    if watcher is not None:
        watcher.end(status)
    return run_id


def log_cv(result: Mapping[str, Any] | str | Path, *, tracking_uri: str | None = None,
           experiment: str | None = None, run_name: str | None = None,
           tags: Mapping[str, Any] | None = None) -> str:
    """Log a cross-validation (what ``cv`` returns, or its directory): a parent run with the
    folds' summary and one nested run per fold (a full run each). Returns the parent's id."""
    cv_dir = Path(result["path"]) if isinstance(result, Mapping) else Path(result)
    files = runs.read_run_files(cv_dir, require=("cv",))
    cv = files.cv or {}
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment)
    parent = _create_run(client, experiment_id, run_name or cv_dir.name,
                         {**(tags or {}), "nnrecipe.kind": "cv",
                          "nnrecipe.run_dir": str(cv_dir.resolve())}, None)

    def log_all() -> str:
        params, _ = _texts({k: cv.get(k) for k in ("folds", "seed", "task", "modality")})
        summary = {f"{m}_{stat}": v for m, stats in (cv.get("summary") or {}).items()
                   for stat, v in stats.items()}
        summary |= {f"baseline_{m}_{stat}": v
                    for m, stats in (cv.get("baseline_summary") or {}).items()
                    for stat, v in stats.items()}
        _log_batch(client, parent, params=params, metrics=[(0, summary)])
        _log_artifacts(client, parent, cv_dir)
        for fold in cv.get("per_fold", []):
            name = RUN_FILES["fold"].format(k=fold["fold"])
            log_finished_run(cv_dir / name, tracking_uri=tracking_uri, experiment=experiment,
                             run_name=name, tags={**(tags or {}), "nnrecipe.kind": "cv_fold"},
                             parent_run_id=parent)
        return "FINISHED"

    _finish(client, parent, log_all)
    return parent


def log_tune(result: Mapping[str, Any] | str | Path, *, tracking_uri: str | None = None,
             experiment: str | None = None, run_name: str | None = None,
             tags: Mapping[str, Any] | None = None) -> str:
    """Log a search (what ``tune`` returns, or its directory): the retrained best plan's run
    as the parent, with the study's facts, and one nested run per trial. Returns the
    parent's id."""
    tune_dir = Path(result["path"]) if isinstance(result, Mapping) else Path(result)
    files = runs.read_run_files(tune_dir, require=("tune", "plan"))
    tune = files.tune or {}
    best = tune.get("best") or {}
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment)
    study_tags = {"nnrecipe.kind": "tune", "nnrecipe.tune.study": tune.get("study"),
                  "nnrecipe.tune.objective": tune.get("objective"),
                  "nnrecipe.tune.best_trial": best.get("number"),
                  **{f"nnrecipe.tune.{k}": tune.get(k)
                     for k in ("n_trials", "n_complete", "n_pruned")}}
    parent = _create_run(client, experiment_id, run_name or tune_dir.name,
                         {**(tags or {}), **study_tags}, None)

    def log_all() -> str:
        status = _log_run_files(client, parent, files, epochs=True)
        _log_batch(client, parent, metrics=[(0, {"tune_best_val_loss": best.get("value")})])
        for trial in tune.get("trials", []):
            _log_trial(client, experiment_id, parent, trial, tags)
        return status

    _finish(client, parent, log_all)
    return parent


# ---------------------------------------------------------------------------------------------


def _client(tracking_uri: str | None) -> Any:
    """An MlflowClient on ``tracking_uri`` (None: MLflow's own choice); a store that cannot
    be opened is one line for the user."""
    require_mlflow()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient(tracking_uri=tracking_uri)
    except (MlflowException, ImportError, OSError, ValueError) as e:
        raise MlflowTrackingError(f"cannot use the MLflow tracking URI "
                                  f"{tracking_uri or '(MLflow default)'}: {_first_line(e)}; "
                                  "give another with --mlflow URI (e.g. "
                                  "sqlite:///mlflow.db)") from e


def _experiment_id(client: Any, name: str | None) -> str:
    from mlflow.environment_variables import MLFLOW_EXPERIMENT_NAME
    from mlflow.exceptions import MlflowException

    name = name or MLFLOW_EXPERIMENT_NAME.get() or DEFAULT_EXPERIMENT
    try:
        found = client.get_experiment_by_name(name)
        if found is None:
            with _caller_random_kept():  # MLflow may draw a digit of the id from `random`
                return client.create_experiment(name)
        if found.lifecycle_stage == "deleted":
            raise MlflowTrackingError(f"the MLflow experiment '{name}' is deleted; restore it "
                                      "(mlflow experiments restore) or name another")
        return found.experiment_id
    except (MlflowException, ImportError, OSError) as e:
        raise MlflowTrackingError(f"cannot open the MLflow experiment '{name}' at "
                                  f"{client.tracking_uri}: {_first_line(e)}") from e


def _create_run(client: Any, experiment_id: str, run_name: str | None,
                tags: Mapping[str, Any] | None, parent_run_id: str | None) -> str:
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    given = {k: v for k, v in (tags or {}).items() if v not in (None, "")}
    if parent_run_id:
        given[MLFLOW_PARENT_RUN_ID] = parent_run_id
    all_tags, _ = _texts(given, _limit("MAX_TAG_VAL_LENGTH", TAG_LIMIT))
    with _caller_random_kept():  # a name of our own, too: MLflow draws random ones there
        return client.create_run(experiment_id, tags=all_tags,
                                 run_name=run_name or "nnrecipe").info.run_id


@contextmanager
def _caller_random_kept() -> Iterator[None]:
    """Python's global ``random`` stream as it was (MLflow draws names and ids from it)."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


def _reopen(client: Any, run_id: str) -> bool:
    """Mark a run RUNNING again (a resumed training); False when this store lacks it."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        return False
    client.update_run(run_id, status="RUNNING")
    return True


def _finish(client: Any, run_id: str, log: Any) -> str:
    """Run ``log`` (it returns the run's final status) and end the run with that status, or
    as FAILED (KILLED on Ctrl-C) when logging stops with an exception."""
    try:
        status = log()
    except BaseException as e:
        client.set_terminated(run_id, "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    client.set_terminated(run_id, status)
    return status


def _log_run_files(client: Any, run_id: str, files: runs.RunFiles, *, epochs: bool,
                   tags: Mapping[str, Any] | None = None) -> str:
    """Parameters, tags, test metrics and artifacts of one run directory (and its epochs
    when ``epochs``); returns the MLflow status its status.json calls for."""
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

    params, cut = plan_params(files.plan or {})
    evaluation = files.evaluation or {}
    training = evaluation.get("training") or {}
    status = (files.status or {}).get("status", "finished")
    severities = [f.get("severity") for f in files.findings]
    run_tags: dict[str, Any] = {
        **(tags or {}), "nnrecipe.run_dir": str(files.path.resolve()), "nnrecipe.status": status,
        "nnrecipe.task": params.get("task"),
        "nnrecipe.modality": (files.profile or {}).get("modality"),
        "nnrecipe.main_metric": evaluation.get("main_metric"),
        "nnrecipe.stop_reason": training.get("stop_reason"),
        "nnrecipe.best_epoch": training.get("best_epoch"),
        "nnrecipe.findings": len(files.findings),
        **{f"nnrecipe.findings.{s}": severities.count(s) for s in ("error", "warning", "info")},
        "nnrecipe.finding_codes": ",".join(sorted({str(f.get("code")) for f in files.findings})),
        "nnrecipe.truncated_params": ",".join(cut)}
    summary = files.path / RUN_FILES["summary"]
    if summary.is_file():
        run_tags[MLFLOW_RUN_NOTE] = summary.read_text(encoding="utf-8")
    tag_texts, _ = _texts({k: v for k, v in run_tags.items() if v not in (None, "")},
                          _limit("MAX_TAG_VAL_LENGTH", TAG_LIMIT))
    final = {f"test_{k}": v for k, v in (evaluation.get("metrics") or {}).items()}
    final |= {f"baseline_{k}": v
              for k, v in ((evaluation.get("baseline") or {}).get("metrics") or {}).items()}
    history = [(row.get("epoch", i), row) for i, row in enumerate(files.metrics, start=1)]
    _log_batch(client, run_id, params=params, tags=tag_texts,
               metrics=[*(history if epochs else []), (training.get("epochs", 0), final)])
    _log_artifacts(client, run_id, files.path)
    return RUN_STATUS.get(status, "FINISHED")


def _log_trial(client: Any, experiment_id: str, parent: str, trial: Mapping[str, Any],
               tags: Mapping[str, Any] | None) -> None:
    """One trial of a search as a nested run: its values, its per-epoch validation loss,
    the best one (the objective), its state."""
    number, state = trial.get("number"), str(trial.get("state"))
    run_id = _create_run(client, experiment_id, f"trial_{number}",
                         {**(tags or {}), "nnrecipe.kind": "tune_trial",
                          "nnrecipe.trial.number": number, "nnrecipe.trial.state": state,
                          "nnrecipe.trial.note": trial.get("note")}, parent)
    params, _ = _texts(trial.get("params") or {}, _limit("MAX_PARAM_VAL_LENGTH", PARAM_LIMIT))
    curve = [(int(epoch), {"val_loss": v})
             for epoch, v in (trial.get("intermediate") or {}).items()]
    final = {"best_val_loss": trial.get("value"), "seconds": trial.get("seconds")}

    def log_all() -> str:
        _log_batch(client, run_id, params=params,
                   metrics=[*curve, (trial.get("epochs") or 0, final)])
        return TRIAL_STATUS.get(state, "KILLED")

    _finish(client, run_id, log_all)


def _log_artifacts(client: Any, run_id: str, run_dir: Path) -> None:
    for key in ARTIFACTS:
        path = run_dir / RUN_FILES[key]
        if path.is_file():
            client.log_artifact(run_id, str(path))


def _log_batch(client: Any, run_id: str, *, params: Mapping[str, str] | None = None,
               tags: Mapping[str, str] | None = None,
               metrics: Iterable[tuple[int, Mapping[str, Any]]] = ()) -> None:
    """Parameters, tags and ``(step, {name: number})`` metrics, in batches within MLflow's
    limits; numbers that are not finite (or not numbers) are left out."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    points = [Metric(_metric_key(k), float(v), now, int(step)) for step, record in metrics
              for k, v in record.items() if k != "epoch" and _finite(v)]
    p = [Param(k, v) for k, v in (params or {}).items()]
    t = [RunTag(k, v) for k, v in (tags or {}).items()]
    for i in range(0, len(p), PARAMS_PER_CALL):
        client.log_batch(run_id, params=p[i:i + PARAMS_PER_CALL])
    for i in range(0, len(t), PARAMS_PER_CALL):
        client.log_batch(run_id, tags=t[i:i + PARAMS_PER_CALL])
    for i in range(0, len(points), METRICS_PER_CALL):
        client.log_batch(run_id, metrics=points[i:i + METRICS_PER_CALL])


def _texts(values: Mapping[str, Any], limit: int = PARAM_LIMIT
           ) -> tuple[dict[str, str], list[str]]:
    """``{key: value as text}`` (lists and mappings as JSON), each cut to ``limit``
    characters (ending with "…"), and the keys that were cut."""
    out, cut = {}, []
    for key, value in values.items():
        text = value if isinstance(value, str) else (
            json.dumps(runs.plain(value)) if isinstance(value, list | tuple | dict)
            else str(value))
        if len(text) > limit:
            text, cut = text[:limit - 1] + "…", [*cut, key]
        out[str(key)] = text
    return out, cut


def _limit(name: str, fallback: int) -> int:
    """One of MLflow's length limits (they grew over its versions)."""
    from mlflow.utils import validation

    return int(getattr(validation, name, fallback))


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _metric_key(name: str) -> str:
    """A metric name MLflow accepts (letters, digits, ``_ - . /`` and spaces)."""
    return re.sub(r"[^\w\-./ ]", "_", str(name))


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]
