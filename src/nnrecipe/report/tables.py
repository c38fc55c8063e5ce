"""Rich tables for the terminal. The findings table lives with the findings
(:mod:`nnrecipe.doctor.findings`: the doctor prints it too, and the doctor sits below the
report); it is imported here for the callers that look for it under report."""

from __future__ import annotations

from ..doctor.findings import SEVERITY_STYLE, findings_table

__all__ = ["SEVERITY_STYLE", "findings_table"]
