"""Plans for non-tabular data: the architecture follows the modality, each with a reason."""

from __future__ import annotations

import pytest

from nnrecipe.data.profile import DataProfile
from nnrecipe.errors import PlanError
from nnrecipe.models.cnn import build_cnn
from nnrecipe.plan import make_plan
from nnrecipe.plan.sizing import conv_parameters


def _profile(modality: str, task: str = "multiclass", **inputs) -> DataProfile:
    summary = ({"mean": 0.0, "std": 1.0, "min": -3.0, "max": 3.0} if task == "regression" else
               {"classes": {"a": 50, "b": 50, "c": 50}, "majority_share": 1 / 3,
                "minority_share": 1 / 3})
    return DataProfile(n_rows=150, n_columns=0, target="label", task=task, task_reason="test",
                       columns={}, target_summary=summary, duplicate_rows=0,
                       constant_columns=[], id_like_columns=[], text_columns=[],
                       leak_suspects=[], modality=modality, inputs=inputs)


def test_images_get_a_convnet_whose_depth_fits_the_image():
    small = make_plan(_profile("image", spatial=[8, 8], side=8, channels=1), 1000)
    assert small["model.arch"] == "cnn" and small["model.blocks"] == 2
    big = make_plan(_profile("image", spatial=[64, 64], side=64, channels=3), 1000)
    assert big["model.blocks"] == 3 and big["model.filters"] == 16
    assert make_plan(_profile("image", spatial=[64, 64], side=64, channels=3), 50_000)[
        "model.blocks"] == 4
    assert "model.width" not in small and "model.hidden_layers" not in small
    assert small["model.dropout"] == 0.5 and "head" in small.decisions["model.dropout"].reason


def test_deep_convnets_get_residual_connections():
    p = make_plan(_profile("image", spatial=[64, 64], side=64, channels=3), 50_000)
    assert p["model.residual"] is True
    assert make_plan(_profile("image", spatial=[64, 64], side=64, channels=3), 50_000,
                     {"model.blocks": 2})["model.residual"] is False


def test_text_gets_a_bidirectional_gru_or_a_transformer_by_size():
    inputs = {"vocab_size": 300, "max_len": 40, "text_column": "t"}
    small = make_plan(_profile("text", **inputs), 1000)
    assert small["model.arch"] == "gru" and small["model.bidirectional"] is True
    assert small["model.dropout"] == 0.3 and small["train.grad_clip.kind"] == "global_norm"
    assert make_plan(_profile("text", **inputs), 30_000)["model.arch"] == "transformer"


def test_a_series_forecasts_horizon_outputs_from_a_window():
    p = make_plan(_profile("series", task="regression", time_column="t"), 500,
                  {"series.horizon": 3})
    assert p["model.n_outputs"] == 3 and p["series.window"] == 12
    assert p["model.output_activation"] == "linear" and p["loss.name"] == "mse"
    assert p["model.bidirectional"] is False


def test_keys_of_another_modality_are_refused():
    with pytest.raises(PlanError, match="model.width: not a setting for image data"):
        make_plan(_profile("image", spatial=[8, 8], side=8, channels=1), 100,
                  {"model.width": 32})
    with pytest.raises(PlanError, match="not a setting for table data"):
        import pandas as pd

        from nnrecipe.data.profile import profile_table

        df = pd.DataFrame({"x": range(40), "y": [0, 1] * 20})
        make_plan(profile_table(df, "y"), 30, {"model.blocks": 2})


def test_labelled_sequences_get_a_1d_convnet_as_deep_as_the_length_allows():
    p = make_plan(_profile("sequence", spatial=[60], length=60, channels=1), 200)
    assert p["model.arch"] == "cnn" and p["model.blocks"] == 3
    assert "1-D convnet" in p.decisions["model.arch"].reason
    assert p["augment.enabled"] is False and p["augment.jitter"] == 0.03
    short = make_plan(_profile("sequence", spatial=[8], length=8, channels=1), 200)
    assert short["model.blocks"] == 2


def test_only_tables_get_an_ensemble():
    image = make_plan(_profile("image", spatial=[8, 8], side=8, channels=1), 1000)
    assert "model.ensemble" not in image
    with pytest.raises(PlanError, match="model.ensemble"):
        make_plan(_profile("image", spatial=[8, 8], side=8, channels=1), 1000,
                  {"model.ensemble": 3})


def test_conv_parameters_counts_what_build_cnn_builds():
    """The plan's closed-form count of a convnet's trainable parameters (it sizes filters
    before any network exists) against the network itself."""
    for dims, channels, size, blocks, filters, n_out in ((2, 1, (8, 8), 2, 16, 10),
                                                         (1, 1, (40,), 3, 32, 3),
                                                         (2, 3, (32, 32), 3, 8, 1)):
        net = build_cnn(dims=dims, in_channels=channels, input_size=size, n_outputs=n_out,
                        blocks=blocks, filters=filters)
        assert sum(p.numel() for p in net.parameters()) == conv_parameters(
            channels=channels, dims=dims, blocks=blocks, filters=filters, n_outputs=n_out)
