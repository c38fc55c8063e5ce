"""Look at the data before training anything: the profile that plans and checks rely on."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..lazy import lazy
from .load import infer_kinds

sk_metrics = lazy("sklearn.metrics")
sk_tree = lazy("sklearn.tree")

__all__ = ["DataProfile", "profile_table", "check_target", "check_numbers", "infer_task",
           "split_overlap", "key_overlap", "sample_leak_suspects", "FLOAT32_MAX", "show_names"]

TASKS = ("binary", "multiclass", "regression")
MAX_CLASSES_FROM_INTEGERS = 20  # an integer target with more distinct values is a quantity
# The network reads float32: a larger magnitude becomes infinity there. The same bound keeps
# a regression target's squared errors far inside float64 (sqrt(float64 max) ≈ 1.3e154).
FLOAT32_MAX = float(np.finfo(np.float32).max)
NAMES_SHOWN = 5  # names listed in a one-line message; the rest are counted
NAME_CHARS = 40  # a listed name is cut to this many characters


@dataclass
class DataProfile:
    """What was seen in the table. Serialised as ``profile.json``."""

    n_rows: int
    n_columns: int
    target: str
    task: str
    task_reason: str
    columns: dict[str, dict[str, Any]]
    target_summary: dict[str, Any]
    duplicate_rows: int
    constant_columns: list[str]
    id_like_columns: list[str]
    text_columns: list[str]
    leak_suspects: list[dict[str, Any]]
    dropped_target_missing: int = 0
    splits: dict[str, Any] = field(default_factory=dict)
    # "table", or the non-tabular kind ("image", "volume", "audio", "text", "series") with
    # what the plan needs about its inputs (shape, vocabulary size, window...)
    modality: str = "table"
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_kinds(self) -> dict[str, str]:
        return {c: s["kind"] for c, s in self.columns.items() if c != self.target}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataProfile:
        return cls(**d)


def check_target(df: pd.DataFrame, target: str, what: str = "data") -> None:
    if target not in df.columns:
        cols = ", ".join(_clip(c) for c in df.columns[:30]) + (
            f" ... ({df.shape[1]:,} in all)" if df.shape[1] > 30 else "")
        raise DataError(f"target column {show_names([target])} is not in {what}; its columns "
                        f"are: {cols}")
    if df[target].notna().sum() == 0:
        raise DataError(f"target column {show_names([target])} is missing in every row; "
                        "choose a column that holds the labels")
    if df.shape[1] < 2:
        raise DataError(f"{what} has only the target column {show_names([target])}; add "
                        "feature columns")


def _clip(name: Any) -> str:
    """A name as it can stand in a one-line message: control characters escaped, cut short."""
    text = str(name)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 3] + "..."


def show_names(names: list[Any], total: int | None = None) -> str:
    """The first few ``names`` for a one-line message (escaped, cut short), the rest counted:
    ``'a', 'b', 'c' and 4,997 more``."""
    total = len(names) if total is None else total
    shown = []
    for n in names[:NAMES_SHOWN]:
        text = repr(str(n))  # escapes newlines and control characters: the line stays one
        shown.append(text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 4] + "...'")
    rest = total - len(shown)
    return ", ".join(shown) + (f" and {rest:,} more" if rest > 0 else "")


def check_numbers(df: pd.DataFrame, what: str = "data", target: str | None = None) -> None:
    """Refuse infinite numbers and numbers beyond float32's range (±3.4e38) in any numeric
    column, the target included: the network computes in float32, the profile's trees and
    the metrics in float64, and each fails on them with an unreadable error. Called before
    anything is profiled, split or written."""
    problems, columns = [], []
    for col in df.columns:
        s = df[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
            n_inf = int(np.isinf(v).sum())
            n_big = int((np.isfinite(v) & (np.abs(v) > FLOAT32_MAX)).sum())
        if n_inf or n_big:
            columns.append(col)
            parts = ([f"{n_inf:,} infinite"] if n_inf else []) + (
                [f"{n_big:,} beyond ±3.4e38"] if n_big else [])
            label = show_names([col]) + (" (the target)" if col == target else "")
            problems.append(f"{label}: {' and '.join(parts)}")
    if problems:
        more = len(problems) - NAMES_SHOWN
        listed = "; ".join(problems[:NAMES_SHOWN]) + (f"; and {more:,} more column(s)"
                                                       if more > 0 else "")
        raise DataError(f"{what} holds numbers a network cannot use in {listed}; replace them "
                        "with finite numbers within ±3.4e38 (rescale the column, e.g. take "
                        "its log) or leave those cells empty")


def infer_task(y: pd.Series, requested: str = "auto") -> tuple[str, str]:
    """(task, reason) for a target with its missing rows removed."""
    distinct = y.nunique()
    head = y.iloc[0] if len(y) else None
    name, first = show_names([y.name]), _clip(repr(head.item() if hasattr(head, "item")
                                                   else head))
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if requested != "auto":
        if requested not in TASKS:
            raise DataError(f"--task must be one of auto, {', '.join(TASKS)}; got '{requested}'")
        if requested == "regression" and not numeric:
            raise DataError(f"--task regression needs a numeric target, but {name} holds "
                            f"values like {first}; use --task auto for classification")
        if requested != "regression" and distinct < 2:
            raise DataError(f"target {name} has a single class ({first}); "
                            "a classifier needs at least two")
        if requested == "binary" and distinct != 2:
            raise DataError(f"--task binary needs exactly 2 classes; {name} has {distinct}")
        return requested, f"set by the user (--task {requested})"
    if distinct < 2:
        raise DataError(f"target {name} has a single value ({first}) in every row; "
                        "there is nothing to learn: choose another target")
    if not numeric:
        task = "binary" if distinct == 2 else "multiclass"
        return task, f"the target holds {distinct} distinct non-numeric labels"
    integral = bool(np.all(np.mod(y.to_numpy(dtype=float), 1) == 0))
    if distinct == 2:
        return "binary", "the target takes exactly two values"
    if integral and distinct <= min(MAX_CLASSES_FROM_INTEGERS, max(3, len(y) // 10)):
        return "multiclass", (f"the target holds {distinct} distinct integers "
                              f"(≤ {MAX_CLASSES_FROM_INTEGERS}): read as class labels")
    return "regression", f"the target is numeric with {distinct} distinct values"


def profile_table(df: pd.DataFrame, target: str, task: str = "auto", *,
                  dropped_target_missing: int = 0) -> DataProfile:
    """Profile ``df``, whose rows all have a target (the caller drops and counts the others)."""
    check_target(df, target)
    check_numbers(df, target=target)
    task, task_reason = infer_task(df[target], task)
    kinds = infer_kinds(df.drop(columns=[target]))
    columns = {c: _column_stats(df[c], kinds[c]) for c in kinds}
    columns[target] = _column_stats(df[target], "target")
    constant = [c for c in kinds if columns[c]["distinct"] <= 1]
    return DataProfile(
        n_rows=len(df),
        n_columns=df.shape[1],
        target=target,
        task=task,
        task_reason=task_reason,
        columns=columns,
        target_summary=target_summary(df[target], task),
        duplicate_rows=int(df.duplicated().sum()),
        constant_columns=constant,
        id_like_columns=[c for c, k in kinds.items() if k == "id"],
        text_columns=[c for c, k in kinds.items() if k == "text"],
        leak_suspects=_leak_suspects(df, target, task, kinds, set(constant)),
        dropped_target_missing=dropped_target_missing,
    )


def _column_stats(s: pd.Series, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": kind,
        "dtype": str(s.dtype),
        "missing_share": float(s.isna().mean()),
        "distinct": int(s.nunique()),
    }
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        v = s.to_numpy(dtype=float)
        finite = v[np.isfinite(v)]
        out["n_infinite"] = int(np.isinf(v).sum())
        if finite.size:
            out.update(mean=float(finite.mean()), std=float(finite.std()),
                       min=float(finite.min()), max=float(finite.max()),
                       histogram=_histogram(finite, out["distinct"]))
    elif kind in ("categorical", "boolean", "target"):
        top = s.astype(str).value_counts().head(5)
        out["top"] = {str(k): int(v) for k, v in top.items()}
    return out


HISTOGRAM_BINS = 20  # enough to show a shape in a report's small histogram


def _histogram(finite: np.ndarray, distinct: int) -> dict[str, list]:
    """Bin counts and edges of the finite values (fewer bins for few distinct values)."""
    counts, edges = np.histogram(finite, bins=max(1, min(HISTOGRAM_BINS, distinct)))
    return {"counts": counts.tolist(), "edges": edges.tolist()}


def target_summary(y: pd.Series, task: str) -> dict[str, Any]:
    if task == "regression":
        v = y.to_numpy(dtype=float)
        return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
                "max": float(v.max())}
    counts = y.value_counts()
    return {
        "classes": {str(k): int(v) for k, v in counts.sort_index().items()},
        "majority_share": float(counts.iloc[0] / counts.sum()),
        "minority_share": float(counts.iloc[-1] / counts.sum()),
    }


def _leak_suspects(df, target, task, kinds, skip, *, max_rows=20_000, max_groups=20,
                   min_acc=0.99, min_error_cut=0.9, min_r2=0.98) -> list[dict[str, Any]]:
    """Features that alone predict the target almost perfectly.

    A numeric feature gets a decision tree on that feature alone, with at most
    ``max_groups`` leaves of at least 10 rows; a categorical one (at most ``max_groups``
    levels) a look-up table of its levels. Neither can memorise rows, so a near-perfect
    score means the feature carries the answer: classification accuracy ≥ ``min_acc`` with
    at least ``min_error_cut`` of the majority baseline's errors removed, or R² ≥ ``min_r2``."""
    if len(df) > max_rows:
        df = df.sample(max_rows, random_state=0)
    if len(df) < 10 * 2:
        return []
    y = df[target]
    y_fit = y.astype(float).to_numpy() if task == "regression" else y.astype(str).to_numpy()
    base = 0.0 if task == "regression" else float(y.value_counts(normalize=True).iloc[0])
    out = []
    for col, kind in kinds.items():
        if col in skip or kind in ("id", "text", "datetime"):
            continue
        s = df[col]
        if pd.api.types.is_numeric_dtype(s):
            fitted = _single_feature_tree(s, y_fit, task, max_groups)
        elif s.nunique() <= max_groups:
            groups = s.astype(str).where(s.notna(), "(missing)")  # NaN stays NaN in astype
            fitted = (y.astype(float).groupby(groups).transform("mean").to_numpy()
                      if task == "regression" else
                      y.astype(str).groupby(groups).transform(lambda v: v.mode().iloc[0])
                      .to_numpy())
        else:
            continue  # too many levels for a fair look-up table
        if task == "regression":
            r2 = float(sk_metrics.r2_score(y_fit, fitted))
            if r2 >= min_r2:
                out.append({"column": col, "metric": "single_feature_r2", "score": round(r2, 4)})
            continue
        acc = float(np.mean(fitted == y_fit))
        if acc >= min_acc and (1 - acc) <= (1 - min_error_cut) * (1 - base):
            out.append({"column": col, "metric": "single_feature_accuracy",
                        "score": round(acc, 4), "majority_share": round(base, 4)})
    return out


