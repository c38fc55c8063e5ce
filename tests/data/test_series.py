"""statsmodels is not installed in the venv, so these tests use a synthetic monthly series
(trend + yearly season + noise) instead of its bundled co2/sunspots/nile data."""

import json

import numpy as np
import pandas as pd
import pytest

from nnrecipe.data.series import (
    find_time_column,
    fit_scaler,
    make_windows,
    naive_forecast,
    scale,
    time_split,
    unscale,
)
from nnrecipe.errors import DataError


def _monthly(n=240, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 300 + 0.1 * t + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, n)
    temp = 10 + 8 * np.sin(2 * np.pi * (t - 3) / 12) + rng.normal(0, 1, n)
    return np.stack([level, temp], axis=1)


def test_find_time_column():
    n = 50
    dates = pd.date_range("2000-01-01", periods=n, freq="MS")
    values = np.arange(n, dtype=float)
    assert find_time_column(pd.DataFrame({"v": values, "when": dates})) == "when"
    assert find_time_column(pd.DataFrame({"v": values,
                                          "month": dates.strftime("%Y-%m")})) == "month"
    assert find_time_column(pd.DataFrame({"v": values, "year": 1900 + np.arange(n)})) == "year"
    assert find_time_column(pd.DataFrame({"v": values, "Date_Index": np.arange(n)})) \
        == "Date_Index"
    assert find_time_column(pd.DataFrame({"v": [f"{i}.5" for i in range(n)]})) is None
    assert find_time_column(pd.DataFrame({"d": dates.strftime("%d.%m.%Y")})) == "d"
    assert find_time_column(pd.DataFrame({"d": dates.strftime("%b %d, %Y")})) == "d"
    # named like time but not ordered; ordered but not named like time; words
    shuffled = np.random.default_rng(0).permutation(n)
    assert find_time_column(pd.DataFrame({"year": shuffled, "count": np.arange(n),
                                          "city": ["Paris"] * n})) is None


def test_windows_line_up_with_a_hand_built_example():
    values = np.array([[0, 100], [1, 101], [2, 102], [3, 103], [4, 104], [5, 105]], float)
    x, y = make_windows(values, window=3, horizon=2, target_index=1)
    assert x.shape == (2, 3, 2) and y.shape == (2, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], [[0, 100], [1, 101], [2, 102]])
    np.testing.assert_array_equal(x[1], [[1, 101], [2, 102], [3, 103]])
    np.testing.assert_array_equal(y, [[103, 104], [104, 105]])
    _, y2 = make_windows(values, 3, 2, target_index=[1, 0])
    assert y2.shape == (2, 2, 2)
    np.testing.assert_array_equal(y2[1], [[104, 4], [105, 5]])
    _, y1 = make_windows(values[:, 0], 4, 1, target_index=0)  # a 1-d series is one column
    np.testing.assert_array_equal(y1, [[4], [5]])


def test_window_errors():
    with pytest.raises(DataError, match="needs at least 6"):
        make_windows(np.zeros((5, 1)), 4, 2, 0)
    bad = np.zeros((10, 2))
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match=r"column\(s\) \[1\]"):
        make_windows(bad, 3, 1, 0)
    with pytest.raises(DataError, match="out of range"):
        make_windows(np.zeros((10, 2)), 3, 1, 2)


@pytest.mark.parametrize("n,window,horizon", [(240, 24, 6), (100, 10, 1), (57, 12, 3)])
def test_time_split_shares_no_target_row_between_splits(n, window, horizon):
    values = np.arange(n, dtype=float)[:, None]  # each value is its row number
    ranges = time_split(n, window, horizon)
    targets, firsts = {}, {}
    for name, (start, end) in ranges.items():
        x, y = make_windows(values[start:end], window, horizon, 0)
        targets[name] = set(y.ravel().astype(int).tolist())
        firsts[name] = int(y.min())
        assert (x.max(axis=(1, 2)) < y.min(axis=1)).all()  # each window reads only its past
    assert not targets["train"] & targets["val"]
    assert not targets["val"] & targets["test"]
    assert not targets["train"] & targets["test"]
    assert max(targets["train"]) < firsts["val"] and max(targets["val"]) < firsts["test"]
    assert max(targets["test"]) == n - 1 and ranges["train"][0] == 0
    # every row after the first window is a target of some split
    assert set().union(*targets.values()) == set(range(window, n))


def test_time_split_too_short_says_the_minimum():
    with pytest.raises(DataError, match=r"has 30 rows.*need at least (\d+)") as err:
        time_split(30, window=24, horizon=6)
    need = int(err.value.args[0].split("need at least ")[1].split()[0])
    time_split(need, 24, 6)  # the minimum it names works
    with pytest.raises(DataError):
        time_split(need - 1, 24, 6)
    with pytest.raises(DataError, match="val_frac"):
        time_split(100, 5, 1, val_frac=0.5, test_frac=0.5)


def test_naive_forecasts():
    values = _monthly()
    x, y = make_windows(values, 24, 6, 0)
    naive = naive_forecast(x, 6, 0)
    assert naive.shape == y.shape
    np.testing.assert_array_equal(naive[:, 0], x[:, -1, 0])
    np.testing.assert_array_equal(naive[:, 5], x[:, -1, 0])
    assert naive_forecast(x, 6, [0, 1]).shape == (len(x), 6, 2)


def test_scaler_is_fitted_on_train_and_round_trips():
    values = _monthly()
    ranges = time_split(len(values), 24, 6)
    scaler = json.loads(json.dumps(fit_scaler(values[slice(*ranges["train"])])))
    train = scale(values[slice(*ranges["train"])], scaler)
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-5)
    scaled = scale(values, scaler)
    np.testing.assert_allclose(unscale(scaled, scaler), values, rtol=1e-6)
    _, y = make_windows(scaled, 24, 6, 1)
    _, y_raw = make_windows(values, 24, 6, 1)
    np.testing.assert_allclose(unscale(y, scaler, columns=1), y_raw, rtol=1e-5)
    constant = fit_scaler(np.ones((10, 1)) * 5)
    assert constant == {"mean": [5.0], "std": [1.0]}
