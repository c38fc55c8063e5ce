"""Tables: a CSV, Parquet file or DataFrame of columns, one of which is the target.

Columns are profiled (kinds, missing values, leaks), split 70/15/15 (stratified by class),
preprocessed by a :class:`~nnrecipe.data.Preprocessor` fitted on the training rows (imputing,
scaling, categories as embedding codes), and read by an MLP. Scored against the majority
class or the training mean.

A file too big for that (``data.loader=stream``, chosen by :func:`loader_rule` from the
table's size, or set) is read by row groups instead (data/tables_stream.py): profiled and
preprocessed from a seeded sample, split by a hash of each row's index, trained, validated
and scored a batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data import DataProfile, Preprocessor, load_table, profile_table, split_overlap, split_table
from ..data import tables_stream as ts
from ..data.load import table_name
from ..data.preprocess import class_target_state, numeric_target_state
from ..data.profile import (
    MAX_CLASSES_FROM_INTEGERS,
    check_numbers,
    check_target,
    infer_task,
    show_names,
)
from ..data.split import MIN_ROWS, check_classes
from ..errors import DataError
from ..evaluate import (
    BASELINE_NAME,
    MAIN_METRIC,
    baseline_metrics,
    classification_metrics,
    regression_metrics,
)
from ..evaluate.details import MAX_FEATURES_SHOWN, evaluation_details
from ..models import build_mlp, outputs_to_predictions
from ..plan.rules import Ctx, add_parameter_count, ensemble_rule, make_plan, workers_rule
from ..plan.schema import Decision, Plan
from ..timing import stage
from ..train import predict_batches, predict_stream, target_tensor
from ..tune.search import Dim, mlp_dims
from .base import Inputs, Modality, Prepared, Source, n_trainable, seeded_build, streamed_inputs

__all__ = ["TableModality"]


class TableModality(Modality):
    name = "table"
    unit = "rows"
    fallback = True
    # the plan keys the fitted preprocessing depends on
    encoder_keys = ("data.drop", "data.scale", "model.output_activation")

    def detect(self, source: Source, *, horizon: int | None, window: int | None) -> bool:
        return True  # whatever no other modality claims is read as a table

    # ---- prepare --------------------------------------------------------------------------
    def prepare(self, source: Source, target: str | None, *, task: str,
                given: dict[str, Any], test: Source | None, valid: Source | None,
                pretrained: Any) -> Prepared:
        if pretrained is not None:
            raise DataError("--pretrained applies to convnets on images, volumes, sound or "
                            "sequences; a table's network trains from scratch")
        if target is None:
            raise DataError("give --target, the column to predict")
        if _streams(source, given):
            if test is not None or valid is not None:
                raise DataError("--test and --valid files are read in memory; with "
                                "data.loader=stream the splits come from the one table "
                                "(drop them, or set data.loader=memory)")
            return self._prepare_stream(Path(source), target, task, given)
        with stage("load"):
            df = load_table(source)
            check_target(df, target)
            test_df = _load_companion(test, df, target, "--test") if test is not None else None
            valid_df = (_load_companion(valid, df, target, "--valid") if valid is not None
                        else None)
        return self._prepare_frame(df, target, task, given, test_df, valid_df,
                                   table_name(source))

    def _prepare_frame(self, df: pd.DataFrame, target: str, task: str, given: dict[str, Any],
                       test_df: pd.DataFrame | None, valid_df: pd.DataFrame | None,
                       name: str) -> Prepared:
        with stage("profile"):
            n_missing = int(df[target].isna().sum())
            df = df[df[target].notna()]
            # every input check before the profile (its trees and the metrics fail on them)
            check_numbers(df, target=target)
            for flag, other in (("--test data", test_df), ("--valid data", valid_df)):
                if other is not None:
                    check_numbers(other, flag, target)
            check_classes(df, target, infer_task(df[target], task)[0],
                          internal_splits=(test_df is None) + (valid_df is None))
            profile = profile_table(df, target, task, dropped_target_missing=n_missing)
        with stage("plan"):
            splits = split_table(df, target, profile.task, given.get("seed", 0),
                                 val_df=valid_df, test_df=test_df)
        with stage("profile"):  # the leak check: the same rows on both sides of a split
            features = [c for c in df.columns if c != target]
            profile.splits = {"how": splits.how, **splits.sizes(), "duplicates_across_splits":
                              split_overlap(splits.train, {"val": splits.val,
                                                           "test": splits.test}, features)}
        return self._build(profile, splits, df, name, given, None)

    def _prepare_stream(self, path: Path, target: str, task: str, given: dict[str, Any]
                        ) -> Prepared:
        """A table read by row groups: one pass counts the rows of each split (by hash) and
        the target's classes or moments, and keeps a seeded sample that the profile and
        the preprocessing statistics come from."""
        seed = given.get("seed", 0)
        with stage("load"):
            table = ts.open_table(path)
            if target not in table.columns or len(table.columns) < 2:
                check_target(pd.DataFrame({c: [0] for c in table.columns}), target)
        with stage("profile"):
            sc = ts.scan(table, target, seed)
            if sc.sample.empty and not sc.counts.sum():
                check_target(sc.sample, target)  # missing in every row
            check_numbers(sc.sample, target=target)
            profile = profile_table(sc.sample, target, task,
                                    dropped_target_missing=sc.missing_target)
            profile.task = _streamed_task(sc, profile, task, target)
            n_rows = int(sc.counts.sum())
            empty = [n for k, n in enumerate(ts.SPLIT_NAMES) if not sc.counts[:, k].sum()]
            if n_rows < MIN_ROWS or empty:
                raise DataError(f"too few rows to split: {n_rows} rows, need at least "
                                f"{MIN_ROWS}" + (f" (the split by hash left {', '.join(empty)} "
                                                 "empty)" if empty else "")
                                + "; or set data.loader=memory")
            profile.n_rows = n_rows
            profile.target_summary = _streamed_target_summary(sc, profile.task)
            profile.inputs = {
                "loader": "stream", "table_rows": table.n_rows,
                "table_columns": len(table.columns),
                "table_cells": table.n_rows * len(table.columns),
                "sample_rows": len(sc.sample), "sample_seed": seed,
                "statistics": (f"a seeded sample of {len(sc.sample):,} of {n_rows:,} rows "
                               f"(seed {seed}): column kinds, missing shares, histograms, "
                               "leak checks and the preprocessing statistics (medians, "
                               "means, spreads, category levels); the row counts and the "
                               "target's classes or moments are exact (one pass)")}
            split = ts.hash_split(sc.sample.index.to_numpy(), seed)
            parts = {name: sc.sample[split == k] for k, name in enumerate(ts.SPLIT_NAMES)}
            splits = StreamSplits(
                train=SplitRows(2, sc.counts[:, 2]), val=SplitRows(1, sc.counts[:, 1]),
                test=SplitRows(0, sc.counts[:, 0]), table=table, seed=seed,
                sample_train=parts["train"], scan=sc,
                how=(f"test 15%, val 15%, train 70% by a hash of each row's index in the file "
                     f"(splitmix64, seed {seed}): every row's split is known without the "
                     "others; classes are not stratified on this path"))
            features = [c for c in table.columns if c != target]
            overlap = split_overlap(parts["train"], {"val": parts["val"],
                                                     "test": parts["test"]}, features)
            profile.splits = {"how": splits.how, **splits.sizes(), "duplicates_across_splits":
                              {**overlap, "within_sample_of_rows": len(sc.sample)}}
        return self._build(profile, splits, table, path.stem, given, None)

    def _build(self, profile: DataProfile, splits: Any, df: Any, name: str,
               given: dict[str, Any], reuse: Prepared | None) -> Prepared:
        """Plan, fit the preprocessing (or take ``reuse``'s when it was fitted for the same
        data keys) and build the network, from a profile and splits made once."""
        with stage("plan"):
            the_plan = make_plan(profile, len(splits.train), given)
            streamed = isinstance(splits, StreamSplits)
            if (the_plan["data.loader"] == "stream") != streamed:
                raise DataError("data.loader cannot change once the table is read: prepare "
                                f"it again with data.loader={the_plan['data.loader']}")
            if reuse is not None and all(reuse.plan[k] == the_plan[k]
                                         for k in self.encoder_keys):
                pre = reuse.preprocessor
            else:
                activation = the_plan["model.output_activation"]
                pre = Preprocessor.fit(splits.sample_train if streamed else splits.train,
                                       target=profile.target, task=profile.task,
                                       kinds=profile.feature_kinds, drop=the_plan["data.drop"],
                                       scale=the_plan["data.scale"],
                                       target_activation=activation,
                                       target_transform=(_streamed_target_state(
                                           splits.scan, profile.task, activation)
                                           if streamed else None))
            model = self.build(the_plan, pre)
            the_plan = add_parameter_count(the_plan, n_trainable(model), len(splits.train))
        return Prepared(self, the_plan, profile, pre, model, splits, name, given, data=df)

    def replan(self, prep: Prepared, given: dict[str, Any]) -> Prepared:
        return self._build(prep.profile, prep.splits, prep.data, prep.name, given, prep)

    def refold(self, prep: Prepared, held: np.ndarray) -> Prepared:
        _in_memory(prep, "cross-validation")
        df = prep.data
        return self._prepare_frame(df.drop(index=df.index[held]), prep.profile.target,
                                   prep.profile.task, prep.overrides, df.iloc[held], None,
                                   prep.name)

    def fold_labels(self, prep: Prepared) -> np.ndarray | None:
        _in_memory(prep, "cross-validation")
        if prep.profile.task == "regression":
            return None
        return prep.data[prep.profile.target].astype(str).to_numpy()

    # ---- plan and network -----------------------------------------------------------------
    def plan_rules(self, table_rules: tuple, pretrained: dict | None) -> list:
        return [*table_rules, *STREAM_RULES, ("model.ensemble", ensemble_rule, False)]

    def build(self, plan: Plan, encoder: Any, pretrained: Any = None) -> torch.nn.Module:
        return seeded_build(lambda: build_mlp(plan, encoder.n_numeric,
                                              encoder.embedding_sizes), plan["seed"])

    def search_space(self, plan: Plan) -> list[Dim]:
        return mlp_dims(plan)

    # ---- training and scoring -------------------------------------------------------------
    def inputs(self, prep: Prepared) -> Inputs:
        plan, pre, s = prep.plan, prep.preprocessor, prep.splits
        task = plan["task"]
        if isinstance(s, StreamSplits):
            return streamed_inputs(_stream(prep, s.train, plan), _stream(prep, s.val, plan),
                                   _streamed_val_metrics(pre, plan), plan["seed"])
        x_tr, y_tr, _ = _tensors(pre, s.train, plan, "training data")
        x_va, y_va, y_va_raw = _tensors(pre, s.val, plan, "validation data")

        def val_metrics(out: torch.Tensor, _y: torch.Tensor) -> dict[str, float]:
            values = outputs_to_predictions(out, task, plan["loss.name"])
            if task == "regression":
                err = pre.inverse_target(values) - pre.inverse_target(y_va_raw)
                return {"rmse": float(np.sqrt(np.mean(err**2)))}
            return {"accuracy": float(np.mean(values.argmax(axis=1) == y_va_raw))}

        return Inputs(x_tr, y_tr, x_va, y_va, val_metrics)

    def score(self, prep: Prepared, model: torch.nn.Module, plan: Plan,
              run_dir: Path | None) -> dict[str, Any]:
        if isinstance(prep.splits, StreamSplits):
            return _score_stream(plan, prep.profile, prep.preprocessor, model,
                                 _stream(prep, prep.splits.test, plan, workers=0))
        return _score(plan, prep.profile, prep.preprocessor, model, prep.splits.test,
                      details=True)

    def numeric_columns(self, prep: Prepared) -> list[str] | None:
        pre = prep.preprocessor
        return list(pre.feature_names[:pre.n_numeric])

    def val_ids(self, prep: Prepared) -> Any:
        if isinstance(prep.splits, StreamSplits):  # row indices in the file, found when asked
            return _stream(prep, prep.splits.val, prep.plan, workers=0).row_ids()
        return list(prep.splits.val.index)

    # ---- a finished run -------------------------------------------------------------------
    def encoder_from_dict(self, state: dict[str, Any]) -> Preprocessor:
        return Preprocessor.from_dict(state)

    def predict(self, run: Any, source: Source) -> pd.DataFrame:
        if _streams(source, {}):  # a file too big to read whole: predicted a batch at a time
            frames = ts.iter_frames(Path(source), "predict data")
            parts = [self._predict_frame(run, df) for df in frames]
            if not parts:
                raise DataError(f"predict data {source} has no rows")
            return pd.concat(parts, ignore_index=True)
        return self._predict_frame(run, load_table(source, what="predict data"))

    def _predict_frame(self, run: Any, df: pd.DataFrame) -> pd.DataFrame:
        values = _raw_predict(run.plan, run.preprocessor, run.model, df)
        if run.plan["task"] == "regression":
            return pd.DataFrame({"prediction": values}, index=df.index)
        classes = run.preprocessor.classes
        out = pd.DataFrame({"prediction": np.asarray(classes, dtype=object)[
            values.argmax(axis=1)]}, index=df.index)
        for i, c in enumerate(classes):
            out[f"proba_{c}"] = values[:, i]
        return out

    def evaluate(self, run: Any, source: Source) -> dict[str, Any]:
        what = "evaluate data"
        target = run.profile.target
        if _streams(source, {}):  # a file too big to read whole: scored a chunk at a time
            ys, values = [], []
            for df in ts.iter_frames(Path(source), what):
                check_target(df, target, what)
                df = df[df[target].notna()]
                if len(df):
                    ys.append(run.preprocessor.transform_target(df[target]))
                    values.append(_raw_predict(run.plan, run.preprocessor, run.model, df))
            if not ys:
                raise DataError(f"{what} {source} has no row with a value in target column "
                                f"'{target}'")
            return _scored(run.plan, run.preprocessor, np.concatenate(ys),
                           np.concatenate(values), None)
        df = load_table(source, what=what)
        check_target(df, target, what)
        return _score(run.plan, run.profile, run.preprocessor, run.model,
                      df[df[target].notna()])

    def describe_inputs(self, profile: Any) -> str:
        n = profile.n_columns - 1
        return f"{n} input column{'s' if n != 1 else ''}"


def _load_companion(source: Source, df: pd.DataFrame, target: str, flag: str) -> pd.DataFrame:
    """A --test/--valid table must have the training table's columns, no more, no fewer."""
    other = load_table(source, what=f"{flag} data")
    missing = [c for c in df.columns if c not in other.columns]
    extra = [c for c in other.columns if c not in df.columns]
    if missing or extra:
        raise DataError(f"{flag} data has other columns than the training data: "
                        f"missing {missing}, extra {extra}; give it the same columns")
    other = other[other[target].notna()][list(df.columns)]
    if other.empty:
        raise DataError(f"{flag} data has no row with a value in target column '{target}'")
    return other


