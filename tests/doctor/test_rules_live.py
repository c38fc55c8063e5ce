"""Live rules on scripted numbers: each fires on its fault and stays quiet on healthy values."""

import json
import math

import pytest

from nnrecipe.doctor.findings import CODES
from nnrecipe.doctor.rules import live
from nnrecipe.doctor.rules.live import (
    EPOCH_RULES,
    STEP_RULES,
    HistoryEvidence,
    StepEvidence,
    check_history,
    check_step,
)
from nnrecipe.plan import KEYS

nan = math.nan
LAYERS = ["body.0", "body.3", "head"]


def norms(*values: float) -> dict[str, float]:
    return dict(zip(LAYERS, values, strict=True))


def step(**kw) -> StepEvidence:
    """A healthy sample: gradients of similar size, half the ReLU outputs zero, no dead
    unit, no saturation."""
    base = dict(epoch=2, step=100, loss=0.5, grad_norms=norms(0.3, 0.5, 0.8),
                grad_zero_share=dict.fromkeys(LAYERS, 0.1),
                act_zero_share={"body.2": 0.5, "body.5": 0.48},
                saturation_share={}, dead_unit_share={"body.2": 0.0, "body.5": 0.06},
                lr=0.01, initial_loss=0.7)
    return StepEvidence(**{**base, **kw})


def hist(train, val=None, **kw) -> HistoryEvidence:
    return HistoryEvidence(train_loss=list(train), val_loss=list(val or []),
                           **{"lr": 0.01, "initial_loss": 0.7, "baseline_loss": 0.693, **kw})


HEALTHY_CURVE = [0.68, 0.62, 0.57, 0.55, 0.52, 0.49, 0.5, 0.47, 0.44, 0.45, 0.42, 0.41]
HEALTHY_VAL = [0.65, 0.61, 0.58, 0.55, 0.53, 0.5, 0.49, 0.47, 0.46, 0.45, 0.44, 0.43]


def test_registries_cover_every_live_code_and_nothing_else():
    live_codes = {c for c, (family, _, _) in CODES.items() if family == "live"}
    assert set(STEP_RULES) | set(EPOCH_RULES) == live_codes
    for registry in (STEP_RULES, EPOCH_RULES):
        for code, rule in registry.items():
            assert callable(rule), code


def test_healthy_step_and_healthy_curve_fire_nothing():
    assert check_step(step()) == []
    for n in range(1, len(HEALTHY_CURVE) + 1):
        assert check_history(hist(HEALTHY_CURVE[:n], HEALTHY_VAL[:n])) == [], n


# --- step rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("loss", [nan, math.inf, -math.inf])
def test_nan_loss_fires_on_a_non_finite_loss(loss):
    f = live.nan_loss(step(loss=loss))
    assert f.code == "nan_loss" and f.severity == "error" and f.step == 100
    assert f.fix == {"train.grad_clip.kind": "global_norm", "train.grad_clip.max": 1.0,
                     "optimizer.lr": 0.001}
    assert [x.code for x in check_step(step(loss=loss))] == ["nan_loss"]  # the others yield


def test_nan_loss_without_a_known_lr_still_suggests_clipping():
    f = live.nan_loss(step(loss=nan, lr=None))
    assert "optimizer.lr" not in f.fix and f.fix["train.grad_clip.kind"] == "global_norm"


def test_exploding_gradients_on_the_first_to_last_ratio():
    f = live.exploding_gradients(step(grad_norms=norms(80.0, 5.0, 1.0)))
    assert f.code == "exploding_gradients" and f.layer == "body.0"
    assert f.evidence["trigger"] == "gradient_ratio" and f.evidence["ratio_first_last"] == 80
    assert f.fix["optimizer.lr"] == 0.001 and f.fix["train.grad_clip.max"] == 1.0
    assert live.exploding_gradients(step(grad_norms=norms(60.0, 5.0, 1.0))) \
        is None


