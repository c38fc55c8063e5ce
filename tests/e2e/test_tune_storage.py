"""Issue 16 C through the real CLI: a ``--storage`` Optuna cannot use is refused before the
run directory exists (exit 2, one line), and a trial whose worker was killed with SIGKILL
is marked failed when the study is resumed instead of staying RUNNING forever."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import optuna
import pandas as pd
import pytest

from conftest import NNRECIPE


@pytest.mark.parametrize("storage, fragments", [
    ("data.csv", ["data.csv", "not an Optuna journal"]),
    ("foo://bar", ["foo://bar", "not a database URL"]),
    ("postgresql://nobody:secret@127.0.0.1:1/x", ["postgresql://nobody:***@127.0.0.1:1/x"]),
    ("folder", ["folder", "is a folder"]),
    ("nowhere/s.journal", ["nowhere", "does not exist"]),
], ids=["csv-file", "bogus-scheme", "unreachable-postgres", "folder", "missing-folder"])
def test_unusable_storage_is_refused_before_the_run_directory(cli, bad_input, data_csv,
                                                              tmp_path, storage, fragments):
    (tmp_path / "folder").mkdir()
    before = (tmp_path / "data.csv").read_bytes()
    out = tmp_path / "run"
    r = cli("tune", "data.csv", "--target", "y", "--trials", "1", "--max-epochs", "1",
            "--storage", storage, "--out", out)
    line = bad_input(r, *fragments, out=out, cwd=tmp_path)
    assert "secret" not in line  # a database password is never printed
    assert (tmp_path / "data.csv").read_bytes() == before
    assert not (tmp_path / "nowhere").exists()


def _running_trial(journal: str) -> optuna.trial.FrozenTrial | None:
    if not os.path.exists(journal) or not os.path.getsize(journal):
        return None
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    try:
        study = optuna.load_study(study_name="s", storage=storage)
    except KeyError:
        return None
    # a trial that reported an epoch: well into training (its worker recorded itself first)
    running = [t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
               if t.intermediate_values]
    return running[0] if running else None


def test_a_trial_killed_with_sigkill_is_failed_on_resume(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000  # big enough that a trial of 500 epochs is still running when it is killed
    x = rng.normal(size=(n, 4))
    pd.DataFrame({**{f"x{i}": x[:, i] for i in range(4)},
                  "y": (x.sum(1) > 0).astype(int)}).to_csv(tmp_path / "d.csv", index=False)
    journal = str(tmp_path / "s.journal")
    args = [str(NNRECIPE), "tune", "d.csv", "--target", "y", "--storage", journal,
            "--study", "s", "-q"]
    proc = subprocess.Popen([*args, "--trials", "50", "--max-epochs", "500", "--out", "r1"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        killed = None
        while time.monotonic() < deadline and proc.poll() is None:
            killed = _running_trial(journal)
            if killed is not None:
                break
            time.sleep(0.2)
        assert killed is not None, "no trial started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _running_trial(journal).number == killed.number  # left RUNNING by the kill
    r = subprocess.run([*args, "--trials", "1", "--max-epochs", "1", "--out", "r2"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert trials[killed.number].state == optuna.trial.TrialState.FAIL
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
