"""``nnrecipe compare``: a leaderboard page of finished runs — one row per run (data, key
plan choices, best validation loss, test metric, findings, time), their learning curves
overlaid, and the plan of two runs compared key by key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..runs import RUN_FILES, atomic_write_text
from . import plots
from .html import template_env
from .load import ReportRun, is_cv_dir, load_run_files
from .sections import HIGHER_IS_BETTER
from .summary import fmt, plan_value

__all__ = ["write_compare", "render_compare", "plan_diff", "leaderboard"]


def write_compare(run_dirs: list[str | Path], out: Path,
                  diff: tuple[str | Path, str | Path] | None = None) -> Path:
    """Check every input, then write the page atomically (bad input leaves no file)."""
    out = Path(out)
    if len(run_dirs) < 2:
        raise RunError(f"compare needs at least two run directories, got {len(run_dirs)}; "
                       "give the --out directories of finished `nnrecipe train` runs")
    if out.is_dir():
        raise RunError(f"--out {out} is a directory; give a file name, e.g. {out / 'compare.html'}")
    runs = [_load(p) for p in run_dirs]
    pair = (_load(diff[0]), _load(diff[1])) if diff else (runs[0], runs[1])
    atomic_write_text(out, render_compare(runs, pair, out.parent))
    return out


def _load(path: str | Path) -> ReportRun:
    path = Path(path)
    if is_cv_dir(path):
        fold = RUN_FILES["fold"].format(k="k")
        raise RunError(f"{path} is a cross-validation directory; compare its {fold} runs, "
                       f"or open its {RUN_FILES['report']}")
    return load_run_files(path)


def render_compare(runs: list[ReportRun], pair: tuple[ReportRun, ReportRun],
                   page_dir: Path) -> str:
    labels = _labels(runs)
    mains = {r.evaluation["main_metric"] for r in runs}
    metric = mains.pop() if len(mains) == 1 else None
    rows = leaderboard(runs, labels, page_dir, metric)
    pair_labels = _labels(list(pair))
    ctx = {
        "title": f"nnrecipe · compare {len(runs)} runs",
        "rows": rows, "metric": metric,
        "curves": plots.overlay_curves([(labels[i], r.epochs) for i, r in enumerate(runs)],
                                       metric),
        "diff": plan_diff(pair[0], pair[1]), "a": pair_labels[0], "b": pair_labels[1],
    }
    return template_env().get_template("compare.html").render(**ctx)


def leaderboard(runs: list[ReportRun], labels: list[str], page_dir: Path,
                metric: str | None) -> list[dict[str, Any]]:
    """One row per run, best first when every run has the same main metric."""
    rows = [_row(r, labels[i], page_dir) for i, r in enumerate(runs)]
    if metric is not None:
        sign = -1 if HIGHER_IS_BETTER.get(metric, True) else 1
        rows.sort(key=lambda row: (row["test"] is None, sign * (row["test"] or 0)))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _row(run: ReportRun, label: str, page_dir: Path) -> dict[str, Any]:
    ev, plan, prof = run.evaluation, run.plan, run.profile
    val = [(e["val_loss"], e["epoch"]) for e in run.epochs if e.get("val_loss") is not None]
    best = min(val) if val else (None, None)
    main = ev["main_metric"]
    counts = {s: sum(f.severity == s for f in run.findings) for s in ("error", "warning", "info")}
    report = run.path / RUN_FILES["report"]
    training = ev.get("training", {})
    return {
        "label": label, "path": str(run.path),
        "link": Path(os.path.relpath(report, page_dir)).as_posix() if report.is_file() else None,
        "data": run.environment.get("data_name") or "?", "target": prof.target,
        "task": plan["task"], "rows": prof.n_rows, "choices": _choices(plan),
        "best_val": best[0], "best_epoch": best[1], "main": main,
        "test": ev["metrics"].get(main), "baseline": ev["baseline"]["metrics"].get(main),
        "findings": counts, "seconds": training.get("seconds"), "epochs": training.get("epochs"),
    }


def _choices(plan: Any) -> str:
    def v(key: str) -> Any:
        return plan_value(plan, key)

    layers = v("model.hidden_layers")
    net = (str(v("model.kind") or "network") if layers is None else
           f"{layers}×{v('model.width')} {v('model.activation')}" if layers else "linear")
    extra = [f"dropout {fmt(v('model.dropout'))}"] if v("model.dropout") else []
    extra += [f"{v('schedule.name')} schedule"] if v("schedule.name") not in (None, "none") else []
    return " · ".join([net, f"{v('optimizer.name')} lr {fmt(v('optimizer.lr'))}",
                       f"batch {v('train.batch_size')}", *extra])


def plan_diff(a: ReportRun, b: ReportRun) -> dict[str, list[dict[str, Any]]]:
    """Every plan key of two runs: those whose values differ (with both reasons), and
    those that are the same."""
    def entries(run: ReportRun) -> dict[str, Any]:
        return {**run.plan.derived, **run.plan.decisions}

    ea, eb = entries(a), entries(b)
    differ, same = [], []
    for key in dict.fromkeys([*ea, *eb]):
        da, db = ea.get(key), eb.get(key)
        va = None if da is None else da.value
        vb = None if db is None else db.value
        row = {"key": key, "a": va, "b": vb, "a_reason": da.reason if da else "",
               "b_reason": db.reason if db else ""}
        (same if va == vb else differ).append(row)
    return {"differ": differ, "same": same}


def _labels(runs: list[ReportRun]) -> list[str]:
    """Each run's directory name; parent/name where two share a name."""
    names = [r.path.name for r in runs]
    return [f"{r.path.parent.name}/{r.path.name}" if names.count(r.path.name) > 1
            else r.path.name for r in runs]
