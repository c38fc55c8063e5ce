"""A trained network and its run directory: train a prepared plan under the doctor, score
it, save every file; load a finished run back.

    1. plan.yaml, profile.json, preprocess.json: what was decided, before any training
    2. training under the doctor (pipeline/supervise.py): metrics.jsonl, checkpoints/
    3. the plan finally trained, model.pt, findings.json (repairs.json with --auto-fix)
    4. the modality scores the test split: evaluation.json (and mistakes.png)
    5. environment.json, status.json, then summary.md and report.html, last

status.json says where a run stands: ``running`` from the first epoch on, then
``finished``, ``interrupted`` (Ctrl-C: the best weights were still evaluated and saved) or
``failed`` (with the reason). A run that stopped for any reason after training started
keeps its directory and its checkpoints, and ``nnrecipe train --resume RUN`` goes on from
checkpoints/last.pt to the result the uninterrupted run would have had.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import pandas as pd

from .. import runs, timing
from ..doctor.findings import Finding, sort_findings
from ..errors import NnrecipeError, RunError
from ..modalities import Inputs, Prepared
from ..report import write_report
from ..report.reproduce import environment
from ..runs import RUN_FILES
from ..timing import stage
from ..train import History, distributed
from ..train.checkpoint import load_checkpoint
from ..train.devices import training_device
from .ensemble import finite_weights
from .prepare import prepare
from .saved import Run, load_run, resume_hint
from .supervise import TrainOutcome, train_with_doctor

__all__ = ["Run", "follow", "load_run", "new_run_dir", "resume_run", "train_and_save",
           "train_in_memory", "write_inputs"]

Source = str | Path | pd.DataFrame
TRAINED_ON = ("train.device", "train.precision", "train.threads")  # environment.json's hardware


@contextmanager
def new_run_dir(out: str | Path | None, name: str) -> Iterator[Path]:
    """Create the run directory; remove it again if a user error stops the run before
    training started (after that, its checkpoints are worth keeping: status.json says)."""
    out_dir = Path(out) if out is not None else runs.default_run_dir(name)
    runs.check_run_dir_free(out_dir)
    created = not out_dir.exists()
    run_dir = runs.prepare_run_dir(out_dir)
    try:
        yield run_dir
    except NnrecipeError:
        if created and not (run_dir / RUN_FILES["status"]).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def write_status(run_dir: Path, status: str, call: dict[str, Any] | None, **more: Any) -> None:
    runs.atomic_write_json(run_dir / RUN_FILES["status"], {
        "status": status, "time": datetime.now().isoformat(timespec="seconds"),
        "pid": os.getpid(), **more, "call": call})


class CtrlC:
    """The first Ctrl-C asks training to stop after the current step (a checkpoint is
    written there; the best weights are then evaluated and saved); a second one stops at
    once, leaving the run resumable from its last checkpoint. Outside the main thread
    (where Python cannot take signals) it does nothing."""

    def __init__(self) -> None:
        self.pressed = False
        self._old: Any = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        print("nnrecipe: stopping after this step; Ctrl-C again stops at once",
              file=sys.stderr)


def write_inputs(prep: Prepared, run_dir: Path) -> Inputs:
    """The first files of a run, and the tensors to train on."""
    with stage("save"):
        runs.atomic_write_yaml(run_dir / RUN_FILES["plan"], prep.plan.to_dict())
        runs.atomic_write_json(run_dir / RUN_FILES["profile"], prep.profile.to_dict())
        runs.atomic_write_json(run_dir / RUN_FILES["preprocess"], prep.preprocessor.to_dict())
    with stage("plan"):
        return prep.modality.inputs(prep)


def train_and_save(prep: Prepared, run_dir: Path, progress: bool, watchers: list, *,
                   auto_fix: bool, max_repairs: int, preflight: bool,
                   call: dict[str, Any] | None = None,
                   resume: dict[str, Any] | None = None) -> Run:
    """Train under the doctor, score, save every file. ``call``: the arguments that made
    the run (kept in status.json, for --resume); ``resume``: its last checkpoint."""
    inputs = write_inputs(prep, run_dir)
    write_status(run_dir, "running", call)
    ctrl_c = CtrlC()
    try:
        with ctrl_c:
            outcome = train_with_doctor(prep, inputs, run_dir=run_dir, progress=progress,
                                        watchers=watchers, auto_fix=auto_fix,
                                        max_repairs=max_repairs, preflight=preflight,
                                        resume=resume, should_stop=lambda: ctrl_c.pressed)
        return _finish(prep, outcome, run_dir, auto_fix, call)
    except KeyboardInterrupt:
        write_status(run_dir, "interrupted", call, reason="stopped at once (a second "
                     "Ctrl-C)", resume=resume_hint(run_dir))
        raise
    except BaseException as e:
        reason = (str(e) if isinstance(e, NnrecipeError) else f"{type(e).__name__}: {e}")
        write_status(run_dir, "failed", call, reason=reason[:500], resume=resume_hint(run_dir))
        raise


def _finish(prep: Prepared, outcome: TrainOutcome, run_dir: Path, auto_fix: bool,
            call: dict[str, Any] | None) -> Run:
    """After training (to the end, or to a Ctrl-C): save, score, report."""
    if not finite_weights(outcome.model):
        _diverged(outcome, run_dir, auto_fix)
    with stage("save"):
        run = save_outcome(prep, outcome, run_dir, auto_fix)
    with stage("evaluation"):
        run.evaluation = prep.modality.score(prep, outcome.model, outcome.plan, run_dir)
    history = outcome.history
    run.evaluation["training"] = training_facts(history, outcome.members)
    with stage("save"):
        runs.atomic_write_json(run_dir / RUN_FILES["evaluation"], run.evaluation)
        env = environment(data_name=prep.name, target=prep.profile.target,
                          overrides=prep.overrides, trained_on={
                              k: outcome.plan[k] for k in TRAINED_ON if k in outcome.plan})
        if history.stop_reason.startswith("interrupted"):
            run.status = "interrupted"
            write_status(run_dir, "interrupted", call, reason=history.stop_reason,
                         resume=resume_hint(run_dir))
        else:
            write_status(run_dir, "finished", call)
    watch = timing.current()
    before = watch.to_dict() if watch is not None else None
    _write_environment(run_dir, env, before)  # the stages the report shows
    with stage("report"):
        write_report(run_dir)  # summary.md and report.html, last: every other file is saved
    if watch is not None and before is not None:  # the same stages, plus the report's time
        after = watch.to_dict()
        _write_environment(run_dir, env, {**{k: v for k, v in before.items() if k != "total"},
                                          "report": after["report"], "total": after["total"]})
    return run


def _write_environment(run_dir: Path, env: dict[str, Any],
                       stages: dict[str, float] | None) -> None:
    """environment.json, with the stage timings when a stopwatch is running."""
    runs.atomic_write_json(run_dir / RUN_FILES["environment"],
                           env if stages is None else {**env, "stages": stages})


def _diverged(outcome: TrainOutcome, run_dir: Path, auto_fix: bool) -> None:
    """No epoch ended with finite weights, so there is nothing to evaluate: keep the plan,
    the findings and the learning curve, and say so (exit code 4)."""
    runs.atomic_write_yaml(run_dir / RUN_FILES["plan"], outcome.plan.to_dict())
    findings = sort_findings(outcome.findings)
    runs.atomic_write_json(run_dir / RUN_FILES["findings"], [f.to_dict() for f in findings])
    if auto_fix:
        runs.atomic_write_json(run_dir / RUN_FILES["repairs"], outcome.repairs)
    raise Diverged(f"{diverged_words(findings)}; see {run_dir / RUN_FILES['findings']} and "
                   "try a lower optimizer.lr or --auto-fix")


def diverged_words(findings: list[Finding]) -> str:
    worst = next((f for f in findings if f.severity == "error"), None)
    why = f"; the doctor says: {worst.title} ({worst.code})" if worst else ""
    return f"training diverged: no epoch ended with finite weights, so there is nothing to " \
           f"evaluate{why}"


def training_facts(history: History, members: list[dict[str, Any]] | None = None
                   ) -> dict[str, Any]:
    """evaluation.json's ``training``: how the training went, in a few numbers (the first
    network's; ``ensemble``: each network of an ensemble)."""
    facts = {"epochs": len(history.epochs), "stop_reason": history.stop_reason,
             "best_epoch": history.best_epoch, "seconds": round(history.seconds, 3)}
    if members:
        facts["ensemble"] = members
    return facts


