"""A run stopped at any step and resumed from checkpoints/last.pt ends exactly as the run
that was never stopped: the same weights, bit for bit, and the same history."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnrecipe.doctor.monitors import LiveMonitor
from nnrecipe.plan import make_plan
from nnrecipe.train import fit, make_loss
from nnrecipe.train.checkpoint import load_checkpoint


def _setup(profile_of, table, **overrides):
    df = table(n=300, task="binary")
    plan = make_plan(profile_of(df), 240, {"train.max_epochs": 6, "train.batch_size": 32,
                                           "schedule.name": "one_cycle", **overrides})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(240, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).float().reshape(-1, 1)
    xv = torch.randn(60, 4, generator=g)
    yv = (xv[:, 0] + xv[:, 1] > 0).float().reshape(-1, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    return model, plan, (x, y), (xv, yv)


def _run(profile_of, table, run_dir, *, stop_at=None, restore=None, **overrides):
    model, plan, tr, va = _setup(profile_of, table, **overrides)
    steps = iter(range(1, 10**6))
    monitor = LiveMonitor(sample_every=3)
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), run_dir=run_dir, progress=False,
            watchers=[monitor], restore=restore,
            should_stop=(lambda: next(steps) == stop_at) if stop_at else None)
    return model, h, monitor


def _same(a, b):
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


@pytest.mark.parametrize("stop_at", [8, 16, 17, 23])  # mid-epoch, end of epoch 2, ...
def test_stopped_and_resumed_equals_uninterrupted(profile_of, table, tmp_path, stop_at):
    whole, h_whole, mon_whole = _run(profile_of, table, tmp_path / "a")
    _, h_cut, _ = _run(profile_of, table, tmp_path / "b", stop_at=stop_at)
    assert h_cut.stop_reason.startswith("interrupted (Ctrl-C)")
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    resumed, h_res, mon_res = _run(profile_of, table, tmp_path / "b", restore=ckpt)
    _same(whole, resumed)
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in h_whole.epochs]
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in h_res.epochs] == strip
    assert h_res.best_epoch == h_whole.best_epoch
    assert [f.code for f in mon_res.findings] == [f.code for f in mon_whole.findings]
    assert (tmp_path / "a" / "metrics.jsonl").read_text().count("\n") == \
        (tmp_path / "b" / "metrics.jsonl").read_text().count("\n")


def test_mid_epoch_checkpoints_follow_checkpoint_minutes(profile_of, table, tmp_path):
    """With checkpoints due at every step, a crash inside an epoch loses one step at most,
    and the run resumes from there to the same end."""
    every_step = {"train.checkpoint_minutes": 1e-9}
    whole, _, _ = _run(profile_of, table, tmp_path / "a", **every_step)
    model, plan, tr, va = _setup(profile_of, table, **every_step)
    calls = []

    def crash():
        calls.append(1)
        if len(calls) == 13:  # after step 13 (epoch 2, batch 5), before its checkpoint
            raise RuntimeError("the machine went away")
        return False

    with pytest.raises(RuntimeError):
        fit(model, plan, tr, va, loss_fn=make_loss("bce"), run_dir=tmp_path / "b",
            progress=False, watchers=[LiveMonitor(sample_every=3)], should_stop=crash)
    mid = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert mid["in_epoch"]["epoch"] == 2 and mid["in_epoch"]["batches"] == 4
    assert mid["epoch"] == 1 and mid["step"] == 12
    resumed, _, _ = _run(profile_of, table, tmp_path / "b", restore=mid, **every_step)
    _same(whole, resumed)