def test_exploding_gradients_on_loss_growth_relative_to_the_initial_loss():
    f = live.exploding_gradients(step(loss=800.0, initial_loss=0.7))
    assert f.evidence["trigger"] == "loss_growth" and f.layer is None
    # a large loss is not an explosion when it started large (unscaled regression targets)
    assert live.exploding_gradients(step(loss=800.0, initial_loss=5000.0)) is None
    assert live.exploding_gradients(step(loss=600.0, initial_loss=0.7)) is None


def test_exploding_gradients_on_non_finite_gradients():
    f = live.exploding_gradients(step(grad_norms=norms(math.inf, 1.0, 1.0)))
    assert f.evidence["trigger"] == "non_finite_gradient" and f.layer == "body.0"
    assert f.evidence["grad_norm_first"] == "inf"
    json.dumps(f.to_dict(), allow_nan=False)  # findings.json stays strict JSON


def test_vanishing_gradients_needs_both_a_tiny_ratio_and_a_tiny_first_gradient():
    f = live.vanishing_gradients(step(grad_norms=norms(1e-6, 1e-3, 0.1)))
    assert f.code == "vanishing_gradients" and f.layer == "body.0"
    assert f.fix == {"model.activation": "relu", "model.init": "auto", "model.batchnorm": True}
    # small first gradient, but so is the last one: a flat region, not vanishing
    assert live.vanishing_gradients(step(grad_norms=norms(5e-5, 1e-5, 1e-2)))\
        is None
    # tiny ratio, but the first gradient is still usable
    assert live.vanishing_gradients(step(grad_norms=norms(2e-4, 1.0, 1.0))) \
        is None
    # no gradient at the last layer at all is dead units, not vanishing
    assert live.vanishing_gradients(step(grad_norms=norms(0.0, 0.0, 0.0))) \
        is None
    assert live.vanishing_gradients(step(grad_norms={"only": 1e-9})) is None


def test_dead_relu_fires_on_dead_units_not_on_the_usual_half_of_zeros():
    assert live.dead_relu(step(act_zero_share={"a": 0.55}, dead_unit_share={"a": 0.1})) is None
    f = live.dead_relu(step(act_zero_share={"a": 0.5, "b": 0.9},
                            dead_unit_share={"a": 0.0, "b": 0.7}))
    assert f.code == "dead_relu" and f.layer == "b" and f.evidence["dead_unit_share"] == 0.7
    assert f.fix["model.activation"] == "leaky_relu" and f.fix["optimizer.lr"] == 0.001
    # almost every output zero counts even where units cannot be judged (small batches)
    f = live.dead_relu(step(act_zero_share={"a": 0.97}, dead_unit_share={"a": 0.0}))
    assert f.layer == "a"


def test_dead_relu_reports_the_first_dead_layer_and_counts_the_rest():
    f = live.dead_relu(step(act_zero_share={"a": 1.0, "b": 1.0, "c": 0.5},
                            dead_unit_share={"a": 1.0, "b": 1.0, "c": 0.0}))
    assert f.layer == "a" and f.evidence["layers_affected"] == 2


def test_saturated_activations_over_a_third_of_the_outputs():
    # 26%: the most a healthy Glorot-initialised tanh layer (with dropout) reached
    assert live.saturated_activations(step(saturation_share={"t": 0.26})) is None
    f = live.saturated_activations(step(saturation_share={"t1": 0.2, "t2": 0.4}))
    assert f.code == "saturated_activations" and f.severity == "warning" and f.layer == "t2"
    assert f.fix["model.activation"] == "relu"


# --- epoch rules --------------------------------------------------------------------------

def test_nan_loss_in_history():
    f = live.nan_loss_in_history(hist([4, 3, nan]))
    assert f.code == "nan_loss" and f.epoch == 3
    assert live.nan_loss_in_history(hist([4, 3, 2])) is None
    assert live.nan_loss_in_history(hist([])) is None


