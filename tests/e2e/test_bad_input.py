"""Bad input through the real CLI: exit 2, one line `nnrecipe: error: ...` that names the
specifics, no traceback, and no run directory left behind (the CLI's exit-code contract,
docs/architecture.md)."""

from __future__ import annotations

import numpy as np
import pytest

from nnrecipe.plan.schema import ACTIVATIONS


# ---- the data file itself -------------------------------------------------------------------
def test_missing_file(cli, bad_input, tmp_path):
    out = tmp_path / "run"
    r = cli("train", "nope.csv", "--target", "y", "--out", out)
    bad_input(r, "nope.csv", "not found", out=out, cwd=tmp_path)


def test_directory_as_data(cli, bad_input, tmp_path):
    (tmp_path / "folder").mkdir()
    out = tmp_path / "run"
    r = cli("train", "folder", "--target", "y", "--out", out)
    bad_input(r, "folder", "class subfolder", out=out, cwd=tmp_path)


def test_unknown_format(cli, bad_input, tmp_path):
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    out = tmp_path / "run"
    r = cli("train", "data.xlsx", "--target", "y", "--out", out)
    bad_input(r, "data.xlsx", "'.xlsx'", ".csv", ".parquet", out=out, cwd=tmp_path)


def test_corrupt_parquet(cli, bad_input, tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"\x00garbage, not a parquet file\xff" * 20)
    out = tmp_path / "run"
    r = cli("train", "x.parquet", "--target", "y", "--out", out)
    bad_input(r, "x.parquet", "parquet", out=out, cwd=tmp_path)


@pytest.mark.parametrize("content", ["", "x1,x2,y\n"], ids=["zero-bytes", "header-only"])
def test_empty_csv(cli, bad_input, tmp_path, content):
    (tmp_path / "empty.csv").write_text(content)
    out = tmp_path / "run"
    r = cli("train", "empty.csv", "--target", "y", "--out", out)
    bad_input(r, "empty.csv", "empty", out=out, cwd=tmp_path)


# ---- the target -----------------------------------------------------------------------------
def test_missing_target_lists_columns(cli, bad_input, tmp_path, data_csv):
    out = tmp_path / "run"
    r = cli("train", data_csv, "--target", "label", "--out", out)
    bad_input(r, "'label'", "x1, x2, color, y", out=out, cwd=tmp_path)


def test_target_with_one_class(cli, csv, frame, bad_input, tmp_path):
    df = frame().assign(y=1)
    csv("one.csv", df)
    out = tmp_path / "run"
    r = cli("train", "one.csv", "--target", "y", "--out", out)
    bad_input(r, "'y'", "single", out=out, cwd=tmp_path)


def test_target_all_missing(cli, csv, frame, bad_input, tmp_path):
    df = frame().assign(y=np.nan)
    csv("nolabels.csv", df)
    out = tmp_path / "run"
    r = cli("train", "nolabels.csv", "--target", "y", "--out", out)
    bad_input(r, "'y'", "missing in every row", out=out, cwd=tmp_path)


def test_regression_with_string_target(cli, csv, frame, bad_input, tmp_path):
    df = frame()
    df["y"] = np.where(df["y"] == 1, "yes", "no")
    csv("words.csv", df)
    out = tmp_path / "run"
    r = cli("train", "words.csv", "--target", "y", "--task", "regression", "--out", out)
    bad_input(r, "regression", "numeric", "'y'", out=out, cwd=tmp_path)


def test_unknown_task(cli, bad_input, tmp_path, data_csv):
    out = tmp_path / "run"
    r = cli("train", data_csv, "--target", "y", "--task", "clustering", "--out", out)
    bad_input(r, "clustering", "binary", "multiclass", "regression", out=out,
                     cwd=tmp_path)


def test_too_few_rows_to_split(cli, csv, frame, bad_input, tmp_path):
    csv("tiny.csv", frame(n=8))
    out = tmp_path / "run"
    r = cli("train", "tiny.csv", "--target", "y", "--out", out)
    bad_input(r, "too few rows", "8 rows", out=out, cwd=tmp_path)


