"""LiveMonitor.layer_log: the per-layer numbers the report plots, bounded in size."""

from __future__ import annotations

from nnrecipe.doctor import monitors
from nnrecipe.doctor.monitors import LiveMonitor
from nnrecipe.doctor.rules.live import StepEvidence


def sample(step: int) -> StepEvidence:
    return StepEvidence(epoch=1 + step // 1000, step=step, loss=1.0,
                        grad_norms={"fc1": 0.5, "fc2": 0.1}, grad_zero_share={"fc1": 0.0},
                        act_zero_share={"relu": 0.5}, saturation_share={},
                        dead_unit_share={"relu": 0.25})


def test_each_sample_logs_grad_norms_and_dead_shares_per_layer():
    mon = LiveMonitor()
    for step in (1, 2, 50):
        mon.observe(sample(step))
    assert mon.layer_log == [{"step": s, "epoch": 1, "grad_norm": {"fc1": 0.5, "fc2": 0.1},
                              "dead_share": {"relu": 0.25}} for s in (1, 2, 50)]


def test_a_long_run_is_thinned_evenly_to_a_bounded_log(monkeypatch):
    monkeypatch.setattr(monitors, "LAYER_LOG_MAX", 10)
    mon = LiveMonitor()
    for step in range(100):
        mon.observe(sample(step))
    steps = [e["step"] for e in mon.layer_log]
    assert len(steps) <= 10 and steps[0] == 0
    gaps = {b - a for a, b in zip(steps, steps[1:], strict=False)}
    assert len(gaps) == 1 and steps[-1] >= 100 - gaps.pop()  # even spacing to the end
