"""Images, volumes, sound, text and time series through `nnrecipe train`, end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from modality_data import reviews, sequences, volumes
from PIL import Image
from sklearn import datasets


def _run(cli, *args):
    r = cli("train", *args, "-q")
    assert r.returncode == 0, r.stderr
    return r


def _read(run_dir, name):
    return json.loads((run_dir / name).read_text())


def _plan(run_dir):
    return yaml.safe_load((run_dir / "plan.yaml").read_text())


def test_digits_npz_reaches_97_percent_with_the_planned_cnn(cli, tmp_path):
    d = datasets.load_digits()
    np.savez(tmp_path / "digits.npz", x=(d.images * 16).clip(0, 255).astype(np.uint8),
             y=d.target)
    _run(cli, tmp_path / "digits.npz", "--out", tmp_path / "run")
    ev = _read(tmp_path / "run", "evaluation.json")
    assert ev["metrics"]["accuracy"] >= 0.97, ev["metrics"]
    assert ev["baseline"]["metrics"]["accuracy"] < 0.2
    plan = _plan(tmp_path / "run")
    assert plan["decisions"]["model.arch"]["value"] == "cnn"
    assert "2-D convnet" in plan["decisions"]["model.arch"]["reason"]
    assert plan["decisions"]["model.filters"]["value"] in (16, 32)
    assert "doubling" in plan["decisions"]["model.filters"]["reason"]
    assert plan["decisions"]["augment.enabled"]["value"] is True
    assert plan["derived"]["data.modality"]["value"] == "image"
    assert (tmp_path / "run" / "mistakes.png").read_bytes().startswith(b"\x89PNG")
    assert len(ev["worst"]) == 16 and {"true", "pred", "p_pred"} <= set(ev["worst"][0])
    assert (tmp_path / "run" / "report.html").exists()


def test_an_image_folder_trains_and_bad_folders_are_refused(cli, tmp_path, bad_input):
    d = datasets.load_digits()
    for i in range(300):
        folder = tmp_path / "pics" / f"digit{d.target[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((d.images[i] * 16).clip(0, 255).astype(np.uint8)).save(
            folder / f"{i}.png")
    _run(cli, tmp_path / "pics", "--max-epochs", "3", "--no-preflight", "--out", tmp_path / "r")
    prof = _read(tmp_path / "r", "profile.json")
    assert prof["modality"] == "image" and prof["n_rows"] == 300
    assert prof["inputs"]["spatial"] == [8, 8] and prof["inputs"]["channels"] == 1
    # --test: a separate folder (here larger colour images) is the test split, as given
    for i in range(300, 360):
        folder = tmp_path / "pics_test" / f"digit{d.target[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        grey = Image.fromarray((d.images[i] * 16).clip(0, 255).astype(np.uint8))
        grey.resize((16, 16)).convert("RGB").save(folder / f"{i}.png")
    _run(cli, tmp_path / "pics", "--test", tmp_path / "pics_test", "--max-epochs", "3",
         "--no-preflight", "--out", tmp_path / "rt")
    prof = _read(tmp_path / "rt", "profile.json")
    assert prof["splits"]["test"] == 60 and prof["splits"]["train"] + prof["splits"][
        "val"] == 300 and "pics_test" in prof["splits"]["how"]
    ev = _read(tmp_path / "rt", "evaluation.json")
    assert ev["n_rows"] == 60 and all(w["name"].startswith("test:") for w in ev["worst"])
    # the finished run on new samples: evaluate reproduces its own test metrics ...
    r = cli("evaluate", tmp_path / "rt", tmp_path / "pics_test", "--out", tmp_path / "ev.json")
    assert r.returncode == 0, r.stderr
    again = _read(tmp_path, "ev.json")
    for name in ("accuracy", "log_loss"):
        assert again["metrics"][name] == pytest.approx(ev["metrics"][name], rel=1e-6)
    # ... and predict reads a flat folder of images, one row per file
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in sorted((tmp_path / "pics_test").rglob("*.png"))[:5]:
        shutil.copy(f, flat / f"{f.parent.name}_{f.name}")
    r = cli("predict", tmp_path / "rt", flat, "--out", tmp_path / "pred.csv")
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 5 and pred["name"].str.endswith(".png").all()
    proba = pred[[c for c in pred.columns if c.startswith("proba_")]]
    assert proba.shape[1] == 10 and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    bad_input(cli("evaluate", tmp_path / "rt", flat), "class subfolder")
    (tmp_path / "pics_test" / "digit_x").mkdir()
    shutil.copy(next((tmp_path / "pics" / "digit0").iterdir()), tmp_path / "pics_test" /
                "digit_x")
    bad_input(cli("train", tmp_path / "pics", "--test", tmp_path / "pics_test", "--out",
                  tmp_path / "x"), "classes the training data lacks: digit_x", out=tmp_path / "x")
    one = tmp_path / "one" / "only"
    one.mkdir(parents=True)
    shutil.copy(next((tmp_path / "pics" / "digit0").iterdir()), one)
    bad_input(cli("train", tmp_path / "one", "--out", tmp_path / "x"), "class",
              out=tmp_path / "x")
    bad_input(cli("train", tmp_path / "pics", "--modality", "video", "--out", tmp_path / "x"),
              "--modality must be one of", out=tmp_path / "x")
    bad_input(cli("train", tmp_path / "pics", "--set", "model.width=32", "--out",
                  tmp_path / "x"), "model.width: not a setting for image data", out=tmp_path / "x")


def test_a_toy_volume_set_trains_a_3d_convnet(cli, tmp_path):
    x, y = volumes()
    np.savez(tmp_path / "vol.npz", x=x, y=y)
    _run(cli, tmp_path / "vol.npz", "--max-epochs", "15", "--out", tmp_path / "run")
    ev = _read(tmp_path / "run", "evaluation.json")
    assert ev["modality"] == "volume"
    assert ev["metrics"]["accuracy"] > ev["baseline"]["metrics"]["accuracy"] + 0.2
    assert "3-D convnet" in _plan(tmp_path / "run")["decisions"]["model.arch"]["reason"]


def test_a_statsmodels_series_forecast_beats_the_last_value(cli, tmp_path, bad_input):
    sm = pytest.importorskip("statsmodels.api")
    sm.datasets.sunspots.load_pandas().data.to_csv(tmp_path / "sun.csv", index=False)
    _run(cli, tmp_path / "sun.csv", "-t", "SUNACTIVITY", "--horizon", "1",
         "--out", tmp_path / "run")
    ev = _read(tmp_path / "run", "evaluation.json")
    assert ev["baseline"]["name"] == "last_value"
    assert ev["metrics"]["rmse"] < ev["baseline"]["metrics"]["rmse"], ev
    plan = _plan(tmp_path / "run")["decisions"]
    assert plan["model.arch"]["value"] == "gru"
    assert plan["train.grad_clip.kind"]["value"] == "global_norm"
    assert "RNN" in plan["train.grad_clip.kind"]["reason"]
    prof = _read(tmp_path / "run", "profile.json")
    assert prof["splits"]["how"].startswith("by time")
    r = cli("predict", tmp_path / "run", tmp_path / "sun.csv", "--out", tmp_path / "next.csv")
    assert r.returncode == 0, r.stderr
    nxt = pd.read_csv(tmp_path / "next.csv")
    assert list(nxt["step"]) == [1] and nxt["after"].iloc[0] == 2008.0
    assert 0 <= nxt["prediction"].iloc[0] < 300  # sunspot numbers
    r = cli("evaluate", tmp_path / "run", tmp_path / "sun.csv", "--out", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    whole = _read(tmp_path, "e.json")  # every window of the series, the training years too
    assert whole["metrics"]["rmse"] < whole["baseline"]["metrics"]["rmse"]
    bad_input(cli("train", tmp_path / "sun.csv", "-t", "SUNACTIVITY", "--horizon", "200",
                  "--out", tmp_path / "x"), "need at least", out=tmp_path / "x")


def test_text_beats_the_majority_class_and_the_doctor_watches_the_gru(cli, tmp_path,
                                                                       bad_input):
    reviews().to_csv(tmp_path / "reviews.csv", index=False)
    _run(cli, tmp_path / "reviews.csv", "-t", "sentiment", "--modality", "text",
         "--max-epochs", "25", "--out", tmp_path / "run")
    ev = _read(tmp_path / "run", "evaluation.json")
    assert ev["metrics"]["accuracy"] > ev["baseline"]["metrics"]["accuracy"] + 0.2
    assert "text" in ev["worst"][0]
    monitored = _read(tmp_path / "run", "monitor.json")["samples"][0]["grad_norm"]
    assert any(k.startswith("rnn.weight_hh") for k in monitored)
    pre = _read(tmp_path / "run", "preprocess.json")
    assert pre["modality"] == "text" and pre["text_column"] == "review"
    assert pre["vocab_size"] > 20
    fresh = reviews(n=40, seed=7)
    fresh[["review"]].to_csv(tmp_path / "new.csv", index=False)
    r = cli("predict", tmp_path / "run", tmp_path / "new.csv", "--out", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == 40 and (pred["prediction"] == fresh["sentiment"]).mean() > 0.7
    fresh.to_csv(tmp_path / "labelled.csv", index=False)
    r = cli("evaluate", tmp_path / "run", tmp_path / "labelled.csv", "--out", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    assert _read(tmp_path, "e.json")["metrics"]["accuracy"] == pytest.approx(
        (pred["prediction"] == fresh["sentiment"]).mean())
    pd.DataFrame({"a": [1, 2, 3] * 10, "y": [0, 1] * 15}).to_csv(tmp_path / "t.csv",
                                                                  index=False)
    bad_input(cli("train", tmp_path / "t.csv", "-t", "y", "--modality", "text", "--out",
                  tmp_path / "x"), "no free-text column", out=tmp_path / "x")


def test_spoken_digits_beat_chance_clearly(cli, tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("Debian's espeak-ng is not installed (make test installs it)")
    from nnrecipe.data.audio import synthesize_spoken_digits

    synthesize_spoken_digits(tmp_path / "spoken", digits=range(4))
    _run(cli, tmp_path / "spoken", "--max-epochs", "40", "--out", tmp_path / "run")
    ev = _read(tmp_path / "run", "evaluation.json")
    assert ev["modality"] == "audio"
    assert ev["metrics"]["accuracy"] > 0.6 > ev["baseline"]["metrics"]["accuracy"], ev
    assert "log-mel" in _plan(tmp_path / "run")["decisions"]["model.arch"]["reason"]
    r = cli("predict", tmp_path / "run", tmp_path / "spoken", "--out", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == len(list((tmp_path / "spoken").rglob("*.wav")))
    truth = pred["name"].str.split("/").str[0]  # class/clip.wav
    assert (pred["prediction"].astype(str) == truth).mean() > 0.6


def test_labelled_sequences_get_a_1d_convnet_that_beats_the_majority(cli, tmp_path, bad_input):
    data = sequences()
    data.to_csv(tmp_path / "seq.csv", index=False)
    _run(cli, tmp_path / "seq.csv", "-t", "shape", "--modality", "sequence", "--out",
         tmp_path / "run")
    ev = _read(tmp_path / "run", "evaluation.json")
    assert ev["modality"] == "sequence"
    assert ev["metrics"]["accuracy"] > 0.9 > 0.5 > ev["baseline"]["metrics"]["accuracy"], ev
    plan = _plan(tmp_path / "run")
    assert plan["decisions"]["model.arch"]["value"] == "cnn"
    assert "1-D convnet" in plan["decisions"]["model.arch"]["reason"]
    assert plan["derived"]["data.modality"]["value"] == "sequence"
    assert _read(tmp_path / "run", "profile.json")["splits"]["how"].startswith("stratified")
    assert (tmp_path / "run" / "mistakes.png").read_bytes().startswith(b"\x89PNG")
    data.drop(columns="shape").head(20).to_csv(tmp_path / "new.csv", index=False)
    r = cli("predict", tmp_path / "run", tmp_path / "new.csv", "--out", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    pred = pd.read_csv(tmp_path / "p.csv")
    assert (pred["prediction"] == data["shape"].head(20)).mean() > 0.8
    data.assign(shape=np.linspace(0, 1, len(data))).to_csv(tmp_path / "reg.csv", index=False)
    bad_input(cli("train", tmp_path / "reg.csv", "-t", "shape", "--modality", "sequence",
                  "--out", tmp_path / "x"), "sequence regression is not supported",
              out=tmp_path / "x")


def test_the_doctor_lr_find_and_plan_commands_take_non_tabular_data(cli, tmp_path):
    sequences(n=120).to_csv(tmp_path / "seq.csv", index=False)
    args = [tmp_path / "seq.csv", "-t", "shape", "--modality", "sequence"]
    r = cli("doctor", *args, "--epochs", "2", "--out", tmp_path / "doc", "-q")
    assert r.returncode == 0, r.stderr
    assert isinstance(_read(tmp_path / "doc", "findings.json"), list)
    assert len((tmp_path / "doc" / "metrics.jsonl").read_text().splitlines()) == 2
    layers = _read(tmp_path / "doc", "monitor.json")["samples"][0]["grad_norm"]
    assert any(k.startswith("blocks.0.conv1") for k in layers)  # the convnet is watched
    r = cli("lr-find", *args, "--out", tmp_path / "lr", "-q")
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.strip()) == _read(tmp_path / "lr", "lr_find.json")["suggestion"]
    r = cli("plan", *args)
    assert r.returncode == 0 and "1-D convnet" in r.stdout
    r = cli("train", *args, "--max-epochs", "2", "--tensorboard", "--out", tmp_path / "tb",
            "-q")
    assert r.returncode == 0, r.stderr
    assert any((tmp_path / "tb" / "tensorboard").iterdir())
