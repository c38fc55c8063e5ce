"""Non-tabular data: find the modality, load it, profile it, split it, encode it.

    images / volumes  a folder of class subfolders, or an .npz with x and y
    audio             a folder of class subfolders of WAV files → log-mel frames
    text              a table with a free-text column and a label column
    series            a table with a time column and value columns → windows to forecast

The encoder (:class:`ArrayEncoder`) plays the part the Preprocessor plays for tables: it is
fitted on the training split only, saved as JSON in ``preprocess.json``, and turns samples
into tensors shaped for the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..errors import DataError
from .images import ArraySet, load_array_npz, load_image_folder
from .load import load_table
from .profile import DataProfile, infer_task, target_summary

__all__ = ["ArrayData", "ArraySplits", "attach_test", "detect_modality", "load_arrays",
           "load_for_run", "match_channels", "profile_arrays", "split_arrays"]

AUDIO_EXT = (".wav",)
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
VAL_SHARE = TEST_SHARE = 0.15  # as for tables
MEL_FFT = 512  # log_mel's default FFT size
MODALITIES = ("auto", "table", "image", "volume", "audio", "text", "series", "sequence")


@dataclass
class ArrayData:
    """Loaded samples. ``x``: images (N,H,W,C) uint8, volumes (N,D,H,W,C), waves (N,T),
    texts (N,) str, or a series' values (T, F); ``y``: class codes (N,) (None for a
    series: its targets are the future values)."""

    modality: str
    x: Any
    y: np.ndarray | None
    classes: list[str]
    names: list[str]
    target: str
    task: str
    task_reason: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ArraySplits:
    """Positions of each split's samples (windows for a series)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    how: str
    val_ids: list[Any] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def detect_modality(source: Any, modality: str = "auto", target: str | None = None,
                    horizon: int | None = None) -> str:
    """"table" or a non-tabular modality, from what the source is."""
    if modality not in MODALITIES:
        raise DataError(f"--modality must be one of {', '.join(MODALITIES)}, got '{modality}'")
    if modality != "auto":
        return modality
    if isinstance(source, str | Path) and Path(source).is_dir():
        files = [f.suffix.lower() for f in Path(source).rglob("*") if f.is_file()]
        if any(s in AUDIO_EXT for s in files) and not any(s in IMAGE_EXT for s in files):
            return "audio"
        return "image"
    if isinstance(source, str | Path) and Path(source).suffix.lower() == ".npz":
        return "volume" if load_array_npz(source).is_volume else "image"
    if horizon is not None:
        return "series"
    return "table"


