"""Data rules: each fault planted in a small table fires its finding; healthy data does not."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from nnrecipe.doctor.findings import CODES
from nnrecipe.doctor.rules import data as rules
from nnrecipe.doctor.rules.data import RULES, DataEvidence, check_data
from nnrecipe.pipeline.prepare import prepare as prepare_any


def prepare(df: pd.DataFrame, target: str = "y", overrides: dict | None = None):
    return prepare_any(df, target, overrides=overrides)


def evidence_of(prep) -> DataEvidence:
    """Numeric inputs as the network reads them on the training split."""
    pre = prep.preprocessor
    x = pre.transform(prep.splits.train)[:, :pre.n_numeric].astype(np.float64)
    names = pre.feature_names[:pre.n_numeric]
    return DataEvidence(prep.profile, prep.plan, dict(zip(names, x.mean(0), strict=True)),
                        dict(zip(names, x.std(0), strict=True)))


def data_evidence(df: pd.DataFrame, target: str = "y", overrides: dict | None = None):
    return evidence_of(prepare(df, target, overrides))


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def sklearn_frame(name: str) -> pd.DataFrame:
    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    return bunch.frame


@pytest.fixture
def healthy(table):
    return data_evidence(table(n=300))


def test_registry_is_plain_list_of_data_codes():
    assert isinstance(RULES, list)
    for rule in RULES:
        assert rule.__name__ in CODES and CODES[rule.__name__][0] == "data"
    assert len({r.__name__ for r in RULES}) == 8


def test_healthy_table_has_no_data_finding(healthy):
    assert check_data(healthy) == []


# ---- missing_values --------------------------------------------------------------------------
def test_missing_values_fires_with_shares_and_how(table):
    df = table(n=300)
    df.loc[:59, "a"] = np.nan  # 20 %
    df["color"] = df["color"].astype(object)
    df.loc[:29, "color"] = None  # 10 %
    f = rules.missing_values(data_evidence(df))
    assert f.code == "missing_values" and f.severity == "info"
    assert f.evidence["n_columns"] == 2
    assert f.evidence["missing_share.a"] == pytest.approx(0.2)
    assert f.evidence["missing_share.color"] == pytest.approx(0.1)
    assert f.evidence["imputed_numeric"] == 1 and f.evidence["imputed_categorical"] == 1
    assert "median" in f.evidence["how"] and f.fix is None


def test_missing_values_silent_without_gaps(healthy):
    assert rules.missing_values(healthy) is None


# ---- constant_feature ------------------------------------------------------------------------
def test_constant_feature_fires(table):
    df = table(n=300).assign(k=7.0)
    f = rules.constant_feature(data_evidence(df))
    assert (f.code, f.severity) == ("constant_feature", "info")
    assert f.evidence == {"n_columns": 1, "columns": "k"} and f.fix is None


def test_constant_feature_silent(healthy):
    assert rules.constant_feature(healthy) is None


# ---- id_like_feature -------------------------------------------------------------------------
def test_id_like_feature_fires(table):
    df = table(n=300)
    df.insert(0, "row_id", np.random.default_rng(1).permutation(300))
    f = rules.id_like_feature(data_evidence(df))
    assert (f.code, f.severity) == ("id_like_feature", "warning")
    assert f.evidence["n_columns"] == 1 and f.evidence["distinct_share.row_id"] == 1.0
    assert f.fix is None


def test_id_like_feature_silent(healthy):
    assert rules.id_like_feature(healthy) is None


# ---- target_leakage --------------------------------------------------------------------------
def test_target_leakage_fires_with_score(table):
    df = table(n=300)
    df["leak"] = df["y"] * 2.0 + np.random.default_rng(2).normal(scale=0.01, size=300)
    f = rules.target_leakage(data_evidence(df))
    assert (f.code, f.severity) == ("target_leakage", "error")
    assert f.evidence["score.leak"] >= 0.99
    assert f.evidence["metric"] == "single_feature_accuracy"
    assert "leak" in f.explanation and f.fix is None


def test_target_leakage_silent(healthy):
    assert rules.target_leakage(healthy) is None


# ---- duplicates_across_splits ----------------------------------------------------------------
def test_duplicates_across_splits_fires(table):
    df = table(n=300)
    f = rules.duplicates_across_splits(data_evidence(pd.concat([df, df], ignore_index=True)))
    assert (f.code, f.severity) == ("duplicates_across_splits", "warning")
    assert f.evidence["val_rows_also_in_train"] > 0 and f.evidence["test_rows_also_in_train"] > 0
    assert 0.3 < f.evidence["test_share_also_in_train"] <= 1.0
    assert f.evidence["duplicate_rows_in_table"] == 300 and f.fix is None


def test_duplicates_across_splits_silent(healthy):
    assert rules.duplicates_across_splits(healthy) is None


def test_duplicates_across_splits_ignores_a_stray_row(healthy):
    splits = {**healthy.profile.splits, "duplicates_across_splits": {
        "train_rows": 800, "val_rows": 100, "val_rows_also_in_train": 1,
        "test_rows": 100, "test_rows_also_in_train": 0}}  # 0.5 % ≤ 1 %
    ev = dataclasses.replace(healthy, profile=dataclasses.replace(healthy.profile, splits=splits))
    assert rules.duplicates_across_splits(ev) is None
    assert rules.duplicates_across_splits(ev, min_share=0.001) is not None


# ---- class_imbalance -------------------------------------------------------------------------
def test_class_imbalance_fires_on_rare_positive(table):
    df = table(n=500)
    df["y"] = (np.arange(500) % 10 == 0).astype(int)  # 10 % positives
    f = rules.class_imbalance(data_evidence(df))
    assert (f.code, f.severity) == ("class_imbalance", "warning")
    assert f.evidence["minority_class"] == "1" and f.evidence["minority_rows"] == 50
    assert f.evidence["minority_share"] == pytest.approx(0.1)
    assert f.evidence["minority_to_majority"] == pytest.approx(50 / 450, rel=1e-3)
    assert f.evidence["balanced_share"] == 0.5 and f.fix is None
    assert any("balanced accuracy" in a for a in f.advice)


def test_class_imbalance_fires_on_one_dominant_class_among_many(healthy):
    summary = {"classes": {"a": 750, "b": 200, "c": 50}}  # c: 5 % against 33 % balanced
    ev = dataclasses.replace(healthy, profile=dataclasses.replace(
        healthy.profile, task="multiclass", target_summary=summary))
    f = rules.class_imbalance(ev)
    assert f.evidence["minority_class"] == "c" and f.evidence["n_classes"] == 3


def test_class_imbalance_silent_on_mild_imbalance(table, healthy):
    assert rules.class_imbalance(healthy) is None
    df = table(n=400)
    df["y"] = (np.arange(400) % 4 == 0).astype(int)  # 25 %: mild
    assert rules.class_imbalance(data_evidence(df)) is None


def test_class_imbalance_silent_for_regression(table):
    assert rules.class_imbalance(data_evidence(table(n=300, task="regression"))) is None


# ---- unscaled_features -----------------------------------------------------------------------
def test_unscaled_features_fires_without_scaling(table):
    df = table(n=300).drop(columns="b")  # b: std about 10, on the edge
    df["big"] = np.random.default_rng(3).normal(1000, 300, size=300)
    f = rules.unscaled_features(data_evidence(df, overrides={"data.scale": "none"}))
    assert (f.code, f.severity) == ("unscaled_features", "warning")
    assert f.evidence["mean.big"] == pytest.approx(1000, rel=0.1)
    assert f.evidence["std.big"] == pytest.approx(300, rel=0.2)
    assert f.evidence["data.scale"] == "none" and f.evidence["n_columns"] == 1
    assert f.fix == {"data.scale": "standard"}


def test_unscaled_features_flags_tiny_spread_but_not_rare_flags(healthy):
    p = 0.005
    ev = dataclasses.replace(healthy, input_means={"flag": p, "tiny": 0.0, "ok": 0.1},
                             input_stds={"flag": math.sqrt(p * (1 - p)), "tiny": 0.01, "ok": 1.0})
    f = rules.unscaled_features(ev)
    assert f.evidence["n_columns"] == 1 and "std.tiny" in f.evidence
    assert "std.flag" not in f.evidence
    assert f.fix is None  # already standard: the plan has nothing more to set


def test_unscaled_features_silent_when_standardised(healthy):
    assert rules.unscaled_features(healthy) is None


def test_unscaled_features_silent_for_one_hot_without_scaling(table):
    # 'color' one-hot columns are 0/1 by design; a is already mean 0, std 1
    ev = data_evidence(table(n=300).drop(columns="b"), overrides={"data.scale": "none"})
    assert rules.unscaled_features(ev) is None


# ---- too_many_parameters ---------------------------------------------------------------------
def test_too_many_parameters_fires_with_smaller_width(table):
    ev = data_evidence(table(n=300), overrides={"model.width": 1024, "model.hidden_layers": 2,
                                                "model.dropout": 0.0})
    f = rules.too_many_parameters(ev)
    assert (f.code, f.severity) == ("too_many_parameters", "warning")
    n_train = ev.profile.splits["train"]
    assert f.evidence["train_rows"] == n_train
    assert f.evidence["parameters_per_row"] == pytest.approx(
        ev.plan["model.parameters"] / n_train, rel=1e-3)
    assert f.evidence["parameters_per_row"] > 10
    width = f.fix["model.width"]
    assert 8 <= width < 1024 and width & (width - 1) == 0
    assert f.fix["model.dropout"] == 0.3


def test_too_many_parameters_fix_fits_the_budget(table):
    df = table(n=3000)
    ev = data_evidence(df, overrides={"model.width": 512, "model.hidden_layers": 2})
    f = rules.too_many_parameters(ev)
    assert "model.dropout" not in f.fix  # the plan's dropout is already on
    refit = data_evidence(df, overrides={"model.hidden_layers": 2, **f.fix})
    assert rules.too_many_parameters(refit) is None


def test_too_many_parameters_silent(healthy, table):
    assert rules.too_many_parameters(healthy) is None
    assert rules.too_many_parameters(data_evidence(table(n=3000))) is None


# ---- scikit-learn's bundled tables -----------------------------------------------------------
@pytest.mark.parametrize("name", ["breast_cancer", "wine", "diabetes"])
def test_default_plans_on_sklearn_data_raise_no_warning(name):
    findings = check_data(evidence_of(prepare(sklearn_frame(name), "target")))
    assert [f for f in findings if f.severity != "info"] == []


def test_findings_are_json_friendly(table):
    df = table(n=300).assign(k=1.0)
    df.loc[:9, "a"] = np.nan
    for f in check_data(data_evidence(df)):
        assert all(isinstance(v, int | float | str) for v in f.evidence.values())
        assert f.explanation and f.advice


# ------------------------------------------------------------------- samples (images, series)

def test_a_single_input_position_that_holds_the_class_is_a_leak_suspect():
    """The tables' leak check for arrays of samples: a pixel set to the class code is
    named; clean random images give no suspect."""
    from nnrecipe.data.profile import sample_leak_suspects

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6, 6))
    labels = np.array(["a", "b", "c"])[rng.integers(0, 3, 300)]
    assert sample_leak_suspects(x, labels) == []
    x[:, 2, 4] = np.unique(labels, return_inverse=True)[1]
    (suspect,) = sample_leak_suspects(x, labels)
    assert suspect["column"] == "input at (2, 4)" and suspect["score"] == 1.0


def test_a_position_that_is_the_class_code_plus_noise_is_a_suspect_below_the_accuracy_bar():
    # ten classes, the code plus noise of sd 0.3: a one-feature tree gets about 90% right
    # (under the 99% bar) but 99% of the pixel's variance lies between the class means
    from nnrecipe.data.profile import sample_leak_suspects

    digits = datasets.load_digits()
    x, y = digits.images[:480].copy(), digits.target[:480]
    assert sample_leak_suspects(x, y) == []  # no digit pixel comes near
    x[:, 0, 0] = y + np.random.default_rng(0).normal(0, 0.3, len(y))
    (suspect,) = sample_leak_suspects(x, y)
    assert suspect["metric"] == "correlation_ratio" and suspect["score"] >= 0.98
    assert 0.8 < suspect["single_feature_accuracy"] < 0.99
    leak = rules.target_leakage(DataEvidence(SimpleNamespace(leak_suspects=[suspect]), {}, {},
                                             {}))
    assert "almost a copy of the class" in leak.explanation
    assert leak.evidence["single_feature_accuracy"] == suspect["single_feature_accuracy"]


def test_images_get_the_data_checks_shared_samples_and_a_leaking_pixel(tmp_path):
    """Digits saved as an .npz, each image twice and one pixel set to the class: the data
    checks name the shared samples and the leak; a convnet's parameters per image are not
    judged by the dense-layer rule."""
    digits = datasets.load_digits()
    x, y = digits.images[:300].copy(), digits.target[:300]
    x, y = np.concatenate([x, x]), np.concatenate([y, y])
    x[:, 0, 0] = y
    np.savez(tmp_path / "d.npz", x=x, y=y)
    prep = prepare_any(tmp_path / "d.npz", None)
    codes = {f.code for f in check_data(DataEvidence(prep.profile, prep.plan, {}, {}))}
    assert {"duplicates_across_splits", "target_leakage"} <= codes
    assert "too_many_parameters" not in codes and "model.width" not in prep.plan
    overlap = prep.profile.splits["duplicates_across_splits"]
    assert overlap["val_rows_also_in_train"] > 0.5 * overlap["val_rows"]


# ---- too_many_parameters on a convnet (parameters per input value) ----------------------------
def _digits_npz(path, n: int, classes: int = 10):
    digits = datasets.load_digits()
    keep = np.flatnonzero(digits.target < classes)[:n]
    np.savez(path, x=digits.images[keep], y=digits.target[keep])
    return path


def test_a_convnet_with_far_more_parameters_than_input_values_is_too_big(tmp_path):
    """32 filters on 30 images of 0 and 1 (21 training images of 64 values): 65,249
    parameters, 49 per input value, over twice the limit of 10: a warning. The fix halves
    the filters until the network fits the limit."""
    prep = prepare_any(_digits_npz(tmp_path / "d.npz", 30, classes=2), None,
                       overrides={"model.filters": 32})
    f = rules.too_many_parameters(DataEvidence(prep.profile, prep.plan, {}, {}))
    assert (f.code, f.severity) == ("too_many_parameters", "warning")
    n_train = prep.profile.splits["train"]
    assert f.evidence["values_per_sample"] == 64
    assert f.evidence["parameters"] == sum(p.numel() for p in prep.model.parameters())
    assert f.evidence["parameters_per_value"] == pytest.approx(
        f.evidence["parameters"] / (n_train * 64), rel=1e-3)
    assert f.evidence["parameters_per_value"] > 20
    assert "expect overfitting" in prep.plan.derived["model.parameters"].reason
    fixed = prepare_any(tmp_path / "d.npz", None, overrides=f.fix)
    assert f.fix["model.filters"] < 32
    assert rules.too_many_parameters(DataEvidence(fixed.profile, fixed.plan, {}, {})) is None


def test_a_convnet_just_over_the_limit_is_a_note_and_the_default_is_in_proportion(tmp_path):
    """The plan's 16 filters: on 600 digit images nothing to say; on 30 images of 0 and 1
    (21 training images, 12 parameters per value) an info note, not a warning, and the
    plan's count says to watch the gap."""
    prep = prepare_any(_digits_npz(tmp_path / "d600.npz", 600), None)
    assert rules.too_many_parameters(DataEvidence(prep.profile, prep.plan, {}, {})) is None
    reason = prep.plan.derived["model.parameters"].reason
    assert "per input value" in reason and "in proportion" in reason
    tiny = prepare_any(_digits_npz(tmp_path / "d30.npz", 30, classes=2), None)
    f = rules.too_many_parameters(DataEvidence(tiny.profile, tiny.plan, {}, {}))
    assert (f.code, f.severity) == ("too_many_parameters", "info")
    assert 10 < f.evidence["parameters_per_value"] < 20
    assert "watch the gap" in tiny.plan.derived["model.parameters"].reason
