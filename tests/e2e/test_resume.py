"""A run killed (SIGKILL) or interrupted (Ctrl-C) goes on with `nnrecipe train --resume RUN`
and ends bit-identical to the run that was never stopped: the same weights, the same
evaluation (apart from wall-clock seconds), the same learning curve."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import datasets

pytestmark = pytest.mark.slow

NNRECIPE = str(Path(sys.executable).parent / "nnrecipe")


def _start(*args, cwd):
    return subprocess.Popen([NNRECIPE, "train", *map(str, args), "-q"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epochs(proc, run_dir: Path, epochs: int, timeout: float = 120) -> None:
    metrics = run_dir / "metrics.jsonl"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= epochs:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run never reached the epoch to stop it at")


def _same_result(a: Path, b: Path) -> None:
    wa = torch.load(a / "model.pt", weights_only=True)
    wb = torch.load(b / "model.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    ea, eb = (json.loads((d / "evaluation.json").read_text()) for d in (a, b))
    for e in (ea, eb):
        e["training"].pop("seconds")
    assert ea == eb
    ma, mb = ([{k: v for k, v in json.loads(line).items() if k != "seconds"}
               for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (a, b))
    assert ma == mb


@pytest.fixture(scope="module")
def big_table(tmp_path_factory) -> Path:
    """Enough rows that an epoch takes a moment: there is time to stop the run mid-way."""
    x, y = datasets.make_classification(n_samples=12000, n_features=20, n_informative=8,
                                        random_state=0)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)]).assign(y=y)
    path = tmp_path_factory.mktemp("resume") / "big.csv"
    df.to_csv(path, index=False)
    return path


OPTIONS = ["-t", "y", "--max-epochs", "6", "--set", "train.early_stopping.patience=0"]


def test_kill_9_then_resume_equals_the_uninterrupted_table_run(big_table, tmp_path):
    whole = subprocess.run([NNRECIPE, "train", big_table, *OPTIONS, "--out", tmp_path / "a",
                            "-q"], capture_output=True, text=True, cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    proc = _start(big_table, *OPTIONS, "--out", tmp_path / "b", cwd=tmp_path)
    _wait_for_epochs(proc, tmp_path / "b", 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    status = json.loads((tmp_path / "b" / "status.json").read_text())
    assert status["status"] == "running" and not (tmp_path / "b" / "model.pt").exists()
    r = subprocess.run([NNRECIPE, "predict", tmp_path / "b", big_table], capture_output=True,
                       text=True, cwd=tmp_path)  # an unfinished run says so, in one line
    assert r.returncode == 2 and "did not finish" in r.stderr and "--resume" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([NNRECIPE, "report", tmp_path / "b"], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 2 and "did not finish" in r.stderr and "--resume" in r.stderr
    r = subprocess.run([NNRECIPE, "train", "--resume", tmp_path / "b", "-q"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] == "finished"
    _same_result(tmp_path / "a", tmp_path / "b")
    assert not list((tmp_path / "b").rglob("*.tmp"))  # no temporary file left behind


def test_ctrl_c_saves_the_best_weights_exits_130_and_resumes(big_table, tmp_path):
    whole = subprocess.run([NNRECIPE, "train", big_table, *OPTIONS, "--out", tmp_path / "a",
                            "-q"], capture_output=True, text=True, cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    proc = _start(big_table, *OPTIONS, "--out", tmp_path / "b", cwd=tmp_path)
    _wait_for_epochs(proc, tmp_path / "b", 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    run = tmp_path / "b"
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert (run / "model.pt").exists() and (run / "report.html").exists()
    assert "nnrecipe train --resume" in (run / "summary.md").read_text()
    r = subprocess.run([NNRECIPE, "train", "--resume", run, "-q"], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _same_result(tmp_path / "a", run)


def test_kill_9_then_resume_equals_the_uninterrupted_convnet_run(tmp_path):
    d = datasets.load_digits()
    keep = d.target < 4  # four digits: a small convnet, a few seconds an epoch
    np.savez(tmp_path / "digits.npz", x=(d.images[keep] * 16).clip(0, 255).astype(np.uint8),
             y=d.target[keep])
    opts = ["--max-epochs", "3", "--set", "train.early_stopping.patience=0", "--no-preflight",
            "--set", "train.checkpoint_minutes=0.002"]  # mid-epoch checkpoints too
    whole = subprocess.run([NNRECIPE, "train", tmp_path / "digits.npz", *opts, "--out",
                            tmp_path / "a", "-q"], capture_output=True, text=True,
                           cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    proc = _start(tmp_path / "digits.npz", *opts, "--out", tmp_path / "b", cwd=tmp_path)
    _wait_for_epochs(proc, tmp_path / "b", 1)
    time.sleep(0.3)  # somewhere inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = subprocess.run([NNRECIPE, "train", "--resume", tmp_path / "b", "-q"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _same_result(tmp_path / "a", tmp_path / "b")


def test_a_second_ctrl_c_stops_at_once_and_the_run_still_resumes(big_table, tmp_path):
    proc = _start(big_table, *OPTIONS, "--out", tmp_path / "b", cwd=tmp_path)
    _wait_for_epochs(proc, tmp_path / "b", 1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    status = json.loads((tmp_path / "b" / "status.json").read_text())
    assert status["status"] == "interrupted"
    r = subprocess.run([NNRECIPE, "train", "--resume", tmp_path / "b", "-q"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] == "finished"
