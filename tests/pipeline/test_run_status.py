"""status.json and what a run keeps when it cannot finish."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn import datasets

import nnrecipe
from nnrecipe.errors import NnrecipeError
from nnrecipe.pipeline.run import Diverged
from nnrecipe.train import Watcher


class Poison(Watcher):
    """Every step leaves non-finite weights: a run that diverged from its first step."""

    wants_steps = True

    def after_step(self, state):
        with torch.no_grad():
            for p in state.model.parameters():
                p.fill_(float("nan"))


@pytest.fixture
def table():
    return datasets.load_breast_cancer(as_frame=True).frame.sample(200, random_state=0)


def test_a_run_without_finite_weights_says_so_and_keeps_its_findings(table, tmp_path):
    with pytest.raises(Diverged, match="no epoch ended with finite weights") as e:
        nnrecipe.fit(table, "target", overrides={"train.max_epochs": 2}, out=tmp_path / "r",
                     watchers=[Poison()])
    assert e.value.exit_code == 4 and "\n" not in str(e.value)
    run = tmp_path / "r"
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "diverged" in status["reason"]
    assert "--resume" in status["resume"]
    assert (run / "findings.json").exists() and (run / "metrics.jsonl").exists()
    assert not (run / "model.pt").exists()  # no NaN weights saved as a model
    with pytest.raises(NnrecipeError, match="did not finish: failed, training diverged"):
        nnrecipe.load_run(run)


def test_bad_input_before_training_leaves_nothing_but_a_failure_after_keeps_the_run(
        table, tmp_path):
    with pytest.raises(NnrecipeError):
        nnrecipe.fit(table, "no_such_column", out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    run = nnrecipe.fit(table, "target", overrides={"train.max_epochs": 2}, out=tmp_path / "ok")
    assert json.loads((run.path / "status.json").read_text())["status"] == "finished"
    assert nnrecipe.load_run(run.path).status == "finished"
    with pytest.raises(NnrecipeError, match="finished; there is nothing to resume"):
        nnrecipe.resume(run.path)
