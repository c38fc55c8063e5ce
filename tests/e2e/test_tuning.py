"""LR range test and schedules through the CLI and the API."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from sklearn import datasets

import nnrecipe


def test_lr_find_command_writes_the_sweep_and_a_plot(cli, tmp_path):
    data = tmp_path / "wine.csv"
    datasets.load_wine(as_frame=True).frame.to_csv(data, index=False)
    r = cli("lr-find", data, "--target", "target", "--out", tmp_path / "lr")
    assert r.returncode == 0, r.stderr
    assert "Suggested learning rate" in r.stdout
    result = json.loads((tmp_path / "lr" / "lr_find.json").read_text())
    assert 1e-7 <= result["suggestion"] <= 10 and result["rule"] in (
        "valley", "steepest", "min_div_10")
    assert len(result["lrs"]) == len(result["losses"]) > 10
    assert (tmp_path / "lr" / "lr_find.png").read_bytes().startswith(b"\x89PNG")


def test_train_with_lr_auto_uses_the_range_tests_suggestion(tmp_path):
    df = datasets.load_breast_cancer(as_frame=True).frame
    run = nnrecipe.fit(df, "target", overrides={"optimizer.lr": "auto",
                                                "train.max_epochs": 15}, out=tmp_path / "r")
    found = json.loads((tmp_path / "r" / "lr_find.json").read_text())["suggestion"]
    assert run.plan["optimizer.lr"] == found
    saved = yaml.safe_load((tmp_path / "r" / "plan.yaml").read_text())
    decision = saved["decisions"]["optimizer.lr"]
    assert decision["value"] == found and decision["rule"] == "optimizer.lr_range_test"
    epochs = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert epochs[0]["lr"] == found
    assert run.evaluation["metrics"]["accuracy"] > 0.9


def test_a_schedule_set_from_the_cli_shows_in_the_logged_rates(cli, tmp_path):
    data = tmp_path / "wine.csv"
    datasets.load_wine(as_frame=True).frame.to_csv(data, index=False)
    r = cli("train", data, "--target", "target", "--out", tmp_path / "s", "-q",
            "--max-epochs", "6", "--set", "schedule.name=step", "--set", "schedule.step_size=2",
            "--set", "train.early_stopping.patience=0")
    assert r.returncode == 0, r.stderr
    lrs = [json.loads(x)["lr"] for x in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()]
    assert lrs == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]


def test_cv_command_reports_folds_and_rejects_a_bad_fold_count(cli, tmp_path, bad_input):
    data = tmp_path / "wine.csv"
    datasets.load_wine(as_frame=True).frame.to_csv(data, index=False)
    r = cli("cv", data, "--target", "target", "--folds", "3", "--max-epochs", "20",
            "--out", tmp_path / "cv")
    assert r.returncode == 0, r.stderr
    assert "mean ± std" in r.stdout and "fold 3" in r.stdout
    assert len(json.loads((tmp_path / "cv" / "cv.json").read_text())["per_fold"]) == 3
    r = cli("cv", data, "--target", "target", "--folds", "1", "--out", tmp_path / "bad")
    bad_input(r, "--folds must be at least 2", out=tmp_path / "bad")


def test_experiment_and_experiments_commands(cli, tmp_path, bad_input):
    data = tmp_path / "wine.csv"
    datasets.load_wine(as_frame=True).frame.to_csv(data, index=False)
    r = cli("experiment", data, "--target", "target", "--hypothesis", "half the width is as good",
            "--change", "model.width=4", "--expect", "same", "--repeats", "2",
            "--max-epochs", "10", "--out", tmp_path / "runs" / "exp")
    assert r.returncode == 0, r.stderr
    assert "Hypothesis: half the width is as good" in r.stdout and "95% CI" in r.stdout
    r = cli("experiments", "--root", tmp_path / "runs")
    assert r.returncode == 0, r.stderr
    assert "half the width" in r.stdout and "model.width=4" in r.stdout
    r = cli("experiment", data, "--target", "target", "--hypothesis", "h", "--change",
            "model.width=4", "--expect", "faster", "--out", tmp_path / "bad")
    bad_input(r, "--expect must be one of better, worse, same", out=tmp_path / "bad")


def test_lbfgs_and_swa_runs_end_to_end_without_false_alarms(tmp_path):
    df = datasets.load_breast_cancer(as_frame=True).frame
    for name, over in (("lbfgs", {"optimizer.name": "lbfgs", "train.max_epochs": 10}),
                       ("swa", {"train.swa": True, "train.max_epochs": 20})):
        run = nnrecipe.fit(df, "target", overrides=over, out=tmp_path / name)
        assert run.evaluation["metrics"]["accuracy"] > 0.9, name
        assert [f.code for f in run.findings if f.severity != "info"] == [], name
    assert "stochastic weight averaging" in run.history.stop_reason


def _moons(path):
    x, y = datasets.make_moons(400, noise=0.25, random_state=0)
    pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y}).to_csv(path, index=False)
    return path


def test_tune_with_two_workers_shares_one_journal_study_and_can_resume(cli, tmp_path):
    data = _moons(tmp_path / "moons.csv")
    r = cli("tune", data, "-t", "y", "--trials", "14", "--workers", "2", "--max-epochs", "20",
            "--out", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    assert "Study 'moons'" in r.stdout and "(default)" in r.stdout
    tune = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert tune["n_trials"] == 14 and tune["storage"] == str(tmp_path / "t" / "study.journal")
    states = [t["state"] for t in tune["trials"]]
    assert set(states) <= {"COMPLETE", "PRUNED"} and tune["n_pruned"] >= 1, states
    # trial 0 is the default plan, so the search can only match or beat it on validation
    default = tune["trials"][tune["default_trial"]]
    the_plan = nnrecipe.plan(data, "y", overrides={"train.max_epochs": 20})
    assert default["params"] == {k: the_plan[k] for k in default["params"]}
    assert tune["best"]["value"] <= default["value"]
    # the best plan was retrained in the run directory and reached the trial's own loss
    saved = yaml.safe_load((tmp_path / "t" / "plan.yaml").read_text())["decisions"]
    assert {k: saved[k]["value"] for k in tune["best"]["params"]} == tune["best"]["params"]
    epochs = [json.loads(x) for x in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()]
    assert min(e["val_loss"] for e in epochs) == pytest.approx(tune["best"]["value"], rel=1e-4)
    accuracy = json.loads((tmp_path / "t" / "evaluation.json").read_text())["metrics"]["accuracy"]
    assert accuracy == tune["retrained"]["metrics"]["accuracy"] > 0.8
    # resume: the same journal, two more trials; the default is not enqueued again
    r = cli("tune", data, "-t", "y", "--trials", "2", "--max-epochs", "20", "-q",
            "--storage", tmp_path / "t" / "study.journal", "--out", tmp_path / "t2")
    assert r.returncode == 0, r.stderr
    again = json.loads((tmp_path / "t2" / "tune.json").read_text())
    assert again["n_trials"] == 16 and again["default_trial"] is None
    assert [t["params"] for t in again["trials"][:14]] == [t["params"] for t in tune["trials"]]


def test_tune_respects_set_and_space(tmp_path):
    data = _moons(tmp_path / "moons.csv")
    r = nnrecipe.tune(data, "y", trials=4, space=["model.width=8:32", "optimizer.name=adam,sgd"],
                      overrides={"model.hidden_layers": 2, "train.max_epochs": 8},
                      out=tmp_path / "t")
    assert "model.hidden_layers" not in r["space"] and r["fixed"]["model.hidden_layers"] == 2
    for t in r["trials"]:
        assert 8 <= t["params"]["model.width"] <= 32
        assert t["params"]["optimizer.name"] in ("adam", "sgd")
        assert "model.hidden_layers" not in t["params"]
    assert r["run"].plan["model.hidden_layers"] == 2


def test_tune_rejects_bad_options_before_any_work(cli, tmp_path, bad_input):
    data = _moons(tmp_path / "moons.csv")
    r = cli("tune", data, "-t", "y", "--space", "model.depth=1:3", "--out", tmp_path / "x")
    bad_input(r, "unknown plan key 'model.depth'", out=tmp_path / "x")
    r = cli("tune", data, "-t", "y", "--trials", "0", "--workers", "0", "--out", tmp_path / "x")
    bad_input(r, "--trials must be at least 1", "--workers must be at least 1",
              out=tmp_path / "x")
    r = cli("tune", data, "-t", "y", "--set", "model.width=16", "--space", "model.width=8:32",
            "--out", tmp_path / "x")
    bad_input(r, "given both with --set", out=tmp_path / "x")
