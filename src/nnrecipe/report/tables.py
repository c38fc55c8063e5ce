"""Rich tables for the terminal: the doctor's findings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

__all__ = ["findings_table"]

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def findings_table(findings: Sequence[Any], *, advice: bool = False,
                   title: str = "The doctor's findings (worst first)") -> Table:
    table = Table(title=title)
    for col in ("severity", "finding", "where", "evidence") + (("advice",) if advice else ()):
        table.add_column(col, overflow="fold")
    for f in findings:
        where = " ".join(x for x in (f"epoch {f.epoch}" if f.epoch else "",
                                     f"step {f.step}" if f.step and not f.epoch else "",
                                     f.layer or "") if x)
        evidence = ", ".join(f"{k}={v}" for k, v in list(f.evidence.items())[:4])
        row = [f"[{SEVERITY_STYLE[f.severity]}]{f.severity}", f.title, where, evidence]
        table.add_row(*row, *(["\n".join(f"• {a}" for a in f.advice[:2])] if advice else []))
    return table
