"""Shared helpers for the end-to-end tests: run the real `nnrecipe` command in a subprocess,
write small seeded tables, and check the bad-input contract (docs/architecture.md: exit code 2, a
one-line message, no traceback, nothing left behind)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# The console script installed next to this interpreter (the package's [project.scripts]).
NNRECIPE = Path(sys.executable).parent / "nnrecipe"
ERROR_PREFIX = "nnrecipe: error:"


def make_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Two informative numeric features, a categorical one, and a binary target ``y``."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    y = (x1 + 0.5 * x2 + rng.normal(scale=0.3, size=n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "y": y})


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def run_cli(*args: object, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``nnrecipe *args`` in ``cwd``; stdout and stderr captured as text."""
    env = {**os.environ, "COLUMNS": "200"}  # wide enough that rich does not wrap
    return subprocess.run([str(NNRECIPE), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_bad_input(result: subprocess.CompletedProcess, *fragments: str,
                     out: Path | None = None, cwd: Path | None = None) -> str:
    """Exit 2, stderr is exactly one line ``nnrecipe: error: ...`` holding every fragment,
    no traceback, and no run directory left at ``out`` or under ``cwd/runs``. Returns the
    message line."""
    detail = f"\nexit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 2, detail
    assert "Traceback" not in result.stderr + result.stdout, detail
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr{detail}"
    line = lines[0]
    assert line.startswith(ERROR_PREFIX), detail
    assert line[len(ERROR_PREFIX):].strip(), detail
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in the message{detail}"
    if out is not None:
        assert not Path(out).exists(), f"run directory {out} left behind{detail}"
    if cwd is not None:
        runs = Path(cwd) / "runs"
        assert not runs.exists() or not any(runs.iterdir()), f"{runs} holds a run{detail}"
    return line


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """``cli(*args)``: run ``nnrecipe`` with ``tmp_path`` as the working directory."""
    def run(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return run_cli(*args, cwd=cwd or tmp_path)
    return run


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    """A 60-row binary table written to ``tmp_path/data.csv``."""
    return write_csv(tmp_path / "data.csv", make_frame())


@pytest.fixture
def bad_input() -> Callable[..., str]:
    """``bad_input(result, *fragments, out=..., cwd=...)``: see :func:`assert_bad_input`."""
    return assert_bad_input


@pytest.fixture
def frame() -> Callable[..., pd.DataFrame]:
    """``frame(n=60, seed=0)``: see :func:`make_frame`."""
    return make_frame


@pytest.fixture
def csv(tmp_path: Path) -> Callable[[str, pd.DataFrame], Path]:
    """``csv(name, df)``: write ``df`` to ``tmp_path/name`` and return the path."""
    return lambda name, df: write_csv(tmp_path / name, df)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run directory, the CSV it was trained on): one small binary run (60 rows, 2 epochs)
    shared by the tests of a module."""
    root = tmp_path_factory.mktemp("trained")
    data = write_csv(root / "train.csv", make_frame())
    out = root / "run"
    r = run_cli("train", data, "--target", "y", "--max-epochs", "2", "-q", "--out", out,
                cwd=root)
    assert r.returncode == 0, r.stderr
    return out, data
