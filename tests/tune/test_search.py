"""The search space, its --space/--set handling, the pruning watcher and the trial table."""

from __future__ import annotations

import math

import optuna
import pytest
from sklearn import datasets

import nnrecipe
from nnrecipe.errors import PlanError
from nnrecipe.train.callbacks import TrainState
from nnrecipe.tune.search import (
    PruneOnValLoss,
    default_space,
    merge_space,
    open_study,
    parse_space,
    study_summary,
)


@pytest.fixture(scope="module")
def wine_plan():
    return nnrecipe.plan(datasets.load_wine(as_frame=True).frame, "target")


def test_default_space_follows_the_rules_and_holds_the_default_plan(wine_plan):
    space = default_space(wine_plan, lr_center=0.01, lr_rule="valley")
    lr = space["optimizer.lr"]
    assert lr.log and lr.low == pytest.approx(0.001) and lr.high == pytest.approx(0.1)
    assert "range test" in lr.reason and "valley" in lr.reason
    assert (space["model.hidden_layers"].low, space["model.hidden_layers"].high) == (1, 5)
    assert (space["model.dropout"].low, space["model.dropout"].high) == (0.1, 0.5)
    assert (space["train.batch_size"].low, space["train.batch_size"].high) == (8, 128)
    assert set(space["optimizer.name"].choices) == {"adam", "nadam", "adamax", "rmsprop", "sgd"}
    for key, dim in space.items():  # the default plan is a point of the space
        assert dim.contains(wine_plan[key]), key


def test_space_option_parses_ranges_and_choices():
    space = parse_space(["model.width=32:256", "model.dropout=0:0.2",
                         "optimizer.name=adam,sgd", "model.batchnorm=true,false"])
    width = space["model.width"]
    assert (width.kind, width.low, width.high, width.log) == ("int", 32, 256, True)
    assert space["model.dropout"].kind == "float" and not space["model.dropout"].log
    assert space["optimizer.name"].choices == ("adam", "sgd")
    assert space["model.batchnorm"].choices == (True, False)


def test_space_option_reports_every_problem_at_once():
    with pytest.raises(PlanError) as e:
        parse_space(["model.depth=1:3", "model.width=64:32", "model.dropout=0.5",
                     "optimizer.name=adam,foo", "optimizer.lr=-1:1"])
    msg = str(e.value)
    for part in ("unknown plan key 'model.depth'", "low must be below high",
                 "expects low:high", "'optimizer.name' must be", "'optimizer.lr' must be"):
        assert part in msg


def test_set_fixes_a_key_and_space_narrows_one(wine_plan):
    rules = default_space(wine_plan, 0.01)
    space = merge_space(rules, parse_space(["model.width=32:64"]),
                        {"optimizer.name": "sgd", "optimizer.lr": 0.05})
    assert "optimizer.name" not in space and "optimizer.lr" not in space
    assert (space["model.width"].low, space["model.width"].high) == (32, 64)
    assert "optimizer.lr" in merge_space(rules, {}, {"optimizer.lr": "auto"})
    with pytest.raises(PlanError, match="both with --set"):
        merge_space(rules, parse_space(["model.width=32:64"]), {"model.width": 16})


def _state(val_loss: float, epoch: int) -> TrainState:
    s = TrainState(model=None, optimizer=None, plan=None, max_epochs=10, epoch=epoch)
    s.logs = {"val_loss": val_loss}
    return s


def test_the_pruning_watcher_reports_each_epoch_and_prunes_a_trailing_trial():
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1,
                                                                   n_warmup_steps=0))
    good = study.ask()
    watcher = PruneOnValLoss(good)
    for epoch, loss in enumerate([1.0, 0.5, 0.3], start=1):
        watcher.on_epoch_end(_state(loss, epoch))
    study.tell(good, 0.3)
    assert good.storage.get_trial(good._trial_id).intermediate_values == {1: 1.0, 2: 0.5, 3: 0.3}
    bad = study.ask()
    watcher = PruneOnValLoss(bad)
    with pytest.raises(optuna.TrialPruned, match="epoch 1"):
        watcher.on_epoch_end(_state(2.0, 1))  # worse than the median at epoch 1
    assert "median" in bad.storage.get_trial(bad._trial_id).user_attrs["pruned_because"]


def test_a_trial_whose_loss_is_no_longer_finite_is_pruned():
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="nan"):
        PruneOnValLoss(trial).on_epoch_end(_state(math.nan, 2))


def test_study_summary_lists_every_trial_with_its_curve(tmp_path):
    study = open_study(None, "s", seed=0)
    for values, state in (([0.9, 0.5], "complete"), ([2.0], "pruned")):
        t = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        for i, v in enumerate(values, start=1):
            t.report(v, i)
        study.tell(t, values[-1] if state == "complete" else None,
                   state=optuna.trial.TrialState.PRUNED if state == "pruned" else None)
    s = study_summary(study)
    assert (s["n_trials"], s["n_complete"], s["n_pruned"]) == (2, 1, 1)
    assert s["trials"][0]["intermediate"] == {"1": 0.9, "2": 0.5}
    assert s["trials"][0]["epochs"] == 2 and s["best"]["number"] == 0
    assert s["best"]["value"] == 0.5


def test_fail_stale_trials_fails_only_trials_whose_worker_is_gone(tmp_path):
    """A journal has no heartbeat: on resume a RUNNING trial is failed only when the process
    it recorded is gone; a live worker's trial and another machine's are left alone."""
    import subprocess
    import sys

    from nnrecipe.tune.search import WORKER_ATTR, fail_stale_trials, storage_for, worker_record

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store, _ = storage_for(None, tmp_path)
    study = open_study(store, "s", 0)
    records = {"dead": worker_record().split()[0] + f" {dead.pid} 1",
               "alive": worker_record(), "elsewhere": "other-host 1 1"}
    trials = {}
    for name, record in records.items():
        trials[name] = study.ask()
        trials[name].set_user_attr(WORKER_ATTR, record)
    assert fail_stale_trials(study) == [trials["dead"].number]
    states = {n: study.trials[t.number].state.name for n, t in trials.items()}
    assert states == {"dead": "FAIL", "alive": "RUNNING", "elsewhere": "RUNNING"}
    assert fail_stale_trials(open_study(store, "s", 0)) == []  # resuming again: nothing new


def test_check_storage_refuses_what_optuna_cannot_use(tmp_path):
    from nnrecipe.tune.search import check_storage

    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    for bad in (str(tmp_path / "t.csv"), "foo://bar", str(tmp_path), str(tmp_path / "no/x")):
        with pytest.raises(PlanError, match="--storage"):
            check_storage(bad)
    check_storage(str(tmp_path / "new.journal"))  # a new file is fine (and not created)
    check_storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
