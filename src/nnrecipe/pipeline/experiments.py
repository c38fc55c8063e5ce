"""``nnrecipe experiment``: change one thing, say what you expect, verify — on any kind of
data. The baseline plan and the changed plan train on the same split with the same seeds,
``repeats`` times; tune/experiment.py turns the paired test metrics into a verdict."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import PlanError
from ..evaluate import MAIN_METRIC
from ..runs import RUN_FILES
from ..timing import Stopwatch, recording
from ..tune.experiment import (
    EXPECTATIONS,
    HIGHER_IS_BETTER,
    append_journal,
    journal_path,
    paired_verdict,
    read_journal,
)
from .prepare import prepare
from .run import new_run_dir, train_and_save

__all__ = ["run_experiment"]

REGRESSION_METRICS = ("rmse", "mae", "r2")


def run_experiment(data: Any, target: str | None, *, hypothesis: str, changes: dict[str, Any],
                   expect: str, metric: str | None, repeats: int, task: str,
                   overrides: dict | None, out: str | Path | None, progress: bool,
                   modality: str = "auto", journal: str | Path | None = None
                   ) -> dict[str, Any]:
    """Run the experiment, write experiment.json and append the entry to ``journal``
    (default runs/experiments.jsonl); returns the entry with the journal's path."""
    _check(changes, expect, repeats)
    journal = journal_path(journal)
    if journal.exists():  # not a journal (a CSV given by mistake): refused before any work
        read_journal(journal)
    base = prepare(data, target, task=task, overrides=overrides, modality=modality)
    given = base.overrides
    change = prepare(data, target, task=task, overrides={**given, **changes},
                     modality=modality).overrides  # the changed plan is valid too
    change = {k: v for k, v in change.items() if k in changes}
    task_ = base.plan["task"]
    metric = metric or MAIN_METRIC[task_]
    valid = [m for m in HIGHER_IS_BETTER
             if (m in REGRESSION_METRICS) == (task_ == "regression")]
    if metric not in valid:
        raise PlanError(f"--metric for a {task_} task must be one of {', '.join(valid)}, "
                        f"got '{metric}'")
    seed0 = given.get("seed", 0)
    with new_run_dir(out, f"{base.name}-experiment") as run_dir:
        scores: dict[str, list[float]] = {"baseline": [], "changed": []}
        for r in range(repeats):
            for arm, extra in (("baseline", {}), ("changed", change)):
                with recording(Stopwatch()):  # each run's environment.json: its own times
                    prep = prepare(data, target, task=task, modality=modality,
                                   overrides={**given, **extra, "seed": seed0 + r})
                    name = RUN_FILES[f"{arm}_run"].format(r=r + 1)
                    with new_run_dir(run_dir / name, base.name) as arm_dir:
                        run = train_and_save(prep, arm_dir, progress, [], auto_fix=False,
                                             max_repairs=0, preflight=True)
                scores[arm].append(run.evaluation["metrics"][metric])
        entry = {"time": datetime.now().isoformat(timespec="seconds"),
                 "data": base.name, "target": base.profile.target, "hypothesis": hypothesis,
                 "changes": change, "expect": expect, "metric": metric,
                 "higher_is_better": HIGHER_IS_BETTER[metric], "repeats": repeats,
                 "seeds": [seed0 + r for r in range(repeats)], **scores,
                 **paired_verdict(scores["baseline"], scores["changed"], expect=expect,
                                  higher_is_better=HIGHER_IS_BETTER[metric]),
                 "run_dir": str(run_dir)}
        runs.atomic_write_json(run_dir / RUN_FILES["experiment"], entry)
        return {**entry, "journal": str(append_journal(journal, entry))}


def _check(changes: dict[str, Any], expect: str, repeats: int) -> None:
    problems = []
    if not changes:
        problems.append("give at least one change (--change key=value)")
    if expect not in EXPECTATIONS:
        problems.append(f"--expect must be one of {', '.join(EXPECTATIONS)}, got '{expect}'")
    if repeats < 2:
        problems.append(f"--repeats must be at least 2 to pair results, got {repeats}")
    if problems:
        raise PlanError("; ".join(problems))
