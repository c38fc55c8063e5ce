"""scikit-learn estimators over the one pipeline: :class:`NNRecipeClassifier` and
:class:`NNRecipeRegressor`.

    >>> from nnrecipe.sklearn import NNRecipeClassifier
    >>> clf = NNRecipeClassifier(max_epochs=50).fit(X, y)
    >>> clf.predict(X_new), clf.plan_["optimizer.lr"], clf.findings_

``fit(X, y)`` reads ``X`` (a numpy array, or a pandas DataFrame whose columns may mix
numbers, categories, strings, booleans, dates and missing values) as the ``train`` command
reads a table with ``y`` as its target column: the same profile, the same 70/15/15 split
(the validation rows steer early stopping and the doctor; the test rows give
``evaluation_``, beside the dumb baseline), the same plan, training under the same doctor.
The plan's keys are settable through ``overrides`` (``{"optimizer.lr": 0.01}``);
``max_epochs`` and ``seed`` are the two most used, as parameters of their own.

Nothing is written unless ``run_dir`` is given: then the fit writes the normal run
directory there (plan.yaml, model.pt, findings.json, report.html...), loadable with
:func:`nnrecipe.load_run`.

Bad input raises an :class:`~nnrecipe.errors.NnrecipeError` that is also the built-in
error scikit-learn's tools expect (``ValueError``, or ``TypeError`` for a cell that is
neither a string nor a number).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_array, check_consistent_length, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .data.split import MIN_ROWS
from .errors import DataError, PlanError
from .pipeline.prepare import prepare
from .pipeline.run import Run, new_run_dir, train_and_save, train_in_memory

__all__ = ["NNRecipeClassifier", "NNRecipeRegressor", "EstimatorDataError",
           "EstimatorSettingError", "CellTypeError"]


class EstimatorDataError(DataError, ValueError):
    """Data an estimator cannot train on or predict for: nnrecipe's DataError, and the
    ValueError scikit-learn's tools (cross-validation, searches) expect."""


class EstimatorSettingError(PlanError, ValueError):
    """A parameter or plan key an estimator cannot use: nnrecipe's PlanError, and a
    ValueError."""


class CellTypeError(DataError, TypeError):
    """A cell of X that is neither a string, a number nor missing (a dict, a list...)."""


