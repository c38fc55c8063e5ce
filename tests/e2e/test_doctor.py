"""The doctor end to end: the `doctor` command, findings in `train`, and --auto-fix."""

from __future__ import annotations

import json

import pytest
from sklearn import datasets

import nnrecipe

EXPLODE = {"optimizer.name": "sgd", "optimizer.lr": 10, "model.batchnorm": False}


@pytest.fixture(scope="module")
def cancer():
    return datasets.load_breast_cancer(as_frame=True).frame


@pytest.fixture
def cancer_csv(tmp_path, cancer):
    path = tmp_path / "cancer.csv"
    cancer.to_csv(path, index=False)
    return path


def test_doctor_command_on_healthy_data_reports_no_alarm(cli, tmp_path, cancer_csv):
    out = tmp_path / "dr"
    r = cli("doctor", cancer_csv, "--target", "target", "--out", out, "--strict")
    assert r.returncode == 0, r.stderr
    findings = json.loads((out / "findings.json").read_text())
    assert [f for f in findings if f["severity"] != "info"] == []
    epochs = (out / "metrics.jsonl").read_text().splitlines()
    assert 1 <= len(epochs) <= 5  # a probe, not a full training
    assert not (out / "model.pt").exists()


def test_doctor_command_finds_a_planted_fault_and_strict_exits_3(cli, tmp_path, cancer_csv):
    out = tmp_path / "dr"
    args = [f"--set={k}={v}" for k, v in EXPLODE.items()]
    r = cli("doctor", cancer_csv, "--target", "target", "--out", out, *args)
    assert r.returncode == 0, r.stderr  # findings don't change the exit code ...
    assert "Exploding gradients" in r.stdout or "NaN" in r.stdout
    r = cli("doctor", cancer_csv, "--target", "target", "--out", tmp_path / "dr2", "--strict",
            *args)
    assert r.returncode == 3, r.stderr  # ... unless --strict
    codes = {f["code"] for f in json.loads((tmp_path / "dr2" / "findings.json").read_text())}
    assert codes & {"exploding_gradients", "nan_loss", "loss_divergence"}
    assert "lr_out_of_range" in codes


def test_every_finding_follows_the_schema(tmp_path, cancer):
    run = nnrecipe.fit(cancer, "target", overrides={**EXPLODE, "train.max_epochs": 5},
                       out=tmp_path / "r")
    raw = json.loads((tmp_path / "r" / "findings.json").read_text())
    assert raw
    for f in raw:
        assert set(f) == {"code", "severity", "title", "evidence", "explanation", "advice",
                          "fix", "epoch", "step", "layer"}
        assert f["severity"] in ("info", "warning", "error") and f["code"] in nnrecipe.doctor.CODES
        assert f["evidence"] and f["explanation"] and isinstance(f["advice"], list)
    severities = [f.severity for f in run.findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)


def test_auto_fix_repairs_a_diverging_run_and_beats_not_repairing(tmp_path, cancer):
    plain = nnrecipe.fit(cancer, "target", overrides=EXPLODE, out=tmp_path / "plain")
    fixed = nnrecipe.fit(cancer, "target", overrides=EXPLODE, out=tmp_path / "fixed",
                         auto_fix=True)
    assert not (tmp_path / "plain" / "repairs.json").exists()
    repairs = json.loads((tmp_path / "fixed" / "repairs.json").read_text())
    assert 1 <= len(repairs) <= 3
    first = repairs[0]
    assert first["change"] and first["finding"] in (
        "nan_loss", "exploding_gradients", "loss_divergence", "cannot_overfit_batch")
    assert set(first) >= {"attempt", "finding", "change", "restart", "before", "after"}
    assert fixed.evaluation["metrics"]["accuracy"] >= plain.evaluation["metrics"]["accuracy"] + 0.2
    # the plan that was finally trained says which values the doctor changed
    changed = [k for k, d in fixed.plan.decisions.items() if d.rule == "doctor.repair"]
    assert changed
    assert "Repairs (--auto-fix)" in (tmp_path / "fixed" / "summary.md").read_text()


def test_a_repair_after_a_blow_up_starts_again_from_fresh_weights_at_a_usual_rate(
        tmp_path, cancer):
    """Adam at 10 blows the weights up in the first epoch: their validation loss is far
    above a constant prediction's, so the repair re-initialises, and at Adam's usual rate
    (a tenfold cut, 1.0, would still be far too fast)."""
    run = nnrecipe.fit(cancer, "target", out=tmp_path / "r", auto_fix=True,
                       overrides={"optimizer.name": "adam", "optimizer.lr": 10.0,
                                  "model.batchnorm": False, "model.ensemble": 1,
                                  "train.max_epochs": 12})
    live = [r for r in run.repairs if r["epoch"]]
    assert live and live[0]["change"]["optimizer.lr"] == 1e-3
    assert live[0]["restart"].startswith("re-initialised the network (the best validation loss")
    assert run.evaluation["metrics"]["accuracy"] > 0.9


def test_no_preflight_skips_the_preflight_checks(tmp_path, cancer):
    over = {"optimizer.lr": 1e-9, "train.max_epochs": 2}
    with_pf = nnrecipe.fit(cancer, "target", overrides=over, out=tmp_path / "a")
    without = nnrecipe.fit(cancer, "target", overrides=over, out=tmp_path / "b", preflight=False)
    assert "cannot_overfit_batch" in {f.code for f in with_pf.findings}
    assert "cannot_overfit_batch" not in {f.code for f in without.findings}


def test_auto_fix_before_training_resolves_auto_values(tmp_path, cancer):
    """A pre-flight symptom is repaired before epoch 1; a fix that says "auto" gets the
    rule's value in the plan that is trained and saved."""
    run = nnrecipe.fit(cancer, "target", overrides={"optimizer.lr": 1e-9,
                                                    "train.max_epochs": 30},
                       out=tmp_path / "r", auto_fix=True)
    assert run.repairs and run.repairs[0]["finding"] == "cannot_overfit_batch"
    assert run.repairs[0]["before"] is None  # nothing trained yet when it was repaired
    assert run.plan["optimizer.lr"] > 1e-9 and run.plan["model.init"] != "auto"
    assert nnrecipe.load_run(tmp_path / "r").plan["optimizer.lr"] == run.plan["optimizer.lr"]
    assert run.evaluation["metrics"]["accuracy"] > 0.9


def test_weight_decay_that_holds_the_network_behind_a_linear_model_is_underfitting(
        tmp_path, cancer):
    # weight decay 0.3 keeps the training loss near 0.4 where logistic regression gets 0.05:
    # the near-baseline rule is silent (0.4 is 60% of the constant prediction's 0.66), the
    # comparison with the linear model is not
    run = nnrecipe.fit(cancer, "target", out=tmp_path / "wd", progress=False,
                       overrides={"optimizer.weight_decay": 0.3, "model.ensemble": 1,
                                  "train.max_epochs": 40})
    found = {f.code: f for f in run.findings}
    assert "underfitting" in found, [f.code for f in run.findings]
    ev = found["underfitting"].evidence
    assert ev["reference_model"] == "logistic regression"
    assert ev["share_closed_train"] < 0.7 and ev["share_closed_val"] < 0.7
    assert found["underfitting"].fix == {"optimizer.weight_decay": 0.003}
    healthy = nnrecipe.fit(cancer, "target", out=tmp_path / "ok", progress=False,
                           overrides={"model.ensemble": 1, "train.max_epochs": 40})
    assert not [f.code for f in healthy.findings if f.severity != "info"]
