"""The run directory: where a run's files live, written atomically.

Every file is written to a temporary sibling and renamed into place, so a crash or a
Ctrl-C never leaves a half-written file behind. See DESIGN.md for the list of files.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .errors import RunError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_write_yaml",
    "atomic_torch_save",
    "default_run_dir",
    "prepare_run_dir",
    "read_json",
    "json_safe",
    "RUN_FILES",
]

# File names of the run directory contract (DESIGN.md). Stable: other code relies on them.
RUN_FILES = {
    "plan": "plan.yaml",
    "profile": "profile.json",
    "metrics": "metrics.jsonl",
    "evaluation": "evaluation.json",
    "model": "model.pt",
    "preprocess": "preprocess.json",
    "checkpoints": "checkpoints",
    "summary": "summary.md",
    "findings": "findings.json",
    "repairs": "repairs.json",
    "monitor": "monitor.json",  # the live monitor's per-layer samples (gradient norms, dead units)
    "environment": "environment.json",  # command, versions, hardware: how to reproduce the run
    "report": "report.html",
}


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    if path.is_dir():  # os.replace cannot put a file over a directory
        raise RunError(f"{path} is a directory; give a file name to write to")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False,
                                       default=_jsonable) + "\n")


def atomic_write_yaml(path: Path, obj: Any) -> None:
    atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def atomic_torch_save(path: Path, obj: Any) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def json_safe(o: Any) -> Any:
    """JSON has no NaN or infinity: an undefined number is written as null."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: json_safe(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_safe(v) for v in o]
    return o


def _jsonable(o: Any) -> Any:
    """numpy scalars and arrays to plain Python, for json.dumps."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def default_run_dir(data_name: str, root: str | Path = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in data_name) or "data"
    path = Path(root) / f"{stamp}-{safe}"
    n = 1
    while path.exists():  # two runs started within the same second
        n += 1
        path = Path(root) / f"{stamp}-{safe}-{n}"
    return path


def check_run_dir_free(path: Path) -> None:
    """Refuse an --out that already holds files: a run never mixes with another's."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RunError(
            f"--out {path} already exists and is not an empty directory; "
            "choose a new directory or remove that one"
        )


def prepare_run_dir(path: Path) -> Path:
    """Create the run directory (called only once all input has been validated)."""
    path = Path(path)
    check_run_dir_free(path)
    (path / RUN_FILES["checkpoints"]).mkdir(parents=True, exist_ok=True)
    return path
