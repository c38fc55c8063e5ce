"""Hypothesis experiments: change one thing, say what you expect, verify.

The baseline plan and the changed plan are trained on the same splits with the same seeds
(one pair per repeat); the paired differences of the chosen test metric give an effect
size, a confidence interval (Student's t, scipy) and a verdict:

- expect better / worse: *supported* when the whole interval lies on that side of zero,
  *refuted* when it lies wholly on the other side, else *inconclusive*;
- expect same: *supported* when the interval lies within ± the equivalence margin,
  *refuted* when it excludes zero, else *inconclusive*.

Every experiment is appended to the journal, ``runs/experiments.jsonl`` in the current
directory unless the user names another file (``--journal FILE``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NnrecipeError
from ..lazy import lazy
from ..runs import RUN_FILES, atomic_write_text, json_safe

stats = lazy("scipy.stats")

__all__ = ["EXPECTATIONS", "HIGHER_IS_BETTER", "paired_verdict", "append_journal",
           "read_journal", "journal_path", "JOURNAL", "DEFAULT_JOURNAL"]

EXPECTATIONS = ("better", "worse", "same")
HIGHER_IS_BETTER = {"accuracy": True, "balanced_accuracy": True, "f1_macro": True,
                    "precision_macro": True, "recall_macro": True, "roc_auc": True, "r2": True,
                    "log_loss": False, "rmse": False, "mae": False}
JOURNAL = RUN_FILES["experiments_journal"]  # experiments.jsonl
DEFAULT_JOURNAL = Path("runs") / JOURNAL  # relative: in the current directory's runs/
# what every journal line holds (the CLI's table reads these)
_ENTRY = {"time": str, "hypothesis": str, "changes": dict, "expect": str, "metric": str,
          "mean_improvement": (int, float, type(None)), "ci": list, "verdict": str}


def paired_verdict(baseline: list[float], changed: list[float], *, expect: str,
                   higher_is_better: bool, confidence: float = 0.95,
                   margin: float | None = None) -> dict[str, Any]:
    """Statistics and verdict for paired results. Differences are oriented so that a
    positive number means the change made the metric *better*. ``margin`` (for "same")
    defaults to 1% of the baseline's mean magnitude."""
    b, c = np.asarray(baseline, float), np.asarray(changed, float)
    d = (c - b) if higher_is_better else (b - c)
    n = len(d)
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if n > 1 and sd > 0:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        p = float(stats.ttest_rel(c, b).pvalue)
    else:  # identical differences every time: the interval collapses onto the mean
        half, p = 0.0, (1.0 if mean == 0 else 0.0)
    lo, hi = mean - half, mean + half
    margin = margin if margin is not None else 0.01 * max(abs(float(b.mean())), 1e-12)
    if expect == "same":
        verdict = ("supported" if -margin <= lo and hi <= margin else
                   "refuted" if lo > 0 or hi < 0 else "inconclusive")
    else:
        sign = 1 if expect == "better" else -1
        verdict = ("supported" if (lo > 0 if sign > 0 else hi < 0) else
                   "refuted" if (hi < 0 if sign > 0 else lo > 0) else "inconclusive")
    return {"n_pairs": n, "mean_improvement": mean, "ci": [lo, hi], "confidence": confidence,
            "p_value": p, "effect_size_dz": mean / sd if sd > 0 else None,
            "equivalence_margin": margin if expect == "same" else None, "verdict": verdict}


def journal_path(path: str | Path | None) -> Path:
    """The journal file: ``path``, or ``path/experiments.jsonl`` when ``path`` is a
    directory (a run root); :data:`DEFAULT_JOURNAL` when None."""
    path = DEFAULT_JOURNAL if path is None else Path(path)
    return path / JOURNAL if path.is_dir() else path


def append_journal(path: str | Path, entry: dict[str, Any]) -> Path:
    """Add one line to the journal ``path`` (a file, or a directory holding
    experiments.jsonl), rewritten atomically: never half a line. Returns the file."""
    path = journal_path(path)
    old = _read_text(path) if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    atomic_write_text(path, old + json.dumps(json_safe(entry)) + "\n")
    return path


def read_journal(path: str | Path) -> list[dict[str, Any]]:
    """Every experiment in the journal ``path`` (a file, or a directory holding
    experiments.jsonl); NnrecipeError, one line, when it is missing or a line is not an
    experiment."""
    path = journal_path(path)
    if not path.exists():
        raise NnrecipeError(f"no experiments journal at {path}; run `nnrecipe experiment` "
                            "first (or give --journal FILE)")
    entries = []
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        bad = "not JSON" if entry is None else _entry_problem(entry)
        if bad:
            raise NnrecipeError(f"{path} line {n} is not an experiment ({bad}); it is not an "
                                "nnrecipe journal: give another --journal, or fix that line")
        entries.append(entry)
    return entries


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return f"a {type(entry).__name__}, not an object"
    for key, kind in _ENTRY.items():
        if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
            return f"'{key}' missing or not {getattr(kind, '__name__', 'a number')}"
    if len(entry["ci"]) != 2 or not all(isinstance(x, int | float | None) for x in entry["ci"]):
        return "'ci' is not two numbers"
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise NnrecipeError(f"{path} cannot be read as an experiments journal "
                            f"({type(e).__name__}); give another --journal") from None
