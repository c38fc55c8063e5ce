"""The run directory: the one table of what it can hold, writing it, reading it back.

:data:`RUN_DIR` names every file and folder a run directory can hold, with what each one
is for; :data:`RUN_FILES` is the same table as plain names (``RUN_FILES["plan"]`` is
``"plan.yaml"``). Names with a ``{k}`` or ``{r}`` field are templates (``fold_{k}``).

Writers: every file goes to a temporary sibling (``.<name>.<random>.tmp``), is flushed to
disk and then renamed into place, so a crash or a Ctrl-C never leaves half a file; the
temporary file is removed when anything fails.

Reader: :func:`read_run_files` parses every file a run directory holds into a
:class:`RunFiles`, with plain dicts and lists (no torch, no nnrecipe classes), and turns a
missing directory or a damaged file into one :class:`~nnrecipe.errors.RunError` line.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import pickletools
import re
import secrets
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .errors import RunError

__all__ = [
    "atomic_write_bytes",
    "WriteError",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_write_yaml",
    "atomic_torch_save",
    "default_run_dir",
    "prepare_run_dir",
    "read_json",
    "read_run_files",
    "check_weights",
    "json_safe",
    "plain",
    "RunFile",
    "RunFiles",
    "RUN_DIR",
    "RUN_FILES",
]


@dataclass(frozen=True)
class RunFile:
    """One entry of the run directory: its name (relative to the run directory), its
    format, and what it holds."""

    name: str
    format: str  # yaml, json, jsonl, torch, png, markdown, html, optuna, folder
    about: str


# Every file and folder a run directory can hold. The keys and names are stable: other
# code (and users' scripts) rely on them.
RUN_DIR: dict[str, RunFile] = {
    # written by every run (fit / train, a cv fold, tune's retrained best plan)
    "plan": RunFile("plan.yaml", "yaml", "every plan decision, with its reason and rule"),
    "profile": RunFile("profile.json", "json", "the data profile: columns, kinds, target, "
                       "splits"),
    "preprocess": RunFile("preprocess.json", "json", "the fitted preprocessing (scalers, "
                          "categories, vocabulary, classes)"),
    "metrics": RunFile("metrics.jsonl", "jsonl", "one JSON line per epoch: losses, "
                       "validation metrics, lr, seconds"),
    "model": RunFile("model.pt", "torch", "the trained weights (a state_dict)"),
    "checkpoints": RunFile("checkpoints", "folder", "the training checkpoints below"),
    "checkpoint_last": RunFile("checkpoints/last.pt", "torch", "model, optimizer and RNG "
                               "state after the latest epoch"),
    "checkpoint_best": RunFile("checkpoints/best.pt", "torch", "the same at the epoch of "
                               "lowest validation loss"),
    "evaluation": RunFile("evaluation.json", "json", "test metrics against the baseline, "
                          "training facts, the numbers behind the evaluation plots"),
    "findings": RunFile("findings.json", "json", "the doctor's findings, worst first"),
    "repairs": RunFile("repairs.json", "json", "what --auto-fix changed, and the loss "
                       "before and after each repair"),
    "monitor": RunFile("monitor.json", "json", "the live monitor's per-layer samples "
                       "(gradient norms, dead units)"),
    "status": RunFile("status.json", "json", "running, finished, interrupted or failed (with "
                      "the reason and how to resume), and the last epoch checkpointed"),
    "environment": RunFile("environment.json", "json", "command, versions, hardware: how "
                           "to reproduce the run"),
    "summary": RunFile("summary.md", "markdown", "the plain-language summary (also in a cv "
                       "directory)"),
    "report": RunFile("report.html", "html", "the self-contained report page (also in a cv "
                      "directory)"),
    "mistakes": RunFile("mistakes.png", "png", "the highest-loss test samples (images, "
                        "volumes, sequences, series)"),
    "tensorboard": RunFile("tensorboard", "folder", "TensorBoard event files (--tensorboard)"),
    # find-lr
    "lr_find": RunFile("lr_find.json", "json", "the LR range test: rates, losses, "
                       "suggestion"),
    "lr_find_png": RunFile("lr_find.png", "png", "the LR range test's plot"),
    # tune
    "tune": RunFile("tune.json", "json", "a search: every trial, the best plan, the "
                    "retrained run's metrics"),
    "study": RunFile("study.journal", "optuna", "Optuna's journal storage of a search (the "
                     "default; study.journal.lock sits beside it while a process holds it)"),
    # cv: a cross-validation directory
    "cv": RunFile("cv.json", "json", "every fold's test metrics, and their mean ± std"),
    "fold": RunFile("fold_{k}", "folder", "fold k's full run directory (k from 1)"),
    # experiment: an experiment directory, and the journal in its parent
    "experiment": RunFile("experiment.json", "json", "a hypothesis experiment: the paired "
                          "scores, the interval and the verdict"),
    "baseline_run": RunFile("baseline_{r}", "folder", "repeat r's run of the baseline plan"),
    "changed_run": RunFile("changed_{r}", "folder", "repeat r's run of the changed plan"),
    "experiments_journal": RunFile("experiments.jsonl", "jsonl", "one line per experiment, "
                                   "in the run root (the experiment directory's parent)"),
}

# The same table as plain names: RUN_FILES["plan"] == "plan.yaml".
RUN_FILES: dict[str, str] = {key: f.name for key, f in RUN_DIR.items()}


class WriteError(RunError, OSError):
    """A file could not be written (disk full, quota, read-only, no permission...): one
    line for the user (a :class:`RunError`, exit 2) that is also an :class:`OSError` with
    the original ``errno`` for code that handles the cause."""

    def __init__(self, message: str, errno_: int | None = None,
                 filename: str | None = None) -> None:
        super().__init__(message)
        self.errno, self.filename = errno_, filename

    def __str__(self) -> str:
        return str(self.args[0])


# what an OSError while writing means, in words (errno → reason and advice)
_WRITE_PROBLEMS = {
    errno.ENOSPC: "the disk is full (no space left on the device); free some space or "
                  "write elsewhere",
    errno.EDQUOT: "the disk quota is used up (disk full for this user); free some space "
                  "or write elsewhere",
    errno.EROFS: "the file system is read-only (not writable); write elsewhere",
    errno.EACCES: "permission denied (not writable); write elsewhere",
    errno.EPERM: "operation not permitted (not writable); write elsewhere",
}


def _write_error(path: Path, e: OSError) -> WriteError:
    if isinstance(e, WriteError):
        return e
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    detail = " ".join((e.strerror or str(e) or type(e).__name__).split())
    reason = (f"{blocker} is a file, not a folder; write elsewhere" if blocker is not None
              else _WRITE_PROBLEMS.get(e.errno) or
              f"{detail}; check the path and write elsewhere")
    return WriteError(f"cannot write {path}: {reason}", e.errno, str(path))


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary sibling renamed into place. The new
    file gets the usual permissions (0o666 less the process umask). A failed write leaves
    no temporary file and the old file at ``path`` as it was; an :class:`OSError` (disk
    full, read-only, no permission) becomes a :class:`WriteError`, one line. ``durable``:
    flush the data to the disk before the rename (fsync); without it a reader still never
    sees a partial file, but a power cut may keep the previous version (for files rewritten
    often whose content a checkpoint also holds, such as metrics.jsonl)."""
    path = Path(path)
    try:
        if path.is_dir():  # os.replace cannot put a file over a directory
            raise RunError(f"{path} is a directory; give a file name to write to")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, fd = _create_temp(path)
    except OSError as e:  # a parent that is a file, a read-only or full disk
        raise _write_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _write_error(path, e) from None
        raise


