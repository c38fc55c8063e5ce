"""The report through the CLI: `train` writes report.html (and, with --tensorboard, event
files), `nnrecipe report RUN` rebuilds it, `nnrecipe compare` ranks runs, and bad input
stops with one line, exit 2, and no file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nnrecipe

NNRECIPE = Path(sys.executable).parent / "nnrecipe"


def nnrecipe_cli(*args: object, cwd: Path, env: dict | None = None
                 ) -> subprocess.CompletedProcess:
    return subprocess.run([str(NNRECIPE), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200",
                                                       **(env or {})})


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory) -> Path:
    """A small binary run trained by the CLI with --tensorboard (3 epochs)."""
    root = tmp_path_factory.mktemp("tb")
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=120), rng.normal(size=120)
    pd.DataFrame({"x1": x1, "x2": x2, "y": (x1 + x2 > 0).astype(int)}).to_csv(
        root / "train.csv", index=False)
    out = root / "run"
    r = nnrecipe_cli("train", root / "train.csv", "--target", "y", "--max-epochs", "3",
                     "--out", out, "--tensorboard", cwd=root)
    assert r.returncode == 0, r.stderr
    assert f"Report: {out / 'report.html'}" in r.stdout.replace("\n", "")
    return out


def test_train_writes_the_report_and_report_rebuilds_it(tb_run, cli):
    page = tb_run / "report.html"
    html = page.read_text()
    for section in ("summary", "data", "plan", "training", "doctor", "evaluation", "reproduce"):
        assert f'<section id="{section}"' in html
    env = json.loads((tb_run / "environment.json").read_text())
    assert env["started_from"] == "command line" and "--tensorboard" in env["command"]
    assert env["command"] in html.replace("&#39;", "'")
    page.unlink()
    (tb_run / "summary.md").unlink()
    r = cli("report", tb_run)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(page)
    assert page.read_text() == html and (tb_run / "summary.md").is_file()


def test_tensorboard_writes_scalars_histograms_and_the_graph(tb_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((tb_run / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(tb_run / "tensorboard"), size_guidance={"histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/train", "loss/val", "metric/val_accuracy", "lr"} <= set(tags["scalars"])
    epochs = [json.loads(x) for x in (tb_run / "metrics.jsonl").read_text().splitlines()]
    logged = acc.Scalars("loss/val")
    assert [e.step for e in logged] == [e["epoch"] for e in epochs]
    assert [e.value for e in logged] == pytest.approx([e["val_loss"] for e in epochs])
    assert any(t.startswith("weights/") for t in tags["histograms"])
    assert any(t.startswith("gradients/") for t in tags["histograms"])
    assert tags["graph"]


def test_compare_three_runs(tb_run, cli, tmp_path, frame):
    others = []
    for name, over in (("wide", {"model.width": 64}), ("sgd", {"optimizer.name": "sgd"})):
        out = tmp_path / name
        nnrecipe.fit(frame(n=120), "y", out=out, overrides={"train.max_epochs": 3, **over})
        others.append(out)
    page = tmp_path / "board.html"
    r = cli("compare", tb_run, *others, "--out", page, "--diff", others[0], others[1])
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    assert "Comparing 3 runs" in html and "Ranked by test accuracy" in html
    for run in (tb_run, *others):
        assert f">{run.name}</a>" in html
    assert "Plan differences: wide vs sgd" in html and "model.width" in html
    assert html.count('<img src="data:image/png;base64,') == 1


def test_report_on_a_folder_that_is_not_a_run_exits_2(cli, bad_input, tmp_path):
    folder = tmp_path / "notarun"
    folder.mkdir()
    bad_input(cli("report", folder), "is not a finished nnrecipe run", "plan.yaml")
    assert not (folder / "report.html").exists()


def test_compare_with_a_missing_run_exits_2_and_writes_nothing(tb_run, cli, bad_input,
                                                               tmp_path):
    page = tmp_path / "board.html"
    bad_input(cli("compare", tb_run, tmp_path / "gone", "--out", page), "not found")
    assert not page.exists()


def test_tensorboard_missing_is_a_clear_exit_2(cli, bad_input, data_csv, tmp_path):
    """A `tensorboard` package that fails to import (shadowing the real one) stands for
    a machine without the extra: one line naming the install command, no run directory."""
    shadow = tmp_path / "shadow" / "tensorboard"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no tensorboard here')\n")
    out = tmp_path / "run"
    r = nnrecipe_cli("train", data_csv, "--target", "y", "--out", out, "--tensorboard",
                     cwd=tmp_path, env={"PYTHONPATH": str(shadow.parent)})
    bad_input(r, "--tensorboard needs the tensorboard package",
              "pip install 'nnrecipe[tensorboard]'", out=out, cwd=tmp_path)
