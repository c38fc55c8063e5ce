"""Devices, precision and CPU threads (train.device, train.precision, train.threads), on the
CPU: the plan's choices and reasons, bf16 autocast, fp16 with its gradient scaler (a planted
overflow is skipped, counted and never reported as a NaN), clipping on unscaled gradients,
bit-identical resume with a precision set, and the caller's thread count restored."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nnrecipe.doctor.monitors import LiveMonitor
from nnrecipe.errors import PlanError
from nnrecipe.plan import Decision, make_plan
from nnrecipe.train import Watcher, devices, fit, make_loss
from nnrecipe.train.checkpoint import load_checkpoint

NO_GPU = not torch.cuda.is_available() and not devices.mps_available()


def _setup(profile_of, table, **overrides):
    df = table(n=300, task="binary")
    plan = make_plan(profile_of(df), 240, {"train.max_epochs": 5, "train.batch_size": 32,
                                           **overrides})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(240, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).float().reshape(-1, 1)
    xv = torch.randn(60, 4, generator=g)
    yv = (xv[:, 0] + xv[:, 1] > 0).float().reshape(-1, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    return model, plan, (x, y), (xv, yv)


class Grads(Watcher):
    """Records, after each step, the global gradient norm (as the step used it) and whether
    every gradient was finite; counts the steps the scaler skipped."""

    wants_steps = True

    def __init__(self):
        self.norms, self.finite, self.skipped, self.threads = [], [], 0, set()

    def after_step(self, state):
        grads = [p.grad for p in state.model.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(g) for g in grads]))))
        self.finite.append(all(bool(torch.isfinite(g).all()) for g in grads))
        self.threads.add(torch.get_num_threads())

    def skipped_step(self, state):
        self.skipped += 1


# ---- the plan ------------------------------------------------------------------------------

@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_auto_finds_the_cpu_here_and_says_so(table, profile_of):
    plan = make_plan(profile_of(table()), 240)
    d = plan.decisions
    assert d["train.device"].value == "cpu"
    assert "no CUDA GPU" in d["train.device"].reason and d["train.device"].rule != "user"
    assert d["train.precision"].value == "fp32" and "CPU" in d["train.precision"].reason
    assert d["train.threads"].value == 1 and "measured" in d["train.threads"].reason


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_asking_for_a_gpu_that_is_not_there_is_one_clear_line(table, profile_of):
    for device in ("cuda", "mps"):
        with pytest.raises(PlanError, match=f"train.device={device} but") as e:
            make_plan(profile_of(table()), 240, {"train.device": device})
        assert "\n" not in str(e.value)
    # a plan made elsewhere (a checkpoint from a GPU machine): fit refuses it the same way
    model, plan, tr, va = _setup(profile_of, table)
    plan = plan.with_decision("train.device", Decision("cuda", "made on a GPU", "user"))
    with pytest.raises(PlanError, match="no CUDA GPU"):
        fit(model, plan, tr, va, loss_fn=make_loss("bce"), progress=False)


def test_fp16_with_lbfgs_is_refused(table, profile_of):
    with pytest.raises(PlanError, match="fp16 does not work with optimizer.name=lbfgs"):
        make_plan(profile_of(table()), 240, {"optimizer.name": "lbfgs",
                                             "train.precision": "fp16"})


def test_precision_rules_name_their_sources():
    assert "Micikevicius et al. 2018" in devices.precision_for("cuda", "adam")[1] or \
        devices.bf16_on_gpu()
    assert devices.precision_for("cpu", "adam")[0] == "fp32"
    assert devices.precision_for("cuda", "lbfgs")[0] == "fp32"


# ---- bf16 and fp16 on the CPU --------------------------------------------------------------

def test_bf16_autocast_trains_and_matches_fp32(table, profile_of):
    """bf16 keeps 8 bits of mantissa (about 3 significant digits): on this 240-row problem
    the validation loss after 5 epochs stays within 0.005 of fp32's (measured: 2e-5)."""
    out = {}
    for precision in ("fp32", "bf16"):
        model, plan, tr, va = _setup(profile_of, table, **{"train.precision": precision})
        seen = []
        hook = model[0].register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.dtype))
        h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), progress=False)
        hook.remove()
        out[precision] = h.epochs[-1]["val_loss"]
        assert seen[0] == (torch.bfloat16 if precision == "bf16" else torch.float32)
        assert next(model.parameters()).dtype == torch.float32  # weights stay fp32
        assert "scaler_skipped" not in h.epochs[-1]  # bf16 needs no scaler
    assert out["bf16"] == pytest.approx(out["fp32"], abs=0.005)
    assert out["bf16"] != out["fp32"]  # autocast really ran


