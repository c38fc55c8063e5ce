import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from nnrecipe.errors import NnrecipeError
from nnrecipe.models import build_mlp
from nnrecipe.plan import make_plan
from nnrecipe.runs import json_safe
from nnrecipe.train import make_loss, make_optimizer
from nnrecipe.train.lr_find import (
    centred,
    exponential_lrs,
    lr_find,
    min_div_10,
    plot_lr_find,
    steepest,
    valley,
)

N_ROWS, N_FEATURES = 2000, 10


@pytest.fixture(scope="module")
def task():
    """A learnable binary task (a noisy linear rule), its default plan and its tensors."""
    from nnrecipe.data import profile_table

    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_ROWS, N_FEATURES))
    y = (x @ rng.normal(size=N_FEATURES) + 0.5 * rng.normal(size=N_ROWS) > 0).astype(int)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(N_FEATURES)]).assign(y=y)
    plan = make_plan(profile_table(df, "y", "auto"), N_ROWS)
    return plan, (torch.tensor(x, dtype=torch.float32),
                  torch.tensor(y, dtype=torch.float32).reshape(-1, 1))


def _mlp(plan, seed):
    torch.manual_seed(seed)
    return build_mlp(plan, N_FEATURES, [])


def _scripted(values):
    """A loss_fn whose value is scripted and whose gradient is zero: the weights never
    move, so with steps_per_lr=1 the recorded curve is exactly ``values``."""
    it = iter(values)
    return lambda out, y: (out * 0).sum() + next(it)


def _tiny():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1), (torch.randn(8, 3),
                                                                 torch.randn(8, 1))


def test_the_lr_sequence_is_exactly_exponential_and_set_on_every_param_group():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    opt = torch.optim.SGD([{"params": model[0].parameters()},
                           {"params": model[1].parameters(), "lr": 0.5}], lr=0.1)
    seen = []

    def loss_fn(out, y):
        seen.append([g["lr"] for g in opt.param_groups])
        return ((out - y) ** 2).mean()

    x, y = torch.randn(16, 3), torch.randn(16, 1)
    r = lr_find(model, loss_fn, opt, (x, y), start_lr=1e-6, end_lr=1e-2, num_steps=25,
                batch_size=4, steps_per_lr=2)
    expected = [1e-6 * (1e-2 / 1e-6) ** (i / 24) for i in range(25)]
    assert r.lrs == expected == exponential_lrs(1e-6, 1e-2, 25)
    assert r.lrs[0] == 1e-6 and r.lrs[-1] == pytest.approx(1e-2, rel=1e-12)
    assert seen == [[lr, lr] for lr in expected for _ in range(2)]  # two steps per LR
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]  # restored


def test_the_smoothed_loss_is_the_bias_corrected_ema():
    model, opt, data = _tiny()
    values = [4.0, 3.0, 3.5, 2.0, 1.0, 1.5, 0.5, 0.75]  # exact in float32
    r = lr_find(model, _scripted(values), opt, data, num_steps=8, smooth=0.9, batch_size=8,
                steps_per_lr=1)
    assert r.losses == values
    for i in range(len(values)):  # Σ (1−β)β^(i−k) l_k / (1 − β^(i+1))
        ema = sum(0.1 * 0.9 ** (i - k) * values[k] for k in range(i + 1))
        assert r.smoothed[i] == pytest.approx(ema / (1 - 0.9 ** (i + 1)), rel=1e-12)
    assert r.smoothed[0] == values[0]


def _state(model, opt):
    return (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()),
            [None if p.grad is None else p.grad.clone() for p in model.parameters()])


def _assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            _assert_same(u, v)
    else:
        assert a == b


