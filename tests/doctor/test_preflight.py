"""Pre-flight: each check fires on its planted fault and stays quiet on a healthy network;
it works on MLPs, CNNs and LSTMs and leaves the caller's model and random state alone."""

import math

import pytest
import torch
from torch import nn

from nnrecipe.doctor.preflight import (
    PreflightEvidence,
    bad_initial_loss,
    cannot_overfit_batch,
    no_signal,
    run_preflight,
)
from nnrecipe.models.mlp import build_mlp
from nnrecipe.plan import KEYS, make_plan
from nnrecipe.train import make_loss, make_optimizer


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks gain nothing from threads, and on a busy machine the spin-waiting of
    several threads makes each step many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _adam(lr=1e-3):
    return lambda params: torch.optim.Adam(params, lr=lr)


def _data(task="binary", n=384, d=6, noise_labels=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    s = x[:, 0] + x[:, 1] - 0.5 * x[:, 2]
    if task == "binary":
        y = (s > 0).float().reshape(-1, 1)
        if noise_labels:
            y = torch.randint(0, 2, (n, 1), generator=g).float()
        return x, y, nn.BCEWithLogitsLoss(), 1
    if task == "multiclass":
        y = torch.bucketize(s, torch.tensor([-1.0, 0.0, 1.0]))
        if noise_labels:
            y = torch.randint(0, 4, (n,), generator=g)
        return x, y, nn.CrossEntropyLoss(), 4
    y = (s + 0.1 * torch.randn(n, generator=g)).reshape(-1, 1)
    return x, (y - y.mean()) / y.std(), nn.MSELoss(), 1


def _mlp(d=6, out=1, width=32, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, width), nn.BatchNorm1d(width), nn.ReLU(),
                         nn.Linear(width, out))


def _codes(findings):
    return {f.code for f in findings}


def _check_schema(findings):
    for f in findings:
        assert f.explanation and f.advice
        assert all(isinstance(v, int | float | str) for v in f.evidence.values())
        assert f.fix is None or set(f.fix) <= set(KEYS)


# ------------------------------------------------------------------- healthy networks

@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_healthy_mlp_on_a_learnable_task_passes_every_check(task):
    x, y, loss_fn, out = _data(task)
    assert run_preflight(_mlp(out=out), loss_fn, _adam(), x, y) == []


def test_the_callers_model_and_random_state_are_left_alone():
    x, y, loss_fn, _ = _data()
    model = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    first = run_preflight(model, loss_fn, _adam(), x, y, seed=7)
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():  # weights and BatchNorm running stats
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters()) and model.training
    assert run_preflight(model, loss_fn, _adam(), x, y, seed=7) == first  # reproducible


# ----------------------------------------------------------------- planted faults

def test_huge_init_scale_gives_bad_initial_loss():
    x, y, loss_fn, out = _data("multiclass")
    model = _mlp(out=out)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.mul_(30)
    found = {f.code: f for f in run_preflight(model, loss_fn, _adam(), x, y)}
    f = found["bad_initial_loss"]
    assert f.evidence["expected_loss"] == pytest.approx(math.log(4), rel=1e-3)
    assert f.evidence["ratio"] > 3 and f.fix["model.init_scale"] == 1.0
    assert "no_signal" not in found  # zeroed inputs would hide the bad start: not comparable
    _check_schema(found.values())


def test_a_learning_rate_too_small_to_move_cannot_overfit_the_batch():
    x, y, loss_fn, _ = _data()
    found = {f.code: f for f in run_preflight(_mlp(), loss_fn, _adam(), x, y, lr=1e-9)}
    f = found["cannot_overfit_batch"]
    assert f.severity == "error" and f.evidence["final_loss"] > 0.9 * f.evidence["initial_loss"]
    assert f.fix == {"optimizer.lr": 1e-3, "model.init": "auto"}
    assert "no_signal" not in found  # a network that does not learn says nothing about signal
    _check_schema(found.values())


def test_a_learning_rate_so_large_the_loss_rises_cannot_overfit_the_batch():
    x, y, loss_fn, _ = _data("regression")
    sgd = lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)  # noqa: E731
    f = next(f for f in run_preflight(_mlp(), loss_fn, sgd, x, y, lr=5.0)
             if f.code == "cannot_overfit_batch")
    assert f.fix == {"optimizer.lr": pytest.approx(0.5)} and "rose" in f.explanation


