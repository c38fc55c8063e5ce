"""The systems compared, each at its defaults: ``fit(train, target, task, seed, threads)``
returns a fitted model with ``predict(X)`` (labels or values) and, for classification,
``proba(X, classes)`` (one column per entry of ``classes``, in that order).

Only the training rows reach ``fit``; the test rows are given to nnrecipe for its own final
evaluation (never trained on, as ``nnrecipe.fit(test=...)`` documents), and to no other
system until ``predict``.
"""

from __future__ import annotations

import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PEERS", "SYSTEMS", "fit_system", "system_version"]

PEERS = ["mlp", "hgb", "lgbm", "realmlp"]
SYSTEMS = ["nnrecipe", *PEERS]

#: What each name stands for, as the table's notes print it.
DESCRIPTIONS = {
    "nnrecipe": "nnrecipe.fit(train, target, task=task, overrides={'seed': s}, test=test): "
                "the default plan (its validation rows split off the training rows)",
    "mlp": "scikit-learn MLPClassifier/MLPRegressor(random_state=s) after median imputation "
           "+ StandardScaler of the numbers and OneHotEncoder(handle_unknown='ignore') of the "
           "categories; the regressor inside TransformedTargetRegressor(StandardScaler())",
    "hgb": "scikit-learn HistGradientBoostingClassifier/Regressor(random_state=s), "
           "categories native (categorical_features='from_dtype')",
    "lgbm": "LightGBM LGBMClassifier/LGBMRegressor(random_state=s, n_jobs=threads, "
            "verbose=-1), categories native (pandas category columns)",
    "realmlp": "pytabkit RealMLP_TD_S_Classifier/Regressor(random_state=s, n_threads=threads, "
               "device='cpu'); missing numbers filled with the training medians first (RealMLP "
               "refuses NaN in numeric columns)",
}

_PACKAGES = {"nnrecipe": "nnrecipe", "mlp": "scikit-learn", "hgb": "scikit-learn",
             "lgbm": "lightgbm", "realmlp": "pytabkit"}


def system_version(system: str) -> str:
    return version(_PACKAGES[system])


class Fitted:
    """A fitted model behind the two calls the benchmark scores with."""

    def __init__(self, model: Any, classes: Any = None, before: Any = None,
                 extra: dict | None = None):
        self.model = model
        self.classes = None if classes is None else [str(c) for c in classes]
        self.before = before  # a transform of X applied before the model (or None)
        self.extra = extra or {}

    def _x(self, X: pd.DataFrame) -> pd.DataFrame:
        return X if self.before is None else self.before(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict(self._x(X)))

    def proba(self, X: pd.DataFrame, classes: list[str]) -> np.ndarray:
        p = np.asarray(self.model.predict_proba(self._x(X)), dtype=np.float64)
        order = [self.classes.index(c) for c in classes]
        return p[:, order]


def fit_system(system: str, train: pd.DataFrame, target: str, task: str, seed: int,
               threads: int, test: pd.DataFrame | None = None,
               keep_runs: Path | None = None, overrides: dict | None = None
               ) -> tuple[Fitted, float]:
    """Fit ``system`` on ``train``; the fitted model and the seconds the fit took."""
    X, y = train.drop(columns=[target]), train[target]
    if system == "nnrecipe":
        return _nnrecipe(train, target, task, seed, test, keep_runs, overrides or {})
    start = time.perf_counter()
    fitted = {"mlp": _mlp, "hgb": _hgb, "lgbm": _lgbm, "realmlp": _realmlp}[system](
        X, y, task, seed, threads)
    return fitted, time.perf_counter() - start


# ---- nnrecipe ------------------------------------------------------------------------------------
class _NNRecipeModel:
    def __init__(self, run: Any):
        self.run = run

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.run.predict(X)["prediction"].to_numpy()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out = self.run.predict(X)
        return out[[f"proba_{c}" for c in self.run.preprocessor.classes]].to_numpy()


#: nnrecipe.fit's stages up to the end of training (environment.json times each): its fit
#: time. Left out: ``imports`` (paid once per process), and the stages after training
#: (scoring the test rows it was given, writing the run directory, the report).
#: The plan's keys each nnrecipe record keeps (what the default plan chose for the data).
_PLAN_KEYS = ("model.hidden_layers", "model.width", "model.dropout", "optimizer.name",
              "optimizer.lr", "optimizer.weight_decay", "train.batch_size", "train.max_epochs",
              "train.threads")
