"""Time series as supervised windows, split by time, with the dumb forecasts to beat.

A series of T rows and F columns becomes windows: window i reads rows i..i+W-1 and predicts
the target column(s) at rows i+W..i+W+H-1. ``time_split`` cuts the rows so that the test
period is last, validation before it and training first, and no row is a target in two
splits; a validation or test window may still read the rows just before its period as
input, since that is the past it would have in use.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import DataError

__all__ = ["DATE_PARSE_SHARE", "find_time_column", "make_windows", "time_split",
           "naive_forecast", "fit_scaler", "scale", "unscale"]

DATE_PARSE_SHARE = 0.95  # a text column is a date column when this share of rows parse
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,2}:\d{2}"
                        r"|[A-Za-z]{3,9}\.? \d{1,2},? \d{2,4}")  # 2020-01, 1/2/20, 9:30, May 1 2020
_TIME_NAME = re.compile(r"(^|[^a-z])(time|date|datetime|timestamp|year|month|week|day|hour|"
                        r"quarter|period|ds)([^a-z]|$)", re.IGNORECASE)

TargetIndex = int | Sequence[int]


def find_time_column(df: pd.DataFrame) -> str | None:
    """The column that orders the rows in time: a datetime column; else a text column that
    parses as dates for DATE_PARSE_SHARE of its rows; else a numeric column named like
    time/date/year/month/... whose values only go up. None when there is none."""
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            return str(col)
    for col in df.columns:
        s = df[col]
        if (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)) \
                and _parses_as_dates(s):
            return str(col)
    for col in df.columns:
        s = df[col]
        if (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
                and _TIME_NAME.search(str(col)) and s.notna().all()
                and s.is_monotonic_increasing and s.nunique() > 1):
            return str(col)
    return None


def _parses_as_dates(s: pd.Series) -> bool:
    values = s.dropna().astype(str)
    if len(values) < DATE_PARSE_SHARE * len(s) or values.empty:
        return False
    if values.str.contains(_DATE_LIKE).mean() < DATE_PARSE_SHARE:
        return False  # plain numbers or words: pandas would read some of them as dates
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    return bool(parsed.notna().sum() >= DATE_PARSE_SHARE * len(s))


# ---- windows ------------------------------------------------------------------------------
def _as_2d(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DataError(f"a series must be (time, features), got shape {values.shape}")
    return values


def _target_columns(target_index: TargetIndex, n_features: int) -> list[int]:
    cols = [int(target_index)] if np.isscalar(target_index) else [int(t) for t in target_index]
    bad = [c for c in cols if not -n_features <= c < n_features]
    if not cols or bad:
        raise DataError(f"target column index {bad or cols} is out of range for a series "
                        f"with {n_features} column(s)")
    return cols


def make_windows(values: np.ndarray, window: int, horizon: int,
                 target_index: TargetIndex) -> tuple[np.ndarray, np.ndarray]:
    """X float32 (N, W, F) and Y float32 (N, H), or (N, H, n_targets) when ``target_index``
    is a list; N = T - W - H + 1. Window i: X = rows i..i+W-1, Y = rows i+W..i+W+H-1."""
    values = _as_2d(values)
    t, f = values.shape
    if window < 1 or horizon < 1:
        raise DataError(f"window and horizon must be >= 1, got window={window}, "
                        f"horizon={horizon}")
    n = t - window - horizon + 1
    if n < 1:
        raise DataError(f"the series has {t} rows; window {window} + horizon {horizon} "
                        f"needs at least {window + horizon}; shorten them or give more rows")
    if not np.isfinite(values).all():
        bad = sorted(set(np.nonzero(~np.isfinite(values))[1].tolist()))
        raise DataError(f"the series has missing or infinite values in column(s) {bad}; "
                        "fill or interpolate them first")
    cols = _target_columns(target_index, f)
    x = sliding_window_view(values[:t - horizon], window, axis=0)  # (N, F, W)
    x = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=np.float32)
    y = sliding_window_view(values[window:, cols], horizon, axis=0)  # (N, n_targets, H)
    y = np.ascontiguousarray(y.transpose(0, 2, 1), dtype=np.float32)
    return x, (y[:, :, 0] if np.isscalar(target_index) else y)


def time_split(n_rows: int, window: int, horizon: int, val_frac: float = 0.15,
               test_frac: float = 0.15) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) to window separately: ``make_windows(values[start:end])``.
    Targets are rows [window, v) for train, [v, t) for val and [t, n_rows) for test, where
    the last ``test_frac`` of rows are the test period and the ``val_frac`` before them the
    validation period. Val and test ranges start ``window`` rows early: their inputs."""
    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise DataError(f"val_frac and test_frac must be in (0, 1) with a sum below 1, "
                        f"got {val_frac} and {test_frac}")
    if window < 1 or horizon < 1:
        raise DataError(f"window and horizon must be >= 1, got window={window}, "
                        f"horizon={horizon}")
    n_val, n_test = _periods(n_rows, window, horizon, val_frac, test_frac) or (0, 0)
    if not n_val:
        need = _min_rows(window, horizon, val_frac, test_frac)
        raise DataError(f"the series has {n_rows} rows; window {window} and horizon "
                        f"{horizon} with {val_frac:.0%} validation and {test_frac:.0%} test "
                        f"need at least {need} (each period needs {horizon} target rows, "
                        f"training {window + horizon}); shorten them or give more rows")
    t_test = n_rows - n_test
    t_val = t_test - n_val
    return {"train": (0, t_val), "val": (t_val - window, t_test),
            "test": (t_test - window, n_rows)}