def sample_leak_suspects(x: np.ndarray, labels: np.ndarray, *, max_rows: int = 5_000,
                         min_eta2: float = 0.9, max_candidates: int = 20, max_groups: int = 20,
                         min_acc: float = 0.99, min_error_cut: float = 0.9,
                         copy_eta2: float = 0.98) -> list[dict[str, Any]]:
    """Single input positions (a pixel, a time step, an audio sample) that alone predict
    the class: the tables' leak check (``_leak_suspects``) for arrays of samples. Every
    position is screened at once by its correlation ratio η² (the share of its variance
    that lies between the classes' means); the few with η² ≥ ``min_eta2`` get the tables'
    one-feature tree, judged by the same accuracy bars. Named by their index in a sample.

    A position with η² ≥ ``copy_eta2`` is a suspect even below the accuracy bar: it is
    the class code plus a little noise (a pixel that encodes one of ten digits with noise
    of sd 0.3: η² 0.993, a one-feature tree 90% right). No position of the digits images
    or of the benchmark's sequences reaches 0.65."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf" or len(x) < 20:
        return []
    if len(x) > max_rows:
        keep = np.random.default_rng(0).choice(len(x), max_rows, replace=False)
        x, labels = x[keep], np.asarray(labels)[keep]
    shape, flat = x.shape[1:], x.reshape(len(x), -1).astype(np.float64)
    labels = np.asarray(labels).astype(str)
    codes, y = np.unique(labels, return_inverse=True)
    if len(codes) < 2:
        return []
    counts = np.bincount(y).astype(float)
    means = np.zeros((len(codes), flat.shape[1]))
    np.add.at(means, y, flat)
    means /= counts[:, None]
    total = flat.var(axis=0) * len(flat)
    between = (counts[:, None] * (means - flat.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta2 = np.where(total > 0, between / total, 0.0)
    candidates = [i for i in np.argsort(-eta2)[:max_candidates] if eta2[i] >= min_eta2]
    base = float(counts.max() / counts.sum())
    out = []
    for i in candidates:
        fitted = _single_feature_tree(pd.Series(flat[:, i]), labels, "multiclass", max_groups)
        acc = float(np.mean(fitted == labels))
        where = tuple(int(v) for v in np.unravel_index(i, shape)) if shape else ()
        if acc >= min_acc and (1 - acc) <= (1 - min_error_cut) * (1 - base):
            out.append({"column": f"input at {where}", "metric": "single_feature_accuracy",
                        "score": round(acc, 4), "majority_share": round(base, 4)})
        elif eta2[i] >= copy_eta2:
            out.append({"column": f"input at {where}", "metric": "correlation_ratio",
                        "score": round(float(eta2[i]), 4), "majority_share": round(base, 4),
                        "single_feature_accuracy": round(acc, 4)})
    return out


def _single_feature_tree(s: pd.Series, y: np.ndarray, task: str, leaves: int) -> np.ndarray:
    x = s.astype(float).replace([np.inf, -np.inf], np.nan).fillna(-1e30).to_numpy()[:, None]
    cls = (sk_tree.DecisionTreeRegressor if task == "regression"
           else sk_tree.DecisionTreeClassifier)
    with warnings.catch_warnings():  # e.g. "more classes than half the rows": not the user's
        warnings.simplefilter("ignore")
        tree = cls(max_leaf_nodes=leaves, min_samples_leaf=10, random_state=0).fit(x, y)
    return tree.predict(x)


def split_overlap(train: pd.DataFrame, others: dict[str, pd.DataFrame], features: list[str]
                  ) -> dict[str, Any]:
    """Rows of each other split whose feature values also appear in the training split."""
    def row_hash(d: pd.DataFrame) -> np.ndarray:
        return pd.util.hash_pandas_object(d[features], index=False).to_numpy()

    return key_overlap(row_hash(train), {name: row_hash(d) for name, d in others.items()})


def key_overlap(train: Any, others: dict[str, Any]) -> dict[str, Any]:
    """How many keys (a row's hash, a sample's bytes) of each other split are also among
    the training split's: the profile's ``duplicates_across_splits``."""
    def arr(keys: Any) -> np.ndarray:  # hashes stay a vectorised array; bytes as objects
        return keys if isinstance(keys, np.ndarray) else np.array(keys, dtype=object)

    seen = arr(train)
    out: dict[str, Any] = {"train_rows": len(seen)}
    for name, keys in others.items():
        out[f"{name}_rows"] = len(keys)
        out[f"{name}_rows_also_in_train"] = int(np.isin(arr(keys), seen).sum())
    return out
