"""Reports: the HTML page of a run (report.html), its plain-language summary (summary.md),
and the leaderboard of several runs (compare)."""

from .html import rebuild, render_report, write_cv_report, write_report
from .summary import render_summary

__all__ = ["rebuild", "render_report", "render_summary", "write_cv_report", "write_report"]