def _periods(n_rows: int, window: int, horizon: int, val_frac: float,
             test_frac: float) -> tuple[int, int] | None:
    """(validation rows, test rows), or None when a split would hold no whole window."""
    n_test = round(test_frac * n_rows)
    n_val = round(val_frac * n_rows)
    if n_test < horizon or n_val < horizon or n_rows - n_val - n_test < window + horizon:
        return None
    return n_val, n_test


def _min_rows(window: int, horizon: int, val_frac: float, test_frac: float) -> int:
    n = max(window + 3 * horizon, math.ceil((horizon - 0.5) / min(val_frac, test_frac)))
    while _periods(n, window, horizon, val_frac, test_frac) is None:
        n += 1
    return n


# ---- dumb forecasts -----------------------------------------------------------------------
def naive_forecast(x: np.ndarray, horizon: int, target_index: TargetIndex = 0) -> np.ndarray:
    """The last observed target value, repeated: (N, H), or (N, H, n_targets) for a list."""
    x = np.asarray(x)
    cols = _target_columns(target_index, x.shape[-1])
    last = x[:, -1, cols]  # (N, n_targets)
    out = np.repeat(last[:, None, :], horizon, axis=1)
    return out[:, :, 0] if np.isscalar(target_index) else out


# ---- scaling ------------------------------------------------------------------------------
def fit_scaler(train_values: np.ndarray) -> dict[str, Any]:
    """Per-column mean and std of the training rows, as plain lists (JSON-ready). A constant
    column gets std 1, so it scales to 0 and a later change stays the size it is."""
    values = _as_2d(train_values)
    if not np.isfinite(values).all():
        raise DataError("the training rows have missing or infinite values; fill or "
                        "interpolate them first")
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def _stats(scaler: dict[str, Any], columns: TargetIndex | None) -> tuple[np.ndarray, ...]:
    mean, std = np.asarray(scaler["mean"]), np.asarray(scaler["std"])
    if columns is None:
        return mean, std
    cols = _target_columns(columns, len(mean))
    if np.isscalar(columns):
        return mean[cols[0]], std[cols[0]]
    return mean[cols], std[cols]


def scale(values: np.ndarray, scaler: dict[str, Any],
          columns: TargetIndex | None = None) -> np.ndarray:
    """(values - mean) / std along the last axis; ``columns`` picks the stats of some
    columns (an int: one column's stats for the whole array, e.g. targets (N, H))."""
    mean, std = _stats(scaler, columns)
    return ((np.asarray(values, dtype=np.float64) - mean) / std).astype(np.float32)


def unscale(values: np.ndarray, scaler: dict[str, Any],
            columns: TargetIndex | None = None) -> np.ndarray:
    """The inverse of :func:`scale`: values * std + mean (e.g. a forecast of the target)."""
    mean, std = _stats(scaler, columns)
    return (np.asarray(values, dtype=np.float64) * std + mean).astype(np.float32)
