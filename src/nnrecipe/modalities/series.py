"""Time series: a table with a time column and numeric value columns, one of which is
forecast ``series.horizon`` steps ahead from a window of ``series.window`` past steps.
Split by time (the test period last, no target value in two splits), scaled with the rows
before the validation period only, read by a GRU; scored against the last observed value,
the worst forecasts plotted into ``mistakes.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.augment import SeriesAugment
from ..data.load import load_table
from ..data.series import (
    find_time_column,
    fit_scaler,
    make_windows,
    naive_forecast,
    scale,
    time_split,
    unscale,
)
from ..errors import DataError
from ..evaluate import MAIN_METRIC, regression_metrics
from ..lazy import lazy
from ..plan.network_rules import RNN_RULES, const, dropout_rule
from ..plan.rules import Ctx, Decision
from ..plan.schema import Plan
from ..runs import RUN_FILES
from ..train import predict_batches
from ..tune.search import Dim, rnn_dims
from .base import Inputs, Prepared
from .samples import (
    VAL_SHARE,
    WORST,
    SampleEncoder,
    SampleModality,
    Samples,
    SampleSplits,
    figure,
    save_figure,
)

model_selection = lazy("sklearn.model_selection")

__all__ = ["SeriesEncoder", "SeriesModality"]

TEST_SHARE = VAL_SHARE
SHOWN = 6  # worst forecasts plotted


class SeriesEncoder(SampleEncoder):
    """Per-column mean and std (from the rows before the validation period), the window and
    the horizon: ``encode`` gives windows (N, W, F) and their scaled targets (N, H)."""

    @property
    def input_shape(self) -> list[int]:
        return [self.state["window"], len(self.state["mean"])]

    def encode(self, data: Samples, pos: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        s = self.state
        w, h = s["window"], s["horizon"]
        scaled = scale(data.x, s)
        x, y = make_windows(scaled[pos[0]:pos[-1] + w + h], w, h, s["target_index"])
        return torch.from_numpy(np.ascontiguousarray(x, np.float32)), y

    def inverse_target(self, values: np.ndarray) -> np.ndarray:
        return unscale(values, self.state, self.state["target_index"])


def _why(ctx: Ctx) -> Decision:
    return Decision("series", f"time series: ordered by "
                    f"'{ctx.profile.inputs.get('time_column')}'", "data.modality")


def window_rule(ctx: Ctx) -> Decision:
    horizon = ctx["series.horizon"]
    w = max(8, 4 * horizon)
    return Decision(w, f"the forecaster sees the last {w} steps (at least 8, 4× the "
                    "horizon); set series.window to a full season when there is one",
                    "series.window")


def horizon_outputs_rule(ctx: Ctx) -> Decision:
    h = ctx["series.horizon"]
    return Decision(h, f"one output per forecast step ({h})", "output.horizon")


class SeriesModality(SampleModality):
    name = "series"
    encoder = SeriesEncoder
    encoder_keys = ("series.window", "series.horizon")
    own_rules = (
        ("data.modality", _why, True),
        ("series.horizon", const(1, "forecast one step ahead (set --horizon)",
                                 "series.horizon"), False),
        ("series.window", window_rule, False),
        ("model.arch", const("gru", "time series → a GRU over the window of past values "
                             "(RNNs or 1-D convnets for time series)", "model.arch_by_modality"),
         False),
        *RNN_RULES,
        ("model.bidirectional", const(False, "a forecaster reads the past only in order",
                                      "model.bidirectional"), False),
        ("model.dropout", dropout_rule, False),
        ("augment.enabled", const(False, "augmentation off: the values themselves carry the "
                                  "signal; turn on with augment.enabled=true (jitter, "
                                  "scaling)", "augment.off"), False),
        ("augment.jitter", const(0.03, "noise of 3% of each feature's spread when on",
                                 "augment.series"), False),
    )
    replaces = {"model.n_outputs": horizon_outputs_rule,
                "model.output_activation": const(
                    "linear", "the series is standardised: a linear output reaches any scaled "
                    "value", "output.linear")}


    def search_space(self, plan: Plan) -> list[Dim]:
        return rnn_dims(plan)

    def detect(self, source: Any, *, horizon: int | None, window: int | None) -> bool:
        return horizon is not None or window is not None

    def load(self, source: Any, target: str | None, task: str, *, like: Samples | None = None,
             min_classes: int = 2) -> Samples:
        return _load_series(load_table(source), target)

    def attach_test(self, data: Samples, test: Samples, where: str) -> Samples:
        raise DataError("--test does not apply to a series: its test split is the last "
                        "period of the series itself")

    def load_for_run(self, source: Any, state: dict[str, Any], labelled: bool) -> Samples:
        data = _load_series(load_table(source), state["target"])
        if data.info["value_columns"] != state["value_columns"]:
            raise DataError(f"{source} has the value columns {data.info['value_columns']}; "
                            f"the run was trained on {state['value_columns']}")
        return data

    def target_summary(self, data: Samples) -> dict[str, Any]:
        col = data.x[:, data.info["target_index"]]
        return {"mean": float(col.mean()), "std": float(col.std()),
                "min": float(col.min()), "max": float(col.max())}

    def duplicates(self, data: Samples) -> int:
        return 0

    def split(self, data: Samples, plan: Plan, held: np.ndarray | None) -> SampleSplits:
        """Window i reads rows i..i+window-1 and predicts the next ``horizon`` rows; each
        split holds the windows whose targets all lie in its period (series.time_split): no
        target value is in two splits. ``held``: a fold's test windows; the windows whose
        targets end before them train (the last 15% of those validate)."""
        w, h, times = plan["series.window"], plan["series.horizon"], data.names
        if held is not None:
            return self._split_before(data, w, h, np.sort(held))
        ranges = time_split(len(data.x), w, h, VAL_SHARE, TEST_SHARE)
        starts = {k: np.arange(a, b - w - h + 1) for k, (a, b) in ranges.items()}
        v, te = ranges["val"][0] + w, ranges["test"][0] + w  # first target rows
        return SampleSplits(starts["train"], starts["val"], starts["test"],
                            f"by time: train before {times[v]}, validation before "
                            f"{times[te]}, test after", [times[s + w] for s in starts["val"]])

    @staticmethod
    def _split_before(data: Samples, w: int, h: int, held: np.ndarray) -> SampleSplits:
        first = int(held[0])
        before = np.arange(max(0, first - h + 1))  # their targets end before the fold's
        n_val = max(1, int(round(VAL_SHARE * len(before))))
        # the validation windows' targets must not reach back into training targets either
        train = before[:max(0, len(before) - n_val - h + 1)]
        val = before[len(before) - n_val:]
        if len(train) < 2:
            raise DataError(f"the fold starting at {data.names[first + w]} leaves too few "
                            "windows before it to train on; use fewer folds")
        times = data.names
        return SampleSplits(train, val, held, f"by time: train before {times[val[0] + w]}, "
                            f"validation before {times[first + w]}, test the fold after",
                            [times[s + w] for s in val])

    def folds(self, prep: Prepared, k: int, seed: int) -> list[np.ndarray]:
        """Expanding-window folds (scikit-learn's TimeSeriesSplit over the windows): each
        fold tests a later period and trains on everything before it."""
        if k < 2:
            raise DataError(f"--folds must be at least 2, got {k}")
        w, h = prep.plan["series.window"], prep.plan["series.horizon"]
        n = len(prep.data.x) - w - h + 1
        if n < 5 * (k + 1):
            raise DataError(f"--folds {k} is too many for {n} windows of this series: each "
                            f"fold needs at least 5 (at most {max(2, n // 5 - 1)} folds)")
        return [test for _, test in model_selection.TimeSeriesSplit(k).split(np.zeros(n))]

    def fit_encoder(self, data: Samples, train: np.ndarray, plan: Plan) -> SeriesEncoder:
        """Scale with the rows before the validation period only."""
        w, h = plan["series.window"], plan["series.horizon"]
        state = SampleEncoder.base_state(data)
        state.update(**fit_scaler(data.x[: int(train.max()) + w + h]), window=w, horizon=h,
                     target_index=data.info["target_index"],
                     value_columns=data.info["value_columns"])
        return SeriesEncoder(state)

    def augment(self, plan: Plan) -> Any:
        if not plan["augment.enabled"]:
            return None  # jitter only: scaling the inputs would need the targets scaled too
        return SeriesAugment(jitter=plan["augment.jitter"], seed=plan["seed"])

    def inputs(self, prep: Prepared) -> Inputs:
        enc, data, s = prep.preprocessor, prep.data, prep.splits
        x_tr, y_tr = enc.encode(data, s.train)
        x_va, y_va = enc.encode(data, s.val)

        def val_metrics(out: torch.Tensor, _y: torch.Tensor) -> dict[str, float]:
            err = enc.inverse_target(out.detach().numpy()) - enc.inverse_target(y_va)
            return {"rmse": float(np.sqrt(np.mean(err**2)))}

        return Inputs(x_tr, torch.from_numpy(y_tr), x_va, torch.from_numpy(y_va), val_metrics)

    def score(self, prep: Prepared, model: torch.nn.Module, plan: Plan,
              run_dir: Path | None) -> dict[str, Any]:
        return self._score(prep.preprocessor, prep.data, prep.splits.test, model, plan,
                           run_dir)

    def _score(self, enc: SeriesEncoder, data: Samples, test: np.ndarray,
               model: torch.nn.Module, plan: Plan, run_dir: Path | None) -> dict[str, Any]:
        """Test metrics beside the last observed value's, and the worst forecasts."""
        x, y = enc.encode(data, test)
        out = predict_batches(model, x)
        truth, pred = enc.inverse_target(y), enc.inverse_target(out.numpy())
        naive = enc.inverse_target(naive_forecast(x.numpy(), truth.shape[1],
                                                  enc.state["target_index"]))
        loss = ((pred - truth) ** 2).mean(axis=1)
        order = np.argsort(-loss, kind="stable")[:WORST]
        w = enc.state["window"]
        rows = [{"name": data.names[test[i] + w], "loss": float(loss[i]),
                 "true": truth[i].tolist(), "pred": pred[i].tolist()} for i in order]
        if run_dir is not None and len(order):
            top = order[:SHOWN]
            _plot_series(data, test[top], truth[top], pred[top], enc,
                         Path(run_dir) / RUN_FILES["mistakes"])
        return {"task": plan["task"], "modality": data.modality, "n_rows": len(test),
                "main_metric": MAIN_METRIC[plan["task"]],
                "metrics": regression_metrics(truth.ravel(), pred.ravel()),
                "baseline": {"name": "last_value",
                             "metrics": regression_metrics(truth.ravel(), naive.ravel())},
                "worst": rows}

    def predict(self, run: Any, source: Any) -> pd.DataFrame:
        """The next ``series.horizon`` values after the last row of the given series."""
        data = self.load_for_run(source, run.preprocessor.state, labelled=False)
        s = run.preprocessor.state
        w, h = s["window"], s["horizon"]
        if len(data.x) < w:
            raise DataError(f"{source} has {len(data.x)} rows; the forecaster reads the last "
                            f"{w} (series.window): give at least {w}")
        last = torch.from_numpy(scale(data.x[-w:], s)[None])  # (1, W, F)
        pred = run.preprocessor.inverse_target(predict_batches(run.model, last).numpy())[0]
        return pd.DataFrame({"after": data.names[-1], "step": np.arange(1, h + 1),
                             "prediction": pred})

    def evaluate(self, run: Any, source: Any) -> dict[str, Any]:
        """evaluation.json's layout for every window of a new stretch of the series."""
        enc = run.preprocessor
        data = self.load_for_run(source, enc.state, labelled=True)
        n = len(data.x) - enc.state["window"] - enc.state["horizon"] + 1
        if n < 1:
            raise DataError(f"{source} has {len(data.x)} rows; window + horizon needs "
                            f"{len(data.x) - n + 1}")
        return self._score(enc, data, np.arange(n), run.model, run.plan, None)

    def describe_inputs(self, profile: Any) -> str:
        return "the values that came before (a window of the series)"


def _load_series(df: pd.DataFrame, target: str | None) -> Samples:
    time_col = find_time_column(df)
    if time_col is None:
        raise DataError("no time column found (dates, or an increasing time/date/year "
                        "column); a forecast needs the order of the rows")
    df = df.sort_values(time_col)
    values = [c for c in df.columns if c != time_col and pd.api.types.is_numeric_dtype(df[c])]
    if target is None and len(values) == 1:
        target = values[0]
    if target not in values:
        raise DataError(f"--target must be one of the numeric value columns {values}, "
                        f"got '{target}'")
    x = df[values].astype(float)
    if x.isna().any().any():
        x = x.interpolate(limit_direction="both")  # gaps in a series: the neighbours' line
    info = {"time_column": time_col, "value_columns": values,
            "target_index": values.index(target), "length": len(x)}
    return Samples("series", x.to_numpy(np.float32), None, [], [str(t) for t in df[time_col]],
                   target, "regression", f"forecast the next values of '{target}'", info)


def _plot_series(data: Samples, starts: np.ndarray, truth: np.ndarray, pred: np.ndarray,
                 enc: SeriesEncoder, path: Path) -> None:
    """The worst forecasts: the window the network saw, what came, what it said."""
    w, t = enc.state["window"], enc.state["target_index"]
    fig = figure(len(starts))
    for k, (s, tr, pr) in enumerate(zip(starts, truth, pred, strict=True)):
        ax = fig.add_subplot(len(starts), 1, k + 1)
        ax.plot(range(w), data.x[s:s + w, t], color="0.4", label="seen")
        ax.plot(range(w, w + len(tr)), tr, "o-", color="tab:green", label="actual")
        ax.plot(range(w, w + len(pr)), pr, "x--", color="tab:red", label="forecast")
        ax.set_title(f"from {data.names[s + w]}", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=7, loc="upper left")
    save_figure(fig, path)