def test_model_optimizer_grads_and_rng_are_restored_bit_for_bit(task):
    plan, (x, y) = task
    model = _mlp(plan, 0)  # BatchNorm buffers and dropout draws: both must come back
    opt = make_optimizer(plan, model.parameters())
    loss_fn = make_loss("bce")
    for i in range(3):  # a non-empty Adam state, and gradients left on the parameters
        opt.zero_grad()
        loss_fn(model(x[i * 32:(i + 1) * 32]), y[i * 32:(i + 1) * 32]).backward()
        opt.step()
    model.eval()
    before, rng = _state(model, opt), torch.get_rng_state()
    twin_model, twin_opt = copy.deepcopy(model), None
    twin_opt = type(opt)(twin_model.parameters())
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))

    r = lr_find(model, loss_fn, opt, (x, y), end_lr=1e4, num_steps=60, batch_size=32)
    assert r.divergence_lr is not None  # it went through exploding weights, and back

    _assert_same(before, _state(model, opt))
    assert torch.equal(torch.get_rng_state(), rng) and not model.training
    # the restored pair still trains exactly like an untouched copy (PyTorch as reference)
    for m, o in ((model, opt), (twin_model, twin_opt)):
        m.train()
        torch.manual_seed(1)
        o.zero_grad()
        loss_fn(m(x[:64]), y[:64]).backward()
        o.step()
    _assert_same(model.state_dict(), twin_model.state_dict())