_FIT_STAGES = ("load", "profile", "plan", "preflight", "epochs", "after_training", "ensemble")


def _nnrecipe(train: pd.DataFrame, target: str, task: str, seed: int,
              test: pd.DataFrame | None, keep_runs: Path | None, overrides: dict
              ) -> tuple[Fitted, float]:
    import nnrecipe
    from nnrecipe.runs import read_json

    with tempfile.TemporaryDirectory() as tmp:
        out = (keep_runs / f"{target}-seed{seed}-{time.time_ns()}" if keep_runs is not None
               else Path(tmp) / "run")
        start = time.perf_counter()
        run = nnrecipe.fit(train, target, task=task, overrides={**overrides, "seed": seed},
                           test=test,
                           out=out, progress=False)
        call_s = time.perf_counter() - start
        stages = read_json(out / "environment.json").get("stages") or {}
    fit_s = sum(float(stages.get(k, 0.0)) for k in _FIT_STAGES)
    training = (run.evaluation or {}).get("training", {})
    extra = {"call_s": round(call_s, 3), "stages": stages, "epochs": training.get("epochs"),
             "best_epoch": training.get("best_epoch"), "stop": training.get("stop_reason"),
             "findings": [f.code for f in run.findings],
             "plan": {k: run.plan[k] for k in _PLAN_KEYS if k in run.plan}}
    classes = list(run.preprocessor.classes) if task != "regression" else None
    return Fitted(_NNRecipeModel(run), classes, extra=extra), fit_s


# ---- scikit-learn's MLP --------------------------------------------------------------------------
def _columns(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)
                   or X[c].dtype == object]
    return [c for c in X.columns if c not in categorical], categorical


def _mlp(X: pd.DataFrame, y: pd.Series, task: str, seed: int, threads: int) -> Fitted:
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric, categorical = _columns(X)
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    if task == "regression":
        model = TransformedTargetRegressor(
            make_pipeline(prep, MLPRegressor(random_state=seed)), transformer=StandardScaler())
    else:
        model = make_pipeline(prep, MLPClassifier(random_state=seed))
    model.fit(X, y)
    mlp = model.regressor_[-1] if task == "regression" else model[-1]
    return Fitted(model, getattr(model, "classes_", None), extra={"n_iter": int(mlp.n_iter_)})


# ---- gradient-boosted trees ----------------------------------------------------------------------
def _hgb(X: pd.DataFrame, y: pd.Series, task: str, seed: int, threads: int) -> Fitted:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if task == "regression" else \
        HistGradientBoostingClassifier
    model = cls(categorical_features="from_dtype", random_state=seed).fit(X, y)
    return Fitted(model, getattr(model, "classes_", None),
                  extra={"n_iter": int(model.n_iter_)})


def _lgbm(X: pd.DataFrame, y: pd.Series, task: str, seed: int, threads: int) -> Fitted:
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMRegressor if task == "regression" else LGBMClassifier
    model = cls(random_state=seed, n_jobs=threads, verbose=-1).fit(X, y)
    return Fitted(model, getattr(model, "classes_", None))


# ---- RealMLP -------------------------------------------------------------------------------------
class _Medians:
    """Missing numbers filled with the training rows' medians (RealMLP refuses NaN there)."""

    def __init__(self, X: pd.DataFrame):
        numeric, _ = _columns(X)
        self.medians = X[numeric].median()

    def __call__(self, X: pd.DataFrame) -> pd.DataFrame:
        return X.fillna(self.medians) if len(self.medians) else X


def _realmlp(X: pd.DataFrame, y: pd.Series, task: str, seed: int, threads: int) -> Fitted:
    from pytabkit import RealMLP_TD_S_Classifier, RealMLP_TD_S_Regressor

    cls = RealMLP_TD_S_Regressor if task == "regression" else RealMLP_TD_S_Classifier
    before = _Medians(X)
    model = cls(random_state=seed, n_threads=threads, device="cpu")
    model.fit(before(X), y.to_numpy())
    return Fitted(model, getattr(model, "classes_", None), before=before)
