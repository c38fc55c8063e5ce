"""Turn a table into the float matrix the network reads, fitted on the training split only.

Numeric columns are imputed with the training median (plus a 0/1 "was missing" column, so
the network can tell an imputed value from a real one) and scaled (``data.scale``).
Booleans become 0/1. Datetimes become year, month, day, weekday (and hour when the clock
varies). Categoricals with few levels are one-hot encoded; with many levels they get a
learned embedding, and their integer codes ride in the last columns of the same matrix
(the model splits them off). Constant, id-like and free-text columns are dropped.
Everything fitted is plain JSON (``preprocess.json``): no pickle.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .profile import FLOAT32_MAX, show_names

__all__ = ["Preprocessor", "categorical_encoding", "embedding_dim", "ONE_HOT_MAX_LEVELS",
           "class_target_state", "numeric_target_state"]

ONE_HOT_MAX_LEVELS = 10  # more levels than this: an embedding is smaller than a one-hot block
_TRUE = {"true", "yes", "y", "t", "1", "1.0"}
_DATE_PARTS = ("year", "month", "day", "weekday", "hour")


def categorical_encoding(levels: int) -> str:
    return "onehot" if levels <= ONE_HOT_MAX_LEVELS else "embedding"


def embedding_dim(levels: int) -> int:
    """fastai's rule of thumb: grows slowly with the number of levels, at most 600."""
    return int(min(600, round(1.6 * levels**0.56)))


