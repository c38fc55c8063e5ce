"""L-BFGS (optimizer.name=lbfgs) and stochastic weight averaging (train.swa), checked against
PyTorch's own optimizer and a hand-computed average."""

import copy

import pytest
import torch
from torch import nn

from nnrecipe.plan import make_plan
from nnrecipe.train import Watcher, fit, make_loss


def _data(n=240, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).float().reshape(-1, 1)
    return x, y


def _net(batchnorm=False):
    torch.manual_seed(0)
    layers = [nn.Linear(4, 16), *([nn.BatchNorm1d(16)] if batchnorm else []), nn.Tanh(),
              nn.Linear(16, 1)]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("extra", [{}, {"regularization.l1": 1e-3,
                                        "train.grad_clip.kind": "global_norm",
                                        "train.grad_clip.max": 0.5}])
def test_one_lbfgs_fit_step_equals_torch_lbfgs_with_the_same_closure(table, profile_of, extra):
    plan = make_plan(profile_of(table(n=300, task="binary")), 240,
                     {"optimizer.name": "lbfgs", "train.max_epochs": 1, **extra})
    assert plan["train.batch_size"] == 240 and plan["optimizer.lr"] == 1.0
    x, y = _data()
    model = _net()
    ref = copy.deepcopy(model)
    fit(model, plan, (x, y), None, loss_fn=make_loss("bce"), progress=False)

    perm = torch.randperm(240, generator=torch.Generator().manual_seed(plan["seed"]))
    xs, ys = x[perm], y[perm]  # the loop's one shuffle (the same rows, the same order)
    opt = torch.optim.LBFGS(ref.parameters(), lr=1.0, line_search_fn="strong_wolfe")
    l1 = extra.get("regularization.l1", 0.0)

    def closure():
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(ref(xs), ys)
        if l1:
            loss = loss + l1 * sum(p.abs().sum() for p in ref.parameters() if p.dim() > 1)
        loss.backward()
        if extra:
            nn.utils.clip_grad_norm_(list(ref.parameters()), 0.5)
        return loss

    opt.step(closure)
    for got, want in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(got, want)
    assert not torch.equal(model[0].weight, _net()[0].weight)  # the step moved the weights


def test_lbfgs_lowers_the_loss_on_a_learnable_task(table, profile_of):
    plan = make_plan(profile_of(table(n=300, task="binary")), 240,
                     {"optimizer.name": "lbfgs", "train.max_epochs": 5})
    x, y = _data()
    xv, yv = _data(60, seed=1)
    model = _net()
    h = fit(model, plan, (x, y), (xv, yv), loss_fn=make_loss("bce"), progress=False)
    losses = [e["train_loss"] for e in h.epochs]
    assert losses[-1] < 0.5 * losses[0]
    assert h.best_val_loss < 0.5 * h.epochs[0]["val_loss"]


class _Recorder(Watcher):
    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, state):
        self.weights[state.epoch] = copy.deepcopy(state.model.state_dict())


def _swa_fit(table, profile_of, batchnorm=False, **overrides):
    plan = make_plan(profile_of(table(n=300, task="binary")), 240, {
        "train.max_epochs": 8, "train.early_stopping.patience": 0, "optimizer.lr": 0.05,
        **overrides})
    model, rec = _net(batchnorm), _Recorder()
    h = fit(model, plan, _data(), _data(60, seed=1), loss_fn=make_loss("bce"), watchers=[rec],
            progress=False)
    return model, rec, h


def test_swa_final_weights_are_the_mean_of_the_epochs_after_swa_start(table, profile_of):
    model, rec, h = _swa_fit(table, profile_of, **{"train.swa": True, "train.swa_start": 0.5})
    assert h.stop_reason.endswith("; stochastic weight averaging over epochs 5–8")
    for name, p in model.named_parameters():
        mean = torch.stack([rec.weights[e][name] for e in range(5, 9)]).mean(0)
        torch.testing.assert_close(p.detach(), mean)
        assert not torch.allclose(p.detach(), rec.weights[8][name])  # not the last epoch's


def test_swa_recomputes_batchnorm_statistics_for_the_averaged_weights(table, profile_of):
    model, _, h = _swa_fit(table, profile_of, batchnorm=True, **{"train.swa": True})
    assert "stochastic weight averaging over epochs 7–8" in h.stop_reason
    x, _ = _data()
    with torch.no_grad():  # 15 equal batches of 16: the running mean is the mean over rows
        torch.testing.assert_close(model[1].running_mean, model[0](x[:240]).mean(0))


def test_without_swa_the_best_weights_are_restored(table, profile_of):
    model, rec, h = _swa_fit(table, profile_of)
    assert "stochastic" not in h.stop_reason and "restored the best weights" in h.stop_reason
    for name, p in model.state_dict().items():
        torch.testing.assert_close(p, rec.weights[h.best_epoch][name])
