"""Labelled sequences: a table with one sequence per row, its steps in the numeric columns
(in order) and its class in the target column (``--modality sequence``). Standardised with
one scale for every step (the shape is the signal) and read by a 1-D convnet; the worst
test sequences are plotted into ``mistakes.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.images import STD_FLOOR, channel_stats
from ..data.load import load_table
from ..data.profile import infer_task
from ..errors import DataError
from ..plan.network_rules import CONV_RULES, const, dropout_rule
from ..plan.rules import Ctx, Decision
from ..plan.schema import Plan
from ..runs import RUN_FILES
from .audio import SIGNAL_AUGMENT_RULES, channels_last_augment
from .convnet import ConvModality
from .samples import SampleEncoder, Samples, figure, save_figure

__all__ = ["SequenceEncoder", "SequenceModality"]

SHOWN = 6  # worst sequences plotted


class SequenceEncoder(SampleEncoder):
    """(N, T, F) → standardised (N, F, T): channels first for the 1-D convolutions."""

    @property
    def input_shape(self) -> list[int]:
        return [len(self.state["mean"]), self.state["length"]]

    def encode(self, data: Samples, pos: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        mean, std = (torch.tensor(self.state[k], dtype=torch.float32) for k in ("mean", "std"))
        x = (torch.from_numpy(np.ascontiguousarray(data.x[pos], np.float32)) - mean) / std
        return x.transpose(1, 2).contiguous(), data.y[pos]


def _why(ctx: Ctx) -> Decision:
    return Decision("sequence", f"labelled sequences: one per row, "
                    f"{ctx.profile.inputs.get('length')} steps in the numeric columns",
                    "data.modality")


class SequenceModality(ConvModality):
    name = "sequence"
    encoder = SequenceEncoder
    own_rules = (
        ("data.modality", _why, True),
        ("model.arch", const("cnn", "labelled sequences → a 1-D convnet: it finds a shape "
                             "wherever it occurs in the sequence and reads every step at once "
                             "(RNNs or 1-D convnets for time series)", "model.arch_by_modality"),
         False),
        *CONV_RULES,
        ("model.dropout", dropout_rule, False),
        *SIGNAL_AUGMENT_RULES,
    )

    def load(self, source: Any, target: str | None, task: str, *, like: Samples | None = None,
             min_classes: int = 2) -> Samples:
        return _load_sequences(load_table(source), target)

    def read_for_run(self, source: Any, state: dict[str, Any], labelled: bool) -> Samples:
        df = load_table(source)
        if labelled:
            return _load_sequences(df, state["target"], state["value_columns"])
        return Samples("sequence", _steps(df, state["value_columns"]),
                       np.zeros(len(df), dtype=np.int64), [""],
                       [f"row {i}" for i in df.index], state["target"], state["task"], "", {})

    def fit_features(self, data: Samples, train: np.ndarray, plan: Plan) -> SequenceEncoder:
        mean, std = channel_stats(data.x[train])  # one scale for every step
        state = SampleEncoder.base_state(data)
        state.update(mean=mean, std=[max(v, STD_FLOOR) for v in std],
                     length=int(data.x.shape[1]), value_columns=data.info["value_columns"])
        return SequenceEncoder(state)

    def augment(self, plan: Plan) -> Any:
        return channels_last_augment(plan)

    def show_worst(self, data: Samples, pos: np.ndarray, rows: list[dict[str, Any]],
                   run_dir: Path) -> None:
        """The worst-classified sequences, each with its true and predicted class."""
        x, rows = data.x[pos[:SHOWN]], rows[:SHOWN]
        fig = figure(len(x))
        for k, (seq, row) in enumerate(zip(x, rows, strict=True)):
            ax = fig.add_subplot(len(x), 1, k + 1)
            ax.plot(seq[:, 0], color="tab:blue")
            ax.set_title(f"{row['name']}: true {row['true']} / pred {row['pred']} "
                         f"(p={row['p_pred']:.2f})", fontsize=8, loc="left")
            ax.tick_params(labelsize=7)
        save_figure(fig, run_dir / RUN_FILES["mistakes"])

    def describe_inputs(self, profile: Any) -> str:
        return f"sequences of {(profile.inputs or {}).get('length')} steps"


def _load_sequences(df: pd.DataFrame, target: str | None,
                    value_columns: list[str] | None = None) -> Samples:
    """One row per sequence, its steps in the numeric columns (in order), the class in
    ``target``. ``value_columns``: the steps a finished run reads."""
    if target is None or target not in df.columns:
        raise DataError(f"give --target, the label column (columns: "
                        f"{', '.join(map(str, df.columns[:12]))})")
    df = df[df[target].notna()]
    steps = value_columns or [c for c in df.columns
                              if c != target and pd.api.types.is_numeric_dtype(df[c])]
    if len(steps) < 4:
        raise DataError(f"a labelled sequence needs its steps as numeric columns, one row per "
                        f"sequence; found {len(steps)} numeric column(s)")
    task, why = infer_task(df[target])
    if task == "regression":
        raise DataError(f"sequence regression is not supported; '{target}' must hold classes "
                        "(for a forecast, give a time column and --horizon)")
    codes, classes = pd.factorize(df[target].astype(str), sort=True)
    info = {"value_columns": [str(c) for c in steps], "length": len(steps),
            "spatial": [len(steps)], "channels": 1}
    return Samples("sequence", _steps(df, steps), codes.astype(np.int64), list(classes),
                   [f"row {i}" for i in df.index], target, task,
                   f"{why}; each row one sequence of {len(steps)} steps", info)


def _steps(df: pd.DataFrame, steps: list) -> np.ndarray:
    """(N, T, 1) float32 from the step columns; a gap takes its neighbours' line."""
    lacking = [c for c in steps if c not in df.columns]
    if lacking:
        raise DataError(f"the table lacks the step column(s) {', '.join(lacking[:5])}")
    values = df[steps].astype(float).interpolate(axis=1, limit_direction="both")
    if values.isna().any().any():
        raise DataError("some sequences hold no numbers at all; drop those rows")
    return values.to_numpy(np.float32)[..., None]
