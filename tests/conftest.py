"""Shared fixtures: small seeded tables and a profile built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from nnrecipe.data import profile_table


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Small models train faster on one thread, and tests then don't fight each other (or
    a parallel job) for the two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
