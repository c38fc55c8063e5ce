"""Library calls leave the caller's process as they found it: the global random generators
(torch, numpy, Python) and the umask. Seeding inside nnrecipe uses its own generators or
forks torch's."""

from __future__ import annotations

import os
import random

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import datasets

import nnrecipe


def _state():
    umask = os.umask(0o022)
    os.umask(umask)
    return (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), umask)


def _same(a, b):
    return (torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
            and a[3] == b[3])


@pytest.fixture
def table():
    d = datasets.load_breast_cancer(as_frame=True).frame.sample(200, random_state=0)
    return d.rename(columns={"target": "y"})


def test_plan_leaves_the_random_state_and_umask_alone(table):
    torch.manual_seed(123)
    np.random.seed(5)
    before = _state()
    nnrecipe.plan(table, "y")
    assert _same(before, _state())


@pytest.mark.slow
def test_fit_leaves_the_random_state_and_umask_alone_and_is_reproducible(table, tmp_path):
    torch.manual_seed(7)
    before = _state()
    a = nnrecipe.fit(table, "y", overrides={"train.max_epochs": 3}, out=tmp_path / "a")
    assert _same(before, _state())
    torch.manual_seed(999)  # another caller state: the same run all the same
    b = nnrecipe.fit(table, "y", overrides={"train.max_epochs": 3}, out=tmp_path / "b")
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values(),
                           strict=True):
        assert torch.equal(va, vb), k


@pytest.mark.slow
def test_an_augmented_image_run_leaves_the_random_state_alone(tmp_path):
    d = datasets.load_digits()
    keep = d.target < 3
    np.savez(tmp_path / "d.npz", x=(d.images[keep] * 16).astype(np.uint8), y=d.target[keep])
    before = _state()
    run = nnrecipe.fit(tmp_path / "d.npz", overrides={"train.max_epochs": 2},
                       out=tmp_path / "run", preflight=False)
    assert run.plan["augment.enabled"] is True
    assert _same(before, _state())
    assert isinstance(run.predict(tmp_path / "d.npz"), pd.DataFrame)
