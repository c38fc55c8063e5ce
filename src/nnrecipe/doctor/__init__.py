"""The training doctor: checks, monitors, diagnosis with evidence, and repair.

``Finding`` and ``CODES`` are the vocabulary; ``Doctor`` watches a user's own loop;
``LiveMonitor`` is the watcher nnrecipe's own loop uses; ``run_preflight`` runs the
debugging recipe's checks on any model. Each name is imported from its module when first
used, so reading a run's findings does not load the monitors and the pre-flight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # what static tools see; at run time the table below serves the names
    from .findings import CODES, Finding, make_finding, sort_findings
    from .monitors import LiveMonitor
    from .preflight import run_preflight
    from .watch import Doctor

__all__ = ["CODES", "Doctor", "Finding", "LiveMonitor", "make_finding", "run_preflight",
           "sort_findings"]

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("CODES", "Finding", "make_finding", "sort_findings"),
                    "nnrecipe.doctor.findings"),
    "LiveMonitor": "nnrecipe.doctor.monitors", "run_preflight": "nnrecipe.doctor.preflight",
    "Doctor": "nnrecipe.doctor.watch"})
