"""Tables: a CSV, Parquet file or DataFrame of columns, one of which is the target.

Columns are profiled (kinds, missing values, leaks), split 70/15/15 (stratified by class),
preprocessed by a :class:`~nnrecipe.data.Preprocessor` fitted on the training rows (imputing,
scaling, categories as embedding codes), and read by an MLP. Scored against the majority
class or the training mean.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data import DataProfile, Preprocessor, load_table, profile_table, split_overlap, split_table
from ..data.load import table_name
from ..data.profile import check_numbers, check_target, infer_task
from ..data.split import check_classes
from ..errors import DataError
from ..evaluate import (
    BASELINE_NAME,
    MAIN_METRIC,
    baseline_metrics,
    classification_metrics,
    regression_metrics,
)
from ..evaluate.details import evaluation_details
from ..models import build_mlp, outputs_to_predictions
from ..plan.rules import add_parameter_count, make_plan
from ..plan.schema import Plan
from ..timing import stage
from ..train import predict_batches, target_tensor
from ..tune.search import Dim, mlp_dims
from .base import Inputs, Modality, Prepared, Source, n_trainable, seeded_build

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

    def _build(self, profile: DataProfile, splits: Any, df: pd.DataFrame, name: str,
               given: dict[str, Any], reuse: Prepared | None) -> Prepared:
        """Plan, fit the preprocessing (or take ``reuse``'s when it was fitted for the same
        data keys) and build the network, from a profile and splits made once."""
        with stage("plan"):
            the_plan = make_plan(profile, len(splits.train), given)
            if reuse is not None and all(reuse.plan[k] == the_plan[k]
                                         for k in self.encoder_keys):
                pre = reuse.preprocessor
            else:
                pre = Preprocessor.fit(splits.train, target=profile.target, task=profile.task,
                                       kinds=profile.feature_kinds, drop=the_plan["data.drop"],
                                       scale=the_plan["data.scale"],
                                       target_activation=the_plan["model.output_activation"])
            model = self.build(the_plan, pre)
            the_plan = add_parameter_count(the_plan, n_trainable(model), len(splits.train))
        return Prepared(self, the_plan, profile, pre, model, splits, name, given, data=df)

    def replan(self, prep: Prepared, given: dict[str, Any]) -> Prepared:
        return self._build(prep.profile, prep.splits, prep.data, prep.name, given, prep)

    def refold(self, prep: Prepared, held: np.ndarray) -> Prepared:
        df = prep.data
        return self._prepare_frame(df.drop(index=df.index[held]), prep.profile.target,
                                   prep.profile.task, prep.overrides, df.iloc[held], None,
                                   prep.name)

    def fold_labels(self, prep: Prepared) -> np.ndarray | None:
        if prep.profile.task == "regression":
            return None
        return prep.data[prep.profile.target].astype(str).to_numpy()

    # ---- plan and network -----------------------------------------------------------------
    def plan_rules(self, table_rules: tuple, pretrained: dict | None) -> list:
        return list(table_rules)

    def build(self, plan: Plan, encoder: Any, pretrained: Any = None) -> torch.nn.Module:
        return seeded_build(lambda: build_mlp(plan, encoder.n_numeric,
                                              encoder.embedding_sizes), plan["seed"])

    def search_space(self, plan: Plan) -> list[Dim]:
        return mlp_dims(plan)

    # ---- training and scoring -------------------------------------------------------------
    def inputs(self, prep: Prepared) -> Inputs:
        plan, pre, s = prep.plan, prep.preprocessor, prep.splits
        task = plan["task"]
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
        return _score(plan, prep.profile, prep.preprocessor, model, prep.splits.test,
                      details=True)

    def numeric_columns(self, prep: Prepared) -> list[str] | None:
        pre = prep.preprocessor
        return list(pre.feature_names[:pre.n_numeric])

    def val_ids(self, prep: Prepared) -> list[Any]:
        return list(prep.splits.val.index)

    # ---- a finished run -------------------------------------------------------------------
    def encoder_from_dict(self, state: dict[str, Any]) -> Preprocessor:
        return Preprocessor.from_dict(state)

    def predict(self, run: Any, source: Source) -> pd.DataFrame:
        df = load_table(source, what="predict data")
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
        df = load_table(source, what=what)
        target = run.profile.target
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
    task = plan["task"]
    y = pre.transform_target(df[profile.target])
    values = _raw_predict(plan, pre, model, df)
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
    out = {"task": task, "n_rows": len(df), "main_metric": MAIN_METRIC[task],
           "metrics": metrics, "baseline": {"name": BASELINE_NAME[task], "metrics": base},
           **extra}
    if details:
        out["details"] = evaluation_details(task, y_true if task == "regression" else y,
                                            values, pre.classes,
                                            df.drop(columns=[profile.target]))
    return out
