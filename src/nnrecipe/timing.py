"""Where a run's time goes: named stages timed on one stopwatch per command.

The command (or API call) starts a :class:`Stopwatch` with :func:`recording`; code anywhere
below marks its part with ``with stage("profile"):``, without passing the stopwatch around
(it lives in a context variable). Outside a recording, ``stage`` costs nothing and records
nothing. A stage entered twice (a repair trains again) adds up; a stage inside another is
taken out of the outer one, so the stages never count a second twice and sum to the time
the command spent in them. ``environment.json`` keeps the result; the report's Reproduce
section and ``nnrecipe train --verbose`` show it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["STAGES", "Stopwatch", "current", "recording", "stage", "stage_rows"]

#: The stages in the order a run passes them, with what each covers.
STAGES = {
    "imports": "loading the libraries the command needs (torch, scikit-learn, …)",
    "load": "reading the data",
    "profile": "profiling the data and the input checks (leaks, duplicates, classes)",
    "plan": "splitting, planning, fitting the preprocessing, building the network",
    "preflight": "the doctor's pre-flight checks (loss at init, overfitting a batch, …) "
                 "and the LR range test",
    "epochs": "the training epochs (with the live monitors)",
    "after_training": "the doctor's checks of the finished training (curves, label issues)",
    "ensemble": "training an ensemble's other networks (model.ensemble)",
    "evaluation": "scoring the test split against the baseline, the worst samples",
    "save": "writing the weights, the plan, the findings and the other files",
    "report": "drawing the plots and writing report.html and summary.md",
}

_current: ContextVar[Stopwatch | None] = ContextVar("nnrecipe_stopwatch", default=None)


class Stopwatch:
    """Seconds per stage, in the order they were first entered."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self._open: list[list] = []  # [name, start, seconds spent in inner stages]

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        entry = [name, time.perf_counter(), 0.0]
        self._open.append(entry)
        try:
            yield
        finally:
            self._open.pop()
            spent = time.perf_counter() - entry[1]
            self.seconds[name] = self.seconds.get(name, 0.0) + spent - entry[2]
            if self._open:
                self._open[-1][2] += spent

    def total(self) -> float:
        return time.perf_counter() - self.started

    def to_dict(self) -> dict[str, float]:
        """Seconds per stage (3 decimals), plus ``total``: the whole time since the
        stopwatch started (``total`` minus the stages: the time no stage claims)."""
        return {**{k: round(v, 3) for k, v in self.seconds.items()},
                "total": round(self.total(), 3)}


def current() -> Stopwatch | None:
    return _current.get()


@contextmanager
def recording(watch: Stopwatch | None = None) -> Iterator[Stopwatch]:
    """Make ``watch`` (or the one already recording, or a new one) the current stopwatch."""
    watch = watch or _current.get() or Stopwatch()
    token = _current.set(watch)
    try:
        yield watch
    finally:
        _current.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage ``name`` on the current stopwatch (if any)."""
    watch = _current.get()
    if watch is None:
        yield
        return
    with watch.stage(name):
        yield


def stage_rows(stages: dict[str, float]) -> list[dict[str, Any]]:
    """environment.json's stage timings as rows, with each one's share of the total and
    the time no stage claims (start-up, the steps between stages) as "other". Without a
    ``total``, the shares are of the stages' sum (the report shows the stages before its
    own, so that a report rebuilt later is the same page)."""
    total = stages.get("total")
    timed = {k: v for k, v in stages.items() if k != "total"}
    whole = total or sum(timed.values())
    rows = [{"name": k, "seconds": v, "what": STAGES.get(k, ""),
             "share": f"{v / whole:.0%}" if whole else ""} for k, v in timed.items()]
    if total:
        rest = max(0.0, total - sum(timed.values()))
        rows += [{"name": "other", "seconds": rest, "share": f"{rest / total:.0%}",
                  "what": "start-up and the steps between stages"},
                 {"name": "total", "seconds": total, "share": "", "what": ""}]
    return rows
