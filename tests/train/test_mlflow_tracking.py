"""MLflow tracking: runs logged to a local SQLite store are read back with MLflow's own
client (MLflow 3 refuses the ./mlruns file store by default, so the tests use SQLite)."""

from __future__ import annotations

import json
import random
import sys

import pytest
import yaml

from nnrecipe import api
from nnrecipe.errors import NnrecipeError
from nnrecipe.train.mlflow_tracking import (
    MlflowTrackingError,
    MlflowWatcher,
    log_cv,
    log_finished_run,
    log_tune,
    open_experiment,
    plan_params,
)

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

EXPERIMENT = "nnrecipe-tests"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite tracking store whose experiment keeps its artifacts in the same folder
    (not ./mlruns in the current directory)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    return uri, client


def _text(value):
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _artifacts(client, run_id):
    return {a.path for a in client.list_artifacts(run_id)}


@pytest.mark.slow
def test_a_run_is_logged_live_then_finished_and_reads_back(store, table, tmp_path):
    uri, client = store
    random.seed(3)
    before = random.getstate()
    with MlflowWatcher(uri, experiment=EXPERIMENT, run_name="tiny") as watcher:
        run = api.fit(table(120), "y", out=tmp_path / "run", watchers=[watcher],
                           overrides={"train.max_epochs": 3})
        assert client.get_run(watcher.run_id).info.status == "RUNNING"
        run_id = log_finished_run(run, watcher=watcher)
    assert random.getstate() == before  # no random run name drawn from the caller's stream
    assert run_id == watcher.run_id
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED" and logged.info.run_name == "tiny"

    # every plan decision and derived fact, as its value
    plan = run.plan
    for key in [*plan.decisions, *plan.derived]:
        assert logged.data.params[key] == _text(plan[key]), key
    # one point per epoch, at step = epoch, equal to metrics.jsonl
    epochs = run.history.epochs
    assert len(epochs) == 3
    for name in ("train_loss", "val_loss", "val_accuracy", "lr"):
        points = client.get_metric_history(run_id, name)
        assert [p.step for p in points] == [1, 2, 3], name
        assert [p.value for p in points] == pytest.approx([e[name] for e in epochs])
    # test metrics and the baseline's
    for name, value in run.evaluation["metrics"].items():
        assert logged.data.metrics[f"test_{name}"] == pytest.approx(value)
    assert "baseline_accuracy" in logged.data.metrics
    # findings, status, the summary as the run's description
    tags = logged.data.tags
    assert tags["nnrecipe.findings"] == str(len(run.findings))
    assert tags["nnrecipe.status"] == "finished" and tags["nnrecipe.task"] == "binary"
    assert tags["mlflow.note.content"] == (run.path / "summary.md").read_text()
    assert {"report.html", "summary.md", "model.pt", "findings.json", "plan.yaml",
            "metrics.jsonl", "evaluation.json"} <= _artifacts(client, run_id)
    assert not any(a.startswith("checkpoints") for a in _artifacts(client, run_id))
    # the reasons travel in plan.yaml
    got = yaml.safe_load(open(client.download_artifacts(run_id, "plan.yaml", str(tmp_path))))
    assert got["decisions"]["optimizer.lr"]["reason"] == plan.decisions["optimizer.lr"].reason
    findings = json.load(open(client.download_artifacts(run_id, "findings.json",
                                                        str(tmp_path))))
    assert len(findings) == len(run.findings)


@pytest.mark.slow
def test_cv_logs_a_parent_with_the_summary_and_a_nested_run_per_fold(store, table, tmp_path):
    uri, client = store
    result = api.cv(table(120), "y", folds=2, out=tmp_path / "cv",
                         overrides={"train.max_epochs": 2})
    parent = log_cv(result, tracking_uri=uri, experiment=EXPERIMENT)
    logged = client.get_run(parent)
    assert logged.info.status == "FINISHED" and logged.data.tags["nnrecipe.kind"] == "cv"
    assert logged.data.params["folds"] == "2"
    for stat in ("mean", "std"):
        assert logged.data.metrics[f"accuracy_{stat}"] == pytest.approx(
            result["summary"]["accuracy"][stat])
    assert {"cv.json", "report.html"} <= _artifacts(client, parent)
    folds = client.search_runs([logged.info.experiment_id],
                               f"tags.`mlflow.parentRunId` = '{parent}'")
    assert sorted(r.info.run_name for r in folds) == ["fold_1", "fold_2"]
    for fold in folds:
        k = int(fold.info.run_name.split("_")[1])
        row = result["per_fold"][k - 1]
        assert fold.data.metrics["test_accuracy"] == pytest.approx(row["accuracy"])
        epochs = [json.loads(line) for line in
                  (tmp_path / "cv" / f"fold_{k}" / "metrics.jsonl").read_text().splitlines()]
        history = client.get_metric_history(fold.info.run_id, "val_loss")
        assert [p.step for p in history] == [e["epoch"] for e in epochs]  # from metrics.jsonl
        assert {"model.pt", "report.html", "findings.json"} <= _artifacts(client,
                                                                          fold.info.run_id)


