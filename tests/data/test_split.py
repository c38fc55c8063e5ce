import numpy as np
import pandas as pd
import pytest

from nnrecipe.data import split_table
from nnrecipe.errors import DataError


def _df(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": (rng.random(n) < 0.2).astype(int)})


def test_default_split_is_70_15_15_and_stratified():
    df = _df()
    s = split_table(df, "y", "binary", seed=0)
    assert s.sizes() == {"train": 700, "val": 150, "test": 150}
    share = df["y"].mean()
    for part in (s.train, s.val, s.test):
        assert part["y"].mean() == pytest.approx(share, abs=0.01)
    idx = [set(p.index) for p in (s.train, s.val, s.test)]
    assert not (idx[0] & idx[1] or idx[0] & idx[2] or idx[1] & idx[2])
    assert "stratified" in s.how


def test_same_seed_same_split_other_seed_other_split():
    df = _df()
    a, b, c = (split_table(df, "y", "binary", seed=s) for s in (1, 1, 2))
    assert list(a.test.index) == list(b.test.index) != list(c.test.index)


def test_given_test_table_replaces_the_internal_test_split():
    df, test = _df(), _df(50, seed=9)
    s = split_table(df, "y", "binary", seed=0, test_df=test)
    assert s.test is test and len(s.train) + len(s.val) == len(df)


def test_too_few_rows_is_a_clear_error():
    with pytest.raises(DataError, match="too few rows"):
        split_table(_df(10), "y", "binary", seed=0)
