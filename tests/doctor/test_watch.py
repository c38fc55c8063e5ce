"""The doctor on a user's own loop: any nn.Module, no plan."""

import math

import pytest
import torch
from torch import nn

from nnrecipe import Doctor


def _data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def _train(doctor, model, loss_fn, opt, x, y, epochs=3, bs=32):
    for _ in range(epochs):
        for i in range(0, len(x), bs):
            loss = loss_fn(model(x[i:i + bs]), y[i:i + bs])
            opt.zero_grad()
            loss.backward()
            doctor.after_backward(loss)
            opt.step()
        doctor.end_epoch(loss.item())


def test_a_healthy_user_loop_gets_no_warning():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 2))
    opt, loss_fn = torch.optim.Adam(model.parameters(), 1e-3), nn.CrossEntropyLoss()
    doctor = Doctor(model, loss_fn=loss_fn, optimizer=opt, sample_every=4)
    x, y = _data()
    before = [p.clone() for p in model.parameters()]
    assert doctor.preflight(x, y, task="multiclass") == []
    for a, b in zip(before, model.parameters(), strict=True):  # pre-flight works on copies
        assert torch.equal(a, b)
    _train(doctor, model, loss_fn, opt, x, y)
    assert [f.code for f in doctor.findings if f.severity != "info"] == []


def test_softmax_fed_to_cross_entropy_is_caught_before_training():
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2), nn.Softmax(dim=1))
    doctor = Doctor(model, loss_fn=nn.CrossEntropyLoss(),
                    optimizer=torch.optim.Adam(model.parameters()))
    assert "loss_activation_mismatch" in [f.code for f in doctor.findings]


def test_exploding_gradients_in_a_user_cnn_are_caught_live():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 2))
    opt, loss_fn = torch.optim.SGD(model.parameters(), lr=20.0), nn.CrossEntropyLoss()
    doctor = Doctor(model, loss_fn=loss_fn, optimizer=opt, sample_every=2)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 1, 8, 8, generator=g) * 3
    y = (x.mean((1, 2, 3)) > 0).long()
    _train(doctor, model, loss_fn, opt, x, y, epochs=2)
    codes = {f.code for f in doctor.findings}
    assert codes & {"exploding_gradients", "nan_loss", "loss_divergence"}
    exploding = next(f for f in doctor.findings if f.code in codes)
    assert exploding.severity == "error" and exploding.evidence
    doctor.close()


def test_dead_relus_in_a_user_mlp_name_the_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 2))
    with torch.no_grad():
        model[0].bias.fill_(-20.0)
    opt, loss_fn = torch.optim.Adam(model.parameters(), 1e-3), nn.CrossEntropyLoss()
    doctor = Doctor(model, loss_fn=loss_fn, optimizer=opt, sample_every=1)
    x, y = _data()
    _train(doctor, model, loss_fn, opt, x, y, epochs=1)
    dead = [f for f in doctor.findings if f.code == "dead_relu"]
    assert dead and dead[0].layer == "1"


class _Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 16, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        out, _ = self.rnn(x)          # (B, T, 16)
        return self.head(out[:, -1])  # (B, 2)


def test_a_user_rnn_gets_preflight_and_live_checks_without_false_alarms():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 10, 3, generator=g)
    y = (x[:, :, 0].sum(1) > 0).long()
    model = _Seq()
    opt, loss_fn = torch.optim.Adam(model.parameters(), 3e-3), nn.CrossEntropyLoss()
    doctor = Doctor(model, loss_fn=loss_fn, optimizer=opt, sample_every=3)
    assert [f.code for f in doctor.preflight(x, y, task="multiclass")
            if f.severity == "error"] == []
    _train(doctor, model, loss_fn, opt, x, y, epochs=3)
    assert [f.code for f in doctor.findings if f.severity != "info"] == []
    assert doctor.monitor.samples  # statistics were taken from the LSTM's weights
    assert any("rnn" in name for name in doctor.monitor.samples[-1].grad_norms)


def test_a_nan_row_in_a_user_loop_is_reported_once_before_training():
    x, y = _data()
    x[7, 1] = float("nan")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 2))
    opt, loss_fn = torch.optim.Adam(model.parameters(), 1e-3), nn.CrossEntropyLoss()
    doctor = Doctor(model, loss_fn=loss_fn, optimizer=opt, sample_every=1)
    assert [f.code for f in doctor.preflight(x, y, task="multiclass")] == ["nan_loss"]
    _train(doctor, model, loss_fn, opt, x, y, epochs=1)
    assert doctor.monitor.findings[0].code == "nan_loss"  # the live monitor saw it too...
    nan = [f for f in doctor.findings if f.code == "nan_loss"]
    assert len(nan) == 1 and nan[0].evidence["when"] == "initialisation"  # ...listed once


# ------------------------------------------------------------------- after training

def _epochs(doctor, train, val):
    for t, v in zip(train, val, strict=True):
        doctor.end_epoch(t, v)


OVERFIT_TRAIN = [0.69, 0.5, 0.4, 0.3, 0.22, 0.15, 0.1, 0.07, 0.05, 0.03, 0.02, 0.015]
OVERFIT_VAL = [0.68, 0.55, 0.48, 0.45, 0.44, 0.46, 0.5, 0.55, 0.6, 0.66, 0.72, 0.8]