# ---- a --test / --valid table with other columns --------------------------------------------
@pytest.mark.parametrize("flag,change,named", [
    ("--test", "drop", "x2"),
    ("--test", "add", "extra_col"),
], ids=["missing", "extra"])
def test_companion_table_with_other_columns(cli, csv, frame, bad_input, tmp_path, data_csv,
                                            flag, change, named):
    other = frame(n=30, seed=1)
    other = other.drop(columns=["x2"]) if change == "drop" else other.assign(extra_col=1.0)
    csv("other.csv", other)
    out = tmp_path / "run"
    r = cli("train", data_csv, "--target", "y", flag, "other.csv", "--out", out)
    bad_input(r, flag, "missing", "extra", f"'{named}'", out=out, cwd=tmp_path)


# ---- --set ----------------------------------------------------------------------------------
def test_set_unknown_key_names_the_closest_and_where_to_find_all(cli, bad_input, tmp_path,
                                                               data_csv):
    out = tmp_path / "run"
    r = cli("train", data_csv, "--target", "y", "--set", "optimizer.learning_rate=0.1",
            "--out", out)
    msg = bad_input(r, "'optimizer.learning_rate'", "did you mean optimizer.lr",
                    "nnrecipe plan", "valid keys", out=out, cwd=tmp_path)
    assert len(msg) < 300


@pytest.mark.parametrize("setting,expected", [
    ("optimizer.lr=-1", ["'optimizer.lr'", "> 0", "-1"]),
    ("model.dropout=1.5", ["'model.dropout'", "< 1", "1.5"]),
    ("model.activation=swish", ["'model.activation'", "swish", *ACTIVATIONS]),
], ids=["lr-negative", "dropout-too-big", "activation-choices"])
def test_set_bad_value(cli, bad_input, tmp_path, data_csv, setting, expected):
    out = tmp_path / "run"
    r = cli("train", data_csv, "--target", "y", "--set", setting, "--out", out)
    bad_input(r, *expected, out=out, cwd=tmp_path)


def test_set_without_equals(cli, bad_input, tmp_path, data_csv):
    out = tmp_path / "run"
    r = cli("train", data_csv, "--target", "y", "--set", "optimizer.lr", "--out", out)
    bad_input(r, "--set", "key=value", "'optimizer.lr'", out=out, cwd=tmp_path)


def test_several_bad_settings_in_one_line(cli, bad_input, tmp_path, data_csv):
    out = tmp_path / "run"
    r = cli("train", data_csv, "--target", "y", "--set", "model.depth=3",
            "--set", "optimizer.lr=-1", "--set", "model.dropout=1.5",
            "--set", "model.activation=swish", "--out", out)
    bad_input(r, "'model.depth'", "'optimizer.lr'", "'model.dropout'",
                     "'model.activation'", "valid keys", out=out, cwd=tmp_path)


def test_plan_command_rejects_bad_setting(cli, bad_input, tmp_path, data_csv):
    r = cli("plan", data_csv, "--target", "y", "--set", "optimizer.lr=0")
    bad_input(r, "'optimizer.lr'", "> 0", cwd=tmp_path)


# ---- values in the table --------------------------------------------------------------------
def test_infinite_feature_values(cli, csv, frame, bad_input, tmp_path):
    df = frame()
    df["x1"] = df["x1"].astype(object)
    df.loc[[3, 7], "x1"] = "inf"
    df.loc[11, "x1"] = "-inf"
    csv("inf.csv", df)
    out = tmp_path / "run"
    r = cli("train", "inf.csv", "--target", "y", "--out", out)
    bad_input(r, "infinite", "'x1': 3", out=out, cwd=tmp_path)


@pytest.mark.slow
def test_missing_feature_values_are_not_an_error(cli, csv, frame, tmp_path):
    df = frame()
    rng = np.random.default_rng(2)
    df.loc[rng.choice(len(df), 10, replace=False), "x1"] = np.nan
    df.loc[rng.choice(len(df), 6, replace=False), "color"] = np.nan
    csv("holes.csv", df)
    out = tmp_path / "run"
    r = cli("train", "holes.csv", "--target", "y", "--max-epochs", "2", "--quiet",
            "--out", out)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert (out / "model.pt").is_file() and (out / "evaluation.json").is_file()
    assert r.stdout.strip() == str(out)


