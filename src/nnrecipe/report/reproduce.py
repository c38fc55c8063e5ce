"""How to reproduce a run: the command, the versions and the hardware, captured when the
run is trained (environment.json) so a report rebuilt later still shows the original."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["environment", "equivalent_command"]

PACKAGES = ("nnrecipe", "torch", "numpy", "pandas", "scikit-learn")
# options given as --flag VALUE on the command line rather than --set
_OWN_FLAGS = {"seed": "--seed", "train.max_epochs": "--max-epochs"}


def environment(*, data_name: str, target: str, overrides: dict[str, Any],
                argv: list[str] | None = None, trained_on: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """What environment.json holds. ``argv``: the process's arguments (default
    ``sys.argv``); when they are not the ``nnrecipe`` command (the Python API was called),
    the command is rebuilt from the overrides. ``trained_on``: the plan's device,
    precision and threads (``train.device``, ``train.precision``, ``train.threads``)."""
    argv = list(sys.argv if argv is None else argv)
    from_cli = bool(argv) and Path(argv[0]).name == "nnrecipe"
    data_path = _data_path(argv[2:]) if from_cli else None
    command = (shlex.join(["nnrecipe", *argv[1:]]) if from_cli else
               equivalent_command(data_name, target, overrides))
    return {
        "time": datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "started_from": "command line" if from_cli else "Python API",
        "data_name": data_name,
        "data_path": data_path,
        "cwd": os.getcwd(),
        "versions": {"python": platform.python_version(), **_versions()},
        "hardware": {**_hardware(), **{k.split(".", 1)[1]: v
                                       for k, v in (trained_on or {}).items()}},
    }


def equivalent_command(data_name: str, target: str, overrides: dict[str, Any]) -> str:
    """The `nnrecipe train` command that gives the same plan (DATA: the table's path)."""
    parts = ["nnrecipe", "train", f"{data_name}.csv" if data_name != "dataframe" else "DATA",
             "--target", target]
    for key, value in overrides.items():
        shown = ",".join(map(str, value)) if isinstance(value, list | tuple) else value
        shown = str(shown).lower() if isinstance(shown, bool) else shown
        parts += ([_OWN_FLAGS[key], str(shown)] if key in _OWN_FLAGS
                  else ["--set", f"{key}={shown}"])
    return shlex.join(parts)


def _data_path(args: list[str]) -> str | None:
    """The first argument after the command that names an existing file."""
    for a in args:
        if not a.startswith("-") and Path(a).is_file():
            return str(Path(a).resolve())
    return None


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _hardware() -> dict[str, Any]:
    import torch

    hw: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                          "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "device": "cpu"}
    if torch.cuda.is_available():
        hw["gpu"] = torch.cuda.get_device_name(0)
    return hw


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
