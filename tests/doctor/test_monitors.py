"""LiveMonitor in real training: plant a fault, expect its finding; train a healthy network,
expect silence. Small data (240 rows, 15 steps an epoch) keeps each run to a second or two."""

import math

import pytest
import torch
from torch import nn

from nnrecipe.doctor.findings import CODES
from nnrecipe.doctor.monitors import LiveMonitor, weight_layers
from nnrecipe.doctor.rules.live import StepEvidence
from nnrecipe.models import build_mlp
from nnrecipe.plan import make_plan
from nnrecipe.train import Watcher, fit, make_loss

LIVE = {c for c, (family, _, _) in CODES.items() if family == "live"}
BASELINE = math.log(2)  # balanced binary target: the constant predictor's BCE


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy machine OpenMP workers waiting
    for a core make a one-second run take twenty."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def plan_for(table, profile_of):
    profile = profile_of(table(n=300, task="binary"))

    def build(epochs=10, **overrides):
        return make_plan(profile, 240, {"train.max_epochs": epochs,
                                        "train.early_stopping.patience": 0, **overrides})
    return build


def _tabular(n, g):
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).float().reshape(-1, 1)


def _images(n, g):  # (N, 1, 8, 8): is the top half brighter than the bottom half?
    x = torch.randn(n, 1, 8, 8, generator=g)
    return x, (x[:, :, :4].mean((1, 2, 3)) > x[:, :, 4:].mean((1, 2, 3))).float().reshape(-1, 1)


def _sequences(n, g):  # (N, 10, 3): is the first channel's sum positive?
    x = torch.randn(n, 10, 3, generator=g)
    return x, (x[:, :, 0].sum(1) > 0).float().reshape(-1, 1)


def _accuracy(out, y):
    return {"accuracy": ((out > 0).float() == y).float().mean().item()}


def train(plan, model=None, data=_tabular, *, sample_every=5, **monitor):
    g = torch.Generator().manual_seed(0)
    tr, va = data(240, g), data(60, g)
    torch.manual_seed(0)
    model = model if model is not None else build_mlp(plan, 4, [])
    mon = LiveMonitor(sample_every=sample_every, metric_name="accuracy",
                      baseline_loss=BASELINE, **monitor)
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), val_metrics=_accuracy,
            main_metric="accuracy", watchers=[mon], progress=False)
    return mon, h, model


def first(mon, code):
    found = [f for f in mon.findings if f.code == code]
    assert found, f"{code} not found in {[f.code for f in mon.findings]}"
    return found[0]


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 1))


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lstm = nn.LSTM(3, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 1)

    def forward(self, x):  # (B, T, 3) -> (B, 1)
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


# --- healthy runs stay quiet ----------------------------------------------------------------

def test_the_default_plan_on_a_learnable_table_fires_nothing(plan_for):
    mon, h, _ = train(plan_for(epochs=30), sample_every=3)
    assert [f.code for f in mon.findings if f.code in LIVE] == []
    assert h.epochs[-1]["val_accuracy"] > 0.9 and len(mon.samples) >= 150


@pytest.mark.parametrize("overrides", [
    {"model.batchnorm": False, "model.hidden_layers": 3},
    {"model.activation": "tanh", "model.init": "glorot_normal", "model.batchnorm": False,
     "model.hidden_layers": 3},
    {"optimizer.lr": 0.01},
])
def test_other_healthy_mlps_fire_nothing(plan_for, overrides):
    mon, _, _ = train(plan_for(epochs=20, **overrides))
    assert [f.code for f in mon.findings] == []


def test_a_healthy_cnn_and_lstm_fire_nothing(plan_for):
    mon, h, _ = train(plan_for(epochs=12), _cnn(), _images)
    assert mon.findings == [] and h.epochs[-1]["train_loss"] < h.epochs[0]["train_loss"]
    assert list(mon.samples[0].grad_norms) == ["0", "4", "8"]  # conv, conv, linear
    assert set(mon.samples[0].act_zero_share) == {"2", "5"}
    mon, h, _ = train(plan_for(epochs=8, **{"optimizer.lr": 0.01}), LSTMNet(), _sequences)
    assert mon.findings == [] and h.epochs[-1]["val_accuracy"] > 0.8
    assert list(mon.samples[0].grad_norms) == [
        "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.weight_ih_l1", "lstm.weight_hh_l1",
        "head"]


# --- planted faults ---------------------------------------------------------------------------

