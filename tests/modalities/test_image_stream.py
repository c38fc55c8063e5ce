"""Image folders read from disk a batch at a time (data.loader=stream): the same batches, the
same run and the same scores as the in-memory path, with file names in memory, not pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nnrecipe import api
from nnrecipe.data import images
from nnrecipe.data.images import ImageFiles, channel_stats, load_image_folder
from nnrecipe.data.profile import DataProfile
from nnrecipe.modalities import get, samples
from nnrecipe.modalities import image as image_mod
from nnrecipe.modalities.image import STREAM_BYTES, image_size_rule, loader_rule
from nnrecipe.pipeline.prepare import prepare
from nnrecipe.plan.rules import Ctx
from nnrecipe.plan.schema import Decision
from nnrecipe.train.streams import PositionStream

STREAM = {"data.loader": "stream", "data.workers": 0}


def _folder(root, n_per_class: int = 30, seed: int = 0):
    """Three classes of small colour pictures (a bright bar across, down, or a square),
    some 12×12 and some 12×16 (so they are resized), as PNG files."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(("across", "down", "square")):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            w = 12 if i % 3 else 16
            px = rng.integers(0, 90, size=(12, w, 3), dtype=np.uint8)
            at = rng.integers(2, 8)
            if c == 0:
                px[at:at + 2, :, 0] = 250
            elif c == 1:
                px[:, at:at + 2, 1] = 250
            else:
                px[at:at + 4, at:at + 4, 2] = 250
            Image.fromarray(px).save(root / name / f"{i}.png")
    return root


def test_a_streamed_batch_equals_the_in_memory_encoding(tmp_path):
    root = _folder(tmp_path / "pics")
    mem = prepare(root, None)
    streamed = prepare(root, None, overrides=STREAM)
    assert isinstance(mem.data.x, np.ndarray) and isinstance(streamed.data.x, ImageFiles)
    assert mem.plan["data.loader"] == "memory" and streamed.plan["data.loader"] == "stream"
    assert mem.preprocessor.state["spatial"] == streamed.preprocessor.state["spatial"]
    assert mem.preprocessor.state["mean"] == streamed.preprocessor.state["mean"]
    pos = streamed.splits.train[[5, 0, 17, 3]]
    x_mem, y_mem = mem.preprocessor.encode(mem.data, pos)
    x_str, y_str = streamed.preprocessor.encode(streamed.data, pos)
    assert torch.equal(x_mem, x_str) and np.array_equal(y_mem, y_str)
    # the stream the loop reads gives the same rows, in its seeded order
    inputs = get("image").inputs(streamed)
    assert isinstance(inputs.train_stream, PositionStream)
    x_all = mem.preprocessor.encode(mem.data, mem.splits.train)[0]
    order = torch.randperm(len(mem.splits.train), generator=torch.Generator().manual_seed(3))
    got = torch.cat([xb for xb, _ in inputs.train_stream.epoch(
        16, torch.Generator().manual_seed(3))])
    assert torch.equal(got, x_all[order[:len(got)]])
    # the doctor's sample: every training image here, in memory
    assert torch.equal(inputs.x_train, x_all)


def test_the_plan_says_why_it_streams_and_at_what_size(tmp_path):
    root = _folder(tmp_path / "pics", n_per_class=10)
    auto = prepare(root, None).plan
    assert auto["data.loader"] == "memory" and auto["data.workers"] == 0
    why = auto.decisions["data.loader"].reason
    assert "under 1 GiB" in why and "data.loader=stream" in why
    assert auto["data.image_size"] == 12  # the median side is below the CPU's 64
    assert "median image side is 12 px" in auto.decisions["data.image_size"].reason
    assert "CPU" in auto.decisions["data.image_size"].reason
    plan = prepare(root, None, overrides={"data.loader": "stream"}).plan
    assert plan.decisions["data.loader"].reason.startswith("set by the user")
    assert plan["data.workers"] >= 0 and plan.decisions["data.workers"].reason
    # the order: the size after the device it depends on, the loader after the size
    keys = list(plan.decisions)
    assert keys.index("train.device") < keys.index("data.image_size") < keys.index(
        "data.loader") < keys.index("data.workers")


