"""The ecosystem from the command line: `nnrecipe export`, `--mlflow-uri` on train, and a
run logged to TensorBoard and MLflow that is interrupted and resumed (each logger keeps its
state in the checkpoint, so the resumed run goes on in the same MLflow run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnrecipe import api
from nnrecipe.train.callbacks import Watcher

NNRECIPE = Path(sys.executable).parent / "nnrecipe"
mlflow = pytest.importorskip("mlflow")
ort = pytest.importorskip("onnxruntime")


def _frame(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour,
                         "y": (x1 + x2 + (colour == "red") > 0.5).astype(int)})


def _cli(*args, cwd):
    return subprocess.run([str(NNRECIPE), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-epoch CLI run logged to a SQLite MLflow store."""
    root = tmp_path_factory.mktemp("eco")
    _frame().to_csv(root / "data.csv", index=False)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    done = _cli("train", "data.csv", "-t", "y", "--max-epochs", "3", "--out", "run",
                "--mlflow-uri", uri, "-q", cwd=root)
    assert done.returncode == 0, done.stderr
    return root, uri


@pytest.mark.slow
def test_train_mlflow_uri_logs_the_plan_the_epochs_and_the_test_metrics(trained):
    root, uri = trained
    client = mlflow.MlflowClient(uri)
    (found,) = client.search_runs([client.get_experiment_by_name("nnrecipe").experiment_id])
    assert found.info.status == "FINISHED"
    epochs = (root / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(client.get_metric_history(found.info.run_id, "val_loss")) == len(epochs)
    evaluation = json.loads((root / "run" / "evaluation.json").read_text())
    assert found.data.metrics["test_accuracy"] == pytest.approx(
        evaluation["metrics"]["accuracy"])
    assert "optimizer.lr" in found.data.params


@pytest.mark.slow
def test_export_command_writes_a_model_onnxruntime_runs(trained):
    root, _ = trained
    done = _cli("export", "run", "--out", "served.onnx", cwd=root)
    assert done.returncode == 0, done.stderr
    sidecar = json.loads((root / "served.onnx.json").read_text())
    session = ort.InferenceSession(str(root / "served.onnx"))
    assert {i.name for i in session.get_inputs()} == {i["name"] for i in sidecar["inputs"]}
    again = _cli("export", "run", "--out", "served.onnx", cwd=root)  # taken: never replaced
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert _cli("export", "run", "--format", "pickle", cwd=root).returncode == 2


class _CtrlCAt(Watcher):
    """A second Ctrl-C (stop at once) at the end of epoch ``at``."""

    def __init__(self, at: int | None):
        self.at = at

    def on_epoch_end(self, state) -> None:
        if state.epoch == self.at:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_a_tracked_run_interrupted_and_resumed_goes_on_in_the_same_mlflow_run(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow keeps artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame, run_dir = _frame(), tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        api.fit(frame, "y", out=run_dir, tensorboard=True, mlflow=uri,
                watchers=[_CtrlCAt(3)], overrides={"train.max_epochs": 5,
                                                   "train.early_stopping.patience": 0})
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("nnrecipe").experiment_id
    (cut,) = client.search_runs([experiment])
    assert cut.info.status == "KILLED"
    run = api.resume(run_dir, frame, watchers=[_CtrlCAt(None)])
    assert run.status == "finished" and len(run.history.epochs) == 5
    (done,) = client.search_runs([experiment])
    assert done.info.run_id == cut.info.run_id and done.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(done.info.run_id, "val_loss")]
    assert sorted(set(steps)) == [1, 2, 3, 4, 5]
    assert any((run_dir / "tensorboard").iterdir())
