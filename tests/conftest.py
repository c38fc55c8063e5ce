"""Shared fixtures: small seeded tables and a profile built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nnrecipe.data import profile_table


def make_table(n: int = 300, task: str = "binary", seed: int = 0) -> pd.DataFrame:
    """Two informative numeric columns, a categorical one, and a target."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n) * 10 + 5
    color = rng.choice(["red", "green", "blue"], size=n)
    signal = a + 0.1 * b + (color == "red")
    if task == "binary":
        y = (signal > np.median(signal)).astype(int)
    elif task == "multiclass":
        y = np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3]))
    else:
        y = 3 * signal + rng.normal(scale=0.1, size=n)
    return pd.DataFrame({"a": a, "b": b, "color": color, "y": y})


@pytest.fixture
def table():
    return make_table


@pytest.fixture
def profile_of():
    def build(df: pd.DataFrame, target: str = "y", task: str = "auto"):
        return profile_table(df, target, task)
    return build
