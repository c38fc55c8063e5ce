"""Tables for the report tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

SCRIPT = "<script>alert(1)</script>"  # a column name that must render as text
BOLD = "<b>yes</b>"  # a class name that must render as text
EXPLODE = {"optimizer.name": "sgd", "optimizer.lr": 10, "model.batchnorm": False}


def frame(n: int = 240, task: str = "binary", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n) * 10 + 5
    color = rng.choice(["red", "green", "blue"], size=n)
    signal = a + 0.1 * b + (color == "red")
    if task == "binary":
        y = np.where(signal > 0.8, BOLD, "no")
    else:
        y = 3 * signal + rng.normal(scale=0.1, size=n)
    return pd.DataFrame({SCRIPT: a, "b": b, "color": color, "y": y})
