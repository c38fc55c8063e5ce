"""``nnrecipe cv``: k-fold cross-validation over any kind of data.

The data is prepared once; the modality cuts the folds (stratified by class, shuffled for
a regression, expanding windows in time for a series) and re-splits the rest of the data
around each held-out fold, which then trains as a full run in ``fold_<k>/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import runs
from ..report import write_cv_report
from ..runs import RUN_FILES
from ..timing import Stopwatch, recording
from ..tune import summarise_folds
from .prepare import prepare
from .run import new_run_dir, train_and_save

__all__ = ["cross_validate"]


def cross_validate(data: Any, target: str | None, *, folds: int, task: str,
                   overrides: dict | None, out: str | Path | None, progress: bool,
                   modality: str = "auto") -> dict[str, Any]:
    prep = prepare(data, target, task=task, overrides=overrides, modality=modality)
    seed = prep.overrides.get("seed", 0)
    parts = prep.modality.folds(prep, folds, seed)
    with new_run_dir(out, prep.name) as run_dir:
        per_fold, baseline = [], []
        for k, held in enumerate(parts, start=1):
            with recording(Stopwatch()):  # each fold's environment.json: its own times
                fold = prep.modality.refold(prep, held)
                with new_run_dir(run_dir / RUN_FILES["fold"].format(k=k),
                                 prep.name) as fold_dir:
                    run = train_and_save(fold, fold_dir, progress, [], auto_fix=False,
                                         max_repairs=0, preflight=True)
            per_fold.append({"fold": k, "test_rows": len(held), **run.evaluation["metrics"]})
            baseline.append(run.evaluation["baseline"]["metrics"])
        result = {"task": prep.plan["task"], "modality": prep.profile.modality, "folds": folds,
                  "seed": seed, "per_fold": per_fold, "summary": summarise_folds(per_fold),
                  "baseline_summary": summarise_folds(baseline)}
        runs.atomic_write_json(run_dir / RUN_FILES["cv"], result)
        write_cv_report(run_dir)
        return {**result, "path": str(run_dir)}