def test_a_tiny_model_on_noise_labels_cannot_overfit_the_batch():
    x, y, loss_fn, _ = _data(d=3, noise_labels=True)
    torch.manual_seed(0)
    found = _codes(run_preflight(nn.Linear(3, 1), loss_fn, _adam(), x, y))
    assert "cannot_overfit_batch" in found


def test_zero_init_leaves_the_hidden_layers_without_gradient():
    x, y, loss_fn, _ = _data()
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    for p in model.parameters():
        nn.init.zeros_(p)
    found = {f.code: f for f in run_preflight(model, loss_fn, _adam(), x, y)}
    f = found["no_gradient"]
    assert f.layer == "0.weight" and f.evidence["zero"] == 3  # all but the output bias
    assert "2.bias" not in f.evidence["parameters"]
    assert f.fix == {"model.init": "auto"}
    _check_schema(found.values())


class _WithUnusedLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        self.forgotten = nn.Linear(16, 16)  # built, never called
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        return self.head(self.body(x))


class _WithDetachedLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        return self.head(self.body(x).detach())  # cuts the body off from the loss


@pytest.mark.parametrize("cls,names", [(_WithUnusedLayer, {"forgotten.weight", "forgotten.bias"}),
                                       (_WithDetachedLayer, {"body.0.weight", "body.0.bias"})])
def test_a_layer_the_loss_never_reaches_gets_no_gradient(cls, names):
    x, y, loss_fn, _ = _data()
    torch.manual_seed(0)
    f = next(f for f in run_preflight(cls(), loss_fn, _adam(), x, y) if f.code == "no_gradient")
    assert f.evidence["none"] == 2 and set(f.evidence["parameters"].split(", ")) == names
    assert f.fix is None


def test_a_frozen_layer_is_not_reported():
    x, y, loss_fn, _ = _data()
    model = _mlp()
    model[0].requires_grad_(False)  # frozen on purpose
    assert "no_gradient" not in _codes(run_preflight(model, loss_fn, _adam(), x, y))


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_labels_independent_of_the_inputs_give_no_signal(task):
    x, y, loss_fn, out = _data(task, noise_labels=True)
    found = {f.code: f for f in run_preflight(_mlp(out=out), loss_fn, _adam(), x, y)}
    f = found["no_signal"]
    assert f.evidence["real_input_loss"] > 0.9 * f.evidence["zeroed_input_loss"]
    assert f.fix is None and "cannot_overfit_batch" not in found
    _check_schema(found.values())


# -------------------------------------------------------------- other architectures

class _SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Dropout2d(0.2))
        self.head = nn.Linear(8 * 4 * 4, 2)

    def forward(self, x):  # (B, 1, 8, 8) → (B, 2)
        return self.head(self.features(x).flatten(1))


class _SmallLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 16, num_layers=2, dropout=0.3, batch_first=True)
        self.head = nn.Linear(16, 1)

    def forward(self, x):  # (B, T, 3) → (B, 1)
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def test_preflight_runs_on_a_cnn():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()  # top half brighter?
    torch.manual_seed(0)
    assert run_preflight(_SmallCNN(), nn.CrossEntropyLoss(), _adam(3e-3), x, y) == []
    y_noise = torch.randint(0, 2, (256,), generator=g)
    found = _codes(run_preflight(_SmallCNN(), nn.CrossEntropyLoss(), _adam(3e-3), x, y_noise))
    assert found == {"no_signal"}


def test_preflight_runs_on_an_lstm():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(192, 6, 3, generator=g)
    y = (x[:, :, 0].sum(1) > 0).float().reshape(-1, 1)  # sign of a running sum
    torch.manual_seed(0)
    model = _SmallLSTM()
    found = run_preflight(model, nn.BCEWithLogitsLoss(), _adam(1e-2), x, y, signal_steps=60)
    assert not {"no_gradient", "bad_initial_loss", "no_signal"} & _codes(found)
    zeroed = _SmallLSTM()
    for p in zeroed.parameters():  # zero init: the cell state never leaves zero
        nn.init.zeros_(p)
    found = {f.code: f for f in run_preflight(zeroed, nn.BCEWithLogitsLoss(), _adam(1e-2), x, y,
                                              overfit_steps=20, signal_steps=10)}
    assert found["no_gradient"].evidence["zero"] == len(list(zeroed.parameters())) - 1