def test_loss_divergence_on_a_blowup_above_the_start():
    f = live.loss_divergence(hist([0.6, 5e3]))
    assert f.code == "loss_divergence" and f.epoch == 2 and f.fix == {"optimizer.lr": 0.001}
    assert live.loss_divergence(hist([45.0], initial_loss=0.7)) is None  # one epoch: no curve
    assert live.loss_divergence(hist([45.0, 60.0], initial_loss=0.7)).epoch == 2
    # ten times the best, but below where it started: a noisy spike near zero loss
    assert live.loss_divergence(hist([0.5, 0.01, 0.001, 0.02], initial_loss=0.7)) is None


def test_loss_divergence_on_a_steady_rise_of_train_and_validation_loss():
    train = [0.7, 0.4, 0.3, 0.35, 0.42, 0.5, 0.6]
    val = [0.7, 0.45, 0.35, 0.4, 0.5, 0.6, 0.7]
    f = live.loss_divergence(hist(train, val))
    assert f.epoch == 7 and f.evidence["trigger"] == "sustained_rise"
    assert live.loss_divergence(hist(train)).epoch == 7
    # one epoch over 1.5 times the best is not yet held high: wait for the next
    assert live.loss_divergence(hist(train[:6], val[:6])) is None
    # training loss falling while validation rises is overfitting, not divergence
    assert live.loss_divergence(hist([0.7, 0.4, 0.3, 0.2, 0.1], [0.6, 0.5, 0.55, 0.6, 0.7])) \
        is None
    # a rise that is not sustained, or too small, is noise
    assert live.loss_divergence(hist([0.7, 0.4, 0.3, 0.5, 0.32, 0.5])) is None
    assert live.loss_divergence(hist([0.7, 0.4, 0.3, 0.31, 0.33, 0.35])) is None


def test_loss_oscillation_on_the_validation_loss():
    val = [0.3, 0.14, 0.25, 0.12, 0.3, 0.15, 0.26]
    train = [0.5, 0.3, 0.45, 0.28, 0.5, 0.3, 0.45]  # the training loss jumps up as well
    f = live.loss_oscillation(hist(train, val, val_metric=[0.9, 0.97, 0.9, 0.98, 0.85,
                                                           0.95, 0.9],
                                   metric_name="accuracy"))
    assert f.code == "loss_oscillation" and f.evidence["series"] == "val_loss"
    assert f.evidence["flips"] >= 2 and f.evidence["val_accuracy_range"] == pytest.approx(0.13)
    assert f.evidence["train_jump"] == pytest.approx(0.22)  # 0.28 to 0.5
    assert f.evidence["train_gained"] == pytest.approx(0.42)  # 0.7 at the first step to 0.28
    assert f.fix == {"optimizer.lr": 0.00333}
    # the validation loss swinging while the training loss stays put is not overshooting
    assert live.loss_oscillation(hist([0.5] * 7, val)) is None
    # the same swings in the training loss alone do not count when validation is smooth
    assert live.loss_oscillation(hist(val, HEALTHY_VAL[:7])) is None


def test_loss_oscillation_falls_back_to_the_training_loss_without_validation():
    assert live.loss_oscillation(hist([0.3, 0.14, 0.25, 0.12, 0.3, 0.15, 0.26])).evidence[
        "series"] == "train_loss"
    # small wiggles (dropout noise) and one big drop are not oscillation
    assert live.loss_oscillation(hist([0.35, 0.31, 0.34, 0.29, 0.33, 0.3, 0.32])) is None
    assert live.loss_oscillation(hist([0.7, 0.2, 0.19, 0.18, 0.18, 0.17, 0.17])) is None
    assert live.loss_oscillation(hist([0.3, 0.1, 0.3])) is None  # too short to judge
    # relative jitter of a loss near zero is not oscillation
    assert live.loss_oscillation(hist([0.003, 0.001, 0.004, 0.001, 0.003, 0.001, 0.002])) \
        is None
    assert live.loss_oscillation(hist([0.003, 0.001, 0.004, 0.001, 0.003, 0.001, 0.002],
                                      initial_loss=None, baseline_loss=None)) is not None