class Preprocessor:
    """Fitted column transforms. ``fit`` on train, ``transform`` anything with the same columns."""

    def __init__(self, state: dict[str, Any]):
        self.state = state

    # ---- fitting -------------------------------------------------------------------------
    @classmethod
    def fit(cls, train: pd.DataFrame, *, target: str, task: str, kinds: dict[str, str],
            drop: dict[str, str], scale: str, target_activation: str,
            target_transform: dict[str, Any] | None = None) -> Preprocessor:
        """``target_transform``: the target's state when it was measured elsewhere (a
        streamed table counts its classes or moments over every training row, while
        ``train`` is a sample of them); by default it is fitted on ``train``."""
        numeric, onehot, embed = [], [], []
        for col, kind in kinds.items():
            if col in drop:
                continue
            s = train[col]
            if kind == "numeric":
                numeric += _fit_numeric(col, pd.to_numeric(s, errors="coerce"), scale)
            elif kind == "boolean":
                numeric += _fit_numeric(col, _as_bool(s), "none", source_kind="boolean")
            elif kind == "datetime":
                numeric += _fit_datetime(col, s, scale)
            else:  # categorical
                levels = sorted(s.dropna().astype(str).unique().tolist())
                if s.isna().any():
                    levels.append("(missing)")
                spec = {"name": col, "levels": levels}
                (onehot if categorical_encoding(len(levels)) == "onehot" else embed).append(spec)
        state = {
            "version": 1,
            "target": target,
            "task": task,
            "scale": scale,
            "columns": list(kinds),
            "dropped": drop,
            "numeric": numeric,
            "onehot": onehot,
            "embed": embed,
            "target_transform": (target_transform if target_transform is not None
                                 else _fit_target(train[target], task, target_activation)),
        }
        return cls(state)

    # ---- what the model needs to know -----------------------------------------------------
    @property
    def n_numeric(self) -> int:
        """Float input columns: numeric parts plus one-hot blocks."""
        return len(self.state["numeric"]) + sum(len(c["levels"]) for c in self.state["onehot"])

    @property
    def embedding_sizes(self) -> list[tuple[int, int]]:
        """(levels + 1 for 'unseen', dim) for each embedded column."""
        return [(len(c["levels"]) + 1, embedding_dim(len(c["levels"])))
                for c in self.state["embed"]]

    @property
    def feature_names(self) -> list[str]:
        names = [n["name"] for n in self.state["numeric"]]
        for c in self.state["onehot"]:
            names += [f"{c['name']}={lvl}" for lvl in c["levels"]]
        return names + [f"{c['name']}#code" for c in self.state["embed"]]

    @property
    def classes(self) -> list[Any]:
        return self.state["target_transform"].get("classes", [])

    # ---- applying -------------------------------------------------------------------------
    def transform(self, df: pd.DataFrame, what: str = "data") -> np.ndarray:
        """Float32 matrix (rows, n_numeric + n_embedded)."""
        needed = [c for c in self.state["columns"] if c not in self.state["dropped"]]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise DataError(f"{what} lacks column(s) {missing} that the model was trained on; "
                            "add them (values may be empty)")
        # filled column by column: in column order (one contiguous write each), then turned
        # into the row order the network reads in one pass
        out = np.empty((len(df), self.n_numeric + len(self.state["embed"])), dtype=np.float32,
                       order="F")
        j = 0
        for spec in self.state["numeric"]:
            out[:, j] = _apply_numeric(df[spec["source"]], spec, what)
            j += 1
        for spec in self.state["onehot"]:
            codes = _codes(df[spec["name"]], spec["levels"])
            block = np.zeros((len(df), len(spec["levels"])), dtype=np.float32)
            known = codes >= 0
            block[np.nonzero(known)[0], codes[known]] = 1.0
            out[:, j:j + len(spec["levels"])] = block
            j += len(spec["levels"])
        for spec in self.state["embed"]:
            out[:, j] = _codes(df[spec["name"]], spec["levels"]) + 1  # 0 = unseen level
            j += 1
        return np.ascontiguousarray(out)

    def transform_target(self, y: pd.Series) -> np.ndarray:
        """Class codes (int64) for classification, scaled floats for regression."""
        t = self.state["target_transform"]
        if self.state["task"] == "regression":
            if not pd.api.types.is_numeric_dtype(y):
                raise DataError(f"target '{y.name}' must be numeric for regression")
            v = y.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = int((~np.isfinite(v) | (np.abs(v) > FLOAT32_MAX)).sum())
            if bad:
                raise DataError(f"target {show_names([y.name])} has {bad:,} missing, infinite "
                                "or beyond ±3.4e38 value(s); give finite numbers in that range")
            return ((y.to_numpy(dtype=np.float64) - t["loc"]) / t["scale"]).astype(np.float32)
        lookup = {str(c): i for i, c in enumerate(t["classes"])}
        codes = y.astype(str).map(lookup)
        if codes.isna().any():
            unseen = sorted(set(y.astype(str)[codes.isna()]))
            raise DataError(f"target {show_names([y.name])} holds {len(unseen):,} class(es) "
                            f"that the training data did not have: {show_names(unseen)}; "
                            f"known classes ({len(t['classes']):,}): "
                            f"{show_names(t['classes'])}")
        return codes.to_numpy(dtype=np.int64, copy=True)

    def inverse_target(self, values: np.ndarray) -> np.ndarray:
        t = self.state["target_transform"]
        return values * t["scale"] + t["loc"]

    def to_dict(self) -> dict[str, Any]:
        return self.state

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessor:
        return cls(d)


# ---- helpers ---------------------------------------------------------------------------------
def _fit_numeric(col: str, v: pd.Series, scale: str, *, source_kind: str = "numeric",
                 part: str | None = None) -> list[dict[str, Any]]:
    v = v.astype(float)
    fill = float(v.median()) if v.notna().any() else 0.0
    filled = v.fillna(fill)
    center, spread = 0.0, 1.0
    if scale == "standard":
        center, spread = float(filled.mean()), float(filled.std(ddof=0))
    elif scale == "minmax":
        center, spread = float(filled.min()), float(filled.max() - filled.min())
    spec = {"name": col if part is None else f"{col}.{part}", "source": col,
            "kind": source_kind, "part": part, "indicator": False, "fill": fill,
            "center": center, "scale": spread if spread > 0 else 1.0}
    specs = [spec]
    if v.isna().any():
        specs.append({**spec, "name": f"{spec['name']}__missing", "indicator": True,
                      "fill": 0.0, "center": 0.0, "scale": 1.0})
    return specs