# ---- predict / evaluate ---------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_table_missing_a_trained_column(cli, csv, frame, bad_input, tmp_path, trained_run, command):
    run_dir, _ = trained_run
    df = frame(n=20, seed=3).drop(columns=["x2"])
    csv("new.csv", df)
    r = cli(command, run_dir, "new.csv")
    bad_input(r, "'x2'", "trained on", cwd=tmp_path)
    assert r.stdout == "" or "prediction" not in r.stdout


@pytest.mark.slow
def test_evaluate_without_the_target(cli, csv, frame, bad_input, tmp_path, trained_run):
    run_dir, _ = trained_run
    csv("new.csv", frame(n=20, seed=3).drop(columns=["y"]))
    r = cli("evaluate", run_dir, "new.csv")
    bad_input(r, "'y'", "x1, x2, color", cwd=tmp_path)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_run_directory_not_found(cli, bad_input, tmp_path, data_csv, command):
    r = cli(command, tmp_path / "no_such_run", data_csv)
    bad_input(r, "no_such_run", "not found", cwd=tmp_path)


@pytest.mark.parametrize("command,content", [("predict", "empty"), ("evaluate", "partial")])
def test_directory_that_is_not_a_finished_run(cli, bad_input, tmp_path, data_csv, command, content):
    half = tmp_path / "half_run"
    half.mkdir()
    if content == "partial":
        (half / "plan.yaml").write_text("decisions: {}\nderived: {}\n")
    r = cli(command, half, data_csv)
    line = bad_input(r, "half_run", "not a finished nnrecipe run", "model.pt",
                            cwd=tmp_path)
    assert ("plan.yaml" in line) == (content == "empty")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_output_file_is_a_directory(cli, bad_input, tmp_path, trained_run, command):
    run_dir, data = trained_run
    (tmp_path / "outdir").mkdir()
    r = cli(command, run_dir, data, "--out", "outdir")
    bad_input(r, "outdir", "is a directory", cwd=tmp_path)
    assert list((tmp_path / "outdir").iterdir()) == []


# ---- the run directory ----------------------------------------------------------------------
def test_out_is_an_existing_non_empty_directory(cli, bad_input, tmp_path, data_csv):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")
    r = cli("train", data_csv, "--target", "y", "--max-epochs", "2", "--out", out)
    bad_input(r, "--out", "taken", "not an empty directory", cwd=tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me\n"


# ---- usage errors (click's own message: several lines, but never a traceback) ---------------
@pytest.mark.parametrize("args", [
    ["train", "data.csv"],                       # --target missing
    ["train", "data.csv", "-t", "y", "--bogus"],  # unknown option
], ids=["no-target", "unknown-option"])
def test_usage_errors(cli, tmp_path, data_csv, args):
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stderr.strip()
    assert not (tmp_path / "runs").exists()



@pytest.mark.parametrize("command,extra,message", [
    ("cv", ["--folds", "5"], "--folds 5 is too many for 10 rows"),
    ("tune", ["--trials", "0"], "--trials must be at least 1"),
    ("experiment", ["--change", "optimizer.lr=0.01", "--hypothesis", "h", "--repeats", "1"],
     "--repeats must be at least 2"),
])
def test_tuning_commands_read_images_and_refuse_bad_settings_plainly(cli, tmp_path, bad_input,
                                                                     command, extra, message):
    """cv, tune and experiment read an .npz of images like train (no 'tables only'); what
    cannot work is refused in one line before any run directory exists."""
    np.savez(tmp_path / "x.npz", x=np.zeros((10, 8, 8), np.uint8), y=np.arange(10) % 2)
    bad_input(cli(command, tmp_path / "x.npz", *extra, "--out", tmp_path / "o"), message,
              out=tmp_path / "o")
