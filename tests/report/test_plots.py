"""Every plot is a PNG data URI (or None when there is nothing to draw)."""

from __future__ import annotations

import base64

import pytest

from nnrecipe.report import plots

PNG = b"\x89PNG\r\n\x1a\n"


def decoded(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    data = base64.b64decode(uri[len(prefix):], validate=True)
    assert data.startswith(PNG) and len(data) > 1000
    return data


EPOCHS = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_accuracy": 0.5 + e / 20,
           "lr": 0.01 * 0.5 ** (e // 3), "attempt": int(e > 4)} for e in range(1, 9)]
SAMPLES = [{"step": s, "epoch": 1 + s // 100, "attempt": 0,
            "grad_norm": {"body.0": 0.1 * (s + 1), "head": 0.01}, "dead_share": {"body.2": 0.1}}
           for s in range(0, 500, 50)]


def test_each_plot_is_a_png_data_uri():
    binary = {"roc": {"fpr": [0, 0.2, 1], "tpr": [0, 0.8, 1], "auc": 0.8},
              "pr": {"precision": [0.5, 0.8, 1], "recall": [1, 0.6, 0], "average_precision": 0.7},
              "prevalence": 0.5}
    trials = [{"number": 0, "state": "COMPLETE", "intermediate": {"1": 0.9, "2": 0.5}},
              {"number": 1, "state": "PRUNED", "intermediate": {"1": 1.2}}]
    uris = [
        plots.learning_curves(EPOCHS, metric="accuracy", best_epoch=6, stopped_early=True,
                              marks=[(2, "F1", "error"), (2, "F2", "warning")]),
        plots.lr_per_epoch(EPOCHS),
        plots.layer_monitor(SAMPLES),
        plots.roc_pr(binary),
        plots.residuals({"actual": [1.0, 2.0, 3.0], "predicted": [1.1, 1.8, 3.3]}),
        plots.trial_curves(trials, best=0),
        plots.overlay_curves([("a $x$", EPOCHS), ("b", EPOCHS[:4])], "accuracy"),
        plots.fold_scores([0.8, 0.9, 0.85], [0.5, 0.5, 0.5], "accuracy"),
    ]
    for uri in uris:
        decoded(uri)


@pytest.mark.parametrize("call", [
    lambda: plots.learning_curves([], metric=None),
    lambda: plots.lr_per_epoch([]),
    lambda: plots.layer_monitor([]),
    lambda: plots.trial_curves([{"number": 0, "state": "FAIL", "intermediate": {}}], None),
    lambda: plots.overlay_curves([("a", [])], None),
    lambda: plots.fold_scores([], [], "rmse"),
])
def test_nothing_to_draw_gives_none(call):
    assert call() is None


def test_a_curve_without_the_metric_or_with_nan_still_draws():
    epochs = [{"epoch": 1, "train_loss": float("nan"), "val_loss": 2.0},
              {"epoch": 2, "train_loss": 1.0, "val_loss": float("inf")}]
    decoded(plots.learning_curves(epochs, metric="accuracy"))
    decoded(plots.layer_monitor([{"step": 1, "epoch": 1, "grad_norm": {"l": float("nan")},
                                  "dead_share": {}}]))
