"""The Python API. Only this module chains the stages (DESIGN.md):

load → profile → split → plan → preprocess → build → train → evaluate → summary
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from . import runs
from ._arrays import (
    array_inputs,
    evaluate_arrays,
    predict_arrays,
    prepare_arrays,
    score_arrays,
)
from ._training import run_range_test, train_with_doctor
from .data import DataProfile, Preprocessor, load_table, profile_table, split_overlap, split_table
from .data.arrays import detect_modality
from .data.encode import ArrayEncoder
from .data.load import table_name
from .data.profile import check_target
from .doctor.findings import Finding, sort_findings
from .errors import DataError, NnrecipeError, PlanError, RunError
from .evaluate import (
    BASELINE_NAME,
    MAIN_METRIC,
    baseline_metrics,
    classification_metrics,
    regression_metrics,
)
from .evaluate.details import evaluation_details
from .models import build_mlp, outputs_to_predictions
from .models.build import build_network
from .plan import Plan, add_parameter_count, make_plan, validate_overrides
from .report import rebuild as rebuild_report
from .report import write_cv_report, write_report
from .report.reproduce import environment
from .train import History, make_loss, predict_batches, target_tensor
from .train.lr_find import LRFindResult
from .train.tensorboard import TensorBoardWatcher, require_tensorboard
from .tune import fold_indices, summarise_folds
from .tune.experiment import EXPECTATIONS, HIGHER_IS_BETTER, append_journal, paired_verdict

__all__ = ["Run", "compare", "cv", "diagnose", "experiment", "find_lr", "fit", "plan", "load_run",
           "report", "tune"]

Source = str | Path | pd.DataFrame


@dataclass
class Run:
    """A trained network with everything needed to use and explain it."""

    plan: Plan
    profile: DataProfile
    preprocessor: Preprocessor
    model: torch.nn.Module
    history: History = field(default_factory=History)
    evaluation: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    findings: list[Finding] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.plan["task"]

    def predict(self, data: Source) -> pd.DataFrame:
        """A ``prediction`` column, plus ``proba_<class>`` columns for a classifier. Images,
        sound and text: also ``name`` (the file or row); a forecast: the next values."""
        if isinstance(self.preprocessor, ArrayEncoder):
            return predict_arrays(self, data)
        df = load_table(data, what="predict data")
        proba_or_value = self._raw_predict(df)
        if self.task == "regression":
            return pd.DataFrame({"prediction": proba_or_value}, index=df.index)
        classes = self.preprocessor.classes
        out = pd.DataFrame({"prediction": np.asarray(classes, dtype=object)[
            proba_or_value.argmax(axis=1)]}, index=df.index)
        for i, c in enumerate(classes):
            out[f"proba_{c}"] = proba_or_value[:, i]
        return out

    def evaluate(self, data: Source, what: str = "evaluate data") -> dict[str, Any]:
        """Metrics on labelled data, beside the dumb baseline (evaluation.json's layout)."""
        if isinstance(self.preprocessor, ArrayEncoder):
            return evaluate_arrays(self, data)
        df = load_table(data, what=what)
        target = self.profile.target
        check_target(df, target, what)
        return _score(self, df[df[target].notna()])

    def _raw_predict(self, df: pd.DataFrame) -> np.ndarray:
        x = torch.from_numpy(self.preprocessor.transform(df, what="predict data"))
        values = outputs_to_predictions(predict_batches(self.model, x), self.task,
                                        self.plan["loss.name"])
        if self.task == "regression":
            values = self.preprocessor.inverse_target(values)
        return values


@dataclass
class _Prepared:
    plan: Plan
    profile: DataProfile
    preprocessor: Preprocessor
    model: torch.nn.Module
    splits: Any
    name: str
    overrides: dict[str, Any]
    data: Any = None  # non-tabular data: the loaded samples (data/arrays.py)
    augment: Any = None  # applied to training batches (images, series)
    pretrained: Any = None  # transfer learning: models.pretrained.Pretrained
    order: Any = None  # each epoch's order of the training rows (text: batches by length)


def _prepare_any(data: Source, target: str | None, *, task: str, overrides: dict | None,
                 test: Source | None, valid: Source | None, modality: str = "auto",
                 pretrained: Any = None) -> _Prepared:
    """Everything before training, for a table or any other modality (data/arrays.py)."""
    kind = detect_modality(data, modality, target, (overrides or {}).get("series.horizon"))
    if kind == "table":
        if pretrained is not None:
            raise DataError("--pretrained applies to convnets on images, volumes, sound or "
                            "sequences; a table's network trains from scratch")
        if target is None:
            raise DataError("give --target, the column to predict")
        return _prepare(data, target, task=task, overrides=overrides, test=test, valid=valid)
    if valid is not None:
        raise DataError(f"--valid applies to tabular data, not {kind} data; the validation "
                        "split is made inside the training data")
    return prepare_arrays(data, target, modality=kind, task=task, overrides=overrides,
                          prepared=_Prepared, test=test, pretrained=pretrained)


def plan(data: Source, target: str | None = None, *, task: str = "auto",
         overrides: dict | None = None, test: Source | None = None,
         valid: Source | None = None, modality: str = "auto") -> Plan:
    """The plan nnrecipe would train with, every decision with its reason; trains nothing."""
    return _prepare_any(data, target, task=task, overrides=overrides, test=test, valid=valid,
                        modality=modality).plan


def fit(data: Source, target: str | None = None, *, task: str = "auto",
        overrides: dict | None = None, test: Source | None = None,
        valid: Source | None = None, out: str | Path | None = None, progress: bool = False,
        watchers: list | None = None, auto_fix: bool = False, max_repairs: int = 3,
        preflight: bool = True, tensorboard: bool = False, modality: str = "auto",
        pretrained: str | Path | None = None) -> Run:
    """Profile, plan, train (watched by the doctor), evaluate and save a network for
    ``target``; returns the Run. ``auto_fix``: repair error-level symptoms and go on.
    ``tensorboard``: also log to RUN/tensorboard/ (needs the ``tensorboard`` package).
    ``modality``: auto (a folder of class subfolders: images or WAV sound; an .npz: images
    or volumes; a table with ``series.horizon`` set: a forecast), or one of table, image,
    volume, audio, text, series, sequence. ``pretrained``: a finished convnet run (or its model.pt)
    to start from; the plan's ``transfer.*`` keys say what is kept, frozen and trained.

    Every check on the input happens before the run directory is created, so bad input
    leaves nothing behind."""
    if tensorboard:
        require_tensorboard()  # a missing package stops here, before any work
    prep = _prepare_any(data, target, task=task, overrides=overrides, test=test, valid=valid,
                        modality=modality, pretrained=pretrained)
    with _new_run_dir(out, prep.name) as run_dir:
        if tensorboard:
            watchers = [*(watchers or []), TensorBoardWatcher(run_dir / "tensorboard")]
        return _train_and_save(prep, run_dir, progress, watchers or [], auto_fix=auto_fix,
                               max_repairs=max_repairs, preflight=preflight)


def diagnose(data: Source, target: str | None = None, *, task: str = "auto",
             overrides: dict | None = None, test: Source | None = None,
             valid: Source | None = None, out: str | Path | None = None,
             probe_epochs: int = 5, progress: bool = False, preflight: bool = True,
             modality: str = "auto") -> Run:
    """The doctor on its own: data and configuration checks, pre-flight, and a short probe
    training (``probe_epochs``) under the live monitors; nothing is trained to completion.
    Writes plan.yaml, profile.json, metrics.jsonl and findings.json. ``modality``: as in
    :func:`fit`."""
    prep = _prepare_any(data, target, task=task, overrides={
        **(overrides or {}), "train.max_epochs": probe_epochs}, test=test, valid=valid,
        modality=modality)
    with _new_run_dir(out, prep.name) as run_dir:
        x_tr, y_tr, x_va, y_va, val_metrics = _write_inputs(prep, run_dir)
        outcome = train_with_doctor(prep, (x_tr, y_tr), (x_va, y_va), val_metrics=val_metrics,
                                    run_dir=run_dir, progress=progress, watchers=[],
                                    auto_fix=False, max_repairs=0, preflight=preflight)
        findings = sort_findings(outcome.findings)
        runs.atomic_write_json(run_dir / "findings.json", [f.to_dict() for f in findings])
        return Run(outcome.plan, prep.profile, prep.preprocessor, outcome.model,
                   outcome.history, path=run_dir, findings=findings)


def find_lr(data: Source, target: str | None = None, *, task: str = "auto",
            overrides: dict | None = None, out: str | Path | None = None,
            modality: str = "auto") -> tuple[LRFindResult, Path]:
    """The LR range test for the network nnrecipe plans for this data (trains nothing to
    keep). Writes plan.yaml, profile.json, lr_find.json and lr_find.png; returns the result
    and the run directory. ``modality``: as in :func:`fit`."""
    prep = _prepare_any(data, target, task=task, overrides=overrides, test=None, valid=None,
                        modality=modality)
    with _new_run_dir(out, prep.name) as run_dir:
        x_tr, y_tr, *_ = _write_inputs(prep, run_dir)
        result = run_range_test(prep.plan, prep.model, make_loss(prep.plan["loss.name"]),
                                (x_tr, y_tr), run_dir)
        return result, run_dir


def _tables_only(data: Source, command: str) -> None:
    """cv, experiment and tune read tables; say so plainly for anything else."""
    if isinstance(data, str | Path) and (Path(data).is_dir()
                                         or Path(data).suffix.lower() == ".npz"):
        raise DataError(f"{command} works on tables (CSV or Parquet) so far; for image, "
                        "sound or other non-tabular data use nnrecipe train (and --test)")


def cv(data: Source, target: str, *, folds: int = 5, task: str = "auto",
       overrides: dict | None = None, out: str | Path | None = None,
       progress: bool = False) -> dict[str, Any]:
    """K-fold cross-validation: each fold held out once as the test rows of a full run
    (``fold_<k>/`` in the run directory); ``cv.json`` holds every fold's test metrics and
    their mean ± std. Returns that content."""
    _tables_only(data, "cv")
    given = validate_overrides(overrides)
    df = load_table(data)
    check_target(df, target)
    df = df[df[target].notna()]
    task_ = profile_table(df, target, task).task
    parts = fold_indices(df, target, task_, folds, given.get("seed", 0))
    with _new_run_dir(out, table_name(data)) as run_dir:
        per_fold, baseline = [], []
        for k, held in enumerate(parts, start=1):
            rest = df.drop(index=df.index[held])
            run = fit(rest, target, task=task, overrides=given, test=df.iloc[held],
                      out=run_dir / f"fold_{k}", progress=progress)
            per_fold.append({"fold": k, "test_rows": len(held), **run.evaluation["metrics"]})
            baseline.append(run.evaluation["baseline"]["metrics"])
        result = {"task": task_, "folds": folds, "seed": given.get("seed", 0),
                  "per_fold": per_fold, "summary": summarise_folds(per_fold),
                  "baseline_summary": summarise_folds(baseline)}
        runs.atomic_write_json(run_dir / "cv.json", result)
        write_cv_report(run_dir)
        return {**result, "path": str(run_dir)}


def experiment(data: Source, target: str, *, hypothesis: str, changes: dict[str, Any],
               expect: str = "better", metric: str | None = None, repeats: int = 5,
               task: str = "auto", overrides: dict | None = None,
               out: str | Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Test a hypothesis: train the baseline plan and the plan with ``changes`` on the same
    split and seed, ``repeats`` times (seeds seed, seed+1, ...), compare the test ``metric``
    pairwise, and give a verdict. Appends the experiment to experiments.jsonl in the run
    root (the run directory's parent) and returns the entry."""
    problems = []
    if not changes:
        problems.append("give at least one change (--change key=value)")
    if expect not in EXPECTATIONS:
        problems.append(f"--expect must be one of {', '.join(EXPECTATIONS)}, got '{expect}'")
    if repeats < 2:
        problems.append(f"--repeats must be at least 2 to pair results, got {repeats}")
    if problems:
        raise PlanError("; ".join(problems))
    given = validate_overrides(overrides)
    change = validate_overrides(changes)
    _tables_only(data, "experiment")
    base = _prepare(data, target, task=task, overrides=given, test=None, valid=None)
    _prepare(data, target, task=task, overrides={**given, **change}, test=None, valid=None)
    task_ = base.plan["task"]
    metric = metric or MAIN_METRIC[task_]
    valid = [m for m in HIGHER_IS_BETTER if (m in ("rmse", "mae", "r2")) == (task_ == "regression")]
    if metric not in valid:
        raise PlanError(f"--metric for a {task_} task must be one of {', '.join(valid)}, "
                        f"got '{metric}'")
    df = load_table(data)
    seed0 = given.get("seed", 0)
    with _new_run_dir(out, f"{base.name}-experiment") as run_dir:
        scores: dict[str, list[float]] = {"baseline": [], "changed": []}
        for r in range(repeats):
            for arm, extra in (("baseline", {}), ("changed", change)):
                run = fit(df, target, task=task, overrides={**given, **extra, "seed": seed0 + r},
                          out=run_dir / f"{arm}_{r + 1}", progress=progress)
                scores[arm].append(run.evaluation["metrics"][metric])
        entry = {"time": datetime.now().isoformat(timespec="seconds"),
                 "data": base.name, "target": target, "hypothesis": hypothesis,
                 "changes": change, "expect": expect, "metric": metric,
                 "higher_is_better": HIGHER_IS_BETTER[metric], "repeats": repeats,
                 "seeds": [seed0 + r for r in range(repeats)], **scores,
                 **paired_verdict(scores["baseline"], scores["changed"], expect=expect,
                                  higher_is_better=HIGHER_IS_BETTER[metric]),
                 "run_dir": str(run_dir)}
        runs.atomic_write_json(run_dir / "experiment.json", entry)
        append_journal(run_dir.parent, entry)
        return entry


def tune(data: Source, target: str, *, trials: int = 20, timeout: float | None = None,
         storage: str | None = None, study: str | None = None, workers: int = 1,
         space: list[str] | None = None, task: str = "auto", overrides: dict | None = None,
         out: str | Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Search the plan with Optuna (TPE sampler, median pruner on the per-epoch validation
    loss), then retrain the best plan like ``fit`` in the run directory.

    ``space``: ``["key=low:high", "key=a,b,c", ...]`` narrows or adds searched keys; keys
    in ``overrides`` are fixed. ``storage``: an Optuna URL or a journal file path (default:
    ``study.journal`` in the run directory); the same ``study`` name and storage resume a
    study. ``workers``: processes sharing the study. Writes ``tune.json`` (every trial)
    and returns its content with ``path`` and the retrained ``run``."""
    from ._tuning import tune as run_tuning  # the search imports this module's stages

    _tables_only(data, "tune")

    return run_tuning(data, target, trials=trials, timeout=timeout, storage=storage,
                      study=study, workers=workers, space=space, task=task,
                      overrides=overrides, out=out, progress=progress)


@contextmanager
def _new_run_dir(out: str | Path | None, name: str) -> Iterator[Path]:
    """Create the run directory; remove it again if a user error stops the run."""
    out_dir = Path(out) if out is not None else runs.default_run_dir(name)
    runs.check_run_dir_free(out_dir)
    created = not out_dir.exists()
    run_dir = runs.prepare_run_dir(out_dir)
    try:
        yield run_dir
    except NnrecipeError:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _prepare(data, target, *, task, overrides, test, valid) -> _Prepared:
    given = validate_overrides(overrides)  # bad --set values fail before any work
    df = load_table(data)
    check_target(df, target)
    test_df = _load_companion(test, df, target, "--test") if test is not None else None
    valid_df = _load_companion(valid, df, target, "--valid") if valid is not None else None
    n_missing = int(df[target].isna().sum())
    df = df[df[target].notna()]
    profile = profile_table(df, target, task, dropped_target_missing=n_missing)
    infinite = {c: s["n_infinite"] for c, s in profile.columns.items() if s.get("n_infinite")}
    if infinite:
        raise DataError(f"infinite values in {infinite} (column: count); replace them with "
                        "finite numbers or leave the cells empty (missing values are imputed)")
    splits = split_table(df, target, profile.task, given.get("seed", 0),
                         val_df=valid_df, test_df=test_df)
    features = [c for c in df.columns if c != target]
    profile.splits = {"how": splits.how, **splits.sizes(), "duplicates_across_splits":
                      split_overlap(splits.train, {"val": splits.val, "test": splits.test},
                                    features)}
    return _build(profile, splits, table_name(data), given, None)


# the plan keys the fitted preprocessing depends on
_PREPROCESS_KEYS = ("data.drop", "data.scale", "model.output_activation")


def _build(profile: DataProfile, splits: Any, name: str, given: dict[str, Any],
           reuse: _Prepared | None) -> _Prepared:
    """Plan, fit the preprocessing (or take ``reuse``'s when it was fitted for the same
    data keys) and build the network, from a profile and splits made once."""
    the_plan = make_plan(profile, len(splits.train), given)
    if reuse is not None and all(reuse.plan[k] == the_plan[k] for k in _PREPROCESS_KEYS):
        pre = reuse.preprocessor
    else:
        pre = Preprocessor.fit(splits.train, target=profile.target, task=profile.task,
                               kinds=profile.feature_kinds, drop=the_plan["data.drop"],
                               scale=the_plan["data.scale"],
                               target_activation=the_plan["model.output_activation"])
    torch.manual_seed(the_plan["seed"])
    model = build_mlp(the_plan, pre.n_numeric, pre.embedding_sizes)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    the_plan = add_parameter_count(the_plan, n_params, len(splits.train))
    return _Prepared(the_plan, profile, pre, model, splits, name, given)


def _replan(prep: _Prepared, overrides: dict[str, Any]) -> _Prepared:
    """``prep`` with another plan: same data, profile and splits; the preprocessing is
    reused when the plan's data keys did not change."""
    return _build(prep.profile, prep.splits, prep.name, validate_overrides(overrides), prep)


def _load_companion(source: Source, df: pd.DataFrame, target: str, flag: str) -> pd.DataFrame:
    """A --test/--valid table must have the training table's columns, no more, no fewer."""
    other = load_table(source, what=f"{flag} data")
    missing = [c for c in df.columns if c not in other.columns]
    extra = [c for c in other.columns if c not in df.columns]
    if missing or extra:
        raise DataError(f"{flag} data has other columns than the training data: "
                        f"missing {missing}, extra {extra}; give it the same columns")
    other = other[other[target].notna()][list(df.columns)]
    if other.empty:
        raise DataError(f"{flag} data has no row with a value in target column '{target}'")
    return other


def _tensors(pre: Preprocessor, df: pd.DataFrame, plan: Plan, what: str
             ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(x, y shaped for the loss, y as codes / scaled values) for one split."""
    x = torch.from_numpy(pre.transform(df, what=what))
    y = pre.transform_target(df[pre.state["target"]])
    return x, target_tensor(y, plan["task"], plan["loss.name"], plan["model.n_outputs"]), y


def _write_inputs(prep: _Prepared, run_dir: Path) -> tuple:
    """Tensors for training and validation, the validation metric, and the first files."""
    runs.atomic_write_yaml(run_dir / runs.RUN_FILES["plan"], prep.plan.to_dict())
    runs.atomic_write_json(run_dir / runs.RUN_FILES["profile"], prep.profile.to_dict())
    runs.atomic_write_json(run_dir / runs.RUN_FILES["preprocess"], prep.preprocessor.to_dict())
    return _inputs(prep)


def _inputs(prep: _Prepared) -> tuple:
    """(x_train, y_train, x_val, y_val, val_metrics): tensors shaped for the plan's loss and
    the validation metric in the data's own units."""
    if prep.data is not None:  # images, sound, text, series
        return array_inputs(prep)
    plan_, pre, s = prep.plan, prep.preprocessor, prep.splits
    task = plan_["task"]
    x_tr, y_tr, _ = _tensors(pre, s.train, plan_, "training data")
    x_va, y_va, y_va_raw = _tensors(pre, s.val, plan_, "validation data")

    def val_metrics(out: torch.Tensor, _y: torch.Tensor) -> dict[str, float]:
        values = outputs_to_predictions(out, task, plan_["loss.name"])
        if task == "regression":
            err = pre.inverse_target(values) - pre.inverse_target(y_va_raw)
            return {"rmse": float(np.sqrt(np.mean(err**2)))}
        return {"accuracy": float(np.mean(values.argmax(axis=1) == y_va_raw))}

    return x_tr, y_tr, x_va, y_va, val_metrics


def _train_and_save(prep: _Prepared, run_dir: Path, progress: bool, watchers: list, *,
                    auto_fix: bool, max_repairs: int, preflight: bool) -> Run:
    x_tr, y_tr, x_va, y_va, val_metrics = _write_inputs(prep, run_dir)
    outcome = train_with_doctor(prep, (x_tr, y_tr), (x_va, y_va), val_metrics=val_metrics,
                                run_dir=run_dir, progress=progress, watchers=watchers,
                                auto_fix=auto_fix, max_repairs=max_repairs, preflight=preflight)
    history, model = outcome.history, outcome.model
    # the plan that was finally trained: with the range test's rate and the doctor's repairs
    runs.atomic_write_yaml(run_dir / runs.RUN_FILES["plan"], outcome.plan.to_dict())
    runs.atomic_torch_save(run_dir / runs.RUN_FILES["model"], model.state_dict())
    findings = sort_findings(outcome.findings)
    runs.atomic_write_json(run_dir / runs.RUN_FILES["findings"], [f.to_dict() for f in findings])
    if auto_fix:
        runs.atomic_write_json(run_dir / runs.RUN_FILES["repairs"], outcome.repairs)
    run = Run(outcome.plan, prep.profile, prep.preprocessor, model, history, path=run_dir,
              findings=findings, repairs=outcome.repairs)
    run.evaluation = (_score(run, prep.splits.test, details=True) if prep.data is None
                      else score_arrays(prep, model, outcome.plan, run_dir))
    run.evaluation["training"] = {"epochs": len(history.epochs), "stop_reason":
                                  history.stop_reason, "best_epoch": history.best_epoch,
                                  "seconds": round(history.seconds, 3)}
    runs.atomic_write_json(run_dir / runs.RUN_FILES["evaluation"], run.evaluation)
    runs.atomic_write_json(run_dir / runs.RUN_FILES["environment"], environment(
        data_name=prep.name, target=prep.profile.target, overrides=prep.overrides))
    write_report(run_dir)  # summary.md and report.html, last: every other file is saved
    return run


def _score(run: Run, df: pd.DataFrame, details: bool = False) -> dict[str, Any]:
    """Metrics of ``run`` on labelled ``df`` and of the dumb baseline on the same rows;
    ``details``: also the numbers behind the report's curves and worst rows."""
    pre, task = run.preprocessor, run.task
    y = pre.transform_target(df[run.profile.target])
    values = run._raw_predict(df)
    target_state = pre.state["target_transform"]
    if task == "regression":
        y_true = pre.inverse_target(y.astype(np.float64))
        metrics = regression_metrics(y_true, values)
        base = baseline_metrics(task, target_state, y_true, [])
    else:
        metrics = classification_metrics(y, values, pre.classes)
        base = baseline_metrics(task, target_state, y, pre.classes)
    extra = {k: metrics.pop(k) for k in ("per_class", "confusion_matrix") if k in metrics}
    for k in ("per_class", "confusion_matrix"):
        base.pop(k, None)
    out = {"task": task, "n_rows": len(df), "main_metric": MAIN_METRIC[task],
           "metrics": metrics, "baseline": {"name": BASELINE_NAME[task], "metrics": base},
           **extra}
    if details:
        out["details"] = evaluation_details(task, y_true if task == "regression" else y, values,
                                      pre.classes, df.drop(columns=[run.profile.target]))
    return out


def report(run_dir: str | Path) -> Path:
    """Rebuild report.html and summary.md of a finished run directory (``train``,
    ``tune``, a cv fold) or of a cross-validation directory; returns the page's path."""
    return rebuild_report(run_dir)


def compare(run_dirs: list[str | Path], out: str | Path = "compare.html",
            diff: tuple[str | Path, str | Path] | None = None) -> Path:
    """A leaderboard page of finished runs (``out``): one row per run, the learning
    curves overlaid, and the plan differences of two runs (``diff``, default the first
    two). Returns ``out``."""
    from .report.compare import write_compare

    return write_compare(run_dirs, Path(out), diff)


def load_run(path: str | Path) -> Run:
    """Load a finished run directory (written by ``fit`` or ``nnrecipe train``)."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"run directory {path} not found; give the --out directory of a "
                       "finished `nnrecipe train`")
    files = {k: path / v for k, v in runs.RUN_FILES.items()}
    lacking = [files[k].name for k in ("plan", "preprocess", "profile", "model")
               if not files[k].exists()]
    if lacking:
        raise RunError(f"{path} is not a finished nnrecipe run: {', '.join(lacking)} missing")
    plan_ = Plan.from_dict(yaml.safe_load(files["plan"].read_text(encoding="utf-8")))
    state = runs.read_json(files["preprocess"])
    pre = (ArrayEncoder.from_dict(state) if "modality" in state  # images, text, series...
           else Preprocessor.from_dict(state))
    model = build_network(plan_, pre)
    model.load_state_dict(torch.load(files["model"], map_location="cpu", weights_only=True))
    model.eval()
    history = History()
    if files["metrics"].exists():
        history.epochs = [json.loads(line) for line in
                          files["metrics"].read_text(encoding="utf-8").splitlines() if line]
    evaluation = runs.read_json(files["evaluation"]) if files["evaluation"].exists() else {}
    findings = ([Finding.from_dict(f) for f in runs.read_json(files["findings"])]
                if files["findings"].exists() else [])
    repairs = runs.read_json(files["repairs"]) if files["repairs"].exists() else []
    training = evaluation.get("training", {})
    history.stop_reason = training.get("stop_reason", "")
    history.best_epoch = training.get("best_epoch")
    return Run(plan_, DataProfile.from_dict(runs.read_json(files["profile"])), pre, model,
               history, evaluation, path, findings, repairs)