def test_huge_sgd_learning_rate_explodes_diverges_and_ends_in_nan(plan_for):
    plan = plan_for(**{"optimizer.name": "sgd", "optimizer.lr": 10.0, "model.batchnorm": False})
    mon, _, _ = train(plan)
    f = first(mon, "exploding_gradients")
    assert f.epoch == 1 and f.evidence["trigger"] == "loss_growth"
    assert f.fix["optimizer.lr"] == 1.0 and f.fix["train.grad_clip.kind"] == "global_norm"
    assert first(mon, "loss_divergence").epoch <= 2
    assert first(mon, "nan_loss").severity == "error"


def test_stop_on_error_ends_training_with_the_doctor_s_reason(plan_for):
    plan = plan_for(**{"optimizer.name": "sgd", "optimizer.lr": 10.0, "model.batchnorm": False})
    mon, h, _ = train(plan, stop_on_error=True)
    assert len(h.epochs) == 1 and h.stop_reason.startswith("doctor: exploding gradients")
    assert [f.code for f in mon.findings] == ["exploding_gradients"]


def test_deep_sigmoid_network_with_tiny_weights_has_vanishing_gradients(plan_for):
    plan = plan_for(epochs=6, **{"model.activation": "sigmoid", "model.hidden_layers": 10,
                                 "model.init": "normal", "model.batchnorm": False})
    mon, _, _ = train(plan)
    f = first(mon, "vanishing_gradients")
    assert (f.epoch, f.step, f.layer) == (1, 3, "body.0")  # three samples in a row
    assert f.evidence["ratio_first_last"] < 1e-10
    assert f.fix["model.activation"] == "relu"
    assert first(mon, "slow_convergence").epoch == 6


@pytest.mark.parametrize("scale", [3.0, 5.0])
def test_tanh_with_initial_weights_a_few_times_too_large_saturates(plan_for, scale):
    plan = plan_for(epochs=3, **{"model.activation": "tanh", "model.init_scale": scale,
                                 "model.batchnorm": False, "model.hidden_layers": 3})
    mon, _, _ = train(plan)
    f = first(mon, "saturated_activations")
    assert f.epoch == 1 and f.step == 3 and f.evidence["saturated_share"] > 1 / 3
    assert f.fix["model.init_scale"] == 1.0


def test_a_healthy_tanh_network_keeps_most_outputs_off_the_ends(plan_for):
    plan = plan_for(epochs=20, **{"model.activation": "tanh", "model.init": "glorot_normal",
                                  "model.batchnorm": False, "model.hidden_layers": 3})
    mon, _, _ = train(plan)
    shares = [max(s.saturation_share.values()) for s in mon.samples]
    assert max(shares) < 0.3 and "saturated_activations" not in {f.code for f in mon.findings}


def test_relu_with_a_large_negative_bias_is_dead(plan_for):
    plan = plan_for(epochs=3, **{"model.bias_init": -5.0, "model.batchnorm": False,
                                 "model.hidden_layers": 3})
    mon, _, _ = train(plan)
    f = first(mon, "dead_relu")
    assert (f.epoch, f.step, f.layer) == (1, 3, "body.1")
    assert f.evidence["dead_unit_share"] == 1.0 and f.evidence["layers_affected"] == 3
    assert "vanishing_gradients" not in {x.code for x in mon.findings}  # no gradient at all


def test_dead_relu_in_a_cnn(plan_for):
    model = _cnn()
    with torch.no_grad():
        model[4].bias.fill_(-20.0)
    mon, _, _ = train(plan_for(epochs=2), model, _images)
    assert first(mon, "dead_relu").layer == "5"


def test_adam_with_a_far_too_high_learning_rate_oscillates(plan_for):
    mon, _, _ = train(plan_for(epochs=10, **{"optimizer.lr": 1.0, "model.dropout": 0.0}))
    f = first(mon, "loss_oscillation")
    assert f.epoch <= 8 and f.evidence["series"] == "val_loss"
    assert f.fix == {"optimizer.lr": 0.333}


def test_a_tiny_learning_rate_converges_slowly(plan_for):
    mon, _, _ = train(plan_for(epochs=8, **{"optimizer.lr": 1e-7}))
    f = first(mon, "slow_convergence")
    assert f.epoch == 6 and f.fix == {"optimizer.lr": 1e-6}
    assert {x.code for x in mon.findings} == {"slow_convergence"}


def test_huge_learning_rate_on_an_lstm_is_caught(plan_for):
    plan = plan_for(epochs=4, **{"optimizer.name": "sgd", "optimizer.lr": 50.0})
    mon, _, _ = train(plan, LSTMNet(), _sequences)
    assert first(mon, "loss_divergence").epoch <= 2


