"""The scikit-learn estimators (nnrecipe/sklearn.py): scikit-learn's own estimator checks,
use inside Pipeline / ColumnTransformer / GridSearchCV / cross_val_score, mixed-kind
DataFrames, string labels, reproducibility, no file written without ``run_dir``, a loadable
run with it, and the numbers against the run's own predictions (the reference).

The estimators here train a few epochs without the pre-flight checks, so that the ~50
checks per estimator (each with several fits) stay cheap; the doctor's other checks run."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_blobs, make_regression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import nnrecipe
from nnrecipe.doctor import Finding
from nnrecipe.errors import DataError, NnrecipeError, PlanError, RunError
from nnrecipe.plan import Plan
from nnrecipe.sklearn import (
    CellTypeError,
    EstimatorDataError,
    EstimatorSettingError,
    NNRecipeClassifier,
    NNRecipeRegressor,
)
from nnrecipe.train import History

QUICK = {"max_epochs": 20, "preflight": False, "overrides": {"optimizer.lr": 0.01}}
FEW_ROWS = ("fits {n} rows: nnrecipe holds out 15% validation and 15% test rows and refuses "
            "fewer than 20 (data/split.py MIN_ROWS) with a ValueError that names the row "
            "count")


def _expected_failures(estimator) -> dict[str, str]:
    """The checks that cannot pass, each with why (strict: one that passes fails the test)."""
    out = {
        "check_fit2d_1feature": FEW_ROWS.format(n=10) + ", not the feature count; one "
        "feature with enough rows trains (test_one_feature_trains)",
        "check_n_features_in_after_fitting": FEW_ROWS.format(n=15) + "; "
        "test_the_number_of_features_is_checked_after_fitting runs it on 120 rows",
    }
    if isinstance(estimator, NNRecipeClassifier):
        out["check_classifier_data_not_an_array"] = (
            FEW_ROWS.format(n=12) + "; test_lists_and_frames_predict_as_arrays_do runs it on "
            "120 rows")
    else:
        out["check_regressors_no_decision_function"] = (
            FEW_ROWS.format(n=10) + "; test_the_regressor_has_no_probabilities asserts it")
    return out


@parametrize_with_checks([NNRecipeClassifier(**QUICK), NNRecipeRegressor(**QUICK)],
                         expected_failed_checks=_expected_failures, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


ARRAY_API_SCRIPT = """
import json
from sklearn.utils.estimator_checks import check_array_api_input
from nnrecipe.sklearn import NNRecipeClassifier, NNRecipeRegressor
quick = dict(max_epochs=5, preflight=False)
out = {}
for est in (NNRecipeClassifier(**quick), NNRecipeRegressor(**quick)):
    try:
        check_array_api_input(type(est).__name__, est, array_namespace="numpy",
                              expect_only_array_outputs=False)
        out[type(est).__name__] = "passed"
    except Exception as e:
        out[type(est).__name__] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


@pytest.mark.slow
def test_the_array_api_check_where_scipy_array_api_is_set():
    """scikit-learn skips check_array_api_input unless SCIPY_ARRAY_API=1 was set before
    SciPy was imported: run it in a fresh interpreter with it set."""
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    done = subprocess.run([sys.executable, "-c", ARRAY_API_SCRIPT], env=env, check=True,
                          capture_output=True, text=True, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"NNRecipeClassifier": "passed", "NNRecipeRegressor": "passed"}


# ---- data ------------------------------------------------------------------------------------
@pytest.fixture
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    return X, y


@pytest.fixture
def mixed():
    """A frame as the train command reads it: numbers with gaps, a category dtype, strings
    with gaps, booleans, dates; a string label."""
    rng = np.random.default_rng(0)
    n = 200
    a, b = rng.normal(size=n), rng.normal(size=n) * 10 + 5
    color = rng.choice(["red", "green", "blue"], size=n)
    signal = a + 0.1 * b + (color == "red")
    frame = pd.DataFrame({
        "a": np.where(rng.random(n) < 0.1, np.nan, a),
        "b": b,
        "color": pd.Categorical(color),
        "size": pd.Series(rng.choice(["S", "M", "L", None], size=n), dtype=object),
        "flag": rng.random(n) < 0.5,
        "day": pd.date_range("2024-01-01", periods=n, freq="D"),
    })
    labels = np.where(signal > np.median(signal), "high", "low")
    return frame, pd.Series(labels, name="level")