@pytest.mark.parametrize(("device", "side"), [("cpu", 64), ("cuda", 224), ("mps", 224)])
def test_the_image_size_follows_the_device(device, side):
    profile = DataProfile(
        n_rows=100, n_columns=0, target="label", task="binary", task_reason="test",
        columns={}, target_summary={}, duplicate_rows=0, constant_columns=[],
        id_like_columns=[], text_columns=[], leak_suspects=[], modality="image",
        inputs={"spatial": [64, 43], "side": 64, "native": [480, 320], "native_side": 480,
                "channels": 3})
    ctx = Ctx(profile, 70, decisions={"train.device": Decision(device, "test", "user")})
    d = image_size_rule(ctx)
    assert d.value == side and "median image side is 480 px (capped)" in d.reason
    assert ("CPU" if device == "cpu" else "GPU") in d.reason
    ctx.decisions["data.image_size"] = d
    loader = loader_rule(ctx)
    assert loader.value == "memory" and f"3×{side}×" in loader.reason


def test_a_large_folder_streams_by_itself(tmp_path, monkeypatch):
    root = _folder(tmp_path / "pics", n_per_class=10)
    monkeypatch.setattr(image_mod, "STREAM_BYTES", 1000)  # as if the folder were huge
    plan = prepare(root, None).plan
    assert plan["data.loader"] == "stream"
    assert "over" in plan.decisions["data.loader"].reason
    assert STREAM_BYTES == 2**30


def test_channel_stats_come_from_a_seeded_sample(tmp_path, monkeypatch):
    root = _folder(tmp_path / "pics")
    monkeypatch.setattr(images, "STATS_SAMPLE", 20)
    monkeypatch.setattr(images.stats_positions, "__defaults__", (20,))
    prep = prepare(root, None, overrides=STREAM)
    state = prep.preprocessor.state
    train = prep.splits.train
    assert state["stats_images"] == 20 and state["stats_of"] == len(train) > 20
    assert "seeded sample of 20" in state["stats_from"]
    pick = np.sort(np.random.default_rng(prep.plan["seed"]).choice(train, 20, replace=False))
    want = channel_stats(load_image_folder(root).x[pick])
    assert np.allclose(state["mean"], want[0]) and np.allclose(state["std"], want[1])
    everything = channel_stats(load_image_folder(root).x[train])
    assert not np.allclose(state["mean"], everything[0])


def test_a_streamed_folder_holds_file_names_not_pixels(tmp_path):
    root = _folder(tmp_path / "pics", n_per_class=10)
    prep = prepare(root, None, overrides=STREAM)
    files = prep.data.x
    assert isinstance(files, ImageFiles) and len(files) == 30
    held = [v for v in vars(files).values() if isinstance(v, np.ndarray)]
    assert all(a.nbytes <= len(files) for a in held)  # one flag per file, no pixels
    assert all(isinstance(p, str) for p in files.paths)
    assert files.decode([0, 1]).shape == (2, 12, 12, 3)


def test_a_streamed_run_trains_and_scores_as_the_in_memory_run(tmp_path, monkeypatch):
    root = _folder(tmp_path / "pics")
    common = {"train.max_epochs": 3}
    mem = api.fit(root, overrides=common, out=tmp_path / "mem", preflight=False)
    monkeypatch.setattr(samples, "SCORE_ROWS", 7)  # the test split scored 7 images at a time
    streamed = api.fit(root, overrides={**common, "data.loader": "stream", "data.workers": 1},
                       out=tmp_path / "stream", preflight=False)
    assert streamed.plan["data.loader"] == "stream" and streamed.plan["data.workers"] == 1
    # the same seeded order, the same decoded pixels: the same weights after training
    for a, b in zip(mem.model.state_dict().values(), streamed.model.state_dict().values(),
                    strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    for name in ("accuracy", "log_loss"):
        assert streamed.evaluation["metrics"][name] == pytest.approx(
            mem.evaluation["metrics"][name], rel=1e-6)
    assert [w["name"] for w in streamed.evaluation["worst"]] == [
        w["name"] for w in mem.evaluation["worst"]]
    assert (tmp_path / "stream" / "mistakes.png").read_bytes().startswith(b"\x89PNG")
    # a finished run predicts a folder read a chunk at a time as it predicts one in memory
    pred_mem = streamed.predict(root)
    monkeypatch.setattr(image_mod, "STREAM_BYTES", 0)  # every folder counts as large
    pred_disk = streamed.predict(root)
    assert list(pred_disk["name"]) == list(pred_mem["name"])
    assert np.allclose(pred_disk.filter(like="proba_").to_numpy(),
                       pred_mem.filter(like="proba_").to_numpy(), atol=1e-6)
    assert get("image").evaluate(streamed, root)["n_rows"] == 90
