"""Small finished runs for the report tests, trained once per session in-process (a few
seconds each): a binary classifier whose column and class names are HTML, a regression,
and a run the doctor had much to say about (with --auto-fix repairs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _report_data import EXPLODE, frame

import nnrecipe


def _fit(root: Path, name: str, df: pd.DataFrame, **kw) -> Path:
    """Train on the first 200 rows, test on the rest (so a test can recompute the test
    predictions); returns the run directory."""
    out = root / name
    overrides = {"train.max_epochs": 3, **kw.pop("overrides", {})}
    nnrecipe.fit(df.iloc[:200], "y", test=df.iloc[200:], out=out, overrides=overrides, **kw)
    return out


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("report_runs")


@pytest.fixture(scope="session")
def binary_run(runs_root) -> Path:
    return _fit(runs_root, "binary", frame())


@pytest.fixture(scope="session")
def regression_run(runs_root) -> Path:
    return _fit(runs_root, "regression", frame(task="regression"))


@pytest.fixture(scope="session")
def findings_run(runs_root) -> Path:
    return _fit(runs_root, "findings", frame(seed=1),
                overrides={**EXPLODE, "train.max_epochs": 6}, auto_fix=True)