# ---- the fitted attributes -------------------------------------------------------------------
def test_a_mixed_kind_frame_fits_as_the_train_command_reads_it(mixed):
    X, y = mixed
    clf = NNRecipeClassifier(max_epochs=5, overrides={"optimizer.lr": 0.01}).fit(X, y)
    kinds = clf.run_.profile.feature_kinds
    assert kinds == {"a": "numeric", "b": "numeric", "color": "categorical",
                     "size": "categorical", "flag": "boolean", "day": "datetime"}
    assert clf.run_.profile.target == "level"  # y's own name
    assert list(clf.feature_names_in_) == list(X.columns) and clf.n_features_in_ == 6
    assert list(clf.classes_) == ["high", "low"]
    # the plan, the doctor (pre-flight on by default), the history, the held-out score
    assert isinstance(clf.plan_, Plan) and clf.plan_["train.max_epochs"] == 5
    assert clf.plan_.decisions["optimizer.lr"].rule  # every decision says which rule
    assert all(isinstance(f, Finding) for f in clf.findings_)
    assert "missing_values" in {f.code for f in clf.findings_}
    assert isinstance(clf.history_, History) and len(clf.history_.epochs) == 5
    assert clf.evaluation_["n_rows"] == 30  # the 15% test rows, beside the baseline
    assert set(clf.evaluation_["baseline"]["metrics"]) >= {"accuracy"}
    assert clf.run_dir_ is None and clf.repairs_ == []
    # new rows with an unseen category, a missing string and a missing number
    new = X.head(3).copy()
    new.loc[0, "size"] = "XXL"
    new.loc[1, "size"] = None
    new.loc[2, "a"] = np.nan
    new["color"] = new["color"].cat.add_categories(["purple"])
    new.loc[0, "color"] = "purple"
    assert set(clf.predict(new)) <= {"high", "low"}
    assert clf.score(X, y) > 0.8


def test_string_labels_are_the_classes_and_the_predictions(blobs):
    X, y = blobs
    names = np.array(["cat", "dog", "emu"], dtype=object)[y]
    clf = NNRecipeClassifier(**QUICK).fit(X, names)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    pred = clf.predict(X)
    assert pred.dtype == object and set(pred) <= {"cat", "dog", "emu"}
    assert clf.score(X, names) > 0.9
    assert not hasattr(clf, "feature_names_in_")  # an array has no column names


def test_feature_names_only_for_a_frame_with_string_column_names(blobs):
    X, y = blobs
    clf = NNRecipeClassifier(**QUICK).fit(pd.DataFrame(X), y)  # integer column names
    assert not hasattr(clf, "feature_names_in_") and clf.n_features_in_ == 4
    named = pd.DataFrame(X, columns=["p", "q", "r", "s"])
    clf = NNRecipeClassifier(**QUICK).fit(named, y)
    assert list(clf.feature_names_in_) == ["p", "q", "r", "s"]
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(named[["q", "p", "r", "s"]])  # scikit-learn refuses another order


# ---- the numbers against the reference -------------------------------------------------------
def test_probabilities_are_the_runs_and_agree_with_predict(blobs):
    X, y = blobs
    clf = NNRecipeClassifier(**QUICK).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    # the reference: the Run's own predictions (as `nnrecipe predict` gives them)
    ref = clf.run_.predict(pd.DataFrame(X, columns=[f"x{i}" for i in range(4)]))
    np.testing.assert_allclose(proba, ref[[f"proba_{c}" for c in (0, 1, 2)]], atol=1e-6)
    assert np.array_equal(clf.predict(X), ref["prediction"].to_numpy(dtype=np.int64))


def test_binary_probabilities_follow_classes_order():
    X, y = make_blobs(n_samples=100, centers=2, n_features=3, random_state=1)
    labels = np.where(y == 1, "yes", "no")
    clf = NNRecipeClassifier(**QUICK).fit(X, labels)
    proba = clf.predict_proba(X)
    assert list(clf.classes_) == ["no", "yes"] and proba.shape == (100, 2)
    assert np.mean(proba[:, 1][labels == "yes"]) > np.mean(proba[:, 1][labels == "no"])


def test_regressor_predictions_are_the_runs():
    X, y = make_regression(n_samples=150, n_features=5, noise=1.0, random_state=0)
    reg = NNRecipeRegressor(max_epochs=40, preflight=False,
                            overrides={"optimizer.lr": 0.01}).fit(X, y)
    pred = reg.predict(X)
    ref = reg.run_.predict(pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]))
    np.testing.assert_allclose(pred, ref["prediction"], rtol=1e-12)
    assert reg.score(X, y) > 0.8
    assert reg.evaluation_["baseline"]["name"] == "mean_predictor"