def test_after_training_names_overfitting_with_the_epoch_where_the_curves_part():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 2))
    doctor = Doctor(model, loss_fn=nn.CrossEntropyLoss(),
                    optimizer=torch.optim.Adam(model.parameters(), 1e-3))
    _epochs(doctor, OVERFIT_TRAIN, OVERFIT_VAL)
    assert doctor.findings == []  # nothing until training is declared over
    found = doctor.after_training(task="multiclass")
    assert [f.code for f in found] == ["overfitting"]
    assert found[0].severity == "warning" and found[0].evidence["parting_epoch"] == 5
    assert [f.code for f in doctor.findings] == ["overfitting"]
    # a loop that stopped early with patience 10 kept the best weights: an info note
    calm = Doctor(model, loss_fn=nn.CrossEntropyLoss())
    _epochs(calm, OVERFIT_TRAIN, OVERFIT_VAL)
    assert calm.after_training(task="multiclass", early_stopping_patience=10)[0].severity \
        == "info"


def test_after_training_reads_the_optimizer_to_tell_too_small_steps_from_a_network_held_back():
    """The same wobbling curve near the baseline (three classes): with Adam at 1e-5, the
    bottom of its usual range, it is slow convergence; with Adam at 1e-3, underfitting."""
    train, val = [1.762, 1.696, 1.563, 1.766, 1.735, 1.575], [1.123, 1.324, 1.441, 1.464,
                                                               1.469, 1.470]
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    codes = {}
    for lr in (1e-5, 1e-3):
        doctor = Doctor(model, loss_fn=nn.CrossEntropyLoss(),
                        optimizer=torch.optim.Adam(model.parameters(), lr))
        _epochs(doctor, train, val)
        codes[lr] = [f.code for f in doctor.after_training(task="multiclass",
                                                           baseline_loss=math.log(3))]
    assert codes == {1e-5: ["slow_convergence"], 1e-3: ["underfitting"]}


def _fit(weight_decay, x, y, n_train, epochs):
    """A 6-32-2 MLP trained with Adam 1e-2 on the first ``n_train`` rows under a Doctor
    (pre-flight on them; ``end_epoch`` with the full training and validation losses)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), 1e-2, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    doctor = Doctor(model, loss_fn=loss_fn, optimizer=opt, sample_every=1000)
    tr, va = slice(0, n_train), slice(n_train, None)
    doctor.preflight(x[tr], y[tr], task="multiclass")
    for _ in range(epochs):
        for i in range(0, n_train, 32):
            loss = loss_fn(model(x[tr][i:i + 32]), y[tr][i:i + 32])
            opt.zero_grad()
            loss.backward()
            doctor.after_backward(loss)
            opt.step()
        with torch.no_grad():
            doctor.end_epoch(loss_fn(model(x[tr]), y[tr]).item(),
                             loss_fn(model(x[va]), y[va]).item())
    return doctor, model


def test_after_training_finds_underfitting_against_the_baseline_the_preflight_measured():
    """Weight decay 3 (Adam's coupled L2) pins the weights near zero: the losses stay at
    ln 2, what predicting the class shares scores, and the pre-flight measured that."""
    x, y = _data()
    doctor, _ = _fit(3.0, x, y, 192, 8)
    found = {f.code: f for f in doctor.after_training(val_rows=64)}
    assert "underfitting" in found
    share = (y == 1).float().mean().item()
    baseline = -(share * math.log(share) + (1 - share) * math.log(1 - share))
    assert found["underfitting"].evidence["baseline_loss"] == pytest.approx(baseline, rel=0.02)
    assert found["underfitting"].evidence["ratio"] > 0.9


def test_after_training_is_quiet_on_a_healthy_loop_and_judges_the_split_only_when_told():
    doctor, _ = _fit(0.0, *_data(), 192, 12)
    assert doctor.after_training() == []  # the validation size unknown: not judged
    small = doctor.after_training(val_rows=12)
    assert [(f.code, f.severity) for f in small] == [("noisy_validation", "warning")]
    assert [(f.code, f.severity) for f in doctor.after_training(val_rows=64)] == [
        ("noisy_validation", "info")]  # a steady curve on 64 rows: worth knowing
    assert doctor.after_training(val_rows=200) == []
    assert doctor.findings == []  # each call replaces the last one's findings


def test_after_training_flags_validation_labels_the_trained_model_firmly_rejects():
    """Trained on right labels; 10% of the validation labels are then flipped (a sloppier
    hand labelled the held-out rows): far more confident contradictions than the model's
    own uncertainty explains, so a warning that lists the flipped rows. The same rows with
    their right labels give no warning."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(600, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    x[:, 0] += torch.where(y == 1, 1.0, -1.0)  # a margin between the classes
    doctor, model = _fit(0.0, x, y, 400, 10)
    va = slice(400, None)
    with torch.no_grad():
        probs = torch.softmax(model(x[va]), 1)
    flipped = torch.randperm(200, generator=g)[:20]
    noisy = y[va].clone()
    noisy[flipped] = 1 - noisy[flipped]
    found = {f.code: f for f in doctor.after_training(val_labels=noisy, val_probs=probs)}
    issue = found["label_issues"]
    assert issue.severity == "warning" and issue.evidence["rows_checked"] == 200
    listed = {int(r.split("]")[0][4:]) for r in issue.evidence["rows"].split("; ")}
    assert len(listed & set(flipped.tolist())) >= 16 and len(listed - set(flipped.tolist())) <= 2
    clean = doctor.after_training(val_labels=y[va], val_probs=probs)
    assert all(f.severity == "info" for f in clean if f.code == "label_issues")