# ----------------------------------------------------------- rules on scripted evidence

def test_rules_judge_scripted_evidence():
    ev = PreflightEvidence(initial_loss=2.0, expected_loss=math.log(2))
    assert bad_initial_loss(ev) is None  # 2.9× the neutral loss: inside the tolerance
    assert bad_initial_loss(PreflightEvidence(initial_loss=5.0, expected_loss=math.log(2)))
    assert bad_initial_loss(ev, high_ratio=2.0) is not None
    slow = PreflightEvidence(expected_loss=0.69, overfit_rows=16, overfit_steps=200,
                             overfit=[(1e-3, 0.7, 0.3), (1e-2, 0.7, 0.05)])
    assert cannot_overfit_batch(slow) is None  # memorised at ten times the rate
    diverged = PreflightEvidence(expected_loss=0.69, overfit_rows=16, overfit_steps=200,
                                 overfit=[(0.1, 0.7, 3.0), (0.01, 0.7, 0.02)])
    f = cannot_overfit_batch(diverged)  # reported although a tenth of the rate memorises
    assert f.fix == {"optimizer.lr": pytest.approx(0.01)} and f.evidence["final_loss"] == 3.0
    weak = PreflightEvidence(real_loss=0.66, zeroed_loss=0.69, gain_se=0.005, n_holdout=128,
                             signal_steps=100, real_train_drop=0.1)
    assert no_signal(weak) is None  # small but six standard errors: the inputs are used
    assert no_signal(PreflightEvidence(real_loss=0.70, zeroed_loss=0.69, gain_se=0.01,
                                       real_train_drop=0.1)) is not None


# ------------------------------------------------------------ a network from a plan

@pytest.mark.parametrize("init,expected", [("auto", set()), ("zeros", {"no_gradient"})])
def test_a_planned_mlp_and_its_optimizer(table, profile_of, init, expected):
    plan = make_plan(profile_of(table(n=300)), 240, {"model.init": init})
    x, y, loss_fn, _ = _data(d=4)
    torch.manual_seed(0)
    model = build_mlp(plan, 4, [])
    found = {f.code: f for f in run_preflight(model, make_loss("bce"),
                                              lambda ps: make_optimizer(plan, ps), x, y,
                                              task=plan["task"], lr=plan["optimizer.lr"])}
    assert expected <= set(found) and not {"bad_initial_loss", "no_signal"} & set(found)
    if init == "auto":
        assert found == {}
    else:
        assert found["no_gradient"].fix == {"model.init": "auto"}


# ------------------------------------------------- duplicate inputs with different labels