def train_in_memory(prep: Prepared, *, progress: bool = False, watchers: list | None = None,
                    auto_fix: bool = False, max_repairs: int = 3,
                    preflight: bool = True) -> Run:
    """The steps of ``train`` with no file written: training under the doctor, then the
    test split scored (the scikit-learn estimators' path). Diverged: no finite weights."""
    outcome = train_with_doctor(prep, prep.modality.inputs(prep), run_dir=None,
                                progress=progress, watchers=watchers or [], auto_fix=auto_fix,
                                max_repairs=max_repairs, preflight=preflight)
    findings = sort_findings(outcome.findings)
    if not finite_weights(outcome.model):
        raise Diverged(f"{diverged_words(findings)}; try a lower optimizer.lr or auto_fix")
    outcome.model.eval()
    evaluation = prep.modality.score(prep, outcome.model, outcome.plan, None)
    evaluation["training"] = training_facts(outcome.history, outcome.members)
    return Run(outcome.plan, prep.profile, prep.preprocessor, outcome.model, outcome.history,
               evaluation, path=None, findings=findings, repairs=outcome.repairs)


def follow(prep: Prepared, *, auto_fix: bool, max_repairs: int, preflight: bool,
           resume: dict[str, Any] | None = None) -> Run:
    """A rank other than 0 of a run with several processes (torchrun): train this rank's
    share in step with the others, as rank 0 decides; write nothing, score nothing (rank 0
    writes the run directory). The Run it returns has no path and no evaluation."""
    outcome = train_with_doctor(prep, prep.modality.inputs(prep), run_dir=None, progress=False,
                                watchers=[], auto_fix=auto_fix, max_repairs=max_repairs,
                                preflight=preflight, resume=resume)
    return Run(outcome.plan, prep.profile, prep.preprocessor, outcome.model, outcome.history,
               {}, path=None, findings=[], repairs=outcome.repairs)


