"""Issue 16 A and B through the real CLI: non-finite or overflowing numbers and classes too
rare to split are refused before anything is profiled or written: exit 2, one short line
naming the column(s) or classes, no warning, no traceback, no run directory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _regression_frame(frame, n=60):
    df = frame(n)
    df["y"] = np.random.default_rng(1).normal(size=n)
    return df


# ---- A: numbers ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.inf, -np.inf], ids=["inf", "-inf"])
def test_infinite_target_is_refused_before_the_profile(cli, csv, frame, bad_input, tmp_path,
                                                       value):
    df = frame()
    df["y"] = df["y"].astype(float)
    df.loc[3, "y"] = value
    csv("d.csv", df)
    out = tmp_path / "run"
    line = bad_input(cli("train", "d.csv", "--target", "y", "--out", out), "'y'", "target",
                     "1 infinite", out=out, cwd=tmp_path)
    assert len(line) < 300


def test_feature_beyond_float32_is_refused(cli, csv, frame, bad_input, tmp_path):
    df = frame()
    df.loc[3, "x1"] = 1e305
    df.loc[[4, 5], "x2"] = -1e39
    csv("d.csv", df)
    out = tmp_path / "run"
    bad_input(cli("plan", "d.csv", "--target", "y"), "'x1': 1 beyond", "'x2': 2 beyond",
              cwd=tmp_path)
    bad_input(cli("train", "d.csv", "--target", "y", "--out", out), "'x1'", out=out,
              cwd=tmp_path)


@pytest.mark.parametrize("value", [1e300, 1e200], ids=["1e300", "1e200-square-overflows"])
def test_huge_regression_target_is_refused_before_training(cli, csv, frame, bad_input,
                                                           tmp_path, value):
    """1e300 used to fail in the evaluation after training (a half run directory); 1e200 is
    finite but its square overflows float64 in the metrics: both are beyond float32's range,
    which the network needs anyway, so both are refused up front."""
    df = _regression_frame(frame)
    df.loc[3, "y"] = value
    csv("d.csv", df)
    out = tmp_path / "run"
    bad_input(cli("train", "d.csv", "--target", "y", "--max-epochs", "1", "--out", out),
              "'y' (the target)", "beyond ±3.4e38", out=out, cwd=tmp_path)


def test_infinite_value_in_a_given_test_file_is_refused(cli, csv, frame, bad_input, tmp_path):
    csv("d.csv", frame())
    test = frame(30, seed=3)
    test.loc[0, "x2"] = np.inf
    csv("t.csv", test)
    out = tmp_path / "run"
    bad_input(cli("train", "d.csv", "--target", "y", "--test", "t.csv", "--out", out),
              "--test data", "'x2'", out=out, cwd=tmp_path)


def test_large_but_representable_numbers_still_train(cli, csv, frame, tmp_path):
    df = _regression_frame(frame)
    df["x1"] *= 1e30
    df["y"] *= 1e30
    csv("d.csv", df)
    r = cli("train", "d.csv", "--target", "y", "--max-epochs", "1", "-q", "--out",
            tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "report.html").exists()


# ---- B: classes ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_class_with_one_row_is_named(cli, csv, frame, bad_input, tmp_path, seed):
    """Whatever split the seed gives (the single row in training or not), one clear line."""
    df = frame()
    df.loc[7, "y"] = 2
    csv("d.csv", df)
    out = tmp_path / "run"
    r = cli("train", "d.csv", "--target", "y", "--seed", seed, "--max-epochs", "1",
            "--out", out)
    line = bad_input(r, "'2'", "1 of 3 classes", "fewer than 3 rows", out=out, cwd=tmp_path)
    assert "Warning" not in r.stderr and len(line) < 300


def test_five_thousand_single_row_classes_give_a_short_line(cli, csv, bad_input, tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    csv("d.csv", pd.DataFrame({"x": rng.normal(size=n), "y": [f"c{i}" for i in range(n)]}))
    out = tmp_path / "run"
    r = cli("train", "d.csv", "--target", "y", "--out", out)
    line = bad_input(r, "5,000 of 5,000 classes", "'c0'", "4,995 more", out=out, cwd=tmp_path)
    assert len(line) < 300 and "Warning" not in r.stderr


def test_many_classes_of_three_rows_split_with_every_class_in_training(tmp_path):
    """More classes than the test split has rows: scikit-learn cannot stratify; the split
    shuffles and keeps a row of each class in training, so scoring works."""
    from nnrecipe.data import split_table

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=300), "y": np.repeat(np.arange(100), 3)})
    s = split_table(df, "y", "multiclass", seed=0)
    assert set(s.val["y"]) | set(s.test["y"]) <= set(s.train["y"])
    assert sum(s.sizes().values()) == 300 and "too many to stratify" in s.how


def test_unseen_class_in_evaluate_data_is_a_short_line(cli, csv, bad_input, trained_run,
                                                       tmp_path):
    run, data = trained_run
    df = pd.read_csv(data)
    df["y"] = [f"new{i}" for i in range(len(df))]
    csv("e.csv", df)
    line = bad_input(cli("evaluate", run, "e.csv"), "60 class(es)", "'new0'", "55 more")
    assert len(line) < 300


def test_image_npz_with_a_single_sample_class_names_it(cli, bad_input, tmp_path):
    """The non-tabular split (ClassModality.split): the rare class is named, briefly."""
    rng = np.random.default_rng(0)
    y = np.array([0] * 30 + [1] * 29 + [2])
    np.savez(tmp_path / "img.npz", x=rng.integers(0, 255, (60, 8, 8), dtype=np.uint8), y=y)
    out = tmp_path / "run"
    r = cli("train", "img.npz", "--max-epochs", "1", "--out", out)
    line = bad_input(r, "1 of 3 classes", "'2'", out=out, cwd=tmp_path)
    assert len(line) < 300