# --- mechanics --------------------------------------------------------------------------------

def test_only_sampled_steps_are_measured_and_no_hook_is_left_behind(plan_for):
    seen = []

    class CountHooks(Watcher):
        wants_steps = True

        def after_step(self, state):
            seen.append(sum(len(m._forward_hooks) for m in state.model.modules()))

    plan = plan_for(epochs=2, **{"model.batchnorm": False, "model.hidden_layers": 2})
    torch.manual_seed(0)
    model = build_mlp(plan, 4, [])
    g = torch.Generator().manual_seed(0)
    mon = LiveMonitor(sample_every=7)
    fit(model, plan, _tabular(240, g), None, loss_fn=make_loss("bce"),
        watchers=[CountHooks(), mon], progress=False)
    assert [s.step for s in mon.samples] == [1, 2, 3, 7, 14, 21, 28]
    assert seen[3] == 0 and seen[6] == 2  # hooks only while a sampled step runs
    assert all(not m._forward_hooks for m in model.modules())


def test_norm_layers_embeddings_and_prelu_are_not_weight_layers():
    model = nn.ModuleList([nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Conv1d(2, 2, 3),
                           nn.LayerNorm(8), nn.PReLU(), nn.Embedding(3, 2), nn.GRU(2, 4),
                           nn.Linear(8, 1)])
    assert [n for n, _ in weight_layers(model)] == ["0", "2", "6.weight_ih_l0",
                                                    "6.weight_hh_l0", "7"]


def test_the_output_activation_is_not_watched(plan_for):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 8),
                          nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    g = torch.Generator().manual_seed(0)
    mon = LiveMonitor()
    fit(model, plan_for(epochs=1), _tabular(240, g), None, loss_fn=nn.BCELoss(),
        watchers=[mon], progress=False)
    assert list(mon.samples[0].saturation_share) == ["2"]  # the Tanh, not the Sigmoid
    assert list(mon.samples[0].act_zero_share) == ["4"]


def test_each_code_is_reported_once_per_layer_with_a_repeat_count(plan_for):
    plan = plan_for(epochs=3, **{"model.bias_init": -5.0, "model.batchnorm": False})
    mon, _, _ = train(plan)
    keys = [(f.code, f.layer) for f in mon.findings]
    assert len(keys) == len(set(keys))
    assert first(mon, "dead_relu").evidence["times_seen"] >= 5


def test_persistence_ignores_a_single_odd_sample():
    """One bad sample between good ones does not make a finding; three in a row do."""
    mon = LiveMonitor(persist=3)

    def sample(dead):
        return StepEvidence(1, len(mon.samples) + 1, 0.5, {"a": 1.0, "b": 1.0}, {},
                            {"r": 0.5}, {}, {"r": dead})

    for dead in (0.0, 1.0, 0.0, 1.0, 1.0, 0.0):
        assert mon.observe(sample(dead)) == []
    assert [f.code for f in mon.observe(sample(1.0)) + mon.observe(sample(1.0))] == []
    assert [(f.code, f.step) for f in mon.observe(sample(1.0))] == [("dead_relu", 9)]
    assert mon.observe(sample(1.0)) == [] and mon.findings[0].evidence["times_seen"] == 2


def test_a_nan_loss_is_reported_at_once():
    mon = LiveMonitor(persist=3)
    f, = mon.observe(StepEvidence(1, 1, math.nan, {}, {}, {}, {}))
    assert f.code == "nan_loss" and f.step == 1


def test_non_finite_statistics_under_a_finite_loss_are_a_nan_loss_at_the_epochs_end():
    """A BatchNorm running variance that overflowed: the loss (batch statistics in
    training mode) stays finite, the network is broken; healthy state is not reported."""
    from nnrecipe.train.callbacks import TrainState

    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1))
    state = TrainState(model=net, optimizer=None, plan=None, max_epochs=3,
                       logs={"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "lr": 0.1})
    mon = LiveMonitor()
    mon.on_epoch_end(state)
    assert "nan_loss" not in {f.code for f in mon.findings}
    with torch.no_grad():
        net[1].running_var[2] = math.inf
    state.logs = {"epoch": 2, "train_loss": 0.4, "val_loss": 0.5, "lr": 0.1}
    mon.on_epoch_end(state)
    f = first(mon, "nan_loss")
    assert f.epoch == 2 and f.evidence["first"] == "1.running_var"
    assert f.evidence["non_finite_tensors"] == 1 and f.fix["optimizer.lr"] == 0.01
