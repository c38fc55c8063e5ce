"""A new kind of data is one module and one registry line: a toy modality, written here in
the test, trains, saves, loads and predicts through the one pipeline; and no code outside
the modality modules asks which kind of data it holds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import nnrecipe
from nnrecipe import modalities
from nnrecipe.data.images import ArraySet
from nnrecipe.modalities.samples import ClassModality, SampleEncoder, Samples, class_samples
from nnrecipe.plan.network_rules import CONV_RULES, const, dropout_rule
from nnrecipe.plan.rules import RULE_SETS

SRC = Path(nnrecipe.__file__).parent


class PointsEncoder(SampleEncoder):
    """Standardised vectors read as one-channel sequences by the 1-D convnet."""

    @property
    def input_shape(self):
        return [1, self.state["length"]]

    def encode(self, data, pos):
        x = (data.x[pos] - self.state["mean"]) / self.state["std"]
        return torch.from_numpy(x[:, None, :].astype(np.float32)), data.y[pos]


class PointsModality(ClassModality):
    """A toy kind of data: an .npz with ``points`` (N, D) and ``kind`` (N,)."""

    name = "points"
    encoder = PointsEncoder
    own_rules = (
        ("data.modality", const("points", "toy points", "data.modality"), True),
        ("model.arch", const("cnn", "points → a 1-D convnet", "model.arch_by_modality"), False),
        *CONV_RULES,
        ("model.dropout", dropout_rule, False),
    )

    def load(self, source, target, task, *, like=None, min_classes=2):
        with np.load(source) as f:
            x, y = f["points"].astype(np.float32), f["kind"]
        codes, classes = pd.factorize(pd.Series(y).astype(str), sort=True)
        s = ArraySet(x, codes.astype(np.int64), list(classes), [f"p{i}" for i in range(len(x))])
        return class_samples("points", s, "kind", {"spatial": [x.shape[1]]}, min_classes)

    def read_for_run(self, source, state, labelled):
        with np.load(source) as f:
            x = f["points"].astype(np.float32)
        return Samples("points", x, np.zeros(len(x), dtype=np.int64), [""],
                       [f"p{i}" for i in range(len(x))], "kind", state["task"], "", {})

    def fit_features(self, data, train, plan):
        state = SampleEncoder.base_state(data)
        state.update(mean=float(data.x[train].mean()), std=float(data.x[train].std()),
                     length=int(data.x.shape[1]))
        return PointsEncoder(state)


@pytest.fixture
def points_registered(monkeypatch):
    monkeypatch.setattr(modalities, "REGISTRY", dict(modalities.REGISTRY))
    saved = dict(RULE_SETS)
    modalities.register(PointsModality())  # the one line a new kind of data needs
    yield
    RULE_SETS.clear()
    RULE_SETS.update(saved)


@pytest.mark.slow
def test_a_toy_modality_trains_saves_and_predicts_through_the_pipeline(points_registered,
                                                                      tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(2, size=200)
    x = rng.normal(size=(200, 16)) + np.where(y[:, None] == 1, np.linspace(-1, 1, 16), 0)
    path = tmp_path / "toy.points.npz"
    np.savez(path, points=x, kind=np.array(["flat", "ramp"])[y])
    run = nnrecipe.fit(path, modality="points", overrides={"train.max_epochs": 15},
                       out=tmp_path / "run")
    assert run.profile.modality == "points" and run.plan["model.arch"] == "cnn"
    assert run.evaluation["modality"] == "points"
    assert run.evaluation["metrics"]["accuracy"] > run.evaluation["baseline"]["metrics"][
        "accuracy"]
    assert (tmp_path / "run" / "report.html").exists()
    again = nnrecipe.load_run(tmp_path / "run")
    pred = again.predict(path)
    assert len(pred) == 200 and set(pred["prediction"]) <= {"flat", "ramp"}


def test_no_code_outside_the_modality_modules_asks_which_kind_of_data_it_holds():
    asks = re.compile(r"modality\s*==|modality\s+(not\s+)?in\s+\(")
    found = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
             if "modalities" not in p.parts
             for i, line in enumerate(p.read_text().splitlines(), 1) if asks.search(line)]
    assert found == []


def test_every_registered_modality_has_plan_rules_and_auto_detection_ends_with_tables():
    assert set(modalities.REGISTRY) <= set(RULE_SETS)
    assert modalities.detect(Path("anything.csv")).name == "table"
    assert modalities.detect(Path("x.csv"), horizon=2).name == "series"
    with pytest.raises(nnrecipe.DataError, match="--modality must be one of auto, audio"):
        modalities.get("video")