def _create_temp(path: Path) -> tuple[Path, int]:
    """A new, empty temporary file beside ``path`` and its descriptor. O_EXCL makes the
    name ours alone; mode 0o666 lets the kernel apply the umask as for any new file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
    raise RunError(f"could not create a temporary file beside {path}")


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


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


def plain(o: Any) -> Any:
    """``o`` as plain JSON values (numpy numbers and arrays as Python ones, tuples as lists;
    NaN and infinities kept), for a checkpoint that must load with ``weights_only=True``."""
    return json.loads(json.dumps(o, default=_jsonable))


def _jsonable(o: Any) -> Any:
    """numpy scalars and arrays to plain Python, for json.dumps."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


# ------------------------------------------------------------------- reading a run

@dataclass
class RunFiles:
    """A run directory's files, parsed into plain Python. A file that is absent reads as
    None (one JSON object or YAML mapping) or as an empty list (findings, repairs, metrics
    rows). The model and the pictures are given as paths, not loaded."""

    path: Path
    plan: dict[str, Any] | None = None  # plan.yaml (yaml.safe_load)
    profile: dict[str, Any] | None = None  # profile.json
    preprocess: dict[str, Any] | None = None  # preprocess.json
    metrics: list[dict[str, Any]] = field(default_factory=list)  # metrics.jsonl, one per epoch
    evaluation: dict[str, Any] | None = None  # evaluation.json
    findings: list[dict[str, Any]] = field(default_factory=list)  # findings.json
    repairs: list[dict[str, Any]] = field(default_factory=list)  # repairs.json
    monitor: dict[str, Any] | None = None  # monitor.json
    environment: dict[str, Any] | None = None  # environment.json
    status: dict[str, Any] | None = None  # status.json
    lr_find: dict[str, Any] | None = None  # lr_find.json
    tune: dict[str, Any] | None = None  # tune.json
    cv: dict[str, Any] | None = None  # cv.json (a cross-validation directory)
    experiment: dict[str, Any] | None = None  # experiment.json (an experiment directory)
    model: Path | None = None  # model.pt
    lr_find_png: Path | None = None  # lr_find.png
    mistakes_png: Path | None = None  # mistakes.png


