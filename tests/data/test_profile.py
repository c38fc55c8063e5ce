import numpy as np
import pandas as pd
import pytest

from nnrecipe.data import profile_table, split_overlap
from nnrecipe.data.profile import infer_task
from nnrecipe.errors import DataError


def test_profile_counts_what_a_person_would_check():
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0] * 10, "k": ["a"] * 40,
                       "y": [0, 1] * 20})
    df = pd.concat([df, df.iloc[:3]])  # three duplicate rows
    p = profile_table(df, "y")
    assert p.columns["x"]["missing_share"] == pytest.approx(df["x"].isna().mean())
    assert p.columns["x"]["distinct"] == 3
    assert p.columns["x"]["mean"] == pytest.approx(np.nanmean(df["x"]))
    assert p.constant_columns == ["k"]
    assert p.duplicate_rows == int(df.duplicated().sum()) > 0
    assert p.target_summary["classes"] == {"0": 22, "1": 21}


def test_a_feature_that_copies_the_target_is_a_leak_suspect():
    rng = np.random.default_rng(0)
    n = 1000
    y = rng.integers(0, 2, n)
    df = pd.DataFrame({"honest": rng.normal(size=n) + y, "leak": y * 10 + rng.normal(0, .1, n),
                       "y": y})
    suspects = {s["column"] for s in profile_table(df, "y").leak_suspects}
    assert suspects == {"leak"}


def test_a_categorical_that_names_the_class_is_a_leak_suspect():
    rng = np.random.default_rng(0)
    y = rng.choice(["cat", "dog", "eel"], 600)
    df = pd.DataFrame({"x": rng.normal(size=600), "tag": np.char.add("is_", y), "y": y})
    assert [s["column"] for s in profile_table(df, "y").leak_suspects] == ["tag"]


def test_regression_leak_is_found_by_eta_squared():
    rng = np.random.default_rng(1)
    n = 2000
    x = rng.normal(size=n)
    df = pd.DataFrame({"noise": rng.normal(size=n), "twice": 2 * x, "y": x})
    suspects = profile_table(df, "y").leak_suspects
    assert [s["column"] for s in suspects] == ["twice"]
    assert suspects[0]["metric"] == "single_feature_r2" and suspects[0]["score"] >= 0.98


@pytest.mark.parametrize("values,task", [
    (["a", "b"] * 20, "binary"), ([0, 1] * 20, "binary"), ([0, 1, 2] * 20, "multiclass"),
    (list(np.linspace(0, 1, 60)), "regression"), (list(range(200)), "regression"),
])
def test_task_is_inferred_from_the_target(values, task):
    assert infer_task(pd.Series(values, name="y"))[0] == task


def test_single_class_target_is_refused():
    with pytest.raises(DataError, match="single value"):
        infer_task(pd.Series([1] * 30, name="y"))


def test_rows_shared_between_splits_are_counted():
    train = pd.DataFrame({"a": [1, 2, 3], "y": [0, 1, 0]})
    test = pd.DataFrame({"a": [3, 4], "y": [1, 1]})  # a=3 seen in training (label ignored)
    out = split_overlap(train, {"test": test}, ["a"])
    assert out["test_rows_also_in_train"] == 1 and out["test_rows"] == 2
