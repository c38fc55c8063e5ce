"""End to end through the CLI on scikit-learn's bundled data sets (no download)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets
from sklearn import metrics as skm

import nnrecipe


def _csv(tmp_path, loader, name):
    path = tmp_path / f"{name}.csv"
    loader(as_frame=True).frame.to_csv(path, index=False)
    return path


def _train(cli, tmp_path, data, *extra):
    out = tmp_path / "run"
    r = cli("train", data, "--target", "target", "--out", out, *extra)
    assert r.returncode == 0, r.stderr
    return out, json.loads((out / "evaluation.json").read_text())


def _alarms(out):
    """Warning- and error-level findings: a healthy default run must have none."""
    findings = json.loads((out / "findings.json").read_text())
    return [(f["code"], f["severity"]) for f in findings if f["severity"] != "info"]


def test_breast_cancer_reaches_95_percent(cli, tmp_path):
    out, ev = _train(cli, tmp_path, _csv(tmp_path, datasets.load_breast_cancer, "breast_cancer"))
    assert _alarms(out) == []
    assert ev["task"] == "binary"
    assert ev["metrics"]["accuracy"] >= 0.95
    assert ev["metrics"]["accuracy"] > ev["baseline"]["metrics"]["accuracy"]
    for name in ("plan.yaml", "profile.json", "metrics.jsonl", "evaluation.json", "model.pt",
                 "findings.json",
                 "preprocess.json", "summary.md", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (out / name).is_file(), name
    summary = (out / "summary.md").read_text()
    assert "accuracy" in summary and "majority class" in summary and str(out) in summary


def test_diabetes_beats_the_mean_predictor(cli, tmp_path):
    out, ev = _train(cli, tmp_path, _csv(tmp_path, datasets.load_diabetes, "diabetes"))
    assert _alarms(out) == []
    assert ev["task"] == "regression"
    assert ev["metrics"]["rmse"] < ev["baseline"]["metrics"]["rmse"]
    assert ev["baseline"]["name"] == "mean_predictor"


def test_wine_beats_the_majority_class_and_reruns_identically(cli, tmp_path):
    data = _csv(tmp_path, datasets.load_wine, "wine")
    out, ev = _train(cli, tmp_path, data, "--seed", "3")
    assert _alarms(out) == []
    assert ev["task"] == "multiclass"
    assert ev["metrics"]["accuracy"] > ev["baseline"]["metrics"]["accuracy"] + 0.3
    again = tmp_path / "again"
    r = cli("train", data, "--target", "target", "--out", again, "--seed", "3", "-q")
    assert r.returncode == 0, r.stderr

    def epochs(d):
        rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in e.items() if k != "seconds"} for e in rows]

    assert epochs(out) == epochs(again)
    ev2 = json.loads((again / "evaluation.json").read_text())
    assert ev2["metrics"] == ev["metrics"]


def test_predict_and_evaluate_reproduce_the_evaluation(cli, tmp_path):
    frame = datasets.load_breast_cancer(as_frame=True).frame
    train_df = frame.sample(frac=0.8, random_state=0)
    test_df = frame.drop(train_df.index)
    train_df.to_csv(tmp_path / "train.csv", index=False)
    test_df.to_csv(tmp_path / "test.csv", index=False)
    out, ev = _train(cli, tmp_path, tmp_path / "train.csv", "--test", tmp_path / "test.csv",
                     "--max-epochs", "30")
    r = cli("predict", out, tmp_path / "test.csv", "--out", tmp_path / "pred.csv")
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == ["prediction", "proba_0", "proba_1"]
    y = test_df["target"].to_numpy()
    assert skm.accuracy_score(y, pred["prediction"]) == pytest.approx(ev["metrics"]["accuracy"])
    assert skm.log_loss(y, pred[["proba_0", "proba_1"]].to_numpy()) == pytest.approx(
        ev["metrics"]["log_loss"], rel=1e-6)
    assert skm.roc_auc_score(y, pred["proba_1"]) == pytest.approx(ev["metrics"]["roc_auc"])
    r = cli("evaluate", out, tmp_path / "test.csv", "--out", tmp_path / "ev.json")
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout
    again = json.loads((tmp_path / "ev.json").read_text())
    assert again["metrics"] == pytest.approx(ev["metrics"])
    assert again["baseline"] == ev["baseline"]


def test_plan_prints_every_decision_with_its_reason_and_trains_nothing(cli, tmp_path):
    data = _csv(tmp_path, datasets.load_wine, "wine")
    r = cli("plan", data, "--target", "target", "--set", "model.activation=tanh")
    assert r.returncode == 0, r.stderr
    for fragment in ("model.init", "glorot_uniform", "set by the user", "cross_entropy",
                     "optimizer.lr", "model.parameters"):
        assert fragment in r.stdout, fragment
    assert not (tmp_path / "runs").exists()


def test_python_api_fit_predict_and_load_run(tmp_path):
    df = datasets.load_diabetes(as_frame=True).frame
    run = nnrecipe.fit(df, target="target", out=tmp_path / "r",
                       overrides={"train.max_epochs": 20, "data.scale": "minmax"})
    assert run.plan["data.scale"] == "minmax" and len(run.history.epochs) <= 20
    loaded = nnrecipe.load_run(tmp_path / "r")
    np.testing.assert_allclose(loaded.predict(df.head(20))["prediction"],
                               run.predict(df.head(20))["prediction"], rtol=1e-6)
    assert loaded.evaluation == json.loads((tmp_path / "r" / "evaluation.json").read_text())


def test_parquet_input_and_columns_of_every_kind(cli, tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({
        "x": rng.normal(size=n), "flag": rng.choice([True, False], n),
        "when": pd.date_range("2021-01-01", periods=n, freq="D"),
        "city": rng.choice([f"c{i}" for i in range(15)], n),  # embedded (> 10 levels)
        "size": rng.choice(["S", "M", "L"], n), "row_id": np.arange(n),
    })
    df.loc[rng.random(n) < 0.1, "x"] = np.nan
    df["target"] = np.where(df["x"].fillna(0) + (df["size"] == "L") > 0.3, "yes", "no")
    df.to_parquet(tmp_path / "mixed.parquet")
    out, ev = _train(cli, tmp_path, tmp_path / "mixed.parquet", "--max-epochs", "15", "-q")
    profile = json.loads((out / "profile.json").read_text())
    kinds = {c: s["kind"] for c, s in profile["columns"].items()}
    assert kinds == {"x": "numeric", "flag": "boolean", "when": "datetime",
                     "city": "categorical", "size": "categorical", "row_id": "id",
                     "target": "target"}
    pre = json.loads((out / "preprocess.json").read_text())
    assert [c["name"] for c in pre["embed"]] == ["city"] and "row_id" in pre["dropped"]
    assert ev["metrics"]["accuracy"] > ev["baseline"]["metrics"]["accuracy"]
    pred = nnrecipe.load_run(out).predict(df)
    assert set(pred["prediction"]) <= {"yes", "no"} and "proba_yes" in pred