def test_the_regressor_has_no_probabilities():
    reg = NNRecipeRegressor()
    assert not any(hasattr(reg, m) for m in ("decision_function", "predict_proba",
                                              "predict_log_proba"))


# ---- what scikit-learn's small-data checks would have asserted, on enough rows ---------------
def test_the_number_of_features_is_checked_after_fitting(blobs):
    X, y = blobs
    clf = NNRecipeClassifier(**QUICK).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but NNRecipeClassifier is "
                                         "expecting 4 features as input"):
        clf.predict(X[:, :3])


def test_one_feature_trains():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 1))
    clf = NNRecipeClassifier(**QUICK).fit(X, (X[:, 0] > 0).astype(int))
    assert clf.n_features_in_ == 1 and clf.score(X, (X[:, 0] > 0).astype(int)) > 0.8


def test_lists_and_frames_predict_as_arrays_do(blobs):
    X, y = blobs
    by_array = NNRecipeClassifier(**QUICK).fit(X, y).predict_proba(X)
    by_list = NNRecipeClassifier(**QUICK).fit(X.tolist(), y.tolist()).predict_proba(X.tolist())
    by_frame = NNRecipeClassifier(**QUICK).fit(pd.DataFrame(X), pd.Series(y)).predict_proba(
        pd.DataFrame(X))
    np.testing.assert_array_equal(by_array, by_list)
    np.testing.assert_array_equal(by_array, by_frame)


# ---- inside scikit-learn's tools -------------------------------------------------------------
def test_in_a_pipeline_after_a_scaler(blobs):
    X, y = blobs
    pipe = make_pipeline(StandardScaler(), NNRecipeClassifier(**QUICK)).fit(X, y)
    assert pipe.score(X, y) > 0.9
    assert pipe[-1].n_features_in_ == 4


