"""cv, tune and experiment run the same pipeline on every kind of data, not only tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from modality_data import reviews
from PIL import Image
from sklearn import datasets

pytestmark = pytest.mark.slow


def _read(path):
    return json.loads(path.read_text())


def _digit_folder(root, n=180, classes=(0, 1, 2)):
    d = datasets.load_digits()
    keep = [i for i in range(len(d.target)) if d.target[i] in classes][:n]
    for i in keep:
        folder = root / f"digit{d.target[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((d.images[i] * 16).clip(0, 255).astype(np.uint8)).save(
            folder / f"{i}.png")
    return root, len(keep)


def test_cv_on_an_image_folder_holds_every_image_out_once(cli, tmp_path):
    pics, n = _digit_folder(tmp_path / "pics")
    r = cli("cv", pics, "--folds", "3", "--max-epochs", "4", "--out", tmp_path / "cv", "-q")
    assert r.returncode == 0, r.stderr
    result = _read(tmp_path / "cv" / "cv.json")
    assert result["modality"] == "image" and result["folds"] == 3
    assert [f["fold"] for f in result["per_fold"]] == [1, 2, 3]
    assert sum(f["test_rows"] for f in result["per_fold"]) == n  # each image tested once
    tested = []
    for k in (1, 2, 3):
        fold = tmp_path / "cv" / f"fold_{k}"
        ev = _read(fold / "evaluation.json")
        assert ev["modality"] == "image" and ev["n_rows"] == result["per_fold"][k - 1][
            "test_rows"]
        assert (fold / "model.pt").exists() and (fold / "mistakes.png").exists()
        prof = _read(fold / "profile.json")
        assert "held-out fold" in prof["splits"]["how"]
        tested += [w["name"] for w in ev["worst"]]
    assert len(tested) == len(set(tested))  # no image is in two folds' test splits
    # three-digit images are easy: the convnet beats the majority class on average
    assert result["summary"]["accuracy"]["mean"] > result["baseline_summary"]["accuracy"][
        "mean"] + 0.2
    assert (tmp_path / "cv" / "report.html").exists()


def test_tune_on_a_text_column_searches_the_text_network(cli, tmp_path):
    reviews(n=240).to_csv(tmp_path / "reviews.csv", index=False)
    r = cli("tune", tmp_path / "reviews.csv", "-t", "sentiment", "--modality", "text",
            "--trials", "3", "--max-epochs", "3", "--out", tmp_path / "t", "-q")
    assert r.returncode == 0, r.stderr
    result = _read(tmp_path / "t" / "tune.json")
    assert result["n_trials"] == 3 and result["default_trial"] == 0
    space = set(result["space"])
    assert "model.hidden" in space and "optimizer.lr" in space
    assert not space & {"model.width", "model.hidden_layers"}  # a table network's keys
    ev = _read(tmp_path / "t" / "evaluation.json")
    assert ev["modality"] == "text" and "text" in ev["worst"][0]
    plan = (tmp_path / "t" / "plan.yaml").read_text()
    assert "model.arch" in plan and "gru" in plan


def test_cv_on_a_series_tests_later_periods_in_turn(cli, tmp_path):
    t = np.arange(300)
    series = pd.DataFrame({"day": t, "v": np.sin(t / 6) + 0.05 * np.cos(t / 2)})
    series.to_csv(tmp_path / "s.csv", index=False)
    r = cli("cv", tmp_path / "s.csv", "-t", "v", "--horizon", "1", "--folds", "3",
            "--max-epochs", "3", "--out", tmp_path / "cv", "-q")
    assert r.returncode == 0, r.stderr
    result = _read(tmp_path / "cv" / "cv.json")
    assert result["modality"] == "series" and len(result["per_fold"]) == 3
    starts = []
    for k in (1, 2, 3):
        prof = _read(tmp_path / "cv" / f"fold_{k}" / "profile.json")
        assert "test the fold after" in prof["splits"]["how"]
        starts.append(prof["splits"]["train"])
    assert starts == sorted(starts) and starts[0] < starts[-1]  # expanding windows


def test_experiment_on_labelled_sequences_pairs_two_plans(cli, tmp_path):
    from modality_data import sequences

    sequences(n=150).to_csv(tmp_path / "seq.csv", index=False)
    r = cli("experiment", tmp_path / "seq.csv", "-t", "shape", "--modality", "sequence",
            "--change", "model.filters=8", "--hypothesis", "fewer filters do as well",
            "--expect", "same", "--repeats", "2", "--max-epochs", "3", "--out", tmp_path / "e",
            "-q")
    assert r.returncode == 0, r.stderr
    entry = _read(tmp_path / "e" / "experiment.json")
    assert entry["changes"] == {"model.filters": 8} and entry["repeats"] == 2
    assert len(entry["baseline"]) == len(entry["changed"]) == 2
    for arm in ("baseline_1", "changed_2"):
        assert _read(tmp_path / "e" / arm / "evaluation.json")["modality"] == "sequence"
    plan = (tmp_path / "e" / "changed_1" / "plan.yaml").read_text()
    assert "set by the user (--set model.filters=8)" in plan
