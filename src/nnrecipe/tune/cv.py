"""K-fold cross-validation: the folds, and the mean ± std of every metric over them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..lazy import lazy

model_selection = lazy("sklearn.model_selection")

__all__ = ["fold_indices", "summarise_folds"]


def fold_indices(df: pd.DataFrame, target: str, task: str, folds: int, seed: int
                 ) -> list[np.ndarray]:
    """Positions of each fold's held-out rows: stratified by class for classification."""
    if folds < 2:
        raise DataError(f"--folds must be at least 2, got {folds}")
    if folds > len(df) // 5:
        raise DataError(f"--folds {folds} is too many for {len(df)} rows: each fold needs at "
                        f"least 5 held-out rows (at most {max(2, len(df) // 5)} folds)")
    y = df[target].astype(str).to_numpy()
    if task != "regression":
        smallest = pd.Series(y).value_counts().min()
        if smallest < folds:
            raise DataError(f"a class has only {smallest} rows, fewer than --folds {folds}; "
                            "use fewer folds")
        splitter = model_selection.StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = model_selection.KFold(folds, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(df)), y)]


def summarise_folds(per_fold: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """{metric: {mean, std, min, max}} over the folds (std with ddof=1: a sample of folds)."""
    names = [k for k, v in per_fold[0].items() if isinstance(v, int | float)]
    out = {}
    for name in names:
        values = np.array([f[name] for f in per_fold if f.get(name) is not None], dtype=float)
        if values.size:
            out[name] = {"mean": float(values.mean()),
                         "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
                         "min": float(values.min()), "max": float(values.max())}
    return out
