"""fit seeds the random layers for its run and gives the caller's global RNG back."""

from __future__ import annotations

import torch
from torch import nn

from nnrecipe.plan import make_plan
from nnrecipe.train import fit, make_loss
from nnrecipe.train.loop import _fit


def _setup(profile_of, table, **overrides):
    df = table(n=300, task="binary")
    plan = make_plan(profile_of(df), 240, {"train.max_epochs": 4, **overrides})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(240, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).float().reshape(-1, 1)
    xv = torch.randn(60, 4, generator=g)
    yv = (xv[:, 0] + xv[:, 1] > 0).float().reshape(-1, 1)
    torch.manual_seed(0)
    # dropout and RReLU draw from the global RNG on every training step
    model = nn.Sequential(nn.Linear(4, 16), nn.RReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    return model, plan, (x, y), (xv, yv)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_fit_leaves_the_global_rng_as_it_found_it(table, profile_of):
    model, plan, tr, va = _setup(profile_of, table)
    torch.manual_seed(1234)
    torch.rand(3)  # somewhere in the middle of the caller's stream
    before = torch.get_rng_state()
    fit(model, plan, tr, va, loss_fn=make_loss("bce"), progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    expected = torch.Generator().set_state(before)
    assert torch.equal(torch.rand(5), torch.rand(5, generator=expected))


def test_same_seed_same_weights_whatever_the_caller_drew_before(table, profile_of):
    weights = []
    for caller_seed in (1, 2):
        model, plan, tr, va = _setup(profile_of, table)
        torch.manual_seed(caller_seed)  # the caller's global RNG differs between the runs
        fit(model, plan, tr, va, loss_fn=make_loss("bce"), progress=False)
        weights.append(_weights(model))
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_the_numbers_are_those_of_seeding_the_global_rng(table, profile_of):
    """fit draws exactly what it drew when it called torch.manual_seed(plan seed) itself."""
    model, plan, tr, va = _setup(profile_of, table)
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), progress=False)
    new = _weights(model)
    model, plan, tr, va = _setup(profile_of, table)
    torch.manual_seed(plan["seed"])  # what fit did before it kept the caller's RNG
    old_h = _fit(model, plan, tr, va, loss_fn=make_loss("bce"), val_metrics=None,
                 main_metric=None, watchers=(), run_dir=None, progress=False, resume=None,
                 tag=None, augment=None, order=None, restore=None, checkpoint_extra=None,
                 should_stop=None)
    for k, v in _weights(model).items():
        assert torch.equal(new[k], v), k
    assert [e["train_loss"] for e in h.epochs] == [e["train_loss"] for e in old_h.epochs]
