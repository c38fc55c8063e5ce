"""The optimizer records (train/optimizers.py): each builds the torch optimizer it names with
its defaults, and everything that lists optimizers reads the records, so a new optimizer
is one record. The schedule records (train/schedules.py) likewise."""

from __future__ import annotations

from types import MappingProxyType

import pytest
import torch

from nnrecipe.doctor.rules import config as doctor
from nnrecipe.errors import PlanError
from nnrecipe.plan import KEYS, make_plan, validate_overrides
from nnrecipe.train import make_optimizer, optimizers, schedules
from nnrecipe.train.optimizers import OPTIMIZERS, OptimizerSpec
from nnrecipe.tune import search

# What each optimizer was built with before the records existed, written out by hand.
BY_HAND = {
    "sgd": (torch.optim.SGD, dict(lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0)),
    "adam": (torch.optim.Adam, dict(lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)),
    "adamw": (torch.optim.AdamW, dict(lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)),
    "nadam": (torch.optim.NAdam, dict(lr=2e-3, betas=(0.9, 0.999), weight_decay=0.0)),
    "adamax": (torch.optim.Adamax, dict(lr=2e-3, betas=(0.9, 0.999), weight_decay=0.0)),
    "rmsprop": (torch.optim.RMSprop, dict(lr=1e-3, momentum=0.0, weight_decay=0.0)),
    "adagrad": (torch.optim.Adagrad, dict(lr=0.01, weight_decay=0.0)),
    "adadelta": (torch.optim.Adadelta, dict(lr=1.0, weight_decay=0.0)),
    "lbfgs": (torch.optim.LBFGS, dict(lr=1.0, history_size=100, line_search_fn="strong_wolfe")),
}
# The doctor's learning-rate ranges before the records existed.
OLD_LR_RANGES = {
    "sgd": (1e-4, 1.0), "adam": (1e-5, 1e-2), "adamw": (1e-5, 1e-2), "nadam": (1e-5, 1e-2),
    "adamax": (1e-5, 2e-2), "rmsprop": (1e-5, 1e-2), "adagrad": (1e-3, 1.0),
    "adadelta": (0.1, 10.0),
}


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(3))]


def _plan(table, profile_of, **overrides):
    return make_plan(profile_of(table(n=300)), 240, overrides)


@pytest.mark.parametrize("name", list(BY_HAND))
def test_each_record_builds_what_torch_builds_with_the_same_settings(table, profile_of, name):
    cls, kwargs = BY_HAND[name]
    got = make_optimizer(_plan(table, profile_of, **{"optimizer.name": name}), _params())
    want = cls(_params(), **kwargs)
    assert type(got) is cls
    assert got.defaults == want.defaults


def test_the_plan_defaults_are_the_records(table, profile_of):
    for name, spec in OPTIMIZERS.items():
        plan = _plan(table, profile_of, **{"optimizer.name": name})
        assert plan["optimizer.lr"] == spec.lr
        assert spec.lr_reason in plan.decisions["optimizer.lr"].reason
        assert plan["optimizer.momentum"] == (spec.momentum or 0.0)
        if spec.betas is not None:
            assert plan["optimizer.betas"] == list(spec.betas)


def test_the_plans_choices_are_the_registries():
    assert tuple(KEYS["optimizer.name"].choices) == tuple(OPTIMIZERS)
    assert tuple(KEYS["schedule.name"].choices) == tuple(schedules.SCHEDULE_KINDS)
    assert tuple(OPTIMIZERS) == tuple(BY_HAND)  # the order of the old choice list


def test_the_doctors_lr_ranges_are_the_records():
    ranges = doctor.lr_ranges()
    assert ranges == {n: s.lr_range for n, s in OPTIMIZERS.items() if s.lr_range is not None}
    assert ranges == OLD_LR_RANGES
    for name, (low, high) in ranges.items():
        ev = _evidence(name, high * 1.5)
        assert doctor.lr_out_of_range(ev).fix == {"optimizer.lr": OPTIMIZERS[name].lr}
        assert doctor.lr_out_of_range(_evidence(name, low)) is None


def test_the_tuner_picks_the_ranked_records_in_order():
    assert search.tuned_optimizers() == ("adam", "nadam", "adamax", "rmsprop", "sgd")


