"""A finished run directory as the report sees it: the files read by
:func:`nnrecipe.runs.read_run_files` (plain files only: no model, no torch, so a report can
be rebuilt anywhere), turned into the plan, profile and findings objects the sections use.
Optional files (findings, repairs, the monitor's samples, the LR range test, a search's
tune.json, the pictures) are None or empty when absent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.profile import DataProfile
from ..doctor.findings import Finding
from ..errors import RunError
from ..plan import Plan
from ..runs import RUN_FILES, read_run_files

__all__ = ["ReportRun", "load_run_files", "is_cv_dir", "REQUIRED"]

# what a run directory must hold for a report (a finished `train`, a cv fold, a tune run)
REQUIRED = ("plan", "profile", "evaluation")


@dataclass
class ReportRun:
    """A run directory's files, ready for the report. Has the attributes report.summary
    reads from a :class:`~nnrecipe.api.Run` (plan, profile, evaluation, findings, repairs,
    path)."""

    path: Path
    plan: Plan
    profile: DataProfile
    evaluation: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    repairs: list[dict[str, Any]] = field(default_factory=list)
    monitor: dict[str, Any] | None = None
    lr_find: dict[str, Any] | None = None
    lr_find_png: bytes | None = None
    mistakes_png: bytes | None = None  # images, sound, series: the highest-loss samples
    tune: dict[str, Any] | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)  # status.json (empty: older runs)

    @property
    def name(self) -> str:
        return self.path.name


def is_cv_dir(path: Path) -> bool:
    return (Path(path) / RUN_FILES["cv"]).is_file()


def load_run_files(path: str | Path) -> ReportRun:
    """Read ``path`` for a report; a RunError (one line) when it is not a finished run or
    one of its files is damaged or unsafe (model.pt included, checked without torch: a
    report must not vouch for weights that cannot be loaded)."""
    status = (read_run_files(path).status or {}) if Path(path).is_dir() else {}
    if status.get("status") in ("running", "failed") or (
            status.get("status") == "interrupted" and not (Path(path) / RUN_FILES[
                "evaluation"]).exists()):
        why = status.get("reason") or "it was stopped before it finished (killed?)"
        raise RunError(f"{path} did not finish: {status['status']}, {why}; resume it with "
                       f"`nnrecipe train --resume {path}`")
    files = read_run_files(path, require=REQUIRED, check_model=True)
    try:
        plan = Plan.from_dict(files.plan)
        profile = DataProfile.from_dict(files.profile)
        findings = [Finding.from_dict(d) for d in files.findings]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise RunError(f"{files.path} holds a damaged run file ({type(e).__name__}: {e}); "
                       "train it again") from e
    return ReportRun(
        path=files.path, plan=plan, profile=profile, evaluation=files.evaluation or {},
        epochs=files.metrics, findings=findings, repairs=files.repairs,
        monitor=files.monitor, lr_find=files.lr_find, tune=files.tune,
        environment=files.environment or {}, status=files.status or {},
        lr_find_png=_bytes(files.lr_find_png), mistakes_png=_bytes(files.mistakes_png),
    )


def _bytes(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as e:
        raise RunError(f"{path} cannot be read ({type(e).__name__}: {e})") from e
