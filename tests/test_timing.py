"""Stage timings and modules loaded on first use (nnrecipe.timing, nnrecipe.lazy)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import nnrecipe
from nnrecipe import timing
from nnrecipe.lazy import LazyModule, lazy


def test_stages_add_up_and_an_inner_stage_is_not_counted_twice():
    with timing.recording() as watch:
        with timing.stage("plan"):
            time.sleep(0.02)
            with timing.stage("imports"):
                time.sleep(0.05)
        with timing.stage("plan"):  # entered again: adds up
            time.sleep(0.02)
    s = watch.to_dict()
    assert list(s) == ["imports", "plan", "total"]  # in the order they finished
    assert 0.05 <= s["imports"] < 0.2
    assert 0.04 <= s["plan"] < 0.05 + 0.1  # its own time only, not the import inside it
    assert s["imports"] + s["plan"] <= s["total"]


def test_outside_a_recording_a_stage_records_nothing():
    assert timing.current() is None
    with timing.stage("plan"):
        pass
    with timing.recording() as outer, timing.recording() as inner:
        assert inner is outer  # a call inside a command adds to the command's stopwatch
    assert timing.current() is None


def test_stage_rows_give_shares_and_the_time_no_stage_claims():
    rows = timing.stage_rows({"imports": 1.0, "epochs": 2.0, "total": 4.0})
    assert [(r["name"], r["seconds"], r["share"]) for r in rows] == [
        ("imports", 1.0, "25%"), ("epochs", 2.0, "50%"), ("other", 1.0, "25%"),
        ("total", 4.0, "")]
    assert rows[0]["what"] == timing.STAGES["imports"]
    without_total = timing.stage_rows({"imports": 1.0, "epochs": 3.0})
    assert [(r["name"], r["share"]) for r in without_total] == [("imports", "25%"),
                                                                 ("epochs", "75%")]


def test_a_lazy_module_loads_on_first_use_and_times_it_as_an_import():
    mod = lazy("json")  # already imported by pytest: cheap, but the path is the same
    assert "not loaded yet" in repr(mod)
    with timing.recording() as watch:
        assert mod.dumps([1]) == "[1]"
    assert "imports" in watch.to_dict() and "loaded" in repr(mod)
    with pytest.raises(AttributeError):
        mod.__wrapped__  # noqa: B018 (a dunder probe never loads the module)
    called = []
    LazyModule("json", then=called.append).loads("1")
    assert [m.__name__ for m in called] == ["json"]


def test_import_nnrecipe_loads_no_heavy_library_and_serves_every_public_name():
    code = ("import sys, nnrecipe; heavy = [m for m in ('torch', 'sklearn', 'pandas', "
            "'matplotlib', 'scipy', 'optuna', 'cleanlab') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert set(nnrecipe.__all__) <= set(dir(nnrecipe))
    for name in nnrecipe.__all__:
        assert getattr(nnrecipe, name) is not None
    with pytest.raises(AttributeError):
        nnrecipe.no_such_name  # noqa: B018


def test_plan_and_tune_stay_the_functions_after_their_subpackages_are_imported():
    import nnrecipe.plan.schema  # noqa: F401 (binds the subpackage on the package)
    import nnrecipe.tune.search  # noqa: F401
    from nnrecipe.api import plan, tune
    from nnrecipe.plan import Plan

    assert nnrecipe.plan is plan and Plan.__module__ == "nnrecipe.plan.schema"
    assert nnrecipe.tune is tune
    for name in nnrecipe.__all__:  # no other public name is shadowed by a module
        assert not isinstance(getattr(nnrecipe, name), type(nnrecipe)), name