def test_after_a_column_transformer_on_a_frame(mixed):
    X, y = mixed
    encode = ColumnTransformer([
        ("num", StandardScaler(), ["b"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["color"]),
    ], remainder="drop")
    pipe = make_pipeline(encode, NNRecipeClassifier(**QUICK)).fit(X, y)
    assert pipe[-1].n_features_in_ == 4  # b, and one column per color
    assert set(pipe.predict(X)) <= {"high", "low"}
    encode.set_output(transform="pandas")  # a frame with names reaches the estimator
    pipe = make_pipeline(encode, NNRecipeClassifier(**QUICK)).fit(X, y)
    assert list(pipe[-1].feature_names_in_) == ["num__b", "cat__color_blue", "cat__color_green",
                                                "cat__color_red"]


def test_grid_search_over_epochs_and_overrides(blobs):
    X, y = blobs
    search = GridSearchCV(NNRecipeClassifier(preflight=False),
                          {"max_epochs": [1, 10],
                           "overrides": [{"optimizer.lr": 0.01}, {"optimizer.lr": 1e-5}]},
                          cv=3, error_score="raise").fit(X, y)
    assert search.best_params_ == {"max_epochs": 10, "overrides": {"optimizer.lr": 0.01}}
    assert search.best_estimator_.plan_["optimizer.lr"] == 0.01
    assert search.best_estimator_.plan_["train.max_epochs"] == 10
    assert search.score(X, y) > 0.9


def test_cross_val_score_for_both_estimators(blobs):
    X, y = blobs
    acc = cross_val_score(NNRecipeClassifier(**QUICK), X, y, cv=3)
    assert acc.shape == (3,) and acc.min() > 0.8
    Xr, yr = make_regression(n_samples=120, n_features=4, noise=1.0, random_state=0)
    r2 = cross_val_score(NNRecipeRegressor(**QUICK), Xr, yr,
                         cv=KFold(3, shuffle=True, random_state=0))
    assert r2.shape == (3,) and r2.min() > 0.5


def test_clone_get_params_and_set_params():
    clf = NNRecipeClassifier(max_epochs=3, overrides={"model.width": 8})
    params = clf.get_params()
    assert params["max_epochs"] == 3 and params["overrides"] == {"model.width": 8}
    copy = clone(clf).set_params(seed=4)
    assert copy.seed == 4 and clf.seed is None
    assert copy.overrides == clf.overrides and copy.overrides is not clf.overrides


# ---- reproducibility and the caller's state --------------------------------------------------
def test_the_same_seed_gives_the_same_predictions_and_leaves_global_state_alone(blobs):
    X, y = blobs
    torch.manual_seed(11)
    np.random.seed(3)
    random.seed(5)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    a = NNRecipeClassifier(**QUICK, seed=7).fit(X, y).predict_proba(X)
    after = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert before[2] == after[2]
    torch.manual_seed(999)  # another caller state: the same fit all the same
    b = NNRecipeClassifier(**QUICK, seed=7).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = NNRecipeClassifier(**QUICK, seed=8).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_a_pickled_estimator_keeps_its_plan_and_predictions(blobs):
    X, y = blobs
    clf = NNRecipeClassifier(**QUICK).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    assert back.plan_.to_dict() == clf.plan_.to_dict() and back.run_.plan is back.plan_
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert clf.plan_.to_dict() == back.plan_.to_dict()  # pickling left the original whole


# ---- files -----------------------------------------------------------------------------------
def test_no_file_is_written_without_a_run_dir(blobs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = blobs
    clf = NNRecipeClassifier(max_epochs=3, auto_fix=True).fit(X, y)  # pre-flight, repairs
    clf.predict(X)
    NNRecipeRegressor(**QUICK).fit(X, X[:, 0]).predict(X)
    cross_val_score(NNRecipeClassifier(**QUICK), X, y, cv=2)
    assert list(tmp_path.iterdir()) == []


def test_a_run_dir_holds_a_loadable_run(mixed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = mixed
    out = tmp_path / "clf-run"
    clf = NNRecipeClassifier(**QUICK, run_dir=out).fit(X, y)
    assert clf.run_dir_ == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf-run"]
    for name in ("plan.yaml", "model.pt", "findings.json", "evaluation.json", "report.html"):
        assert (out / name).is_file(), name
    loaded = nnrecipe.load_run(out)
    assert loaded.plan.to_dict() == clf.plan_.to_dict()
    ref = loaded.predict(X)
    np.testing.assert_allclose(clf.predict_proba(X), ref[["proba_high", "proba_low"]],
                               atol=1e-6)
    assert list(ref["prediction"]) == list(clf.predict(X))
    assert clf.evaluation_ == loaded.evaluation
    with pytest.raises(RunError):  # a run directory is never overwritten
        clone(clf).fit(X, y)


# ---- bad input: one line, an nnrecipe error that is also the built-in one --------------------
def test_bad_settings_are_plan_errors_and_value_errors(blobs):
    X, y = blobs
    with pytest.raises(EstimatorSettingError, match="unknown plan key 'optimizer.learning_rate'"
                       ) as e:
        NNRecipeClassifier(overrides={"optimizer.learning_rate": 0.1}).fit(X, y)
    assert isinstance(e.value, PlanError) and isinstance(e.value, ValueError)
    assert "\n" not in str(e.value)
    with pytest.raises(EstimatorSettingError, match="disagree"):
        NNRecipeClassifier(max_epochs=3, overrides={"train.max_epochs": 4}).fit(X, y)
    with pytest.raises(EstimatorSettingError, match="must be a dict"):
        NNRecipeClassifier(overrides=[("optimizer.lr", 0.1)]).fit(X, y)
    with pytest.raises(ValueError, match="train.max_epochs"):
        NNRecipeClassifier(max_epochs=0).fit(X, y)


def test_bad_data_is_a_data_error_and_a_value_error(blobs):
    X, y = blobs
    with pytest.raises(EstimatorDataError, match="5 sample") as e:
        NNRecipeClassifier(**QUICK).fit(X[:5], y[:5])
    assert isinstance(e.value, DataError) and isinstance(e.value, ValueError)
    with pytest.raises(EstimatorDataError, match="one class"):
        NNRecipeClassifier(**QUICK).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        NNRecipeClassifier(**QUICK).fit(X, X[:, 0])
    rare = y.copy()
    rare[:2] = 5  # a class with two rows cannot be split three ways
    with pytest.raises(EstimatorDataError, match="fewer than 3 rows"):
        NNRecipeClassifier(**QUICK).fit(X, rare)
    cells = X.astype(object)
    cells[0, 0] = {"a": 1}
    with pytest.raises(CellTypeError, match="holds a dict") as e:
        NNRecipeClassifier(**QUICK).fit(pd.DataFrame(cells), y)
    assert isinstance(e.value, NnrecipeError) and isinstance(e.value, TypeError)
    clf = NNRecipeClassifier(**QUICK).fit(pd.DataFrame(X, columns=list("pqrs")), y)
    bad = pd.DataFrame(X, columns=list("pqrs")).astype(object)
    bad.iloc[0, 0] = "not a number"
    with pytest.raises(EstimatorDataError, match="should be numeric"):
        clf.predict(bad)
