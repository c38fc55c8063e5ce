"""New samples for a finished run (load_for_run) and a separate test set (attach_test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nnrecipe.errors import DataError
from nnrecipe.modalities import get


def load_for_run(source, state, labelled):
    return get(state["modality"]).load_for_run(source, state, labelled)

IMAGE_STATE = {"modality": "image", "target": "label", "task": "binary", "classes": ["a", "b"],
               "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2], "spatial": [4, 4]}


def test_images_to_predict_need_no_labels_and_take_the_runs_channels(tmp_path):
    grey = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4)
    np.savez(tmp_path / "x.npz", x=grey)
    data = load_for_run(tmp_path / "x.npz", IMAGE_STATE, labelled=False)
    assert data.x.shape == (6, 4, 4, 3)  # a colour run: grey repeated into 3 channels
    assert np.array_equal(data.x[..., 2], grey)
    with pytest.raises(DataError, match="no array named 'y'"):
        load_for_run(tmp_path / "x.npz", IMAGE_STATE, labelled=True)


def test_labels_map_to_the_runs_codes_and_unknown_classes_are_refused(tmp_path):
    x = np.zeros((4, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "b_only.npz", x=x, y=np.array(["b"] * 4))
    assert load_for_run(tmp_path / "b_only.npz", IMAGE_STATE, labelled=True).y.tolist() == \
        [1, 1, 1, 1]
    np.savez(tmp_path / "c.npz", x=x, y=np.array(["a", "c", "a", "c"]))
    with pytest.raises(DataError, match="classes the run never saw: c"):
        load_for_run(tmp_path / "c.npz", IMAGE_STATE, labelled=True)


def test_text_and_series_need_the_columns_the_run_reads(tmp_path):
    state = {"modality": "text", "target": "y", "task": "binary", "classes": ["n", "p"],
             "text_column": "review"}
    pd.DataFrame({"body": ["a b c"], "y": ["p"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="lacks the column.*review.*its columns: body, y"):
        load_for_run(tmp_path / "t.csv", state, labelled=False)
    pd.DataFrame({"review": ["good film", None]}).to_csv(tmp_path / "ok.csv", index=False)
    data = load_for_run(tmp_path / "ok.csv", state, labelled=False)
    assert list(data.x) == ["good film", ""]
    series = {"modality": "series", "target": "v", "value_columns": ["v", "w"]}
    pd.DataFrame({"year": range(10), "v": range(10)}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match="trained on \\['v', 'w'\\]"):
        load_for_run(tmp_path / "s.csv", series, labelled=False)


def test_a_separate_test_set_is_held_out_as_given(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.integers(0, 255, (40, 4, 4), dtype=np.uint8),
             y=np.array([0, 1] * 20))
    np.savez(tmp_path / "test.npz", x=rng.integers(0, 255, (7, 4, 4, 3), dtype=np.uint8),
             y=np.array([1] * 7))
    image = get("image")
    data = image.load(tmp_path / "train.npz", None, "auto")
    test = image.load(tmp_path / "test.npz", None, "auto", like=data, min_classes=1)
    both = image.attach_test(data, test, "test.npz")
    assert both.x.shape == (47, 4, 4, 1)  # colour test images made grey like the training
    assert both.y[40:].tolist() == [1] * 7  # the test set's own class '1' keeps its code
    s = image.split(both, {"seed": 0}, None)
    assert s.test.tolist() == list(range(40, 47))
    assert sorted(s.train.tolist() + s.val.tolist()) == list(range(40))
    assert len(s.val) == 8 and "test.npz" in s.how  # ceil(40 × 15/85)
