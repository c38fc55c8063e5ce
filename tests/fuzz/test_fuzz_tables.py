"""Property-based fuzzing of the table pipeline (issue 16 D).

Random small tables (numeric, categorical, boolean, date and text columns; NaN, ±inf, huge
and tiny numbers; unicode and HTML markup in names and values; duplicated rows and columns;
one class, many classes, a few rows) go through ``plan`` and a one-epoch ``fit`` +
``predict``. The contract (docs/architecture.md): every example ends in a finished run (its
directory complete, with report.html) or an NnrecipeError (the CLI's one line, exit 2)
that leaves nothing at the output location; never another exception, and never a file
written outside the run directory (the working and temporary folders are compared before
and after). The outcome counts are printed at the end of the module (``pytest -s``)."""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnrecipe
from nnrecipe.errors import NnrecipeError

OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

NAMES = st.one_of(
    st.sampled_from(["x", "y", "id", "Ünïcødé", "名前", "<b>bold</b>", "<script>alert(1)"
                     "</script>", "a\nb", " ", "", "emoji 🎉", "&amp;", "col.with.dots",
                     "{{ jinja }}", "x" * 300]),
    st.text(min_size=0, max_size=12))
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -1.0, 1e305, -1e305, 1e38, 3.5e38, 1e-320, 1e200, np.nan,
                     np.inf, -np.inf]),
    st.integers(-10**6, 10**6).map(float))
WORDS = st.sampled_from(["red", "grün", "<i>blue</i>", "蓝", "", "null", "NaN", "None",
                         "true", "1", "a b c d e", "😀", "<img src=x onerror=alert(1)>"])
DATES = st.sampled_from(["2020-01-01", "2021-12-31 23:59", "1999/02/03", "not a date", "",
                         "0001-01-01", "9999-12-31"])


@st.composite
def column(draw, n: int) -> list:
    kind = draw(st.sampled_from(["numeric", "int", "categorical", "boolean", "date", "text",
                                 "constant"]))
    if kind == "numeric":
        return draw(st.lists(NUMBERS, min_size=n, max_size=n))
    if kind == "int":
        return draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    if kind == "categorical":
        return draw(st.lists(WORDS, min_size=n, max_size=n))
    if kind == "boolean":
        return draw(st.lists(st.sampled_from([True, False]), min_size=n, max_size=n))
    if kind == "date":
        return draw(st.lists(DATES, min_size=n, max_size=n))
    if kind == "text":
        return draw(st.lists(st.text(max_size=30), min_size=n, max_size=n))
    return [draw(WORDS)] * n


@st.composite
def target(draw, n: int) -> list:
    kind = draw(st.sampled_from(["binary", "one-class", "many-classes", "regression",
                                 "regression-wild", "labels", "some-missing"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "binary":
        return rng.integers(0, 2, n).tolist()
    if kind == "one-class":
        return ["only"] * n
    if kind == "many-classes":
        return [f"c{i}" for i in rng.integers(0, max(1, n // draw(st.sampled_from([1, 2, 4]))),
                                              n)]
    if kind == "regression":
        return rng.normal(size=n).tolist()
    if kind == "regression-wild":
        return draw(st.lists(NUMBERS, min_size=n, max_size=n))
    if kind == "labels":
        return draw(st.lists(WORDS, min_size=n, max_size=n))
    return [None if rng.random() < 0.3 else int(v) for v in rng.integers(0, 3, n)]


@st.composite
def tables(draw) -> tuple[pd.DataFrame, str]:
    n = draw(st.sampled_from([1, 5, 19, 20, 30, 60, 60, 120, 120]))
    names = draw(st.lists(NAMES, min_size=1, max_size=5))
    target_name = draw(st.sampled_from(["y", *names]))
    data = {}
    for name in names:
        data.setdefault(name, draw(column(n)))
    data[target_name] = draw(target(n))
    df = pd.DataFrame(data)
    if draw(st.booleans()):  # duplicated rows
        df = pd.concat([df, df.head(max(1, n // 2))], ignore_index=True)
    if draw(st.integers(0, 9)) == 0:  # a duplicated column name
        df = pd.concat([df, df.iloc[:, :1]], axis=1)
    return df, target_name


# torch creates its compiler cache folder in the temporary folder on first use (an empty
# folder, torch's own, shared by every process): not a file of ours
TORCH_CACHE = "torchinductor_"


def _listing(*folders: Path) -> set[str]:
    return {str(p) for f in folders for p in f.rglob("*") if TORCH_CACHE not in str(p)}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working folder and a private temporary folder (tempfile's), so nothing another
    test writes to /tmp is mistaken for ours."""
    root = tmp_path_factory.mktemp("fuzz")
    work, tmp = root / "work", root / "tmp"
    work.mkdir()
    tmp.mkdir()
    before_dir, before_tmp = os.getcwd(), tempfile.tempdir
    os.chdir(work)
    tempfile.tempdir = str(tmp)
    yield root, work, tmp
    os.chdir(before_dir)
    tempfile.tempdir = before_tmp
    for test, counts in OUTCOMES.items():
        print(f"\nfuzz {test}: {sum(counts.values())} examples: {dict(counts)}")


def _check(sandbox, case: str, call) -> None:
    """Run ``call(out)``; classify the outcome; assert the contract."""
    root, work, tmp = sandbox
    out = work / f"run{sum(sum(c.values()) for c in OUTCOMES.values())}"  # fresh each time
    seen = _listing(work, tmp)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = call(out)
    except NnrecipeError as e:
        message = f"nnrecipe: error: {e}"
        assert "\n" not in message, f"not one line: {message!r}"
        assert len(message) < 2000, f"message of {len(message)} characters"
        assert not out.exists(), f"run directory left behind after: {e}"
        assert _listing(work, tmp) == seen, "files left behind after an error"
        OUTCOMES[case]["clean rejection"] += 1
        return
    except Exception as e:  # the contract's violation: report it with the table
        OUTCOMES[case]["other"] += 1
        raise AssertionError(f"{type(e).__name__}: {e}") from e
    if result == "planned":
        OUTCOMES[case]["finished"] += 1
    else:
        assert (out / "report.html").exists(), "finished run without report.html"
        OUTCOMES[case]["finished"] += 1
    extra = {p for p in _listing(work, tmp) - seen if not p.startswith(str(out))}
    assert not extra, f"files written outside the run directory: {sorted(extra)[:5]}"
    if caught:
        OUTCOMES[case]["(with warnings)"] += 1
    shutil.rmtree(out, ignore_errors=True)


@given(tables())
def test_plan_finishes_or_refuses_cleanly(sandbox, table):
    df, target_name = table

    def call(out):
        nnrecipe.plan(df, target_name)
        return "planned"

    _check(sandbox, "plan", call)


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("NNRECIPE_FUZZ_TRAIN_EXAMPLES", "100")))
@given(tables())
def test_train_and_predict_finish_or_refuse_cleanly(sandbox, table):
    df, target_name = table

    def call(out):
        run = nnrecipe.fit(df, target_name, overrides={"train.max_epochs": 1}, out=out,
                           preflight=False)
        pred = run.predict(df.drop(columns=[target_name]))
        assert len(pred) == len(df)
        return "trained"

    _check(sandbox, "train+predict", call)
