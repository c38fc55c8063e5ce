"""The training doctor: checks, monitors, diagnosis with evidence, and repair.

``Finding`` and ``CODES`` are the vocabulary; ``Doctor`` watches a user's own loop;
``LiveMonitor`` is the watcher nnrecipe's own loop uses; ``run_preflight`` runs the
debugging recipe's checks on any model.
"""

from .findings import CODES, Finding, make_finding, sort_findings
from .monitors import LiveMonitor
from .preflight import run_preflight
from .watch import Doctor

__all__ = ["CODES", "Doctor", "Finding", "LiveMonitor", "make_finding", "run_preflight",
           "sort_findings"]
