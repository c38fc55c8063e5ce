"""A trained network and its run directory: train a prepared plan under the doctor, score
it, save every file; load a finished run back.

    1. plan.yaml, profile.json, preprocess.json: what was decided, before any training
    2. training under the doctor (pipeline/supervise.py): metrics.jsonl, checkpoints/
    3. the plan finally trained, model.pt, findings.json (repairs.json with --auto-fix)
    4. the modality scores the test split: evaluation.json (and mistakes.png)
    5. environment.json, then summary.md and report.html, last
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .. import modalities, runs
from ..data import DataProfile
from ..doctor.findings import Finding, sort_findings
from ..errors import NnrecipeError, RunError
from ..modalities import Inputs, Modality, Prepared
from ..plan import Plan
from ..report import write_report
from ..report.reproduce import environment
from ..runs import RUN_FILES
from ..train import History
from .supervise import TrainOutcome, train_with_doctor

__all__ = ["Run", "load_run", "new_run_dir", "train_and_save", "write_inputs"]

Source = str | Path | pd.DataFrame


@dataclass
class Run:
    """A trained network with everything needed to use and explain it."""

    plan: Plan
    profile: DataProfile
    preprocessor: Any  # the fitted encoder (a Preprocessor for tables)
    model: torch.nn.Module
    history: History = field(default_factory=History)
    evaluation: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    findings: list[Finding] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.plan["task"]

    @property
    def modality(self) -> Modality:
        return modalities.get(self.profile.modality)

    def predict(self, data: Source) -> pd.DataFrame:
        """A ``prediction`` column, plus ``proba_<class>`` columns for a classifier. Images,
        sound and text: also ``name`` (the file or row); a forecast: the next values."""
        return self.modality.predict(self, data)

    def evaluate(self, data: Source) -> dict[str, Any]:
        """Metrics on labelled data, beside the dumb baseline (evaluation.json's layout)."""
        return self.modality.evaluate(self, data)


@contextmanager
def new_run_dir(out: str | Path | None, name: str) -> Iterator[Path]:
    """Create the run directory; remove it again if a user error stops the run."""
    out_dir = Path(out) if out is not None else runs.default_run_dir(name)
    runs.check_run_dir_free(out_dir)
    created = not out_dir.exists()
    run_dir = runs.prepare_run_dir(out_dir)
    try:
        yield run_dir
    except NnrecipeError:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def write_inputs(prep: Prepared, run_dir: Path) -> Inputs:
    """The first files of a run, and the tensors to train on."""
    runs.atomic_write_yaml(run_dir / RUN_FILES["plan"], prep.plan.to_dict())
    runs.atomic_write_json(run_dir / RUN_FILES["profile"], prep.profile.to_dict())
    runs.atomic_write_json(run_dir / RUN_FILES["preprocess"], prep.preprocessor.to_dict())
    return prep.modality.inputs(prep)


def train_and_save(prep: Prepared, run_dir: Path, progress: bool, watchers: list, *,
                   auto_fix: bool, max_repairs: int, preflight: bool) -> Run:
    inputs = write_inputs(prep, run_dir)
    outcome = train_with_doctor(prep, inputs, run_dir=run_dir, progress=progress,
                                watchers=watchers, auto_fix=auto_fix, max_repairs=max_repairs,
                                preflight=preflight)
    run = save_outcome(prep, outcome, run_dir, auto_fix)
    run.evaluation = prep.modality.score(prep, outcome.model, outcome.plan, run_dir)
    history = outcome.history
    run.evaluation["training"] = {"epochs": len(history.epochs), "stop_reason":
                                  history.stop_reason, "best_epoch": history.best_epoch,
                                  "seconds": round(history.seconds, 3)}
    runs.atomic_write_json(run_dir / RUN_FILES["evaluation"], run.evaluation)
    runs.atomic_write_json(run_dir / RUN_FILES["environment"], environment(
        data_name=prep.name, target=prep.profile.target, overrides=prep.overrides))
    write_report(run_dir)  # summary.md and report.html, last: every other file is saved
    return run


def save_outcome(prep: Prepared, outcome: TrainOutcome, run_dir: Path, auto_fix: bool) -> Run:
    """The plan that was finally trained (with the range test's rate and the doctor's
    repairs), the weights and the findings."""
    runs.atomic_write_yaml(run_dir / RUN_FILES["plan"], outcome.plan.to_dict())
    runs.atomic_torch_save(run_dir / RUN_FILES["model"], outcome.model.state_dict())
    findings = sort_findings(outcome.findings)
    runs.atomic_write_json(run_dir / RUN_FILES["findings"], [f.to_dict() for f in findings])
    if auto_fix:
        runs.atomic_write_json(run_dir / RUN_FILES["repairs"], outcome.repairs)
    return Run(outcome.plan, prep.profile, prep.preprocessor, outcome.model, outcome.history,
               path=run_dir, findings=findings, repairs=outcome.repairs)


def load_run(path: str | Path) -> Run:
    """Load a finished run directory (written by ``fit`` or ``nnrecipe train``)."""
    files = runs.read_run_files(path, require=("plan", "preprocess", "profile", "model"))
    plan_ = Plan.from_dict(files.plan)
    profile = DataProfile.from_dict(files.profile)
    kind = modalities.get(profile.modality)
    pre = kind.encoder_from_dict(files.preprocess)
    model = kind.build(plan_, pre)
    try:
        state = torch.load(files.model, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as e:  # a truncated or foreign file: say which, never how to unpickle
        raise RunError(f"{files.model} cannot be read as this run's weights "
                       f"({type(e).__name__}); it is damaged or not from this run") from None
    model.eval()
    history = History()
    history.epochs = files.metrics
    evaluation = files.evaluation or {}
    training = evaluation.get("training", {})
    history.stop_reason = training.get("stop_reason", "")
    history.best_epoch = training.get("best_epoch")
    return Run(plan_, profile, pre, model, history, evaluation, Path(path),
               [Finding.from_dict(f) for f in files.findings], files.repairs)