# A 4 x 512 network, no dropout, no early stopping, on 150 noisy rows (make_classification,
# flip_y=0.2, random_state=2): the training loss falls (with one noisy epoch, 21) while the
# validation loss climbs from epoch 4. Before the fix: loss_divergence at epoch 21.
OVERFIT_TRAIN = [
    0.736, 0.424, 0.48, 0.322, 0.329, 0.364, 0.292, 0.28, 0.241, 0.241, 0.275, 0.224, 0.21,
    0.184, 0.2, 0.255, 0.235, 0.168, 0.203, 0.239, 0.584, 0.366, 0.241, 0.183, 0.251, 0.204,
    0.211, 0.162, 0.238, 0.215, 0.23, 0.279, 0.166, 0.258, 0.193, 0.188, 0.265, 0.197, 0.233,
    0.32, 0.156, 0.262, 0.173, 0.204, 0.152, 0.093, 0.14, 0.125, 0.229, 0.202, 0.196, 0.141,
    0.343, 0.271, 0.155, 0.302, 0.25, 0.113, 0.257, 0.142]
OVERFIT_VAL = [
    0.656, 0.685, 0.491, 0.472, 0.673, 0.819, 0.837, 0.623, 0.605, 0.645, 0.595, 0.718, 0.808,
    0.668, 0.685, 0.741, 0.808, 0.879, 0.787, 0.705, 0.975, 0.806, 0.683, 0.801, 0.89, 0.853,
    0.765, 1.021, 1.14, 1.082, 0.76, 0.889, 0.923, 1.14, 0.943, 0.924, 0.885, 0.988, 0.982,
    0.986, 0.895, 0.943, 0.759, 0.865, 0.893, 0.817, 0.855, 0.852, 0.817, 1.024, 0.791, 0.827,
    0.978, 0.911, 0.756, 1.189, 1.273, 0.899, 0.959, 0.958]
# The same network on another draw (random_state=0): validation swings by 30-80% from epoch
# to epoch; before the fix, loss_oscillation from epoch 7.
OVERFIT0_TRAIN = [
    0.959, 0.616, 0.528, 0.524, 0.5, 0.523, 0.501, 0.482, 0.351, 0.394, 0.45, 0.394, 0.47,
    0.293, 0.399, 0.346, 0.367, 0.3, 0.366, 0.349, 0.296, 0.326, 0.337, 0.255, 0.37, 0.357,
    0.419, 0.454, 0.378, 0.338, 0.282, 0.324, 0.318, 0.296, 0.189, 0.229, 0.297, 0.319, 0.263,
    0.283, 0.276, 0.333, 0.295, 0.324, 0.31, 0.31, 0.33, 0.239, 0.259, 0.378, 0.176, 0.315,
    0.214, 0.204, 0.183, 0.328, 0.294, 0.186, 0.226, 0.253]
OVERFIT0_VAL = [
    0.528, 0.284, 0.409, 0.256, 0.404, 0.348, 0.509, 0.459, 0.471, 0.498, 0.468, 0.339, 0.565,
    0.465, 0.397, 0.346, 0.415, 0.46, 0.312, 0.427, 0.733, 0.617, 0.411, 0.537, 0.682, 0.688,
    0.577, 0.532, 0.65, 0.491, 0.565, 0.453, 0.672, 0.801, 0.546, 0.636, 0.616, 0.598, 0.605,
    0.443, 0.585, 0.597, 0.44, 0.561, 0.798, 0.785, 0.479, 0.75, 0.844, 0.595, 0.52, 0.494,
    0.549, 0.512, 0.487, 0.568, 0.633, 0.77, 0.675, 0.675]


@pytest.mark.parametrize("train,val,start", [(OVERFIT_TRAIN, OVERFIT_VAL, 0.91),
                                             (OVERFIT0_TRAIN, OVERFIT0_VAL, 0.96)])
def test_an_overfitting_network_is_neither_diverging_nor_oscillating(train, val, start):
    """Validation rising while training falls is overfitting (the after-training rule);
    the live rules judge the training loss, which an overfitting network keeps low."""
    for n in range(1, len(train) + 1):
        ev = hist(train[:n], val[:n], initial_loss=start)
        assert live.loss_divergence(ev) is None, n
        assert live.loss_oscillation(ev) is None, n