def _evidence(optimizer: str, lr: float) -> doctor.ConfigEvidence:
    return doctor.ConfigEvidence(
        model=torch.nn.Linear(2, 1), loss="mse", output_activation="linear", task="regression",
        activation="relu", init="he_normal", optimizer=optimizer, lr=lr, batch_size=32,
        n_train=1000, target_summary=None)


# ---- one record is enough ---------------------------------------------------------------
class ToySGD(torch.optim.SGD):
    """SGD under another name: what a new optimizer's class would be."""


def _toy(**changes) -> OptimizerSpec:
    settings = dict(name="toy", make=ToySGD, lr=0.05, lr_reason="a made-up rate for the test",
                    lr_range=(0.01, 0.1), lr_range_reason="made up", momentum=0.5,
                    momentum_reason="made up", nesterov=True, tune_rank=6)
    return OptimizerSpec(**{**settings, **changes})


@pytest.fixture
def toy(monkeypatch):
    spec = _toy()
    monkeypatch.setattr(optimizers, "OPTIMIZERS", MappingProxyType({**OPTIMIZERS, "toy": spec}))
    return spec


def test_a_new_record_is_a_plan_choice_with_its_defaults(toy, table, profile_of):
    assert validate_overrides({"optimizer.name": "toy"}) == {"optimizer.name": "toy"}
    assert "toy" in KEYS["optimizer.name"].describe()
    plan = _plan(table, profile_of, **{"optimizer.name": "toy", "optimizer.nesterov": True})
    assert (plan["optimizer.lr"], plan["optimizer.momentum"]) == (0.05, 0.5)
    assert toy.lr_reason in plan.decisions["optimizer.lr"].reason


def test_make_optimizer_builds_a_new_record(toy, table, profile_of):
    plan = _plan(table, profile_of, **{"optimizer.name": "toy", "optimizer.nesterov": True})
    opt = make_optimizer(plan, _params())
    assert type(opt) is ToySGD
    assert opt.defaults == ToySGD(_params(), lr=0.05, momentum=0.5, nesterov=True,
                                  weight_decay=0.0).defaults


def test_the_doctor_and_the_tuner_know_a_new_record(toy, table, profile_of):
    assert doctor.lr_out_of_range(_evidence("toy", 0.5)).fix == {"optimizer.lr": 0.05}
    assert doctor.lr_out_of_range(_evidence("toy", 0.05)) is None
    assert search.tuned_optimizers()[-1] == "toy"
    space = search.default_space(_plan(table, profile_of), None)
    assert "toy" in space["optimizer.name"].choices


def test_what_a_record_does_not_take_is_refused(monkeypatch, table, profile_of):
    bare = _toy(momentum=None, nesterov=False, weight_decay=False)
    monkeypatch.setattr(optimizers, "OPTIMIZERS", MappingProxyType({**OPTIMIZERS, "toy": bare}))
    for bad in ({"optimizer.momentum": 0.9}, {"optimizer.weight_decay": 0.1}):
        with pytest.raises(PlanError, match="toy"):
            _plan(table, profile_of, **{"optimizer.name": "toy", **bad})


def test_a_removed_record_is_no_longer_a_choice(monkeypatch):
    rest = {n: s for n, s in OPTIMIZERS.items() if n != "adadelta"}
    monkeypatch.setattr(optimizers, "OPTIMIZERS", MappingProxyType(rest))
    with pytest.raises(PlanError, match="optimizer.name"):
        validate_overrides({"optimizer.name": "adadelta"})


# ---- schedules: one record each too -----------------------------------------------------
def test_a_new_schedule_record_is_a_plan_choice_and_builds(monkeypatch):
    halve, halve_at = schedules._by_factor(lambda spec: lambda t: 0.5 ** t)
    kind = schedules.ScheduleKind("halve", halve, halve_at)
    monkeypatch.setattr(schedules, "SCHEDULE_KINDS",
                        MappingProxyType({**schedules.SCHEDULE_KINDS, "halve": kind}))
    assert validate_overrides({"schedule.name": "halve"}) == {"schedule.name": "halve"}
    spec = schedules.ScheduleSpec("halve")
    opt = torch.optim.SGD(_params(), lr=1.0)
    schedule = schedules.make_schedule(spec, opt, epochs=3, steps_per_epoch=1)
    opt.step()
    schedule.step_epoch()
    assert schedule.lr == schedules.lr_at(spec, 1.0, 1) == 0.5