def _fit_datetime(col: str, s: pd.Series, scale: str) -> list[dict[str, Any]]:
    t = _as_datetime(s)
    specs = []
    for part in _DATE_PARTS:
        v = _date_part(t, part)
        if v.nunique() > 1:
            specs += _fit_numeric(col, v, scale, source_kind="datetime", part=part)
    return specs


def _apply_numeric(s: pd.Series, spec: dict[str, Any], what: str) -> np.ndarray:
    kind = spec["kind"]
    if kind == "boolean":
        v = _as_bool(s)
    elif kind == "datetime":
        v = _date_part(_as_datetime(s), spec["part"])
    else:
        v = pd.to_numeric(s, errors="coerce")
        bad = s.notna() & v.isna()
        if bad.any():
            raise DataError(f"{what}: column '{spec['source']}' should be numeric but holds "
                            f"{s[bad].iloc[0]!r}; fix or blank those cells")
    v = v.to_numpy(dtype=np.float64)
    if spec["indicator"]:
        return np.isnan(v).astype(np.float32)
    if np.isinf(v).any() or (np.abs(v) > FLOAT32_MAX).any():
        n_bad = int((np.isinf(v) | (np.abs(v) > FLOAT32_MAX)).sum())
        raise DataError(f"{what}: column {show_names([spec['source']])} has {n_bad:,} "
                        "infinite value(s) or beyond ±3.4e38; replace them with finite "
                        "numbers within that range or leave the cells empty (missing values "
                        "are imputed)")
    v = np.where(np.isnan(v), spec["fill"], v)
    return ((v - spec["center"]) / spec["scale"]).astype(np.float32)


def _as_bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.astype(float)
    return s.map(lambda x: np.nan if pd.isna(x) else float(str(x).strip().lower() in _TRUE))


def _as_datetime(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(s, errors="coerce", format="mixed")


def _date_part(t: pd.Series, part: str) -> pd.Series:
    return getattr(t.dt, "day_of_week" if part == "weekday" else part).astype(float)


def _codes(s: pd.Series, levels: list[str]) -> np.ndarray:
    """Index of each value in ``levels``; -1 for a level not seen in training."""
    v = s.astype(str).where(s.notna(), "(missing)")
    return pd.Index(levels).get_indexer(v).astype(np.int64)


def _fit_target(y: pd.Series, task: str, activation: str) -> dict[str, Any]:
    if task != "regression":
        counts = y.astype(str).value_counts()
        classes = sorted(y.dropna().unique().tolist(), key=lambda c: (str(type(c)), c))
        classes = [c.item() if hasattr(c, "item") else c for c in classes]
        return {"classes": classes, "counts": [int(counts[str(c)]) for c in classes],
                "loc": 0.0, "scale": 1.0}
    v = y.to_numpy(dtype=np.float64)
    return numeric_target_state(float(v.min()), float(v.max()), float(v.mean()),
                                float(v.std()), activation)


def class_target_state(counts: dict[Any, int]) -> dict[str, Any]:
    """The target state of classes counted elsewhere (value → training rows), as
    ``_fit_target`` makes it from the rows themselves."""
    classes = sorted(counts, key=lambda c: (str(type(c)), c))
    return {"classes": classes, "counts": [int(counts[c]) for c in classes],
            "loc": 0.0, "scale": 1.0}


def numeric_target_state(lo: float, hi: float, mean: float, std: float, activation: str
                         ) -> dict[str, Any]:
    """A regression target's scaling from its range and moments (ddof 0)."""
    lo_, hi_, std = lo, hi, std or 1.0
    if activation in ("sigmoid", "tanh"):
        # bounded output: map the target's range onto the activation's range
        if lo >= 0 and hi <= 1:
            lo, hi = 0.0, 1.0
        span = (hi - lo) or 1.0
        if activation == "sigmoid":
            loc, scale = lo, span
        else:
            loc, scale = (lo + hi) / 2, span / 2
    elif activation in ("softplus", "relu"):
        loc, scale = 0.0, std  # keep the sign: positive stays positive
    else:
        loc, scale = mean, std
    return {"loc": loc, "scale": scale, "activation": activation, "mean": mean, "std": std,
            "min": lo_, "max": hi_}
