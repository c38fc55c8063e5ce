"""The report's sections as plain values for the templates: data, doctor, evaluation and
a tuned run's search. Strings a user supplied stay strings: the template escapes them."""

from __future__ import annotations

import math
from typing import Any

from ..doctor.findings import CODES
from . import plots
from .load import ReportRun
from .summary import SHOWN, data_notes, fmt

__all__ = ["data_section", "doctor_section", "evaluation_section", "search_section"]

MAX_COLUMNS = 60  # columns listed in the data table (the rest: profile.json)
SPARK_W, SPARK_H = 120, 28  # size of the small histograms (px)
HIGHER_IS_BETTER = {**SHOWN, "precision_macro": True, "recall_macro": True}
SEVERITY_ORDER = ("error", "warning", "info")
SAMPLE_HEADERS = {"name": "sample", "true": "target", "pred": "predicted",
                  "p_pred": "p(predicted)", "loss": "loss", "text": "text"}
WHEN = {"data": "before training", "config": "before training", "preflight": "pre-flight",
        "live": "during training", "after": "after training"}


# ------------------------------------------------------------------------------ data

def data_section(run: ReportRun) -> dict[str, Any]:
    prof = run.profile
    dropped = set((run.plan.derived["data.drop"].value or {}) if "data.drop" in run.plan.derived
                  else ())
    items = list(prof.columns.items())
    columns = [{"name": name, "kind": st.get("kind"), "dtype": st.get("dtype"),
                "missing": st.get("missing_share", 0.0), "distinct": st.get("distinct"),
                "stats": _stats_text(st), "bars": _bars(st), "target": name == prof.target,
                "dropped": name in dropped}
               for name, st in items[:MAX_COLUMNS]]
    classes = prof.target_summary.get("classes", {})
    total = sum(classes.values()) or 1
    modality = getattr(prof, "modality", "table")
    return {
        "modality": modality, "inputs": getattr(prof, "inputs", {}) or {},
        "n_features": prof.n_columns - 1 if prof.columns else None,  # a table's inputs
        "n_rows": prof.n_rows, "n_columns": prof.n_columns, "target": prof.target,
        "task": prof.task, "task_reason": prof.task_reason, "columns": columns,
        "more_columns": max(0, len(items) - MAX_COLUMNS),
        "balance": [{"name": c, "count": n, "share": n / total} for c, n in classes.items()],
        "target_summary": prof.target_summary,
        "target_bars": _bars(prof.columns.get(prof.target, {}), width=360, height=70),
        "missing": [(c, st["missing_share"]) for c, st in items if st.get("missing_share")],
        "dropped_target_missing": prof.dropped_target_missing,
        "leaks": prof.leak_suspects, "duplicates": prof.duplicate_rows,
        "splits": prof.splits, "overlap": prof.splits.get("duplicates_across_splits") or {},
        "constant": prof.constant_columns, "id_like": prof.id_like_columns,
        "notes": data_notes(run), "source": _source(run.environment),
    }


def _source(env: dict[str, Any]) -> str | None:
    if env.get("data_path"):
        return env["data_path"]
    name = env.get("data_name")
    return "a pandas DataFrame (Python API)" if name == "dataframe" else name


def _stats_text(st: dict[str, Any]) -> str:
    if "mean" in st:
        scale = max(abs(st["min"]), abs(st["max"]))
        mean = 0.0 if abs(st["mean"]) < 1e-9 * scale else st["mean"]  # rounding noise
        return (f"mean {fmt(mean)} · sd {fmt(st['std'])} · "
                f"{fmt(st['min'])} to {fmt(st['max'])}")
    top = st.get("top") or {}
    shown = " · ".join(f"{k} ({v})" for k, v in list(top.items())[:3])
    return shown + (" · …" if st.get("distinct", 0) > 3 else "")


def _bars(st: dict[str, Any], width: int = SPARK_W, height: int = SPARK_H
          ) -> list[dict[str, Any]]:
    """SVG rectangles of a small histogram (numeric) or of the top values' counts, each
    with its tooltip."""
    hist = st.get("histogram")
    if hist:
        counts, edges = hist["counts"], hist["edges"]
        tips = [f"{fmt(edges[i])} to {fmt(edges[i + 1])}: {c}" for i, c in enumerate(counts)]
    elif st.get("top"):
        counts = list(st["top"].values())
        tips = [f"{k}: {v}" for k, v in st["top"].items()]
    else:
        return []
    peak, w = max(max(counts), 1), width / max(len(counts), 1)
    out = []
    for i, (c, tip) in enumerate(zip(counts, tips, strict=True)):
        h = max(1.0, (height - 2) * c / peak) if c else 0.0
        out.append({"x": round(i * w, 2), "y": round(height - h, 2),
                    "w": round(max(w - 1, 0.5), 2), "h": round(h, 2), "tip": tip})
    return out


# ---------------------------------------------------------------------------- doctor

def doctor_section(run: ReportRun) -> dict[str, Any]:
    cards = []
    for i, f in enumerate(run.findings, start=1):
        where = " · ".join(x for x in (f"epoch {f.epoch}" if f.epoch else "",
                                       f"step {f.step}" if f.step else "",
                                       f"layer {f.layer}" if f.layer else "") if x)
        cards.append({"n": i, "code": f.code, "severity": f.severity, "title": f.title,
                      "where": where or WHEN.get(CODES.get(f.code, ("",))[0], ""),
                      "marked": bool(f.epoch),
                      "evidence": [(k, v) for k, v in f.evidence.items() if k != "rows"],
                      "explanation": f.explanation, "advice": f.advice,
                      "fix": [f"--set {k}={v}" for k, v in (f.fix or {}).items()]})
    counts = {s: sum(c["severity"] == s for c in cards) for s in SEVERITY_ORDER}
    repairs = [{"attempt": r.get("attempt"), "title": r.get("title"), "epoch": r.get("epoch"),
                "change": ", ".join(f"{k}={v}" for k, v in (r.get("change") or {}).items()),
                "restart": r.get("restart"), "before": r.get("before") or {},
                "after": r.get("after") or {}} for r in run.repairs]
    return {"cards": cards, "counts": counts, "repairs": repairs}


