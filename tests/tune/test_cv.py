import json

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

import nnrecipe
from nnrecipe.errors import DataError
from nnrecipe.tune import fold_indices, summarise_folds


def _df(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": (rng.random(n) < 0.25).astype(int)})


def test_folds_partition_the_rows_and_keep_the_class_balance():
    df = _df()
    folds = fold_indices(df, "y", "binary", 5, seed=0)
    assert len(folds) == 5
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(df)))
    share = df["y"].mean()
    for held in folds:
        assert df["y"].iloc[held].mean() == pytest.approx(share, abs=0.02)


def test_same_seed_same_folds():
    a = fold_indices(_df(), "y", "binary", 4, seed=3)
    b = fold_indices(_df(), "y", "binary", 4, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("folds,fragment", [(1, "at least 2"), (100, "too many"),
                                            (80, "too many")])
def test_bad_fold_counts_are_clear_errors(folds, fragment):
    with pytest.raises(DataError, match=fragment):
        fold_indices(_df(), "y", "binary", folds, seed=0)


def test_a_class_smaller_than_the_fold_count_is_refused():
    df = _df()
    df.loc[df.index[:3], "y"] = 2
    with pytest.raises(DataError, match="only 3 rows"):
        fold_indices(df, "y", "multiclass", 5, seed=0)


def test_summary_is_mean_and_sample_std():
    per_fold = [{"fold": 1, "accuracy": 0.9}, {"fold": 2, "accuracy": 0.8},
                {"fold": 3, "accuracy": 0.7}]
    s = summarise_folds(per_fold)["accuracy"]
    assert s["mean"] == pytest.approx(0.8) and s["std"] == pytest.approx(np.std([.9, .8, .7],
                                                                               ddof=1))


def test_cv_trains_one_run_per_fold_and_writes_cv_json(tmp_path):
    df = datasets.load_wine(as_frame=True).frame
    result = nnrecipe.cv(df, "target", folds=3, out=tmp_path / "cv",
                         overrides={"train.max_epochs": 40})
    saved = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert [f["fold"] for f in saved["per_fold"]] == [1, 2, 3]
    assert sum(f["test_rows"] for f in saved["per_fold"]) == len(df)
    accs = [f["accuracy"] for f in saved["per_fold"]]
    assert saved["summary"]["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert saved["summary"]["accuracy"]["mean"] > saved["baseline_summary"]["accuracy"]["mean"]
    for k in (1, 2, 3):
        assert (tmp_path / "cv" / f"fold_{k}" / "evaluation.json").is_file()
    assert result["path"] == str(tmp_path / "cv")
