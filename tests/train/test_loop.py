import math

import numpy as np
import pytest
import torch
from torch import nn

from nnrecipe.plan import make_plan
from nnrecipe.train import Watcher, fit, make_loss, make_optimizer
from nnrecipe.train.checkpoint import load_checkpoint


def _setup(profile_of, table, **overrides):
    df = table(n=300, task="binary")
    plan = make_plan(profile_of(df), 240, {"train.max_epochs": 5, **overrides})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(240, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).float().reshape(-1, 1)
    xv = torch.randn(60, 4, generator=g)
    yv = (xv[:, 0] + xv[:, 1] > 0).float().reshape(-1, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    return model, plan, (x, y), (xv, yv)


def test_same_seed_gives_identical_histories(table, profile_of):
    runs = []
    for _ in range(2):
        model, plan, tr, va = _setup(profile_of, table)
        h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), progress=False)
        runs.append([{k: v for k, v in e.items() if k != "seconds"} for e in h.epochs])
    assert runs[0] == runs[1] and len(runs[0]) == 5


def test_checkpoints_and_metrics_are_written_and_the_best_weights_restored(table, profile_of,
                                                                           tmp_path):
    model, plan, tr, va = _setup(profile_of, table, **{"train.max_epochs": 30})
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), run_dir=tmp_path, progress=False)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(h.epochs)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["epoch"] == h.best_epoch
    assert min(e["val_loss"] for e in h.epochs) == pytest.approx(h.best_val_loss)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, best["model"][k])
    assert set(load_checkpoint(tmp_path / "checkpoints" / "last.pt")) >= {
        "model", "optimizer", "epoch", "rng"}


def test_early_stopping_says_why(table, profile_of):
    model, plan, tr, va = _setup(profile_of, table, **{
        "train.max_epochs": 500, "train.early_stopping.patience": 3, "optimizer.lr": 0.05})
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), progress=False)
    assert len(h.epochs) < 500
    assert h.stop_reason.startswith("early stopping: val_loss has not improved for 3 epochs")
    assert len(h.epochs) - h.best_epoch >= 3


def test_a_watcher_can_stop_training_with_a_reason(table, profile_of):
    class StopAtStep(Watcher):
        wants_steps = True

        def after_step(self, state):
            if state.step == 7:
                state.request_stop("enough at step 7")

    model, plan, tr, va = _setup(profile_of, table)
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), watchers=[StopAtStep()],
            progress=False)
    assert h.stop_reason.startswith("enough at step 7") and len(h.epochs) == 1


def test_non_finite_loss_stops_training(table, profile_of):
    model, plan, tr, va = _setup(profile_of, table)
    x, y = tr
    x = x.clone()
    x[0, 0] = float("nan")
    h = fit(model, plan, (x, y), va, loss_fn=make_loss("bce"), progress=False)
    assert len(h.epochs) == 1 and "nan" in h.stop_reason and math.isnan(h.epochs[0]["train_loss"])


def _one_step_reference(model, plan, x, y, clip=None, l1=0.0):
    """One full-batch step written by hand with PyTorch, for comparison."""
    opt = make_optimizer(plan, model.parameters())
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
    loss = loss + l1 * sum(p.abs().sum() for n, p in model.named_parameters() if p.dim() > 1)
    opt.zero_grad()
    loss.backward()
    if clip:
        clip(list(model.parameters()))
    opt.step()


@pytest.mark.parametrize("overrides,clip", [
    ({"train.grad_clip.kind": "global_norm", "train.grad_clip.max": 0.01},
     lambda ps: nn.utils.clip_grad_norm_(ps, 0.01)),
    ({"train.grad_clip.kind": "value", "train.grad_clip.max": 0.001},
     lambda ps: nn.utils.clip_grad_value_(ps, 0.001)),
    ({"train.grad_clip.kind": "norm", "train.grad_clip.max": 0.01},
     lambda ps: [nn.utils.clip_grad_norm_(p, 0.01) for p in ps]),
    ({"regularization.l1": 0.01}, None),
])
def test_one_step_matches_hand_written_pytorch(table, profile_of, overrides, clip):
    model, plan, (x, y), _ = _setup(profile_of, table, **{
        "train.max_epochs": 1, "train.batch_size": 240, "optimizer.name": "sgd",
        "optimizer.lr": 0.5, "model.dropout": 0.0, **overrides})
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    ref = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    ref.load_state_dict(model.state_dict())
    fit(model, plan, (x, y), None, loss_fn=make_loss("bce"), progress=False)
    # one full batch: the shuffle changes only the row order, not the mean loss
    _one_step_reference(ref, plan, x, y, clip, overrides.get("regularization.l1", 0.0))
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                      ("adamw", torch.optim.AdamW), ("nadam", torch.optim.NAdam),
                                      ("adamax", torch.optim.Adamax),
                                      ("rmsprop", torch.optim.RMSprop),
                                      ("adagrad", torch.optim.Adagrad),
                                      ("adadelta", torch.optim.Adadelta)])
def test_every_optimizer_is_built_with_the_plan_values(table, profile_of, name, cls):
    plan = make_plan(profile_of(table()), 210, {"optimizer.name": name,
                                                "optimizer.weight_decay": 0.01})
    opt = make_optimizer(plan, [nn.Parameter(torch.zeros(2))])
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == plan["optimizer.lr"] and group["weight_decay"] == 0.01
    if name == "sgd":
        assert group["momentum"] == 0.9
    if name in ("adam", "adamw", "nadam", "adamax"):
        assert list(group["betas"]) == [0.9, 0.999]


def test_last_batch_of_one_row_is_skipped_so_batchnorm_works(table, profile_of):
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    _, plan, (x, y), va = _setup(profile_of, table, **{"train.batch_size": 239})
    h = fit(model, plan, (x, y), va, loss_fn=make_loss("bce"), progress=False)
    assert np.isfinite(h.epochs[-1]["train_loss"])


@pytest.mark.parametrize("overrides,expected", [
    ({"schedule.name": "step", "schedule.step_size": 2},
     lambda t, lr0: lr0 * 0.5 ** (t // 2)),
    ({"schedule.name": "exponential", "schedule.k": 0.3},
     lambda t, lr0: lr0 * math.exp(-0.3 * t)),
    ({"schedule.name": "inverse_time", "schedule.k": 0.5},
     lambda t, lr0: lr0 / (1 + 0.5 * t)),
    ({"schedule.name": "none"}, lambda t, lr0: lr0),
])
def test_the_lr_used_each_epoch_follows_the_schedule(table, profile_of, overrides, expected):
    model, plan, tr, va = _setup(profile_of, table, **{
        "train.max_epochs": 6, "train.early_stopping.patience": 0, **overrides})
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), progress=False)
    lr0 = plan["optimizer.lr"]
    assert [e["lr"] for e in h.epochs] == pytest.approx(
        [expected(t, lr0) for t in range(6)], rel=1e-9)


def test_one_cycle_rises_then_falls_within_training(table, profile_of):
    model, plan, tr, va = _setup(profile_of, table, **{
        "train.max_epochs": 8, "train.early_stopping.patience": 0,
        "schedule.name": "one_cycle"})
    lrs = [e["lr"] for e in fit(model, plan, tr, va, loss_fn=make_loss("bce"),
                                progress=False).epochs]
    peak = lrs.index(max(lrs))
    assert 0 < peak < 7 and lrs[0] < max(lrs) / 10 and lrs[-1] < max(lrs) / 10
    assert max(lrs) <= plan["optimizer.lr"] * 1.0001  # the planned rate is the peak
