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


def test_saturated_activations_over_half():
    assert live.saturated_activations(step(saturation_share={"t": 0.4})) is None
    f = live.saturated_activations(step(saturation_share={"t1": 0.2, "t2": 0.8}))
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
    train = [0.7, 0.4, 0.3, 0.35, 0.42, 0.5]
    assert live.loss_divergence(hist(train, [0.7, 0.45, 0.35, 0.4, 0.5, 0.6])).epoch == 6
    assert live.loss_divergence(hist(train)).epoch == 6
    # training loss falling while validation rises is overfitting, not divergence
    assert live.loss_divergence(hist([0.7, 0.4, 0.3, 0.2, 0.1], [0.6, 0.5, 0.55, 0.6, 0.7])) \
        is None
    # a rise that is not sustained, or too small, is noise
    assert live.loss_divergence(hist([0.7, 0.4, 0.3, 0.5, 0.32, 0.5])) is None
    assert live.loss_divergence(hist([0.7, 0.4, 0.3, 0.31, 0.33, 0.35])) is None


def test_loss_oscillation_on_the_validation_loss():
    val = [0.3, 0.14, 0.25, 0.12, 0.3, 0.15, 0.26]
    f = live.loss_oscillation(hist([0.5] * 7, val, val_metric=[0.9, 0.97, 0.9, 0.98, 0.85,
                                                               0.95, 0.9],
                                   metric_name="accuracy"))
    assert f.code == "loss_oscillation" and f.evidence["series"] == "val_loss"
    assert f.evidence["flips"] >= 2 and f.evidence["val_accuracy_range"] == pytest.approx(0.13)
    assert f.fix == {"optimizer.lr": 0.00333}
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