# the parsed files of RunFiles: key of RUN_DIR → the type its content must have
_MAPPINGS = ("plan", "profile", "preprocess", "evaluation", "monitor", "environment", "status",
             "lr_find", "tune", "cv", "experiment")
_LISTS = ("findings", "repairs")
_PATHS = {"model": "model", "lr_find_png": "lr_find_png", "mistakes_png": "mistakes"}


def read_run_files(path: str | Path, *, require: Iterable[str] = (),
                   check_model: bool = False) -> RunFiles:
    """Read every file of the run directory ``path`` (a finished run, a cv fold, a tune
    run, a cv or experiment directory).

    ``require``: keys of :data:`RUN_DIR` that must be present (e.g. ``("plan", "model")``).
    ``check_model``: also refuse a model.pt that is damaged or holds more than tensors
    (read without torch and without unpickling: see :func:`check_weights`).
    Raises :class:`RunError`, one line, when ``path`` is not a directory, a required file
    is missing, or a file cannot be read or parsed (the message names the file)."""
    path = Path(path)
    if not path.is_dir():
        problem = "is a file, not a directory" if path.exists() else "not found"
        raise RunError(f"run directory {path} {problem}; give the --out directory of a "
                       "finished `nnrecipe train` (or cv, tune)")
    lacking = [RUN_FILES[k] for k in require if not (path / RUN_FILES[k]).exists()]
    if lacking:
        raise RunError(f"{path} is not a finished nnrecipe run: {', '.join(lacking)} missing")
    run = RunFiles(path=path)
    for key in _MAPPINGS:
        setattr(run, key, _read(path / RUN_FILES[key], dict))
    for key in _LISTS:
        setattr(run, key, _read(path / RUN_FILES[key], list) or [])
    run.metrics = _read_jsonl(path / RUN_FILES["metrics"])
    for attr, key in _PATHS.items():
        setattr(run, attr, path / RUN_FILES[key] if (path / RUN_FILES[key]).is_file() else None)
    if check_model and run.model is not None:
        check_weights(run.model)
    return run