class _NNRecipeEstimator(BaseEstimator):
    """What both estimators share: parameters, reading X and y, the pipeline, the run."""

    _numeric_y: bool  # regression: y is read as numbers

    def __init__(self, *, max_epochs: int | None = None, seed: int | None = None,
                 overrides: dict | None = None, preflight: bool = True,
                 auto_fix: bool = False, max_repairs: int = 3,
                 run_dir: str | Path | None = None, progress: bool = False):
        self.max_epochs = max_epochs
        self.seed = seed
        self.overrides = overrides
        self.preflight = preflight
        self.auto_fix = auto_fix
        self.max_repairs = max_repairs
        self.run_dir = run_dir
        self.progress = progress

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "run_")  # n_features_in_ is set before training, run_ after

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed (with an indicator)
        return tags

    # ---- fitting --------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any) -> tuple[Run, np.ndarray]:
        """Read X and y, prepare, train (in memory or into ``run_dir``), set the fitted
        attributes; the run and y as validated."""
        name = getattr(y, "name", None)
        frame, y = self._read_fit(X, y)
        task = self._task_of(y)
        if len(frame) < MIN_ROWS:
            raise EstimatorDataError(
                f"{len(frame)} sample(s) given; nnrecipe needs at least {MIN_ROWS} to hold "
                "out validation and test rows (15% each)")
        target = _target_name(name, list(frame.columns))
        frame[target] = y
        try:
            prep = prepare(frame, target, task=task, overrides=self._plan_overrides(),
                           modality="table")
        except DataError as e:
            raise EstimatorDataError(str(e)) from None
        except PlanError as e:
            raise EstimatorSettingError(str(e)) from None
        if self.run_dir is not None:
            run = self._train_and_save(prep, task)
        else:
            run = self._train_in_memory(prep)
        self.run_ = run
        self.plan_ = run.plan
        self.findings_ = run.findings
        self.history_ = run.history
        self.repairs_ = run.repairs
        self.evaluation_ = run.evaluation
        self.model_ = run.model
        self.run_dir_ = run.path
        return run, y

    def _train_in_memory(self, prep: Any) -> Run:
        """Prepare's split, training under the doctor, the test split scored: the steps of
        ``train``, with no file written (no run directory, no report)."""
        return train_in_memory(prep, progress=self.progress, auto_fix=self.auto_fix,
                               max_repairs=self.max_repairs, preflight=self.preflight)

    def _train_and_save(self, prep: Any, task: str) -> Run:
        """The normal run directory at ``run_dir``, as ``nnrecipe.fit(out=run_dir)``."""
        call = {"data": None, "target": prep.profile.target, "task": task,
                "modality": "table", "overrides": prep.overrides, "test": None,
                "valid": None, "pretrained": None, "auto_fix": self.auto_fix,
                "max_repairs": self.max_repairs, "preflight": self.preflight}
        with new_run_dir(self.run_dir, prep.name) as run_dir:
            run = train_and_save(prep, run_dir, self.progress, [], auto_fix=self.auto_fix,
                                 max_repairs=self.max_repairs, preflight=self.preflight,
                                 call=call)
        run.model.eval()
        return run

    def _plan_overrides(self) -> dict[str, Any]:
        """``overrides`` with ``max_epochs`` and ``seed`` added (validated by prepare)."""
        if self.overrides is not None and not isinstance(self.overrides, Mapping):
            raise EstimatorSettingError(
                f"overrides must be a dict of plan keys, e.g. {{'optimizer.lr': 0.01}}; "
                f"got {type(self.overrides).__name__}")
        out = dict(self.overrides or {})
        for param, key in (("max_epochs", "train.max_epochs"), ("seed", "seed")):
            value = getattr(self, param)
            if value is None:
                continue
            if key in out and out[key] != value:
                raise EstimatorSettingError(
                    f"{param}={value!r} and overrides['{key}']={out[key]!r} disagree; "
                    "give one of them")
            out[key] = value
        return out

    # ---- reading X and y ------------------------------------------------------------------
    def _read_fit(self, X: Any, y: Any) -> tuple[pd.DataFrame, np.ndarray]:
        numeric_y = self._numeric_y
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, y, reset=True, skip_check_array=True)
            y = column_or_1d(y, warn=True)
            y = check_array(y, ensure_2d=False, dtype="numeric" if numeric_y else None,
                            input_name="y", estimator=self)
            check_consistent_length(X, y)
            self._columns = [str(c) for c in X.columns]
            frame = _frame(X, self._columns)
        else:
            X, y = validate_data(self, X, y, reset=True, dtype=None,
                                 ensure_all_finite="allow-nan", y_numeric=numeric_y)
            self._columns = [f"x{i}" for i in range(X.shape[1])]
            frame = _frame(X, self._columns)
        return frame, y

    def _read_predict(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self)
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=False, skip_check_array=True)
        else:
            X = validate_data(self, X, reset=False, dtype=None, ensure_all_finite="allow-nan")
        return _frame(X, self._columns)

    def _predicted(self, X: Any) -> pd.DataFrame:
        """The run's predictions for X (``prediction`` and ``proba_<class>`` columns)."""
        frame = self._read_predict(X)
        try:
            return self.run_.predict(frame)
        except DataError as e:
            raise EstimatorDataError(str(e)) from None