@pytest.mark.slow
def test_tune_logs_the_retrained_run_and_a_nested_run_per_trial(store, table, tmp_path):
    uri, client = store
    result = api.tune(table(120), "y", trials=2, space=["model.width=8:32"],
                           overrides={"train.max_epochs": 2, "optimizer.lr": 0.01},
                           out=tmp_path / "tune")
    parent = log_tune(result, tracking_uri=uri, experiment=EXPERIMENT)
    logged = client.get_run(parent)
    tags = logged.data.tags
    assert tags["nnrecipe.kind"] == "tune" and tags["nnrecipe.tune.n_trials"] == "2"
    assert logged.data.params["model.width"] == str(result["run"].plan["model.width"])
    assert {"tune.json", "model.pt", "report.html"} <= _artifacts(client, parent)
    trials = client.search_runs([logged.info.experiment_id],
                                f"tags.`mlflow.parentRunId` = '{parent}'")
    assert len(trials) == 2
    for t in trials:
        number = int(t.data.tags["nnrecipe.trial.number"])
        trial = result["trials"][number]
        assert t.data.params["model.width"] == str(trial["params"]["model.width"])
        curve = client.get_metric_history(t.info.run_id, "val_loss")
        assert len(curve) == len(trial["intermediate"])


def test_a_resumed_watcher_goes_on_in_the_same_run(store):
    uri, client = store
    first = MlflowWatcher(uri, experiment=EXPERIMENT, run_name="resumed")
    first.on_train_begin(None)
    first.end("KILLED")  # Ctrl-C: the run stops, its checkpoint keeps the watcher's state
    again = MlflowWatcher(uri, experiment=EXPERIMENT)
    again.load_state_dict(first.state_dict())
    again.on_train_begin(None)
    assert again.run_id == first.run_id
    assert client.get_run(first.run_id).info.status == "RUNNING"
    again.end()
    assert client.get_run(first.run_id).info.status == "FINISHED"
    elsewhere = MlflowWatcher(uri, experiment=EXPERIMENT)
    elsewhere.load_state_dict({"run_id": "0" * 32})  # a run this store does not hold
    assert elsewhere.start() != "0" * 32


def test_the_callers_random_stream_is_left_alone(store, tmp_path, monkeypatch):
    uri, client = store
    monkeypatch.chdir(tmp_path)  # a new experiment's artifacts would go to ./mlruns
    random.seed(1)
    before = random.getstate()
    open_experiment(uri, "fresh")  # MLflow may draw a digit of a new id from `random`
    watcher = MlflowWatcher(uri, experiment="fresh")
    watcher.start()
    watcher.end()
    assert random.getstate() == before
    assert client.get_run(watcher.run_id).info.run_name == "nnrecipe"


def test_an_exception_in_the_block_marks_the_run_failed(store):
    uri, client = store
    with pytest.raises(RuntimeError), MlflowWatcher(uri, experiment=EXPERIMENT) as watcher:
        watcher.start()
        raise RuntimeError("boom")
    assert client.get_run(watcher.run_id).info.status == "FAILED"


def test_long_parameter_values_are_cut_to_the_limit(table):
    plan = api.plan(table(60), "y").to_dict()
    params, cut = plan_params(plan, limit=6)
    assert cut and all(len(params[k]) == 6 and params[k].endswith("…") for k in cut)
    assert all(len(v) <= 6 for v in params.values())
    full, none_cut = plan_params(plan)
    assert none_cut == [] and full["optimizer.name"] == plan["decisions"]["optimizer.name"][
        "value"]


def test_a_store_mlflow_cannot_open_is_one_line():
    with pytest.raises(MlflowTrackingError) as e:
        open_experiment("nosuchscheme://nowhere")
    assert isinstance(e.value, NnrecipeError) and "\n" not in str(e.value)
    assert "nosuchscheme://nowhere" in str(e.value)


def test_a_missing_mlflow_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails
    with pytest.raises(MlflowTrackingError) as e:
        MlflowWatcher("sqlite:///never.db")
    message = str(e.value)
    assert isinstance(e.value, NnrecipeError) and "\n" not in message
    assert "pip install 'nnrecipe[mlflow]'" in message