class Diverged(RunError):
    """Training ended without finite weights (the run directory keeps its findings)."""

    exit_code = 4


def resume_run(run_dir: str | Path, data: Any = None, *, progress: bool = False,
               watchers: list | None = None) -> Run:
    """Go on with a run that was killed, interrupted or stopped by a full disk, from its
    checkpoints/last.pt, to the result the uninterrupted run would have had. ``data``: the
    training data again (needed when the run was made from a DataFrame; by default the
    path recorded in status.json)."""
    run_dir = Path(run_dir)
    state = runs.read_run_files(run_dir, require=("status", "profile"))
    status = state.status or {}
    if status.get("status") == "finished":
        raise RunError(f"{run_dir} finished; there is nothing to resume")
    call = status.get("call") or {}
    source = data if data is not None else call.get("data")
    if source is None:
        raise RunError(f"{run_dir} was trained from data in memory: give the same data "
                       "again to resume it")
    ckpt = load_checkpoint(run_dir / RUN_FILES["checkpoint_last"])
    prep = prepare(source, call.get("target"), task=call.get("task", "auto"),
                   overrides=call.get("overrides"), test=call.get("test"),
                   valid=call.get("valid"), modality=call.get("modality", "auto"),
                   pretrained=call.get("pretrained"))
    group = distributed.join(training_device(prep.plan).type)
    if group is not None and not group.main:  # torchrun: rank 0 writes the run
        return follow(prep, auto_fix=call.get("auto_fix", False),
                      max_repairs=call.get("max_repairs", 3),
                      preflight=call.get("preflight", True), resume=ckpt)
    for tmp in run_dir.rglob(".*.tmp"):  # a write cut short by kill -9 (runs.py names them)
        tmp.unlink(missing_ok=True)
    if runs.plain(prep.profile.to_dict()) != runs.plain(state.profile):
        raise RunError(f"the data differs from what {run_dir} was trained on (its "
                       "profile.json does not match): resume with the same data")
    return train_and_save(prep, run_dir, progress, watchers or [],
                          auto_fix=call.get("auto_fix", False),
                          max_repairs=call.get("max_repairs", 3),
                          preflight=call.get("preflight", True), call=call, resume=ckpt)


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
