import json

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from nnrecipe.data import Preprocessor, infer_kinds
from nnrecipe.errors import DataError


def _fit(df, scale="standard", drop=None, task="binary", activation="linear"):
    kinds = infer_kinds(df.drop(columns=["y"]))
    return Preprocessor.fit(df, target="y", task=task, kinds=kinds, drop=drop or {},
                            scale=scale, target_activation=activation)


def _df(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(5, 3, n)
    x[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"x": x, "z": rng.exponential(2, n),
                         "c": rng.choice(["a", "b", "c"], n), "y": rng.integers(0, 2, n)})


@pytest.mark.parametrize("scale,scaler", [("standard", StandardScaler), ("minmax", MinMaxScaler)])
def test_numeric_columns_match_scikit_learn_imputer_and_scaler(scale, scaler):
    train, test = _df(), _df(seed=1)
    pre = _fit(train, scale)
    ref = scaler().fit(SimpleImputer(strategy="median").fit_transform(train[["x", "z"]]))
    expected = ref.transform(SimpleImputer(strategy="median").fit(train[["x", "z"]])
                             .transform(test[["x", "z"]]))
    got = pre.transform(test)
    names = pre.feature_names
    np.testing.assert_allclose(got[:, [names.index("x"), names.index("z")]], expected,
                               rtol=1e-5, atol=1e-5)
    # the imputed rows are flagged, so the network can tell
    np.testing.assert_array_equal(got[:, names.index("x__missing")], test["x"].isna())


def test_one_hot_matches_scikit_learn_and_unseen_levels_are_all_zero():
    train, test = _df(), _df(seed=1)
    test.loc[test.index[:5], "c"] = "never-seen"
    pre = _fit(train)
    enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train[["c"]])
    cols = [pre.feature_names.index(f"c={lvl}") for lvl in enc.categories_[0]]
    np.testing.assert_array_equal(pre.transform(test)[:, cols], enc.transform(test[["c"]]))


def test_many_levels_get_an_embedding_code_with_zero_for_unseen():
    rng = np.random.default_rng(0)
    levels = [f"L{i}" for i in range(30)]
    train = pd.DataFrame({"c": rng.choice(levels, 300), "y": rng.integers(0, 2, 300)})
    pre = _fit(train)
    assert pre.n_numeric == 0 and pre.embedding_sizes[0][0] == 31
    codes = pre.transform(pd.DataFrame({"c": ["L0", "L29", "new"]}))[:, 0]
    assert codes.tolist() == [1 + sorted(levels).index("L0"), 1 + sorted(levels).index("L29"), 0]


def test_statistics_come_from_the_training_split_only():
    train = _df()
    pre = _fit(train)
    spec = next(s for s in pre.state["numeric"] if s["name"] == "z")
    assert spec["center"] == pytest.approx(train["z"].mean())


def test_json_round_trip_gives_the_same_transform():
    train, test = _df(), _df(seed=3)
    pre = _fit(train)
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(again.transform(test), pre.transform(test))


def test_dropped_columns_are_not_needed_at_predict_time():
    pre = _fit(_df(), drop={"z": "test"})
    assert "z" not in pre.feature_names
    pre.transform(_df(seed=2).drop(columns=["z"]))  # no error


def test_missing_column_and_infinite_values_are_clear_errors():
    pre = _fit(_df())
    with pytest.raises(DataError, match=r"lacks column\(s\) \['c'\]"):
        pre.transform(_df().drop(columns=["c"]))
    bad = _df()
    bad.loc[bad.index[0], "z"] = np.inf
    with pytest.raises(DataError, match="infinite"):
        pre.transform(bad)


@pytest.mark.parametrize("activation,low,high", [("sigmoid", 0, 1), ("tanh", -1, 1)])
def test_bounded_regression_targets_map_onto_the_output_range(activation, low, high):
    df = _df()
    df["y"] = np.linspace(10, 20, len(df))
    pre = _fit(df, task="regression", activation=activation)
    t = pre.transform_target(df["y"])
    assert t.min() == pytest.approx(low) and t.max() == pytest.approx(high)
    np.testing.assert_allclose(pre.inverse_target(t), df["y"], rtol=1e-5)
