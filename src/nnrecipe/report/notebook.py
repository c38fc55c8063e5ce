"""A run as Jupyter shows it (``Run._repr_html_``): a card with the task, the test metrics
beside the dumb baseline, the key plan choices with their reasons, the doctor's findings
and the learning curve; the full report stays in report.html."""

from __future__ import annotations

from typing import Any

from markupsafe import escape

from . import plots
from .summary import fmt, key_choices, metric_rows

__all__ = ["run_card"]

STYLE = ("font-family:system-ui,sans-serif;font-size:13px;border:1px solid #ddd;"
         "border-radius:6px;padding:10px 14px;max-width:980px")
SEVERITY_COLOR = {"error": "#d62728", "warning": "#b8860b", "info": "#555"}


def run_card(run: Any) -> str:
    """HTML for a run: finished (with its evaluation) or only trained."""
    plan, evaluation, history = run.plan, run.evaluation or {}, run.history
    where = f" · {escape(str(run.path))}" if run.path is not None else " · in memory"
    parts = [f'<div class="nnrecipe-run" style="{STYLE}">',
             f"<b>nnrecipe run</b>: predicting <b>{escape(str(run.profile.target))}</b> "
             f"({escape(plan['task'])}, {escape(run.profile.modality)} data, "
             f"{len(history.epochs)} epochs; {escape(run.status)}){where}"]
    if evaluation.get("metrics"):
        parts.append(_metrics(evaluation))
    parts.append(_table("plan (key choices)", ["decision", "value", "why"],
                        [(k, fmt(v), why) for k, v, why in key_choices(plan)]))
    if run.findings:
        rows = "".join(
            f'<li><span style="color:{SEVERITY_COLOR.get(f.severity, "#555")}">'
            f"{escape(f.severity)}</span> {escape(f.title)} <code>{escape(f.code)}</code></li>"
            for f in run.findings)
        parts.append(f"<p><b>the doctor's findings</b></p><ul>{rows}</ul>")
    else:
        parts.append("<p>The doctor found nothing to report.</p>")
    curve = plots.learning_curves(history.epochs, metric=evaluation.get("main_metric"),
                                  best_epoch=history.best_epoch,
                                  stopped_early=history.stop_reason.startswith("early"))
    if curve is not None:
        parts.append(f'<img alt="learning curves" style="max-width:100%" src="{curve}">')
    if history.stop_reason:
        parts.append(f"<p>Stopped: {escape(history.stop_reason)}</p>")
    parts.append("</div>")
    return "\n".join(parts)


def _metrics(evaluation: dict[str, Any]) -> str:
    base = evaluation.get("baseline", {}).get("name", "baseline").replace("_", " ")
    rows = [(name, f"{v:.4g}" + ("" if better else " (not better)"),
             "" if b is None else f"{b:.4g}") for name, v, b, better in metric_rows(evaluation)]
    return _table(f"test metrics ({evaluation.get('n_rows', '?')} rows)",
                  ["metric", "network", base], rows)


def _table(title: str, head: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                    for row in rows)
    heads = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in head)
    return (f"<p><b>{escape(title)}</b></p><table><tr>{heads}</tr>{cells}</table>")
