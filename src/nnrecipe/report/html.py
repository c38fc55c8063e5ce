"""report.html: one self-contained page per run (images inside it, no script, no link
outside it), built from the run directory's files and rendered with jinja2, every
user-supplied string escaped (autoescape).

Sections, in order: summary, data, plan, (search, for a tuned run), training, doctor,
evaluation, reproduce. :func:`write_report` also rewrites summary.md, the summary section
as Markdown. A cross-validation directory gets its own page (:func:`write_cv_report`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from ..runs import RUN_FILES, atomic_write_text, read_run_files
from ..timing import stage_rows
from . import plots
from .load import ReportRun, is_cv_dir, load_run_files
from .sections import data_section, doctor_section, evaluation_section, search_section
from .summary import fmt, render_summary, summary_facts

__all__ = ["render_report", "write_report", "render_cv_report", "write_cv_report",
           "rebuild", "template_env"]


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("nnrecipe.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = lambda v, d=1: "n/a" if v is None else f"{100 * v:.{d}f}%"
    env.filters["cmd"] = _command_as_code
    return env


def _command_as_code(text: str) -> Markup:
    """A sentence ending in an ``nnrecipe ...`` command: the command set as code. Both
    parts are escaped."""
    i = text.find("nnrecipe ")
    if i < 0:
        return escape(text)
    return escape(text[:i]) + Markup("<code>") + escape(text[i:]) + Markup("</code>")


def _num(v: Any, digits: int = 4) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return fmt(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.{digits}g}"
    return fmt(v)


def render_report(run: ReportRun) -> str:
    return template_env().get_template("report.html").render(**report_context(run))


def write_report(run_dir: str | Path) -> Path:
    """Write report.html and summary.md of a finished run directory; returns the page."""
    run = load_run_files(Path(run_dir))
    page = render_report(run)
    atomic_write_text(run.path / RUN_FILES["summary"], render_summary(run))
    atomic_write_text(run.path / RUN_FILES["report"], page)
    return run.path / RUN_FILES["report"]


def rebuild(path: str | Path) -> Path:
    """report.html (and summary.md) of a run directory or a cross-validation directory."""
    path = Path(path)
    return write_cv_report(path) if is_cv_dir(path) else write_report(path)


def report_context(run: ReportRun) -> dict[str, Any]:
    ev, task = run.evaluation, run.plan["task"]
    marks = [(f.epoch, f"F{i}", f.severity) for i, f in enumerate(run.findings, start=1)
             if f.epoch]
    training = ev.get("training", {})
    stop = training.get("stop_reason") or ""
    metric = ev.get("main_metric")
    return {
        "title": f"nnrecipe · {run.name}",
        "run_name": run.name,
        "summary": summary_facts(run),
        "data": data_section(run),
        "plan": plan_section(run),
        "search": search_section(run.tune) if run.tune else None,
        "training": {
            "facts": training,
            "curves": plots.learning_curves(run.epochs, metric=metric,
                                            best_epoch=training.get("best_epoch"),
                                            stopped_early="early stopping" in stop,
                                            marks=marks),
            "lr": plots.lr_per_epoch(run.epochs),
            "lr_constant": _constant_lr(run.epochs),
            "lr_find": run.lr_find,
            "lr_find_png": plots.png_data_uri(run.lr_find_png) if run.lr_find_png else None,
            "monitor": plots.layer_monitor((run.monitor or {}).get("samples", [])),
            "sample_every": (run.monitor or {}).get("sample_every"),
            "n_marks": len(marks),
        },
        "doctor": doctor_section(run),
        "evaluation": evaluation_section(run),
        "reproduce": reproduce_section(run),
        "task": task,
    }


def _constant_lr(epochs: list[dict[str, Any]]) -> float | None:
    rates = {e.get("lr") for e in epochs}
    return rates.pop() if len(rates) == 1 else None


def plan_section(run: ReportRun) -> dict[str, Any]:
    plan = run.plan
    rows = [{"key": k, "value": d.value, "reason": d.reason, "rule": d.rule,
             "user": d.rule == "user", "derived": derived}
            for derived, part in ((True, plan.derived), (False, plan.decisions))
            for k, d in part.items()]
    n_train = run.profile.splits.get("train")
    params = plan["model.parameters"] if "model.parameters" in plan else None
    return {"rows": rows, "parameters": params, "n_train": n_train,
            "ratio": params / n_train if params and n_train else None,
            "parameters_advice": _after_colon(plan.derived["model.parameters"].reason)
            if "model.parameters" in plan.derived else ""}


def _after_colon(reason: str) -> str:
    """"529 parameters for 397 rows (1.3 per row): in proportion" → "in proportion"."""
    return reason.split("): ", 1)[1] if "): " in reason else ""


def reproduce_section(run: ReportRun) -> dict[str, Any]:
    env = run.environment
    return {"command": env.get("command"), "started_from": env.get("started_from"),
            "time": (env.get("time") or "").replace("T", " "), "cwd": env.get("cwd"),
            "data_path": env.get("data_path"),
            "versions": env.get("versions", {}), "hardware": env.get("hardware", {}),
            "seed": run.plan["seed"] if "seed" in run.plan else None,
            "run_dir": str(run.path.resolve()),
            # the stages known when the report was first written: a rebuild is the same page
            "stages": stage_rows({k: v for k, v in (env.get("stages") or {}).items()
                                  if k not in ("report", "total")})}



# ------------------------------------------------------------- cross-validation

def render_cv_report(cv_dir: Path) -> str:
    return template_env().get_template("cv.html").render(**cv_context(Path(cv_dir)))


def write_cv_report(cv_dir: str | Path) -> Path:
    """report.html (and summary.md) of a cross-validation directory (cv.json + fold_k/);
    each fold links to its own report."""
    cv_dir = Path(cv_dir)
    ctx = cv_context(cv_dir)
    page = template_env().get_template("cv.html").render(**ctx)
    atomic_write_text(cv_dir / RUN_FILES["summary"], _cv_markdown(ctx))
    atomic_write_text(cv_dir / RUN_FILES["report"], page)
    return cv_dir / RUN_FILES["report"]


def cv_context(cv_dir: Path, *, with_plots: bool = True) -> dict[str, Any]:
    cv = read_run_files(cv_dir, require=("cv",)).cv
    summary, base = cv["summary"], cv.get("baseline_summary", {})
    main = "rmse" if cv["task"] == "regression" else "accuracy"
    names = [n for n in ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss",
                         "mae", "rmse", "r2") if n in summary]
    folds = []
    for f in cv["per_fold"]:
        page = Path(_fold(f["fold"])) / RUN_FILES["report"]
        folds.append({**f, "link": page.as_posix() if (cv_dir / page).is_file() else None})
    base_scores = _fold_baselines(cv_dir, cv, main)
    return {
        "title": f"nnrecipe · cross-validation · {cv_dir.name}", "run_name": cv_dir.name,
        "cv": cv, "main": main, "metrics": names, "folds": folds,
        "rows": [{"name": n, "mean": summary[n]["mean"], "std": summary[n]["std"],
                  "baseline": base.get(n, {}).get("mean")} for n in names],
        "plot": plots.fold_scores([f.get(main) for f in cv["per_fold"]], base_scores, main)
        if with_plots else None,
    }


def _fold_baselines(cv_dir: Path, cv: dict[str, Any], main: str) -> list[float]:
    out = []
    for f in cv["per_fold"]:
        fold_dir = cv_dir / _fold(f["fold"])
        evaluation = read_run_files(fold_dir).evaluation if fold_dir.is_dir() else None
        if evaluation is None:
            return []
        out.append(evaluation["baseline"]["metrics"].get(main))
    return out if all(v is not None for v in out) else []


def _fold(k: int | str) -> str:
    """fold k's directory name inside a cross-validation directory."""
    return RUN_FILES["fold"].format(k=k)


def _cv_markdown(ctx: dict[str, Any]) -> str:
    cv, main = ctx["cv"], ctx["main"]
    lines = [f"# nnrecipe cross-validation: {cv['folds']} folds ({cv['task']})", "",
             "Each fold was held out once as the test rows of a full run "
             f"({_fold('k')}/).", "",
             "| metric | mean ± std | baseline mean |", "|---|---|---|"]
    for r in ctx["rows"]:
        b = "" if r["baseline"] is None else f"{r['baseline']:.4g}"
        lines.append(f"| {r['name']} | {r['mean']:.4g} ± {fmt(r['std'])} | {b} |")
    lines += ["", f"Per fold ({main}): " + ", ".join(
        f"fold {f['fold']} {fmt(f.get(main))}" for f in ctx["folds"]), "",
        f"Full report: {RUN_FILES['report']} (open it in a browser).", ""]
    return "\n".join(lines)
