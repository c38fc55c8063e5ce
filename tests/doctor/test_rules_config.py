"""Configuration rules: planted faults fire, healthy set-ups (ours and hand-built) don't."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch
from sklearn import datasets
from torch import nn

from nnrecipe.doctor.findings import CODES
from nnrecipe.doctor.rules import config as rules
from nnrecipe.doctor.rules.config import (
    RULES,
    ConfigEvidence,
    check_config,
    config_evidence_from_objects,
    config_evidence_from_plan,
)
from nnrecipe.pipeline.prepare import prepare as prepare_any


def mlp(*layers: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), *layers, nn.Linear(8, 1))


def healthy(**changes) -> ConfigEvidence:
    """A sound binary set-up; ``changes`` plant one fault."""
    ev = ConfigEvidence(model=mlp(), loss="bce", output_activation="linear", task="binary",
                        activation="relu", init="he_normal", optimizer="adam", lr=1e-3,
                        batch_size=32, n_train=1000, target_summary=None)
    return dataclasses.replace(ev, **changes)


def regression(output: str, lo: float, hi: float) -> ConfigEvidence:
    return healthy(loss="mse", task="regression", output_activation=output,
                   target_summary={"min": lo, "max": hi, "mean": (lo + hi) / 2, "std": 1.0})


def from_plan(df: pd.DataFrame, target: str = "y", overrides: dict | None = None):
    prep = prepare_any(df, target, overrides=overrides)
    return config_evidence_from_plan(prep.plan, prep.model, len(prep.splits.train),
                                     prep.profile.target_summary)


def test_registry_is_plain_list_of_config_codes():
    assert isinstance(RULES, list)
    for rule in RULES:
        assert CODES[rule.__name__][0] == "config"
    assert len(RULES) == 5


def test_healthy_setup_has_no_finding():
    assert check_config(healthy()) == []


# ---- loss_activation_mismatch ----------------------------------------------------------------
@pytest.mark.parametrize("loss,out", [("bce", "sigmoid"), ("cross_entropy", "softmax"),
                                      ("bce", "softmax"), ("cross_entropy", "sigmoid")])
def test_squashed_output_into_logit_loss_is_an_error(loss, out):
    f = rules.loss_activation_mismatch(healthy(loss=loss, output_activation=out))
    assert (f.code, f.severity) == ("loss_activation_mismatch", "error")
    assert f.evidence == {"loss": loss, "output_activation": out}
    assert f.fix == {"model.output_activation": "linear"}


@pytest.mark.parametrize("task,fix", [
    ("binary", {"loss.name": "bce", "model.output_activation": "linear"}),
    ("multiclass", {"loss.name": "cross_entropy", "model.output_activation": "linear"})])
def test_mse_on_class_labels_is_an_error(task, fix):
    f = rules.loss_activation_mismatch(healthy(loss="mse", task=task,
                                               output_activation="sigmoid"))
    assert f.severity == "error" and f.evidence["task"] == task and f.fix == fix


def test_mse_on_class_labels_through_the_plan(table):
    f = rules.loss_activation_mismatch(from_plan(table(n=300), overrides={"loss.name": "mse"}))
    assert f.severity == "error" and f.evidence["loss"] == "mse"
    assert f.fix == {"loss.name": "bce", "model.output_activation": "linear"}


def test_class_loss_on_regression_is_an_error():
    f = rules.loss_activation_mismatch(dataclasses.replace(regression("linear", -1, 1),
                                                           loss="bce"))
    assert f.severity == "error" and f.fix["loss.name"] == "mse"


@pytest.mark.parametrize("out", ["softplus", "relu"])
def test_positive_output_on_negative_target_is_an_error(out):
    f = rules.loss_activation_mismatch(regression(out, -3.5, 10.0))
    assert (f.code, f.severity) == ("loss_activation_mismatch", "error")
    assert f.evidence["target_min"] == -3.5 and f.evidence["output_activation"] == out
    assert f.fix == {"model.output_activation": "linear"}


def test_bounded_output_on_wider_target_is_a_warning():
    f = rules.loss_activation_mismatch(regression("sigmoid", 25.0, 346.0))
    assert f.severity == "warning"
    assert (f.evidence["target_min"], f.evidence["target_max"]) == (25.0, 346.0)
    assert "cannot be predicted" in f.explanation
    assert f.fix == {"model.output_activation": "linear"}
    assert rules.loss_activation_mismatch(regression("tanh", -2.0, 0.5)).severity == "warning"


@pytest.mark.parametrize("loss,out,task", [("bce", "linear", "binary"),
                                           ("cross_entropy", "linear", "multiclass"),
                                           ("mse", "linear", "regression"), (None, None, None)])
def test_matching_loss_and_output_is_silent(loss, out, task):
    assert rules.loss_activation_mismatch(
        healthy(loss=loss, output_activation=out, task=task)) is None


@pytest.mark.parametrize("out,lo,hi", [("sigmoid", 0.0, 1.0), ("tanh", -1.0, 0.8),
                                       ("softplus", 0.5, 300.0), ("relu", 0.0, 5.0),
                                       ("linear", -100.0, 100.0)])
def test_output_covering_the_target_is_silent(out, lo, hi):
    assert rules.loss_activation_mismatch(regression(out, lo, hi)) is None


def test_sigmoid_before_bce_with_logits_in_a_users_model():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    ev = config_evidence_from_objects(model, nn.BCEWithLogitsLoss(),
                                      torch.optim.Adam(model.parameters(), lr=1e-3))
    assert (ev.loss, ev.output_activation, ev.activation) == ("bce", "sigmoid", "relu")
    findings = check_config(ev)
    assert codes_of(findings) == ["loss_activation_mismatch"]
    assert findings[0].severity == "error" and findings[0].layer == "3"


def test_probability_losses_with_their_own_outputs_are_silent():
    sig = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
    assert check_config(config_evidence_from_objects(sig, nn.BCELoss(), None)) == []
    logsm = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1))
    assert check_config(config_evidence_from_objects(logsm, nn.NLLLoss(), None)) == []


def test_softmax_into_nll_is_an_error_without_plan_fix():
    model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1))
    f = rules.loss_activation_mismatch(config_evidence_from_objects(model, nn.NLLLoss(), None))
    assert f.severity == "error" and f.fix is None and f.layer == "1"


# ---- init_activation_mismatch ----------------------------------------------------------------
@pytest.mark.parametrize("init,act,fix", [
    ("glorot_uniform", "relu", "he_normal"), ("glorot_normal", "leaky_relu", "he_normal"),
    ("lecun_normal", "relu", "he_normal"), ("he_normal", "tanh", "glorot_uniform"),
    ("he_uniform", "sigmoid", "glorot_uniform"), ("he_normal", "selu", "lecun_normal"),
    ("normal", "relu", "he_normal")])
def test_init_not_fitting_activation_is_a_warning(init, act, fix):
    f = rules.init_activation_mismatch(healthy(init=init, activation=act))
    assert (f.code, f.severity) == ("init_activation_mismatch", "warning")
    assert f.evidence == {"init": init, "activation": act, "suggested_init": fix}
    assert f.fix == {"model.init": fix}


def test_zero_init_is_an_error_through_the_plan(table):
    ev = from_plan(table(n=300), overrides={"model.init": "zeros"})
    f = rules.init_activation_mismatch(ev)
    assert f.severity == "error" and "symmetry" in f.explanation
    assert f.fix == {"model.init": "he_normal"}


@pytest.mark.parametrize("init,act", [("he_normal", "relu"), ("he_uniform", "gelu"),
                                      ("glorot_uniform", "tanh"), ("glorot_normal", "sigmoid"),
                                      ("lecun_normal", "selu"), ("lecun_normal", "elu"),
                                      (None, "relu"), ("zeros", None)])
def test_fitting_or_unknown_init_is_silent(init, act):
    assert rules.init_activation_mismatch(healthy(init=init, activation=act)) is None


# ---- lr_out_of_range -------------------------------------------------------------------------
def test_high_adam_lr_is_a_warning():
    f = rules.lr_out_of_range(healthy(lr=0.1))
    assert (f.code, f.severity) == ("lr_out_of_range", "warning")
    assert f.evidence["lr"] == 0.1 and f.evidence["usual_high"] == 0.01
    assert f.evidence["factor_outside"] == pytest.approx(10)
    assert f.fix == {"optimizer.lr": 1e-3}


def test_low_sgd_lr_through_the_plan(table):
    ev = from_plan(table(n=300), overrides={"optimizer.name": "sgd", "optimizer.lr": 1e-6})
    f = rules.lr_out_of_range(ev)
    assert f.evidence["usual_low"] == 1e-4 and "low" in f.explanation
    assert f.fix == {"optimizer.lr": 0.01}


def test_lr_from_a_users_optimizer():
    model = mlp()
    ev = config_evidence_from_objects(model, nn.MSELoss(),
                                      torch.optim.RMSprop(model.parameters(), lr=0.5))
    assert (ev.optimizer, ev.lr, ev.loss) == ("rmsprop", 0.5, "mse")
    assert rules.lr_out_of_range(ev).fix == {"optimizer.lr": 1e-3}


@pytest.mark.parametrize("opt,lr", [("adam", 1e-3), ("adamw", 3e-4), ("sgd", 0.1),
                                    ("adagrad", 0.01), ("adadelta", 1.0), ("rmsprop", 1e-2),
                                    ("lbfgs", 1.0), ("adam", None)])
def test_usual_or_unknown_lr_is_silent(opt, lr):
    assert rules.lr_out_of_range(healthy(optimizer=opt, lr=lr)) is None


def test_lr_ranges_are_a_keyword_default():
    assert rules.lr_out_of_range(healthy(lr=1e-3), ranges={"adam": (1e-2, 1e-1)}) is not None


# ---- dropout_batchnorm_conflict --------------------------------------------------------------
def test_dropout_before_batchnorm_in_a_users_model():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 8),
                          nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    findings = check_config(config_evidence_from_objects(model, nn.BCEWithLogitsLoss(), None))
    assert codes_of(findings) == ["dropout_batchnorm_conflict"]
    f = findings[0]
    assert f.severity == "warning" and f.layer == "2" and f.fix is None
    assert f.evidence == {"dropout": "2", "dropout_p": 0.5, "batchnorm": "4",
                          "dropouts_before_batchnorm": 1}


def test_dropout_after_the_last_batchnorm_is_silent(table):
    ev = from_plan(table(n=1200))  # two hidden blocks with BatchNorm, dropout after the last
    assert any(isinstance(m, nn.Dropout) for m in ev.model.modules())
    assert sum(isinstance(m, nn.BatchNorm1d) for m in ev.model.modules()) == 2
    assert rules.dropout_batchnorm_conflict(ev) is None


def test_disabled_dropout_before_batchnorm_is_silent():
    model = mlp(nn.Dropout(0.0), nn.Linear(8, 8), nn.BatchNorm1d(8))
    assert rules.dropout_batchnorm_conflict(healthy(model=model)) is None


# ---- large_batch -----------------------------------------------------------------------------
def test_large_batch_is_a_warning():
    f = rules.large_batch(healthy(batch_size=1024, n_train=None))
    assert (f.code, f.severity) == ("large_batch", "warning")
    assert f.evidence == {"batch_size": 1024, "max_batch": 512}
    assert f.fix == {"train.batch_size": 32}


def test_batch_that_is_a_large_share_of_the_rows_is_a_warning(table):
    ev = from_plan(table(n=1500), overrides={"train.batch_size": 400})
    f = rules.large_batch(ev)
    assert f.evidence["batch_share"] == pytest.approx(400 / ev.n_train, rel=1e-3)
    assert f.evidence["updates_per_epoch"] == -(-ev.n_train // 400)
    assert f.fix == {"train.batch_size": 32}


@pytest.mark.parametrize("bs,n", [(32, 1000), (256, 100_000), (512, None), (32, 40),
                                  (None, 1000)])
def test_small_or_unknown_batch_is_silent(bs, n):
    assert rules.large_batch(healthy(batch_size=bs, n_train=n)) is None


# ---- reading a user's objects ----------------------------------------------------------------
@pytest.mark.parametrize("loss,name", [
    (nn.BCEWithLogitsLoss(), "bce"), (nn.BCELoss(), "bce_probs"),
    (nn.CrossEntropyLoss(), "cross_entropy"), (nn.NLLLoss(), "nll"), (nn.MSELoss(), "mse"),
    (nn.HuberLoss(), "huber"), (nn.SmoothL1Loss(), "huber"), (nn.L1Loss(), "mae"),
    (nn.KLDivLoss(), None), (None, None)])
def test_loss_names_from_objects(loss, name):
    assert config_evidence_from_objects(mlp(), loss, None).loss == name


def test_hidden_activation_is_the_commonest_and_output_is_the_last_leaf():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1), nn.Softplus())
    ev = config_evidence_from_objects(model, None, torch.optim.SGD(model.parameters(), lr=0.1),
                                      batch_size=64)
    assert (ev.activation, ev.output_activation) == ("tanh", "softplus")
    assert (ev.optimizer, ev.lr, ev.batch_size, ev.init, ev.task) == ("sgd", 0.1, 64, None,
                                                                       None)


# ---- scikit-learn's bundled tables -----------------------------------------------------------
@pytest.mark.parametrize("name", ["breast_cancer", "wine", "diabetes"])
def test_default_plans_on_sklearn_data_raise_no_warning(name):
    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    findings = check_config(from_plan(frame, "target"))
    assert [f for f in findings if f.severity != "info"] == []


def codes_of(findings) -> list[str]:
    return [f.code for f in findings]
