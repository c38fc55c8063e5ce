"""summary.md: the plan's key choices, the test metrics against the baseline, the files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..api import Run

__all__ = ["render_summary", "key_choices", "metric_rows", "data_notes", "findings_lines"]

KEY_CHOICES = ("task", "model.hidden_layers", "model.width", "model.activation", "model.init",
               "model.batchnorm", "model.dropout", "model.output_activation", "loss.name",
               "optimizer.name", "optimizer.lr", "train.batch_size",
               "train.early_stopping.patience", "model.parameters")
# metrics shown in the summary table, in this order, and whether higher is better
SHOWN = {"accuracy": True, "balanced_accuracy": True, "f1_macro": True, "roc_auc": True,
         "log_loss": False, "mae": False, "rmse": False, "r2": True}


def key_choices(plan: Any) -> list[tuple[str, Any, str]]:
    rows = []
    for key in KEY_CHOICES:
        d = plan.decisions.get(key) or plan.derived.get(key)
        if d is not None:
            rows.append((key, d.value, d.reason))
    return rows


def metric_rows(evaluation: dict[str, Any]) -> list[tuple[str, float, float | None, bool]]:
    """(metric, model, baseline, model_is_better) for the metrics worth showing."""
    model, base = evaluation["metrics"], evaluation["baseline"]["metrics"]
    rows = []
    for name, higher in SHOWN.items():
        if name in model and model[name] is not None:
            b = base.get(name)
            better = b is None or (model[name] > b if higher else model[name] < b)
            rows.append((name, model[name], b, better))
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(v) or "none"
    return "n/a" if v is None else str(v)


def data_notes(run: Run) -> list[str]:
    """Plain sentences about the data worth a person's attention."""
    prof, plan = run.profile, run.plan
    notes = []
    if prof.leak_suspects:
        notes.append("Leak suspects (one column alone predicts the target almost perfectly; "
                     "check it is known at prediction time): " + ", ".join(
                         f"{s['column']} ({s['metric']} {s['score']})"
                         for s in prof.leak_suspects))
    for key in ("data.drop", "data.impute"):
        d = plan.derived.get(key)
        if d is not None and d.value:
            notes.append(d.reason[0].upper() + d.reason[1:] + ".")
    if prof.duplicate_rows:
        notes.append(f"{prof.duplicate_rows} duplicate row(s) in the table.")
    shared = prof.splits.get("duplicates_across_splits", {})
    for part in ("val", "test"):
        k = shared.get(f"{part}_rows_also_in_train", 0)
        if k:
            notes.append(f"{k} {part} row(s) also appear in the training split: their "
                         "scores flatter the model.")
    return notes


def findings_lines(run: Run) -> list[str]:
    """The doctor's findings (worst first) and any repairs, as markdown lines."""
    out = []
    if run.findings:
        out += ["", "## The doctor's findings", ""]
        for f in run.findings:
            where = ", ".join(x for x in (f"epoch {f.epoch}" if f.epoch else "",
                                          f"layer {f.layer}" if f.layer else "") if x)
            advice = f" Advice: {f.advice[0]}" if f.advice else ""
            out.append(f"- **{f.severity}** {f.title}{f' ({where})' if where else ''}: "
                       f"{f.explanation}{advice}")
    if run.repairs:
        out += ["", "## Repairs (--auto-fix)", ""]
        for r in run.repairs:
            change = ", ".join(f"{k}={v}" for k, v in r["change"].items())
            after = r.get("after") or {}
            before = r.get("before") or {}
            out.append(f"- Attempt {r['attempt']}: {r['title']} → {change}; {r['restart']}. "
                       f"val_loss {_fmt(before.get('val_loss'))} → "
                       f"{_fmt(after.get('val_loss'))}")
    return out


def render_summary(run: Run) -> str:
    ev, plan, prof = run.evaluation, run.plan, run.profile
    main = ev["main_metric"]
    m, b = ev["metrics"][main], ev["baseline"]["metrics"][main]
    verdict = next(better for name, _, _, better in metric_rows(ev) if name == main)
    lines = [
        f"# nnrecipe run: {prof.target} ({plan['task']})",
        "",
        f"**Result.** On {ev['n_rows']} held-out test rows the network's {main} is {m:.4g}; "
        f"the dumb baseline ({ev['baseline']['name'].replace('_', ' ')}) scores {b:.4g}. "
        + ("The network learned something the baseline does not know." if verdict else
           "The network does **not** beat the baseline: it has not learned from the inputs."),
        "",
        f"Data: {prof.n_rows} rows, {prof.n_columns - 1} feature columns; "
        f"splits {prof.splits.get('train')}/{prof.splits.get('val')}/{prof.splits.get('test')} "
        f"(train/val/test; {prof.splits.get('how')}).",
        f"Training: {ev.get('training', {}).get('epochs')} epochs, "
        f"{ev.get('training', {}).get('stop_reason')}.",
        "",
        "## Test metrics",
        "",
        "| metric | network | baseline |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {v:.4g} | {'' if bv is None else f'{bv:.4g}'} |"
              for n, v, bv, _ in metric_rows(ev)]
    lines += ["", "## Key choices", "", "| decision | value | why |", "|---|---|---|"]
    lines += [f"| {k} | {_fmt(v)} | {r} |" for k, v, r in key_choices(plan)]
    lines += findings_lines(run)
    notes = data_notes(run)
    if notes:
        lines += ["", "## What the data showed", ""] + [f"- {n}" for n in notes]
    lines += ["", "## Files", "", f"Run directory: `{run.path}`", "",
              "plan.yaml (every decision and why) · profile.json · metrics.jsonl · "
              "evaluation.json · findings.json · model.pt · preprocess.json · checkpoints/"
              + (" · repairs.json" if run.repairs else ""), ""]
    return "\n".join(lines)