class NNRecipeClassifier(ClassifierMixin, _NNRecipeEstimator):
    """A neural network classifier planned, trained and checked by nnrecipe.

    Parameters: ``max_epochs`` (the plan's ``train.max_epochs``), ``seed`` (``seed``),
    ``overrides`` (any plan keys, e.g. ``{"optimizer.lr": 0.01, "model.width": 64}``),
    ``preflight`` (the doctor's checks before the first epoch), ``auto_fix`` and
    ``max_repairs`` (repair error-level symptoms and go on), ``run_dir`` (write the run
    directory there; a directory holds one run, so a second fit into it is refused),
    ``progress`` (show training progress).

    After ``fit``: ``classes_``, ``n_features_in_``, ``feature_names_in_`` (X a DataFrame
    with string column names), ``plan_`` (every decision with its reason), ``findings_``
    (the doctor's), ``history_`` (per-epoch losses and metrics), ``repairs_``,
    ``evaluation_`` (the held-out test rows' metrics beside the majority-class baseline),
    ``model_`` (the torch network), ``run_`` (the :class:`nnrecipe.Run`) and ``run_dir_``.
    """

    _numeric_y = False

    def fit(self, X: Any, y: Any) -> NNRecipeClassifier:
        """Train on X (arrays or a DataFrame of mixed columns) and the labels y."""
        run, y = self._fit(X, y)
        self.classes_ = np.unique(y)
        # the run's probability columns (named by its classes) in classes_' order
        named = {str(c): f"proba_{c}" for c in run.preprocessor.classes}
        self._proba_columns = [named[str(c)] for c in self.classes_]
        return self

    def _task_of(self, y: np.ndarray) -> str:
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise EstimatorDataError(f"y holds one class ({classes[0]!r}); a classifier needs "
                                     "at least two")
        return "binary" if len(classes) == 2 else "multiclass"

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per ``classes_`` entry; rows sum to one."""
        proba = self._predicted(X)[self._proba_columns].to_numpy(dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each row (a value of ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class NNRecipeRegressor(RegressorMixin, _NNRecipeEstimator):
    """A neural network regressor planned, trained and checked by nnrecipe.

    Parameters and fitted attributes as :class:`NNRecipeClassifier` (no ``classes_``;
    ``evaluation_`` compares with predicting the training mean)."""

    _numeric_y = True

    def fit(self, X: Any, y: Any) -> NNRecipeRegressor:
        """Train on X (arrays or a DataFrame of mixed columns) and the numbers y."""
        self._fit(X, y)
        return self

    def _task_of(self, y: np.ndarray) -> str:
        return "regression"

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values, in y's units."""
        return self._predicted(X)["prediction"].to_numpy(dtype=np.float64)


# ---- helpers ---------------------------------------------------------------------------------
def _frame(X: Any, columns: list[str]) -> pd.DataFrame:
    """X as the table the pipeline reads. A DataFrame keeps its columns' kinds (renamed, by
    position, to the names used in fit) and its index when that is unique (the doctor's
    label findings name rows by it); an array becomes one column per feature, an object
    column of numbers read as numbers."""
    if isinstance(X, pd.DataFrame):
        frame = X.copy()
        frame.columns = columns
        if not frame.index.is_unique:
            frame.index = pd.RangeIndex(len(frame))
    else:
        frame = pd.DataFrame(np.asarray(X), columns=columns).infer_objects()
    for name in frame.select_dtypes(include="object").columns:
        odd = frame[name].map(lambda v: isinstance(v, Collection) and not isinstance(v, str))
        if odd.any():
            bad = frame[name][odd].iloc[0]
            raise CellTypeError(f"X column {name!r} holds a {type(bad).__name__}: each cell's "
                                "argument must be a string or a number, or missing")
    return frame


def _target_name(name: Any, columns: list[str]) -> str:
    """The target column's name: y's own (a Series' name) when it is a string no feature
    has, else ``target`` (with underscores added until it is free)."""
    if not isinstance(name, str) or not name or name in columns:
        name = "target"
    while name in columns:
        name += "_"
    return name