def _tensors(pre: Preprocessor, df: pd.DataFrame, plan: Plan, what: str
             ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(x, y shaped for the loss, y as codes / scaled values) for one split."""
    x = torch.from_numpy(pre.transform(df, what=what))
    y = pre.transform_target(df[pre.state["target"]])
    return x, target_tensor(y, plan["task"], plan["loss.name"], plan["model.n_outputs"]), y


def _raw_predict(plan: Plan, pre: Preprocessor, model: torch.nn.Module, df: pd.DataFrame
                 ) -> np.ndarray:
    """Class probabilities, or values in the target's units."""
    x = torch.from_numpy(pre.transform(df, what="predict data"))
    values = outputs_to_predictions(predict_batches(model, x), plan["task"], plan["loss.name"])
    if plan["task"] == "regression":
        values = pre.inverse_target(values)
    return values


def _score(plan: Plan, profile: DataProfile, pre: Preprocessor, model: torch.nn.Module,
           df: pd.DataFrame, details: bool = False) -> dict[str, Any]:
    """Metrics on labelled ``df`` and of the dumb baseline on the same rows; ``details``:
    also the numbers behind the report's curves and worst rows."""
    y = pre.transform_target(df[profile.target])
    values = _raw_predict(plan, pre, model, df)
    return _scored(plan, pre, y, values, df.drop(columns=[profile.target]) if details else None)


def _scored(plan: Plan, pre: Preprocessor, y: np.ndarray, values: np.ndarray,
            features: Any) -> dict[str, Any]:
    """evaluation.json from the targets (class codes or scaled values) and the predictions
    (probabilities or values in the target's units); ``features``: the rows' inputs for the
    worst rows (None: no details)."""
    task = plan["task"]
    target_state = pre.state["target_transform"]
    if task == "regression":
        y_true = pre.inverse_target(y.astype(np.float64))
        metrics = regression_metrics(y_true, values)
        base = baseline_metrics(task, target_state, y_true, [])
    else:
        metrics = classification_metrics(y, values, pre.classes)
        base = baseline_metrics(task, target_state, y, pre.classes)
    extra = {k: metrics.pop(k) for k in ("per_class", "confusion_matrix") if k in metrics}
    for k in ("per_class", "confusion_matrix"):
        base.pop(k, None)
    out = {"task": task, "n_rows": len(y), "main_metric": MAIN_METRIC[task],
           "metrics": metrics, "baseline": {"name": BASELINE_NAME[task], "metrics": base},
           **extra}
    if features is not None:
        out["details"] = evaluation_details(task, y_true if task == "regression" else y,
                                            values, pre.classes, features)
    return out


# ---- tables read by row groups (data.loader=stream) ---------------------------------------
@dataclass
class SplitRows:
    """A streamed split before it is encoded: which split, and its rows per row group."""

    split: int  # 0 test, 1 validation, 2 training (data/tables_stream.py's hash split)
    counts: np.ndarray

    def __len__(self) -> int:
        return int(self.counts.sum())


@dataclass
class StreamSplits:
    """The splits of a table read by row groups: counts, not rows; the training rows of
    the seeded sample are what the preprocessing is fitted on."""

    train: SplitRows
    val: SplitRows
    test: SplitRows
    table: ts.TableFile
    seed: int
    sample_train: pd.DataFrame
    scan: ts.Scan
    how: str

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def _streams(source: Source, given: dict[str, Any]) -> bool:
    """Whether ``source`` is read by row groups: data.loader when set, else by its size
    (:func:`~nnrecipe.data.tables_stream.loader_choice`, from the file's metadata or, for a
    CSV, its size and first lines, before anything is read)."""
    choice = given.get("data.loader", "auto")
    if isinstance(source, pd.DataFrame):
        if choice == "stream":
            raise DataError("data.loader=stream reads a CSV or Parquet file by row groups; a "
                            "DataFrame is in memory already: give the file, or leave "
                            "data.loader unset")
        return False
    if choice != "auto":
        return choice == "stream"
    cells = ts.estimate_cells(Path(source))
    return cells is not None and ts.loader_choice(cells)[0] == "stream"


def _in_memory(prep: Prepared, what: str) -> None:
    if isinstance(prep.splits, StreamSplits):
        raise DataError(f"{what} reads the table in memory; with data.loader=stream it is not "
                        "available: set data.loader=memory (on a table that fits)")


def _streamed_task(sc: ts.Scan, profile: DataProfile, task: str, target: str) -> str:
    """The task with every row's classes counted (the profile saw a sample): a class the
    sample missed still counts, and every class needs a training row (the hash split does
    not stratify)."""
    name = show_names([target])
    if profile.task == "regression":
        return "regression"
    if sc.classes is None:
        raise DataError(f"target {name} has more than {ts.MAX_CLASSES:,} distinct values, too "
                        "many classes to count; give --task regression if it is a quantity")
    counts = sc.class_counts(ts.SPLIT_NAMES)
    if task == "auto":
        if len(counts) > MAX_CLASSES_FROM_INTEGERS and sc.moments \
                and profile.task_reason.startswith("the target holds"):
            # integers read as labels in the sample, but more of them in the whole table
            profile.task_reason = (f"the target is numeric with {len(counts):,} distinct "
                                   "values over every row")
            return "regression"
        chosen = "binary" if len(counts) == 2 else "multiclass"
        if chosen != profile.task:
            profile.task_reason += f" (counted over every row: {len(counts):,} classes)"
    elif task == "binary" and len(counts) != 2:
        raise DataError(f"--task binary needs exactly 2 classes; {name} has {len(counts)}")
    else:
        chosen = task
    train = (sc.classes or {}).get("train", {})
    unseen = [c for c in counts if not train.get(c)]
    if unseen:
        raise DataError(f"target {name}: {len(unseen):,} class(es) have no row in the training "
                        f"split, which is made by a hash of the row index and does not "
                        f"stratify: {show_names(unseen)}; merge or drop the rare classes, or "
                        "set data.loader=memory")
    return chosen


def _streamed_target_summary(sc: ts.Scan, task: str) -> dict[str, Any]:
    """The profile's target summary over every row (counted in the pass)."""
    if task == "regression":
        m = ts.Moments()
        for part in sc.moments.values():
            m.merge(part)
        return m.summary()
    counts = pd.Series(sc.class_counts(ts.SPLIT_NAMES)).sort_values(ascending=False,
                                                                   kind="stable")
    try:
        by_name = counts.sort_index()
    except TypeError:  # labels of several types
        by_name = counts
    return {"classes": {str(k): int(v) for k, v in by_name.items()},
            "majority_share": float(counts.iloc[0] / counts.sum()),
            "minority_share": float(counts.iloc[-1] / counts.sum())}


def _streamed_target_state(sc: ts.Scan, task: str, activation: str) -> dict[str, Any]:
    """The target's encoding from every training row (counted in the pass)."""
    if task == "regression":
        m = sc.moments["train"]
        return numeric_target_state(m.lo, m.hi, m.mean, m.std, activation)
    return class_target_state((sc.classes or {})["train"])


def _stream(prep: Prepared, rows: SplitRows, plan: Plan, workers: int | None = None
            ) -> ts.TableStream:
    s = prep.splits
    encoding = ts.Encoding(prep.preprocessor, plan["task"], plan["loss.name"],
                           plan["model.n_outputs"])
    return ts.TableStream(s.table, rows.split, s.seed, rows.counts, encoding,
                          workers=plan["data.workers"] if workers is None else workers,
                          pin=plan["train.device"] == "cuda")


def _raw_targets(y: torch.Tensor, task: str) -> np.ndarray:
    """Class codes, or scaled values, from targets shaped for the loss."""
    if task == "regression":
        return y.reshape(-1).numpy()
    codes = y.argmax(1) if y.dim() == 2 and y.shape[1] > 1 else y.reshape(-1)
    return codes.long().numpy()


def _streamed_val_metrics(pre: Preprocessor, plan: Plan) -> Any:
    """The validation metric from the outputs and the targets the loop passes (the whole
    validation split, or the doctor's sample of it)."""
    task, loss = plan["task"], plan["loss.name"]

    def val_metrics(out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        values, raw = outputs_to_predictions(out, task, loss), _raw_targets(y, task)
        if task == "regression":
            err = pre.inverse_target(values) - pre.inverse_target(raw)
            return {"rmse": float(np.sqrt(np.mean(err**2)))}
        return {"accuracy": float(np.mean(values.argmax(axis=1) == raw))}

    return val_metrics


def _score_stream(plan: Plan, profile: DataProfile, pre: Preprocessor, model: torch.nn.Module,
                  stream: ts.TableStream) -> dict[str, Any]:
    """The test split scored a batch at a time: only its predictions and targets are kept;
    the worst rows' inputs are read back from the file."""
    out, y = predict_stream(model, stream)
    stream.close()
    values = outputs_to_predictions(out, plan["task"], plan["loss.name"])
    if plan["task"] == "regression":
        values = pre.inverse_target(values)
    shown = [c for c in profile.columns if c != profile.target][:MAX_FEATURES_SHOWN]
    return _scored(plan, pre, _raw_targets(y, plan["task"]), values,
                   ts.StreamedRows(stream, shown))


def loader_rule(ctx: Ctx) -> Decision:
    """data.loader: the in-memory path while its measured peak memory fits the threshold,
    else read by row groups (the choice is made when the table is read, from its size: the
    plan says what was done)."""
    p = ctx.profile
    inputs = p.inputs or {}
    if inputs.get("loader") == "stream":
        choice, why = ts.loader_choice(inputs["table_cells"])
        if choice == "memory":  # a CSV whose size, before it was read, said otherwise
            why += ("; read by row groups all the same: the file's size, measured before "
                    "reading it, put it over the threshold")
        return Decision("stream", why, "data.loader_by_size")
    choice, why = ts.loader_choice(p.n_rows * p.n_columns)
    if choice == "stream":  # a DataFrame, or a file measured under it before it was read
        why += "; but the table was read into memory already"
    return Decision("memory", why, "data.loader_by_size")


def statistics_rule(ctx: Ctx) -> Decision:
    """data.statistics: which rows the profile and the preprocessing statistics come from."""
    inputs = ctx.profile.inputs or {}
    if inputs.get("loader") == "stream":
        return Decision("sample", f"from {inputs['statistics']}", "data.sample_statistics")
    return Decision("all", "from every row: the profile from the whole table, the "
                    "preprocessing statistics from every training row", "data.sample_statistics")


#: the table's own rules, after the shared ones (data.workers reads train.device)
STREAM_RULES = (
    ("data.loader", loader_rule, False),
    ("data.statistics", statistics_rule, True),
    ("data.workers", workers_rule, False),
)
