"""Short epochs are not slowed by writing checkpoints after each one: last.pt and best.pt
are written at most every EPOCH_SAVE_GAP seconds, and always after the first and the last
epoch, so a finished run's files are complete and agree with its history; metrics.jsonl
follows every epoch (live progress)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nnrecipe.plan import make_plan
from nnrecipe.train import Watcher, fit, loop, make_loss
from nnrecipe.train.checkpoint import load_checkpoint


def _train(profile_of, table, run_dir, monkeypatch, gap):
    monkeypatch.setattr(loop, "EPOCH_SAVE_GAP", gap)
    writes = []
    real = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint",
                        lambda path, obj: (writes.append(path.name), real(path, obj))[1])
    plan = make_plan(profile_of(table(n=300, task="binary")), 240,
                     {"train.max_epochs": 8, "train.early_stopping.patience": 0})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(240, 4, generator=g)
    y = (x[:, 0] > 0).float().reshape(-1, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    seen = _MetricsLines(run_dir)
    history = fit(model, plan, (x, y), (x[:60], y[:60]), loss_fn=make_loss("bce"),
                  run_dir=run_dir, progress=False, watchers=[seen])
    assert seen.counts == list(range(8))  # metrics.jsonl follows every epoch (the one
    return history, writes                 # ending is written after the watchers)


class _MetricsLines(Watcher):
    def __init__(self, run_dir):
        self.path, self.counts = run_dir / "metrics.jsonl", []

    def on_epoch_end(self, state):
        self.counts.append(len(self.path.read_text().splitlines()) if self.path.exists()
                           else 0)


def test_a_short_run_writes_its_files_once_and_completely(profile_of, table, tmp_path,
                                                           monkeypatch):
    history, writes = _train(profile_of, table, tmp_path, monkeypatch, gap=3600.0)
    assert writes.count("last.pt") == 2  # after the first and the last epoch, not each of 8
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["epoch"] == 8 and len(last["history"]["epochs"]) == 8
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 9))
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == history.best_epoch
    assert best["val_loss"] == pytest.approx(history.best_val_loss)


def test_with_no_gap_every_epoch_is_saved_as_before(profile_of, table, tmp_path, monkeypatch):
    history, writes = _train(profile_of, table, tmp_path, monkeypatch, gap=0.0)
    assert writes.count("last.pt") == 8
    best = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == history.best_epoch
