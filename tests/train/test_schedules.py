import io
import math

import pytest
import torch

from nnrecipe.train.schedules import SCHEDULES, ScheduleSpec, lr_at, make_schedule

LR0 = 0.1
EPOCHS = 12


def _sgd(lr=LR0, momentum=0.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=lr, momentum=momentum)


def _train(opt, schedule, epochs, steps=1, val_losses=None):
    """Drive ``opt`` like the loop does; return the LR each epoch's first batch used."""
    used = []
    for e in range(epochs):
        for b in range(steps):
            if b == 0:
                used.append(opt.param_groups[0]["lr"])
            opt.zero_grad()
            opt.param_groups[0]["params"][0].sum().backward()
            opt.step()
            if schedule is not None:
                schedule.step_batch()
        if schedule is not None:
            schedule.step_epoch(None if val_losses is None else val_losses[e])
    return used


@pytest.mark.parametrize("spec, formula", [
    (ScheduleSpec("step", step_size=3), lambda t: LR0 * 0.5 ** (t // 3)),
    (ScheduleSpec("exponential", k=0.2), lambda t: LR0 * math.exp(-0.2 * t)),
    (ScheduleSpec("inverse_time", k=0.3), lambda t: LR0 / (1 + 0.3 * t)),
    (ScheduleSpec("cosine", min_lr=1e-3),
     lambda t: 1e-3 + (LR0 - 1e-3) * (1 + math.cos(math.pi * t / EPOCHS)) / 2),
])
def test_epoch_schedules_use_the_formula_lr_each_epoch(spec, formula):
    opt = _sgd()
    used = _train(opt, make_schedule(spec, opt, epochs=EPOCHS, steps_per_epoch=3), EPOCHS, 3)
    expected = [formula(t) for t in range(EPOCHS)]
    assert used == pytest.approx(expected, rel=1e-9)
    assert [lr_at(spec, LR0, t, epochs=EPOCHS) for t in range(EPOCHS)] == pytest.approx(expected)


def test_step_decay_halves_every_step_size_epochs():
    opt = _sgd()
    used = _train(opt, make_schedule(ScheduleSpec("step", step_size=4), opt, epochs=9,
                                     steps_per_epoch=1), 9)
    assert used == pytest.approx([LR0] * 4 + [LR0 / 2] * 4 + [LR0 / 4])


@pytest.mark.parametrize("name", ["step", "exponential", "inverse_time", "cosine", "none"])
def test_warmup_ramps_linearly_then_the_schedule_starts_from_lr0(name):
    spec = ScheduleSpec(name, step_size=2, k=0.1, warmup_epochs=4)
    opt = _sgd()
    used = _train(opt, make_schedule(spec, opt, epochs=EPOCHS, steps_per_epoch=2), EPOCHS, 2)
    assert used[:4] == pytest.approx([LR0 * f for f in (0.1, 0.325, 0.55, 0.775)])
    assert used[4] == pytest.approx(LR0)
    assert used == pytest.approx([lr_at(spec, LR0, t, epochs=EPOCHS) for t in range(EPOCHS)])
    after = ScheduleSpec(name, step_size=2, k=0.1)
    assert used[4:] == pytest.approx([lr_at(after, LR0, t, epochs=EPOCHS - 4)
                                      for t in range(EPOCHS - 4)])


def test_one_cycle_matches_torch_every_batch_and_peaks_at_pct_start():
    epochs, steps = 5, 8
    opt, ref_opt = _sgd(momentum=0.9), _sgd(momentum=0.9)
    s = make_schedule(ScheduleSpec("one_cycle"), opt, epochs=epochs, steps_per_epoch=steps)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=LR0, total_steps=epochs * steps)
    assert s.per_batch
    lrs, moms = [], []
    for _ in range(epochs):
        for _ in range(steps):
            assert opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"]
            lrs.append(opt.param_groups[0]["lr"])
            moms.append(opt.param_groups[0]["momentum"])
            opt.step(), ref_opt.step()
            s.step_batch(), ref.step()
        s.step_epoch(None)  # no-op for a per-batch schedule
    peak = round(0.3 * epochs * steps) - 1  # torch: end of phase 1 = pct_start·total − 1
    assert lrs.index(max(lrs)) == peak and max(lrs) == pytest.approx(LR0)
    assert lrs[0] == pytest.approx(LR0 / 25) and moms[peak] == pytest.approx(0.85)
    for _ in range(3):  # extra steps hold the final LR instead of raising
        s.step_batch()
    assert opt.param_groups[0]["lr"] == pytest.approx(lrs[-1])


def test_one_cycle_peak_multiplier_and_optimizers_without_momentum():
    opt = torch.optim.Adagrad([torch.nn.Parameter(torch.ones(1))], lr=0.01)
    s = make_schedule(ScheduleSpec("one_cycle", max_lr_mult=10), opt, epochs=1,
                      steps_per_epoch=10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        s.step_batch()
    assert max(lrs) == pytest.approx(0.1)


def test_plateau_cuts_after_patience_bad_epochs_and_not_before():
    spec = ScheduleSpec("plateau", patience=2, factor=0.5)
    opt = _sgd()
    s = make_schedule(spec, opt, epochs=10, steps_per_epoch=1)
    # epoch 1 better; 2, 3 bad (tolerated); 4 bad → cut; 5 better; 6, 7 bad; 8 bad → cut
    val = [1.0, 0.9, 0.95, 0.92, 0.91, 0.5, 0.6, 0.6, 0.6, 0.6]
    used = _train(opt, s, 10, val_losses=val)
    assert used == pytest.approx([LR0] * 5 + [LR0 / 2] * 4 + [LR0 / 4])
    with pytest.raises(ValueError, match="validation loss"):
        s.step_epoch(None)


def test_plateau_with_warmup_ignores_the_warmup_epochs():
    spec = ScheduleSpec("plateau", patience=1, warmup_epochs=2)
    opt = _sgd()
    used = _train(opt, make_schedule(spec, opt, epochs=6, steps_per_epoch=1), 6,
                  val_losses=[5.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    assert used == pytest.approx([LR0 * 0.1, LR0 * 0.55, LR0, LR0, LR0, LR0 / 2])


@pytest.mark.parametrize("spec", [
    ScheduleSpec("step", step_size=2, warmup_epochs=2), ScheduleSpec("cosine"),
    ScheduleSpec("exponential"), ScheduleSpec("one_cycle"),
    ScheduleSpec("plateau", patience=1, warmup_epochs=1)])
def test_state_dict_round_trip_resumes_identically(spec):
    val = [1.0, 0.9, 0.95, 0.97, 0.99, 0.8, 0.85, 0.9, 0.91, 0.92]
    opt = _sgd()
    full = _train(opt, make_schedule(spec, opt, epochs=10, steps_per_epoch=3), 10, 3, val)

    opt = _sgd()
    s = make_schedule(spec, opt, epochs=10, steps_per_epoch=3)
    first = _train(opt, s, 4, 3, val[:4])
    buf = io.BytesIO()
    torch.save({"schedule": s.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)["schedule"]
    opt = _sgd()  # fresh optimizer at lr0: the schedule restores the current LR itself
    s = make_schedule(spec, opt, epochs=10, steps_per_epoch=3)
    s.load_state_dict(saved)
    assert first + _train(opt, s, 6, 3, val[4:]) == full


def test_none_without_warmup_is_none_and_every_name_builds():
    opt = _sgd()
    assert make_schedule(ScheduleSpec(), opt, epochs=5, steps_per_epoch=2) is None
    for name in SCHEDULES[1:]:
        assert make_schedule(ScheduleSpec(name), _sgd(), epochs=5, steps_per_epoch=2)
    assert lr_at(ScheduleSpec(), LR0, 7) == LR0


@pytest.mark.parametrize("bad", [dict(name="linear"), dict(step_size=0), dict(factor=1.0),
                                 dict(name="one_cycle", warmup_epochs=2), dict(k=-1)])
def test_invalid_specs_are_rejected(bad):
    with pytest.raises(ValueError, match="invalid learning-rate schedule"):
        ScheduleSpec(**bad)


def test_lr_at_refuses_schedules_without_a_closed_form():
    for name in ("one_cycle", "plateau"):
        with pytest.raises(ValueError, match="closed form"):
            lr_at(ScheduleSpec(name), LR0, 3)