def test_slow_convergence_when_the_loss_has_not_moved_from_the_start():
    train = [0.694, 0.723, 0.721, 0.715, 0.725, 0.726]
    val = [0.70, 0.70, 0.70, 0.70, 0.70, 0.70]
    f = live.slow_convergence(hist(train, val, lr=1e-7, initial_loss=0.61))
    assert f.code == "slow_convergence" and f.epoch == 6
    assert f.fix == {"optimizer.lr": 1e-6}  # no progress at all: ten times, not three
    # too early to tell
    assert live.slow_convergence(hist(train[:5], val[:5])) is None
    # nothing to compare with
    assert live.slow_convergence(hist(train, val, initial_loss=None, baseline_loss=None)) \
        is None


def test_slow_convergence_stays_quiet_on_progress_or_a_converged_plateau():
    # validation still improving although the training loss is noisy
    assert live.slow_convergence(hist([0.694, 0.723, 0.721, 0.715, 0.725, 0.726],
                                      [0.70, 0.69, 0.68, 0.67, 0.66, 0.65])) is None
    # flat, but far below the constant predictor: converged
    assert live.slow_convergence(hist([0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2])) is None
    # flat but far above the start: divergence / oscillation speak for it
    assert live.slow_convergence(hist([2.0, 2.1, 2.2, 2.1, 2.2, 2.3])) is None
    # no progress, but jumping about (lr too high, not too low)
    assert live.slow_convergence(hist([0.64, 0.56, 0.75, 0.77, 0.6, 0.76],
                                      [0.67, 0.12, 0.28, 0.41, 0.22, 0.82])) is None


def test_every_fix_uses_valid_plan_keys_and_findings_are_json():
    findings = [
        live.nan_loss(step(loss=nan)),
        live.exploding_gradients(step(loss=1e4)),
        live.vanishing_gradients(step(grad_norms=norms(1e-9, 1e-3, 0.1))),
        live.dead_relu(step(act_zero_share={"a": 1.0}, dead_unit_share={"a": 1.0})),
        live.saturated_activations(step(saturation_share={"t": 0.9})),
        live.nan_loss_in_history(hist([1, nan])),
        live.loss_divergence(hist([0.6, 5e3])),
        live.loss_oscillation(hist([0.3, 0.14, 0.25, 0.12, 0.3, 0.15, 0.26])),
        live.slow_convergence(hist([0.7] * 7)),
    ]
    assert {f.code for f in findings} == set(CODES) & {c for c in CODES
                                                        if CODES[c][0] == "live"}
    for f in findings:
        assert f.fix and set(f.fix) <= set(KEYS), f.code
        assert f.explanation and f.advice, f.code
        json.dumps(f.to_dict(), allow_nan=False)


def test_validation_spikes_are_oscillation_even_when_the_training_loss_averages_them_out():
    """A cyclic rate peaking too high (digits, Adam from 1e-3 up to 0.3 and back every four
    epochs): the validation loss leaps to several times its level and falls back, while
    the training loss, averaged over each epoch, rises by under 30% at a time."""
    train = [2.263, 1.844, 1.572, 1.088, 0.939, 0.902, 0.99, 0.768, 0.6, 0.569, 0.711, 0.507,
             0.406, 0.454, 0.584, 0.529, 0.371, 0.355, 0.376, 0.29]
    val = [6.462, 18.02, 4.339, 0.854, 1.033, 1.924, 1.519, 0.516, 0.567, 4.563, 0.871, 0.34,
           0.293, 0.265, 1.489, 0.306, 0.245, 0.262, 0.95, 0.189]
    f = live.loss_oscillation(hist(train, val, initial_loss=2.3))
    assert f.code == "loss_oscillation" and f.evidence["val_spikes"] == 2
    assert f.evidence["train_jump"] < 0.3 * f.evidence["train_gained"]
    assert "2 times it rose to over 2.5 times its level" in f.explanation
    # one spike in the window is a bad epoch, not oscillation
    calm = val[:-2] + [0.25, 0.2]
    assert live.loss_oscillation(hist(train, calm, initial_loss=2.3)) is None