def load_arrays(source: Any, modality: str, target: str | None, task: str = "auto",
                size: tuple[int, int] | None = None, min_classes: int = 2) -> ArrayData:
    """``size``: (height, width) to read an image folder at (by default the images' own);
    ``min_classes``: 1 for a test set, which may hold some of the classes only."""
    if modality in ("image", "volume"):
        s = (load_image_folder(source, size, min_classes=min_classes) if Path(source).is_dir()
             else load_array_npz(source))
        if modality == "volume" and not s.is_volume:
            raise DataError(f"{source} holds images (N, H, W[, C]), not volumes; leave out "
                            "--modality or use --modality image")
        return _classes(modality, s, target or "label", {
            "spatial": list(s.x.shape[1:-1]), "channels": int(s.x.shape[-1])}, min_classes)
    if modality == "audio":
        from .audio import load_wav_folder

        s = load_wav_folder(source, min_classes=min_classes)
        hop = MEL_FFT // 4  # log_mel's default hop: frames = samples // hop + 1 (centred)
        return _classes("audio", s, target or "label", {
            "sample_rate": s.sample_rate, "samples": int(s.x.shape[1]),
            "spatial": [int(s.x.shape[1]) // hop + 1]}, min_classes)
    df = load_table(source)
    if modality == "text":
        return _load_text(df, target)
    if modality == "sequence":
        return _load_sequences(df, target)
    return _load_series(df, target)


def _load_sequences(df: pd.DataFrame, target: str | None,
                    value_columns: list[str] | None = None) -> ArrayData:
    """Labelled sequences: one row per sequence, its steps in the numeric columns (in
    order), the class in ``target``. ``value_columns``: the steps a finished run reads."""
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
    return ArrayData("sequence", _steps(df, steps), codes.astype(np.int64), list(classes),
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


def load_for_run(source: Any, state: dict[str, Any], labelled: bool) -> ArrayData:
    """New samples for a finished run whose encoder state is ``state``: the same kind of
    data as it trained on, classes mapped to its codes (``labelled``), or no labels (to
    predict: a folder of files with or without class subfolders, an .npz without y, a
    table without the label column)."""
    m, target = state["modality"], state["target"]
    if m in ("image", "volume"):
        size = tuple(state["spatial"]) if m == "image" else None  # as the run's test images
        s = (load_image_folder(source, size, unlabelled=not labelled, min_classes=1)
             if Path(source).is_dir() else load_array_npz(source, unlabelled=not labelled))
        x = match_channels(s.x, len(state["mean"]))  # grey ↔ colour, as the run's inputs
        if x.ndim - 2 != len(state["spatial"]):
            raise DataError(f"{source} holds {'volumes' if x.ndim == 5 else 'images'}; the "
                            f"run was trained on {m}s")
        data = ArrayData(m, x, s.y, s.classes, s.names, target, state["task"], "", {})
    elif m == "audio":
        from .audio import load_wav_folder

        s = load_wav_folder(source, state["sample_rate"], unlabelled=not labelled,
                            length=state.get("samples", (state["frames"] - 1) * MEL_FFT // 4),
                            min_classes=1)
        data = ArrayData(m, s.x, s.y, s.classes, s.names, target, state["task"], "", {})
    elif m == "text":
        df = load_table(source)
        need = [state["text_column"]] + ([target] if labelled else [])
        lacking = [c for c in need if c not in df.columns]
        if lacking:
            raise DataError(f"{source} lacks the column(s) {', '.join(lacking)} the run "
                            f"reads; its columns: {', '.join(map(str, df.columns))}")
        if labelled:
            df = df[df[target].notna()]
        codes, classes = (pd.factorize(df[target].astype(str), sort=True) if labelled
                          else (np.zeros(len(df), dtype=np.int64), [""]))
        data = ArrayData(m, df[state["text_column"]].fillna("").astype(str).to_numpy(object),
                         np.asarray(codes, dtype=np.int64), list(classes),
                         [f"row {i}" for i in df.index], target, state["task"], "", {})
    elif m == "sequence":
        df = load_table(source)
        if labelled:
            data = _load_sequences(df, target, state["value_columns"])
        else:
            data = ArrayData(m, _steps(df, state["value_columns"]),
                             np.zeros(len(df), dtype=np.int64), [""],
                             [f"row {i}" for i in df.index], target, state["task"], "", {})
    else:
        data = _load_series(load_table(source), target)
        if data.info["value_columns"] != state["value_columns"]:
            raise DataError(f"{source} has the value columns {data.info['value_columns']}; "
                            f"the run was trained on {state['value_columns']}")
        return data
    if labelled:
        data.y = _run_codes(data, state["classes"], str(source))
    return data


def _run_codes(data: ArrayData, classes: list[str], where: str) -> np.ndarray:
    unknown = sorted(set(data.classes) - set(classes))
    if unknown:
        raise DataError(f"{where} has classes the run never saw: {', '.join(unknown)}; its "
                        f"classes are {', '.join(classes)}")
    return np.asarray([classes.index(c) for c in data.classes], dtype=np.int64)[data.y]


def _classes(modality: str, s: ArraySet, target: str, info: dict, min_classes: int = 2
             ) -> ArrayData:
    if len(s.classes) < min_classes:
        raise DataError(f"found {len(s.classes)} class; a classifier needs at least 2")
    task = "binary" if len(s.classes) == 2 else "multiclass"
    why = f"{len(s.classes)} classes ({', '.join(map(str, s.classes[:10]))})"
    return ArrayData(modality, s.x, s.y, list(map(str, s.classes)), s.names, target, task,
                     why, info)


def _load_text(df: pd.DataFrame, target: str | None) -> ArrayData:
    from .text import Vocabulary, choose_max_len, find_text_column, tokenize

    if target is None or target not in df.columns:
        raise DataError(f"give --target, the label column (columns: {', '.join(df.columns)})")
    df = df[df[target].notna()]
    column = find_text_column(df, target)
    if column is None:
        raise DataError("no free-text column found (strings of several words, mostly unique);"
                        " for a table of features leave out --modality")
    task, why = infer_task(df[target])
    if task == "regression":
        raise DataError(f"text regression is not supported; '{target}' must hold classes")
    texts = df[column].fillna("").astype(str).tolist()
    codes, classes = pd.factorize(df[target].astype(str), sort=True)
    lengths = [len(tokenize(t)) for t in texts]
    vocab = Vocabulary().fit(texts, min_freq=2)
    info = {"text_column": column, "max_len": choose_max_len(lengths),
            "vocab_size": len(vocab), "mean_tokens": float(np.mean(lengths))}
    return ArrayData("text", np.asarray(texts, dtype=object), codes.astype(np.int64),
                     list(classes), [f"row {i}" for i in df.index], target, task, why, info)


def _load_series(df: pd.DataFrame, target: str | None) -> ArrayData:
    from .series import find_time_column

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
    return ArrayData("series", x.to_numpy(np.float32), None, [], [str(t) for t in df[time_col]],
                     target, "regression", f"forecast the next values of '{target}'", info)


def profile_arrays(data: ArrayData) -> DataProfile:
    n = len(data.x)
    if data.y is not None:
        summary = target_summary(pd.Series(np.asarray(data.classes)[data.y]), data.task)
    else:
        col = data.x[:, data.info["target_index"]]
        summary = {"mean": float(col.mean()), "std": float(col.std()),
                   "min": float(col.min()), "max": float(col.max())}
    inputs = dict(data.info)
    if data.modality == "image":
        inputs["side"] = int(max(inputs["spatial"]))
    return DataProfile(n_rows=n, n_columns=0, target=data.target, task=data.task,
                       task_reason=data.task_reason, columns={}, target_summary=summary,
                       duplicate_rows=_duplicates(data), constant_columns=[],
                       id_like_columns=[], text_columns=[], leak_suspects=[],
                       modality=data.modality, inputs=inputs)


def _duplicates(data: ArrayData) -> int:
    if data.modality == "series":
        return 0
    keys = [str(v) if data.modality == "text" else np.ascontiguousarray(v).tobytes()
            for v in data.x]
    return len(keys) - len(set(keys))


def attach_test(data: ArrayData, test: ArrayData, where: str) -> ArrayData:
    """``data`` with the samples of a separate test set (``--test``) appended; the split
    then holds them out as the test split (``info["test_start"]``). The test set's classes
    must be among the training data's; images take the training data's channels."""
    if data.modality in ("series",):
        raise DataError("--test does not apply to a series: its test split is the last "
                        "period of the series itself")
    unknown = sorted(set(test.classes) - set(data.classes))
    if unknown:
        raise DataError(f"{where} has classes the training data lacks: {', '.join(unknown)}; "
                        f"the training classes are {', '.join(data.classes)}")
    codes = np.asarray([data.classes.index(c) for c in test.classes])[test.y]
    x = _like(test.x, data.x, where)
    info = {**data.info, "test_start": len(data.x), "test_source": where}
    return ArrayData(data.modality, np.concatenate([data.x, x]), np.concatenate([data.y, codes]),
                     data.classes, data.names + [f"test:{n}" for n in test.names], data.target,
                     data.task, data.task_reason, info)


def match_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Channels-last images with ``channels`` channels: grey repeated into colour, colour
    averaged into grey; unchanged when they already match."""
    if x.shape[-1] == channels:
        return x
    if x.shape[-1] == 1:
        return np.repeat(x, channels, axis=-1)
    return x.mean(axis=-1, keepdims=True).astype(x.dtype)


def _like(x: np.ndarray, ref: np.ndarray, where: str) -> np.ndarray:
    """Test samples shaped as the training samples: channels converted, waves padded or cut."""
    if x.dtype == object:  # texts
        return x
    if x.ndim == 2:  # waveforms (N, T)
        out = np.zeros((len(x), ref.shape[1]), dtype=ref.dtype)
        n = min(x.shape[1], ref.shape[1])
        out[:, :n] = x[:, :n]
        return out
    x = match_channels(x, ref.shape[-1])
    if x.shape[1:] != ref.shape[1:]:
        raise DataError(f"{where} holds samples of shape {x.shape[1:]}, the training data "
                        f"{ref.shape[1:]}; give both at the same size")
    return x.astype(ref.dtype)


def split_arrays(data: ArrayData, seed: int, window: int = 0, horizon: int = 0
                 ) -> ArraySplits:
    """Stratified 70/15/15 for classes; by time for a series (test = the last period).
    With a separate test set attached (:func:`attach_test`): train/validation 85/15 of the
    training data, and the test set as given."""
    if data.modality == "series":
        return _split_series(len(data.x), window, horizon, data.names)
    if "test_start" in data.info:
        return _split_given_test(data, seed)
    idx = np.arange(len(data.y))
    try:
        rest, test = train_test_split(idx, test_size=TEST_SHARE, random_state=seed,
                                      stratify=data.y)
        train, val = train_test_split(rest, test_size=VAL_SHARE / (1 - TEST_SHARE),
                                      random_state=seed, stratify=data.y[rest])
    except ValueError as e:
        raise DataError(f"cannot split {len(idx)} samples into train/val/test by class ({e});"
                        " give more samples per class") from None
    return ArraySplits(np.sort(train), np.sort(val), np.sort(test),
                       "stratified 70/15/15 by class", [data.names[i] for i in np.sort(val)])


def _split_given_test(data: ArrayData, seed: int) -> ArraySplits:
    start = data.info["test_start"]
    idx, test = np.arange(start), np.arange(start, len(data.y))
    try:
        train, val = train_test_split(idx, test_size=VAL_SHARE / (1 - TEST_SHARE),
                                      random_state=seed, stratify=data.y[:start])
    except ValueError as e:
        raise DataError(f"cannot split {start} samples into train/validation by class ({e});"
                        " give more samples per class") from None
    return ArraySplits(np.sort(train), np.sort(val), test,
                       f"stratified 85/15 by class; test: {data.info['test_source']}",
                       [data.names[i] for i in np.sort(val)])


def _split_series(t: int, window: int, horizon: int, times: list[str]) -> ArraySplits:
    """Window i reads rows i..i+window-1 and predicts the next ``horizon`` rows; each split
    holds the windows whose targets all lie in its period (series.time_split): no target
    value is in two splits."""
    from .series import time_split

    ranges = time_split(t, window, horizon, VAL_SHARE, TEST_SHARE)
    starts = {k: np.arange(a, b - window - horizon + 1) for k, (a, b) in ranges.items()}
    v, te = ranges["val"][0] + window, ranges["test"][0] + window  # first target rows
    return ArraySplits(starts["train"], starts["val"], starts["test"],
                       f"by time: train before {times[v]}, validation before {times[te]}, "
                       "test after", [times[s + window] for s in starts["val"]])