def _duplicates(task, n=384, seed=0):
    """Three binary features: 8 distinct inputs, so a 16-row batch is all repeats; the
    label follows the first feature 80% of the time, so identical rows disagree."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (n, 3), generator=g).float()
    p = torch.where(x[:, 0] > 0, 0.8, 0.2)
    if task == "binary":
        return x, torch.bernoulli(p, generator=g).reshape(-1, 1), nn.BCEWithLogitsLoss(), 1
    if task == "multiclass":
        y = torch.bernoulli(p, generator=g).long() + 2 * x[:, 1].long()
        return x, y, nn.CrossEntropyLoss(), 4
    return x, (x[:, 0] + torch.randn(n, generator=g)).reshape(-1, 1), nn.MSELoss(), 1


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_conflicting_duplicates_reach_their_floor_and_are_not_a_failure(task):
    """The loss of identical rows with different labels cannot reach zero: a network that
    gets to the label entropy (or the within-group variance) has memorised the batch."""
    x, y, loss_fn, out = _duplicates(task)
    torch.manual_seed(0)
    assert run_preflight(_mlp(d=3, out=out), loss_fn, _adam(), x, y) == []


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_conflicting_duplicates_still_fail_when_the_loss_stays_above_the_floor(task):
    x, y, loss_fn, out = _duplicates(task)
    torch.manual_seed(0)
    f = next(f for f in run_preflight(_mlp(d=3, out=out), loss_fn, _adam(), x, y, lr=1e-9)
             if f.code == "cannot_overfit_batch")
    low = f.evidence["lowest_possible_loss"]
    assert f.severity == "error" and f.evidence["duplicate_input_rows"] == 16
    assert 0.3 < low < f.evidence["final_loss"] and f"{low:.4g}" in f.explanation
    # the floor by hand: the batch's label entropy per group of identical inputs
    rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:16]
    xs, ys = x[rows], y[rows]
    keys = [tuple(r.tolist()) for r in xs]
    total = 0.0
    for k in set(keys):
        group = ys[[i for i, kk in enumerate(keys) if kk == k]].double()
        if task == "regression":
            total += ((group - group.mean()) ** 2).sum().item()
        else:
            codes = group.reshape(-1)
            for c in codes.unique():
                p = (codes == c).double().mean().item()
                total -= len(codes) * p * math.log(p)
    assert low == pytest.approx(total / 16, rel=1e-3)


def test_the_floor_decides_whether_a_stalled_loss_is_memorised():
    stalled = dict(expected_loss=0.69, overfit_rows=16, overfit_steps=200,
                   overfit=[(1e-3, 0.70, 0.46), (1e-2, 0.70, 0.455)])
    f = cannot_overfit_batch(PreflightEvidence(**stalled))  # no duplicates: a real stall
    assert f is not None and f.evidence["lowest_possible_loss"] == 0
    assert cannot_overfit_batch(PreflightEvidence(**stalled, overfit_floor=0.449,
                                                  overfit_duplicates=16)) is None
    # well above the floor: still reported, with the floor in the evidence
    high = dict(stalled, overfit=[(1e-3, 0.70, 0.62), (1e-2, 0.70, 0.60)])
    f = cannot_overfit_batch(PreflightEvidence(**high, overfit_floor=0.449,
                                               overfit_duplicates=16))
    assert f.evidence["lowest_possible_loss"] == 0.449
    assert f.evidence["ratio"] == pytest.approx((0.60 - 0.449) / (0.70 - 0.449), rel=1e-3)


def test_the_memorisation_check_turns_weight_decay_off():
    """Weight decay strong enough to pin the weights near zero stops the network from
    learning (underfitting), but the check asks whether it *can* learn: it must not fail."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 5), torch.randint(0, 2, (16,))
    net = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 2))
    heavy = lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=1e4)  # noqa: E731
    codes = {f.code for f in run_preflight(net, nn.CrossEntropyLoss(), heavy, x, y)}
    assert "cannot_overfit_batch" not in codes
    # with the decay left on, the same steps do not fit the batch: the plant is real
    from nnrecipe.doctor.preflight import _train
    decayed = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 2))
    decayed.load_state_dict(net.state_dict())
    first, final = _train(decayed, heavy(decayed.parameters()), nn.CrossEntropyLoss(), x, y,
                          200)  # run_preflight's overfit_steps
    assert final > 0.5 * first


# ------------------------------------------------------------------- a NaN loss before any step

def test_a_nan_input_row_is_a_nan_loss_at_init_not_a_gradient_or_scale_fault():
    x, y, loss_fn, out = _data("multiclass")
    x = x.clone()
    x[5, 2] = math.nan
    x[9, 0] = math.inf
    found = run_preflight(_mlp(out=out), loss_fn, _adam(), x, y)
    assert [f.code for f in found] == ["nan_loss"]
    nan = found[0]
    assert nan.severity == "error" and nan.evidence["when"] == "initialisation"
    assert nan.evidence["non_finite_input_rows"] == 2 and nan.evidence["non_finite_targets"] == 0
    assert "2 input rows" in nan.explanation
    _check_schema(found)


def test_a_forward_that_makes_nan_from_clean_inputs_is_named_as_the_source():
    x, y, loss_fn, out = _data("binary")

    class LogFeatures(nn.Module):  # log of standardised inputs: NaN where they are negative
        def __init__(self):
            super().__init__()
            self.net = _mlp(out=out)

        def forward(self, t):
            return self.net(torch.log(t))

    found = run_preflight(LogFeatures(), loss_fn, _adam(), x, y)
    assert [f.code for f in found] == ["nan_loss"]
    assert found[0].evidence["non_finite_input_rows"] == 0
    assert "the network or the loss makes it" in found[0].explanation


def test_a_nan_target_is_counted():
    x, y, loss_fn, out = _data("regression")
    y = y.clone()
    y[3] = math.nan
    found = run_preflight(_mlp(out=out), loss_fn, _adam(), x, y)
    assert [f.code for f in found] == ["nan_loss"]
    assert found[0].evidence["non_finite_targets"] == 1