# ------------------------------------------------------------------------ evaluation

def evaluation_section(run: ReportRun) -> dict[str, Any]:
    ev = run.evaluation
    model, base = ev["metrics"], ev["baseline"]["metrics"]
    names = [n for n in HIGHER_IS_BETTER if n in model] + [
        n for n in model if n not in HIGHER_IS_BETTER]
    rows = []
    for n in names:
        m, b, higher = model[n], base.get(n), HIGHER_IS_BETTER.get(n)
        known = higher is not None and _finite(m) and _finite(b)
        rows.append({"name": n, "model": m, "baseline": b, "main": n == ev["main_metric"],
                     "better": (m > b if higher else m < b) if known else None})
    details = ev.get("details") or {}
    binary = details.get("binary")
    return {
        "n_rows": ev["n_rows"], "main": ev["main_metric"], "rows": rows,
        "baseline_name": ev["baseline"]["name"].replace("_", " "),
        "per_class": ev.get("per_class") or {},
        "confusion": _confusion(ev.get("confusion_matrix")),
        "binary": binary and {**binary, "plot": plots.roc_pr(binary),
                              "best_f1": _best_f1(binary["thresholds"])},
        "residuals": details.get("residuals") and {
            **details["residuals"], "plot": plots.residuals(details["residuals"])},
        "worst": details.get("worst_rows") or [],
        "worst_features": list(dict.fromkeys(
            k for r in details.get("worst_rows") or [] for k in r.get("features", {}))),
        "loss_name": details.get("loss_name"),
        "label_issues": _label_issues(run),
        "samples": [{k: _cell(v) for k, v in row.items()} for row in ev.get("worst") or []],
        "sample_headers": SAMPLE_HEADERS,
        "mistakes": plots.png_data_uri(run.mistakes_png) if run.mistakes_png else None,
    }


def _cell(v: Any) -> Any:
    """A value of evaluation.json's ``worst`` rows as shown: a forecast's list of steps
    as one line."""
    if isinstance(v, list):
        return ", ".join(fmt(x) for x in v[:12]) + (" …" if len(v) > 12 else "")
    return v


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _confusion(cm: dict[str, Any] | None) -> dict[str, Any] | None:
    """Cells shaded by their share of the true class's rows (the row)."""
    if not cm:
        return None
    rows = []
    for i, counts in enumerate(cm["matrix"]):
        total = sum(counts) or 1
        rows.append({"label": cm["labels"][i], "total": sum(counts), "cells": [
            {"count": c, "share": c / total, "diag": i == j} for j, c in enumerate(counts)]})
    return {"labels": cm["labels"], "rows": rows}


def _best_f1(rows: list[dict[str, Any]]) -> float | None:
    """The threshold with the best F1; among ties, the one nearest the default 0.5."""
    scored = [r for r in rows if r.get("f1") is not None]
    best = max(scored, key=lambda r: (r["f1"], -abs(r["threshold"] - 0.5)), default=None)
    return best["threshold"] if best else None


def _label_issues(run: ReportRun) -> dict[str, Any] | None:
    f = next((f for f in run.findings if f.code == "label_issues"), None)
    if f is None:
        return None
    rows = [r.strip() for r in str(f.evidence.get("rows", "")).split(";") if r.strip()]
    return {"count": f.evidence.get("count"), "checked": f.evidence.get("rows_checked"),
            "rows": rows}


# ---------------------------------------------------------------------------- search

def search_section(tune: dict[str, Any]) -> dict[str, Any]:
    """A tuned run's tune.json: every trial and its validation-loss curve. Read
    defensively: a field missing from an older or newer file is shown as empty."""
    trials = [t for t in tune.get("trials") or [] if isinstance(t, dict)]
    best = tune.get("best") or {}
    keys = list(dict.fromkeys([*(tune.get("space") or {}),
                               *(k for t in trials for k in t.get("params") or {})]))
    states: dict[str, int] = {}
    for t in trials:
        states[str(t.get("state"))] = states.get(str(t.get("state")), 0) + 1
    return {
        "study": tune.get("study"), "storage": tune.get("storage"),
        "objective": tune.get("objective", "val_loss"),
        "direction": tune.get("direction", "minimize"), "param_keys": keys,
        "trials": [{"number": t.get("number"), "state": t.get("state"), "value": t.get("value"),
                    "params": t.get("params") or {}, "best": t.get("number") == best.get("number"),
                    "epochs": t.get("epochs") or len(t.get("intermediate") or {}),
                    "seconds": t.get("seconds"), "note": t.get("note") or ""} for t in trials],
        "space": [{"key": k, "range": _range_text(d), "reason": (d or {}).get("reason", "")}
                  for k, d in (tune.get("space") or {}).items()],
        "states": states, "best": best, "fixed": tune.get("fixed") or {},
        "plot": plots.trial_curves(trials, best.get("number")),
    }


def _range_text(dim: Any) -> str:
    if not isinstance(dim, dict):
        return fmt(dim)
    if "choices" in dim:
        return "one of " + ", ".join(map(str, dim["choices"]))
    scale = " (log scale)" if dim.get("log") else ""
    return f"{fmt(dim.get('low'))} to {fmt(dim.get('high'))}{scale}"