# What the pickle inside a model.pt may name: a state_dict of tensors, as torch.save writes
# it ("module name" of each GLOBAL opcode). Anything else could run code when loaded.
_SAFE_GLOBAL = re.compile(
    r"collections OrderedDict|torch \w+Storage|torch\._utils _rebuild_(tensor_v2|parameter|"
    r"parameter_with_state)|torch (device|Size|bool|half|float|double|long|bfloat16|"
    r"u?int\d+|float\d+)")
_UNSAFE_OPS = {"STACK_GLOBAL", "INST", "OBJ", "EXT1", "EXT2", "EXT4"}


def check_weights(file: Path) -> None:
    """Refuse a model.pt that is damaged (truncated, a bad checksum, not torch's zip
    format) or unsafe (its pickle names anything but tensors), without loading it: the
    report reads runs without torch, and torch's own refusal advises how to unpickle."""
    names: set[str] = set()
    try:
        with zipfile.ZipFile(file) as z:
            pickles = [n for n in z.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"]
            if len(pickles) != 1 or z.testzip() is not None:
                raise ValueError("not one intact data.pkl")
            for op, arg, _ in pickletools.genops(z.read(pickles[0])):
                if op.name in _UNSAFE_OPS or (op.name == "GLOBAL" and not
                                              _SAFE_GLOBAL.fullmatch(str(arg))):
                    names.add(op.name)
    except Exception:  # noqa: BLE001 - whatever a hostile file makes the parser raise
        raise RunError(f"{file} is unreadable (truncated, damaged or not PyTorch weights); "
                       "the run directory is damaged: run the command that wrote it "
                       "again") from None
    if names:
        raise RunError(f"{file} is unsafe: it holds Python objects other than weights, "
                       "which could run code when loaded; nnrecipe will not load it: use "
                       "a model.pt that nnrecipe wrote")


def _read(file: Path, kind: type) -> Any:
    """A JSON or YAML file's content (None when absent), checked to be a ``kind``."""
    if not file.is_file():
        return None
    try:
        text = file.read_text(encoding="utf-8")
        content = yaml.safe_load(text) if file.suffix == ".yaml" else json.loads(text)
    except yaml.constructor.ConstructorError:  # a !!python/... tag: never constructed
        raise RunError(f"{file} is unsafe: it holds a YAML tag (such as !!python/...) that "
                       "nnrecipe will not load; the run directory is damaged or was "
                       "tampered with: run the command that wrote it again") from None
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
        raise _damaged(file, f"{type(e).__name__}: {e}") from e
    if not isinstance(content, kind) or (kind is list and not all(
            isinstance(x, dict) for x in content)):
        want = "a mapping" if kind is dict else "a list of objects"
        raise _damaged(file, f"expected {want}, found {type(content).__name__}")
    return content


def _read_jsonl(file: Path) -> list[dict[str, Any]]:
    """One object per non-empty line; [] when the file is absent."""
    if not file.is_file():
        return []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise _damaged(file, f"{type(e).__name__}: {e}") from e
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise _damaged(file, f"line {n}: {e}") from e
        if not isinstance(row, dict):
            raise _damaged(file, f"line {n}: expected an object, found {type(row).__name__}")
        rows.append(row)
    return rows


def _damaged(file: Path, detail: str) -> RunError:
    detail = " ".join(detail.split())  # YAML errors span lines: the message stays one line
    return RunError(f"{file} cannot be read ({detail}); the run directory is damaged: "
                    "run the command that wrote it again")


# ------------------------------------------------------------------ the directory itself

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
