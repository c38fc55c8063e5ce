"""A run shows itself in Jupyter: Run._repr_html_ is a card with the task, the test metrics
beside the baseline, the plan's key choices with reasons, the findings and the learning
curve; a user's strings are text, never markup."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nnrecipe import api


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=150), rng.normal(size=150)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "<b>y</b>": (x1 + x2 > 0).astype(int)})
    out = tmp_path_factory.mktemp("nb") / "run"
    api.fit(frame, "<b>y</b>", out=out, overrides={"train.max_epochs": 3})
    return out


@pytest.mark.slow
def test_a_loaded_run_renders_its_card(finished):
    run = api.load_run(finished)
    page = run._repr_html_()
    assert page.startswith('<div class="nnrecipe-run"')
    assert "&lt;b&gt;y&lt;/b&gt;" in page and "<b>y</b>" not in page  # escaped, not bold
    assert "test metrics" in page and f"{run.evaluation['metrics']['accuracy']:.4g}" in page
    assert "majority class" in page  # the baseline column
    assert run.plan.decisions["optimizer.name"].reason in page
    assert '<img alt="learning curves"' in page and "data:image/png;base64," in page
    assert f"{len(run.history.epochs)} epochs" in page
    for f in run.findings:
        assert f.code in page


def test_a_run_without_epochs_or_evaluation_still_renders(finished):
    run = api.load_run(finished)
    run.history.epochs, run.evaluation, run.findings, run.path = [], {}, [], None
    page = run._repr_html_()
    assert "in memory" in page and "0 epochs" in page
    assert "<img" not in page and "test metrics" not in page
    assert "The doctor found nothing to report." in page