def test_divergence_stops_sgd_early_and_records_the_lr(task):
    plan, (x, y) = task
    model = _mlp(plan, 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    r = lr_find(model, make_loss("bce"), opt, (x, y), end_lr=1e3, batch_size=32)
    assert len(r.lrs) < 100 and r.stop_reason.startswith("diverged")
    assert r.divergence_lr == r.lrs[-1]
    last, best = r.smoothed[-1], min(r.smoothed[:-1])
    assert not math.isfinite(last) or last > 4.0 * best
    assert r.suggestion < r.divergence_lr
    assert r.ratio == pytest.approx(r.suggestion / r.divergence_lr)
    assert "the LR that diverges" in r.fact


def test_a_non_finite_loss_stops_the_sweep_and_says_so():
    model, opt, data = _tiny()
    r = lr_find(model, _scripted([1.0, 0.9, 0.8, 0.7, 0.6, float("nan")]), opt, data,
                num_steps=20, batch_size=8, steps_per_lr=1)
    assert len(r.lrs) == 6 and r.divergence_lr == r.lrs[-1] and "nan" in r.stop_reason
    assert r.suggestion < r.divergence_lr


def test_a_too_small_range_still_suggests_and_says_it_ended_without_divergence(task):
    plan, (x, y) = task
    model = _mlp(plan, 0)
    opt = make_optimizer(plan, model.parameters())
    r = lr_find(model, make_loss("bce"), opt, (x, y), end_lr=1e-5,
                batch_size=plan["train.batch_size"])
    assert len(r.lrs) == 100 and r.divergence_lr is None and r.ratio is None
    assert "without divergence" in r.stop_reason
    assert 1e-7 <= r.suggestion <= 1e-5 and r.rule in ("valley", "steepest", "min_div_10")
    assert "did not diverge" in r.fact


def test_the_suggestion_is_stable_across_five_seeds(task):
    plan, (x, y) = task
    suggestions = []
    for seed in range(5):  # model init and batch order both change
        model = _mlp(plan, seed)
        opt = torch.optim.Adam(model.parameters(), lr=plan["optimizer.lr"])
        r = lr_find(model, make_loss("bce"), opt, (x, y), batch_size=plan["train.batch_size"],
                    seed=seed)
        assert r.rule == "valley"
        assert r.divergence_lr is None or r.suggestion < r.divergence_lr
        suggestions.append(r.suggestion)
    assert max(suggestions) / min(suggestions) <= 3, suggestions


# ---------------------------------------------------------------- rules on scripted curves

LRS = np.logspace(-7, 1, 100)
# a plateau at 1, a drop to 0.2 centred on 1e-2, then a rise
DROP = 0.2 + 0.8 / (1 + np.exp(3 * (np.log10(LRS) + 2))) + 0.5 * (LRS > 1) * np.log10(LRS)


@pytest.mark.parametrize("lrs", [LRS, np.logspace(-7, -5, 100), np.logspace(-7, 1, 12)])
def test_the_centred_curve_has_no_lag_and_keeps_its_length(lrs):
    # σ = 0.4 decade: 5 points on the full range, 20 on a narrow one (a kernel longer than
    # the curve), under one on a short sweep
    n = len(lrs)
    assert centred(lrs, np.full(n, 0.7)) == pytest.approx(np.full(n, 0.7))
    ramp = np.arange(n, dtype=float) ** 1.5
    c = centred(lrs, ramp)
    assert len(c) == n and c == pytest.approx(centred(lrs, ramp[::-1])[::-1])  # no lag
    if lrs is LRS:  # where the kernel fits, a straight line is left as it is
        line = np.arange(n, dtype=float)
        assert centred(lrs, line)[20:-20] == pytest.approx(line[20:-20])


def test_valley_suggests_where_two_thirds_of_the_drop_is_made():
    lr = valley(LRS, DROP)
    c = centred(LRS, DROP)
    level = c.max() - 2 / 3 * (c.max() - c.min())
    i = int(np.flatnonzero(LRS == lr)[0])
    assert c[i] <= level < c[i - 1] and 1e-2 < lr < 1e-1


def test_steepest_finds_the_middle_of_the_drop_and_min_div_10_the_bottom():
    assert steepest(LRS, DROP) == pytest.approx(1e-2, rel=0.3)
    bottom = LRS[int(np.argmin(centred(LRS, DROP)))]
    assert min_div_10(LRS, DROP) == pytest.approx(bottom / 10)


def test_rules_that_find_nothing_fall_back_and_say_which_rule_gave_the_suggestion():
    rising = np.linspace(1.0, 2.0, 30)
    assert valley(LRS[:30], rising) is None and steepest(LRS[:30], rising) is None
    model, opt, data = _tiny()
    r = lr_find(model, _scripted(rising.tolist()), opt, data, num_steps=30, diverge=10.0,
                batch_size=8, steps_per_lr=1)
    assert r.rule == "min_div_10" and r.suggestion == pytest.approx(r.lrs[0] / 10)


# ---------------------------------------------------------------- batches, arguments, output

def test_every_form_of_batches_is_accepted():
    model, opt, (x, y) = _tiny()
    seen = []

    def loss_fn(out, yb):
        seen.append(len(yb))
        return ((out - yb) ** 2).mean()

    pairs = [(x[:4], y[:4]), (x[4:], y[4:])]
    assert len(lr_find(model, loss_fn, opt, pairs, num_steps=5).lrs) == 5  # cycled
    assert len(lr_find(model, loss_fn, opt, lambda: iter(pairs), num_steps=5).lrs) == 5
    r = lr_find(model, loss_fn, opt, iter(pairs), num_steps=5)  # one-shot: runs out
    assert len(r.lrs) == 1 and "ran out after 1 of 5" in r.stop_reason  # 2 batches per LR
    seen.clear()
    lr_find(model, loss_fn, opt, (x, y), num_steps=4, batch_size=3, steps_per_lr=2)
    assert seen == [3] * 8  # the short last batch (8 = 3 + 3 + 2) is dropped


def test_bad_arguments_are_all_listed_in_one_error():
    model, opt, data = _tiny()
    with pytest.raises(NnrecipeError) as e:
        lr_find(model, nn.MSELoss(), opt, data, start_lr=0, num_steps=1, rule="best")
    msg = str(e.value)
    assert "start_lr must be > 0, got 0" in msg and "num_steps" in msg and "'best'" in msg


def test_the_result_is_json_ready_and_the_plot_is_a_png(tmp_path):
    model, opt, data = _tiny()
    r = lr_find(model, nn.MSELoss(), opt, data, end_lr=1e4, num_steps=50, batch_size=4)
    d = json.loads(json.dumps(json_safe(r.to_dict())))
    assert d["suggestion"] == r.suggestion and d["rule"] == r.rule and len(d["lrs"]) == len(r.lrs)
    for result, name in ((r, "a.png"), (lr_find(model, nn.MSELoss(), opt, data, end_lr=1e-5,
                                                num_steps=20, batch_size=4), "b.png")):
        plot_lr_find(result, tmp_path / name)
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temp files
