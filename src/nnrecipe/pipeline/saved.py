"""A finished run, loaded back: the network, its preprocessing and what the run said about
itself, to predict and evaluate on new data.

This module is what ``nnrecipe predict`` and ``nnrecipe evaluate`` import, and it imports
no more than a finished run needs (the modality, the network, the run's files): not the
trainer, the doctor's checks or the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .. import modalities, runs
from ..data.profile import DataProfile
from ..doctor.findings import Finding
from ..errors import RunError
from ..lazy import lazy
from ..modalities import Modality
from ..models.ensemble import with_members
from ..plan.schema import Plan
from ..runs import RUN_FILES
from ..train import History

__all__ = ["Run", "load_run", "resume_hint"]

notebook = lazy("nnrecipe.report.notebook")  # the card Jupyter shows (Run._repr_html_)

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
    status: str = "finished"  # or "interrupted" (Ctrl-C; resumable)

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

    def _repr_html_(self) -> str:
        """Jupyter's view of a run: the summary card, the test metrics and the learning
        curve (drawn on demand: loading a run for ``predict`` never imports matplotlib)."""
        return notebook.run_card(self)

    def evaluate(self, data: Source) -> dict[str, Any]:
        """Metrics on labelled data, beside the dumb baseline (evaluation.json's layout)."""
        return self.modality.evaluate(self, data)




def resume_hint(run_dir: Path) -> str:
    return f"nnrecipe train --resume {run_dir}"


def load_run(path: str | Path) -> Run:
    """Load a finished run directory (written by ``fit`` or ``nnrecipe train``)."""
    files = runs.read_run_files(path)
    status = files.status or {"status": "finished"}  # runs from before status.json
    if status["status"] == "running" or (status["status"] != "finished"
                                         and files.model is None):
        why = status.get("reason") or "it was stopped before it finished (killed?)"
        raise RunError(f"{path} did not finish: {status['status']}, {why}; resume it with "
                       f"`{resume_hint(Path(path))}`")
    lacking = [RUN_FILES[k] for k in ("plan", "preprocess", "profile", "model")
               if getattr(files, k) is None]
    if lacking:  # read once: the status first, then what a finished run must hold
        raise RunError(f"{path} is not a finished nnrecipe run: {', '.join(lacking)} missing")
    plan_ = Plan.from_dict(files.plan)
    profile = DataProfile.from_dict(files.profile)
    kind = modalities.get(profile.modality)
    pre = kind.encoder_from_dict(files.preprocess)
    model = with_members(plan_, lambda plan: kind.build(plan, pre))
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
               [Finding.from_dict(f) for f in files.findings], files.repairs,
               status["status"])
