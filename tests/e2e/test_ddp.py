"""Many processes (DistributedDataParallel through torch's launcher, gloo on the CPU):
`nnrecipe train ... --nproc 2` finishes, only rank 0 writes, the result is the 1-process
run's with the same global batch, the doctor still finds a planted fault, a killed run
resumes, and a process that dies ends the job with one line instead of a hang."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import torch
import yaml
from sklearn import datasets

from conftest import NNRECIPE, run_cli

pytestmark = pytest.mark.slow

# no dropout, no BatchNorm: the two paths then differ only in how the sums are rounded; one
# network (a table's default ensemble trains in one process only)
EXACT = ["--set", "model.dropout=0", "--set", "model.batchnorm=false", "--set",
         "train.early_stopping.patience=0", "--set", "optimizer.lr=0.003", "--seed", "1",
         "--set", "model.ensemble=1"]


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    x, y = datasets.make_classification(n_samples=3000, n_features=10, n_informative=5,
                                        random_state=0)
    path = tmp_path_factory.mktemp("ddp") / "t.csv"
    pd.DataFrame(x, columns=[f"f{i}" for i in range(10)]).assign(y=y).to_csv(path, index=False)
    return path


def _curve(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _plan(run: Path) -> dict:
    return yaml.safe_load((run / "plan.yaml").read_text())["decisions"]


def test_two_processes_match_one_with_the_same_global_batch(table, tmp_path):
    one = run_cli("train", table, "-t", "y", "--max-epochs", "4", *EXACT, "--set",
                  "train.batch_size=64", "--out", "one", "-q", cwd=tmp_path, timeout=300)
    assert one.returncode == 0, one.stderr
    two = run_cli("train", table, "-t", "y", "--max-epochs", "4", *EXACT, "--set",
                  "train.batch_size=32", "--out", "two", "--nproc", "2", "-q", cwd=tmp_path,
                  timeout=300)
    assert two.returncode == 0, two.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # rank 1 wrote nothing
    assert two.stdout.strip().endswith("two")  # printed once, by rank 0
    plan = yaml.safe_load((tmp_path / "two" / "plan.yaml").read_text())
    assert plan["derived"]["train.processes"]["value"] == 2
    assert plan["derived"]["train.global_batch_size"]["value"] == 64
    a, b = _curve(tmp_path / "one"), _curve(tmp_path / "two")
    assert len(a) == len(b) == 4
    # the same batches, except that the 2,099 training rows are padded to 2,100 (rank 1's
    # share repeats one row, as torch's DistributedSampler pads): within 0.2% per epoch
    # (tests/train/test_distributed.py checks the loop itself to float rounding)
    for ea, eb in zip(a, b, strict=True):
        assert eb["train_loss"] == pytest.approx(ea["train_loss"], rel=2e-3)
        assert eb["val_loss"] == pytest.approx(ea["val_loss"], rel=2e-3)
    wa = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    wb = torch.load(tmp_path / "two" / "model.pt", weights_only=True)
    flat_a, flat_b = (torch.cat([w[k].flatten() for k in sorted(w)]) for w in (wa, wb))
    assert (flat_b - flat_a).norm() <= 0.02 * flat_a.norm()  # all weights within 2%


def test_the_plan_scales_the_learning_rate_it_chose(table, tmp_path):
    r = run_cli("train", table, "-t", "y", "--max-epochs", "1", "--out", "r", "--nproc", "2",
                "-q", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    lr = yaml.safe_load((tmp_path / "r" / "plan.yaml").read_text())["decisions"]["optimizer.lr"]
    assert lr["value"] == pytest.approx(1e-3 * 2 ** 0.5)  # adam: square-root scaling
    assert "Malladi et al. 2022" in lr["reason"]


def test_a_small_convnet_trains_in_two_processes(tmp_path):
    d = datasets.load_digits()
    np.savez(tmp_path / "digits.npz", x=d.images[:600].astype(np.float32), y=d.target[:600])
    r = run_cli("train", "digits.npz", "--max-epochs", "2", "--out", "cnn", "--nproc", "2",
                "-q", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    ev = json.loads((tmp_path / "cnn" / "evaluation.json").read_text())
    assert ev["metrics"]["accuracy"] > ev["baseline"]["metrics"]["accuracy"] + 0.2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn", "digits.npz"]


def test_the_doctor_finds_a_planted_fault_under_ddp(table, tmp_path):
    # SGD at a learning rate of 30: the loss blows up within a few steps
    r = run_cli("train", table, "-t", "y", "--max-epochs", "3", "--nproc", "2", "--out", "bad",
                "--set", "optimizer.name=sgd", "--set", "optimizer.lr=30", "--no-preflight",
                cwd=tmp_path, timeout=300)
    codes = {f["code"] for f in json.loads((tmp_path / "bad" / "findings.json").read_text())}
    assert codes & {"nan_loss", "loss_divergence", "exploding_gradients"}, (codes, r.stderr)
    assert r.stderr.count("nnrecipe: error") <= 1  # one line, from rank 0 alone


def _start(*args, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(NNRECIPE), "train", *map(str, args), "-q"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for(path: Path, lines: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {lines} lines")


@pytest.fixture(scope="module")
def slow_table(tmp_path_factory) -> Path:
    """Enough rows (and small batches) that an epoch takes a while."""
    x, y = datasets.make_classification(n_samples=16000, n_features=10, random_state=1)
    path = tmp_path_factory.mktemp("ddp_slow") / "s.csv"
    pd.DataFrame(x, columns=[f"f{i}" for i in range(10)]).assign(y=y).to_csv(path, index=False)
    return path


RESUME = ["-t", "y", "--max-epochs", "4", *EXACT, "--set", "train.batch_size=16"]


def test_a_killed_ddp_run_resumes_to_the_uninterrupted_result(slow_table, tmp_path):
    whole = run_cli("train", slow_table, *RESUME, "--nproc", "2", "--out", "a", "-q",
                    cwd=tmp_path, timeout=400)
    assert whole.returncode == 0, whole.stderr
    proc = _start(slow_table, *RESUME, "--nproc", "2", "--out", "b", cwd=tmp_path)
    _wait_for(tmp_path / "b" / "metrics.jsonl", 2, proc)
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in tree:  # the launcher and both processes at once, as a crash would
        p.kill()
    proc.wait()
    psutil.wait_procs(tree, timeout=30)
    assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] == "running"
    r = run_cli("train", "--resume", "b", "--nproc", "2", "-q", cwd=tmp_path, timeout=400)
    assert r.returncode == 0, r.stderr
    a, b = _curve(tmp_path / "a"), _curve(tmp_path / "b")
    assert [e["epoch"] for e in b] == [1, 2, 3, 4]
    for ea, eb in zip(a, b, strict=True):
        assert eb["val_loss"] == pytest.approx(ea["val_loss"], rel=1e-5)
    wa = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    wb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)


def test_a_process_that_dies_ends_the_job_with_one_line(slow_table, tmp_path):
    proc = _start(slow_table, *RESUME, "--max-epochs", "50", "--nproc", "2", "--out", "c",
                  cwd=tmp_path)
    _wait_for(tmp_path / "c" / "metrics.jsonl", 1, proc)
    ranks = {}
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            env = child.environ()
        except psutil.Error:
            continue
        if "RANK" in env and "nnrecipe" in " ".join(child.cmdline()):
            ranks[int(env["RANK"])] = child
    ranks[1].kill()
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - t0 < 60  # no hang
    assert proc.returncode != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["nnrecipe: error: process 1 of 2 failed (killed by signal 9); the others "
                     "were stopped"], err
    assert "Traceback" not in err


def test_processes_end_when_their_launcher_is_killed_outright(slow_table, tmp_path):
    # SIGKILL leaves the launcher no chance to stop them: the kernel must (PR_SET_PDEATHSIG)
    proc = _start(slow_table, *RESUME, "--max-epochs", "50", "--nproc", "2", "--out", "k",
                  cwd=tmp_path)
    _wait_for(tmp_path / "k" / "metrics.jsonl", 1, proc)
    workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
               if "nnrecipe" in " ".join(c.cmdline())]
    assert len(workers) == 2
    proc.kill()
    proc.communicate(timeout=60)
    _, alive = psutil.wait_procs(workers, timeout=30)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.pid for p in alive]


def test_auto_fix_repairs_once_for_every_rank(table, tmp_path):
    # the same planted fault; rank 0 chooses the repair, every rank applies it
    r = run_cli("train", table, "-t", "y", "--max-epochs", "4", "--nproc", "2", "--out", "fix",
                "--set", "optimizer.name=sgd", "--set", "optimizer.lr=30", "--no-preflight",
                "--auto-fix", "-q", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    repairs = json.loads((tmp_path / "fix" / "repairs.json").read_text())
    assert repairs and "optimizer.lr" in repairs[0]["change"]
    ev = json.loads((tmp_path / "fix" / "evaluation.json").read_text())
    assert ev["metrics"]["accuracy"] > ev["baseline"]["metrics"]["accuracy"]


def test_a_streamed_parquet_table_trains_in_two_processes(table, tmp_path):
    pd.read_csv(table).to_parquet(tmp_path / "t.parquet", row_group_size=500)
    r = run_cli("train", "t.parquet", "-t", "y", "--max-epochs", "2", "--nproc", "2",
                "--set", "data.loader=stream", "--out", "s", "-q", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(_curve(tmp_path / "s")) == 2
    assert _plan(tmp_path / "s")["data.loader"]["value"] == "stream"
