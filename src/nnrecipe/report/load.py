"""Read a finished run directory for a report: plain files only (no model, no torch), so a
report can be rebuilt anywhere. Optional files (findings, repairs, the monitor's samples,
the LR range test, a search's tune.json) are None or empty when absent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.profile import DataProfile
from ..doctor.findings import Finding
from ..errors import RunError
from ..plan import Plan
from ..runs import RUN_FILES, read_json

__all__ = ["RunFiles", "load_run_files", "is_cv_dir", "REQUIRED"]

# what a run directory must hold for a report (a finished `train`, a cv fold, a tune run)
REQUIRED = ("plan", "profile", "evaluation")


@dataclass
class RunFiles:
    """A run directory's files, read. Has the attributes report.summary reads from a
    :class:`~nnrecipe.api.Run` (plan, profile, evaluation, findings, repairs, path)."""

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

    @property
    def name(self) -> str:
        return self.path.name


def is_cv_dir(path: Path) -> bool:
    return (Path(path) / "cv.json").is_file()


def check_run_dir(path: Path, what: str = "run directory") -> Path:
    """``path`` as a finished run directory, or a RunError saying what is wrong."""
    path = Path(path)
    if not path.is_dir():
        problem = "is a file, not a directory" if path.exists() else "not found"
        raise RunError(f"{what} {path} {problem}; give the --out directory of a finished "
                       "`nnrecipe train` (or cv, tune)")
    lacking = [RUN_FILES[k] for k in REQUIRED if not (path / RUN_FILES[k]).is_file()]
    if lacking:
        raise RunError(f"{path} is not a finished nnrecipe run: {', '.join(lacking)} missing")
    return path


def load_run_files(path: Path) -> RunFiles:
    path = check_run_dir(path)
    f = {k: path / v for k, v in RUN_FILES.items()}
    try:
        run = RunFiles(
            path=path,
            plan=Plan.from_dict(yaml.safe_load(f["plan"].read_text(encoding="utf-8"))),
            profile=DataProfile.from_dict(read_json(f["profile"])),
            evaluation=read_json(f["evaluation"]),
            epochs=_jsonl(f["metrics"]),
            findings=[Finding.from_dict(d) for d in _optional(f["findings"]) or []],
            repairs=_optional(f["repairs"]) or [],
            monitor=_optional(f["monitor"]),
            lr_find=_optional(path / "lr_find.json"),
            tune=_optional(path / "tune.json"),
            environment=_optional(f["environment"]) or {},
        )
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as e:
        raise RunError(f"{path} holds a damaged run file ({type(e).__name__}: {e}); "
                       "train it again") from e
    run.lr_find_png = _bytes(path / "lr_find.png")
    run.mistakes_png = _bytes(path / "mistakes.png")
    return run


def _bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _optional(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