def test_fp16_scaler_runs_on_the_cpu_and_counts_no_skips(table, profile_of):
    model, plan, tr, va = _setup(profile_of, table, **{"train.precision": "fp16"})
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), progress=False)
    assert [e["scaler_skipped"] for e in h.epochs] == [0] * 5
    assert all(math.isfinite(e["val_loss"]) for e in h.epochs)


def test_a_planted_overflow_is_skipped_counted_and_not_a_nan_finding(table, profile_of,
                                                                     monkeypatch):
    """A loss scale of 2^40 overflows fp16 (max 65504): the scaler skips those steps,
    halving the scale each time, until it fits; the watchers never see them as steps."""
    monkeypatch.setattr(devices, "INIT_SCALE", 2.0 ** 40)
    model, plan, tr, va = _setup(profile_of, table, **{"train.precision": "fp16"})
    monitor, grads = LiveMonitor(sample_every=1), Grads()
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), watchers=[monitor, grads],
            progress=False)
    skipped = sum(e["scaler_skipped"] for e in h.epochs)
    assert skipped > 0 and skipped == grads.skipped
    assert len(grads.norms) == 5 * math.ceil(240 / 32) - skipped  # the steps really taken
    assert all(grads.finite)
    bad = [f for f in monitor.findings if f.code == "nan_loss"
           or f.evidence.get("trigger") == "non_finite_gradient"]
    assert bad == []
    assert not h.stop_reason.startswith("the training loss became")
    assert all(math.isfinite(e["train_loss"]) for e in h.epochs)


def test_clipping_sees_unscaled_gradients(table, profile_of):
    """Clipped to a global norm of 0.01, the gradients the step used have norm 0.01 with
    fp16's scaler as with fp32: clipped after unscaling (clipped before, they would be
    2^16 times smaller)."""
    norms = {}
    for precision in ("fp32", "fp16"):
        model, plan, tr, va = _setup(profile_of, table, **{
            "train.precision": precision, "train.grad_clip.kind": "global_norm",
            "train.grad_clip.max": 0.01, "train.max_epochs": 1})
        grads = Grads()
        fit(model, plan, tr, va, loss_fn=make_loss("bce"), watchers=[grads], progress=False)
        norms[precision] = grads.norms
    for precision, seen in norms.items():
        assert seen == pytest.approx([0.01] * len(seen), rel=1e-3), precision


# ---- resume and threads --------------------------------------------------------------------

def _run(profile_of, table, run_dir, *, stop_at=None, restore=None, **overrides):
    model, plan, tr, va = _setup(profile_of, table, **{"train.max_epochs": 4, **overrides})
    steps = iter(range(1, 10**6))
    h = fit(model, plan, tr, va, loss_fn=make_loss("bce"), run_dir=run_dir, progress=False,
            watchers=[LiveMonitor(sample_every=3)], restore=restore,
            should_stop=(lambda: next(steps) == stop_at) if stop_at else None)
    return model, h


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_resume_is_bit_identical_with_a_precision_set(profile_of, table, tmp_path, monkeypatch,
                                                      precision):
    monkeypatch.setattr(devices, "INIT_SCALE", 2.0 ** 22)  # fp16: a few skips to resume across
    whole, h_whole = _run(profile_of, table, tmp_path / "a", **{"train.precision": precision})
    _, h_cut = _run(profile_of, table, tmp_path / "b", stop_at=11,
                    **{"train.precision": precision})
    assert h_cut.stop_reason.startswith("interrupted (Ctrl-C)")
    ckpt = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert (ckpt["scaler"] is not None) == (precision == "fp16")
    resumed, h_res = _run(profile_of, table, tmp_path / "b", restore=ckpt,
                          **{"train.precision": precision})
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in h_whole.epochs]
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in h_res.epochs] == strip
    if precision == "fp16":
        assert sum(e["scaler_skipped"] for e in h_whole.epochs) > 0


def test_threads_are_the_plans_during_fit_and_the_callers_after(table, profile_of):
    before = torch.get_num_threads()
    model, plan, tr, va = _setup(profile_of, table, **{"train.threads": before + 1,
                                                       "train.max_epochs": 1})
    grads = Grads()
    fit(model, plan, tr, va, loss_fn=make_loss("bce"), watchers=[grads], progress=False)
    assert grads.threads == {before + 1}
    assert torch.get_num_threads() == before

    class Boom(Watcher):
        def on_epoch_end(self, state):
            raise RuntimeError("boom")

    model, plan, tr, va = _setup(profile_of, table, **{"train.threads": before + 1,
                                                       "train.max_epochs": 1})
    with pytest.raises(RuntimeError, match="boom"):
        fit(model, plan, tr, va, loss_fn=make_loss("bce"), watchers=[Boom()], progress=False)
    assert torch.get_num_threads() == before
