"""The summary for a non-specialist: what was predicted, how good it is in plain words
against the dumb baseline, the main risks, what to do next.

:func:`summary_facts` gathers it as plain sentences; :func:`render_summary` writes it as
Markdown (summary.md, for a ticket or an email) and the HTML report shows the same facts
as its first section. Both read only what a run directory holds, so they work on an
:class:`~nnrecipe.api.Run` and on :class:`~nnrecipe.report.load.ReportRun` alike.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .. import modalities
from ..modalities import Modality
from ..runs import RUN_FILES

__all__ = ["render_summary", "summary_facts", "key_choices", "metric_rows", "data_notes",
           "findings_lines", "fmt", "plan_value", "md_text", "md_code"]

KEY_CHOICES = ("task", "model.arch", "model.blocks", "transfer.source", "transfer.strategy",
               "model.hidden_layers", "model.width", "model.activation", "model.init",
               "model.batchnorm", "model.dropout", "model.ensemble", "model.output_activation",
               "loss.name", "optimizer.name", "optimizer.lr", "train.batch_size",
               "train.early_stopping.patience", "model.parameters")
# metrics shown in the summary table, in this order, and whether higher is better
SHOWN = {"accuracy": True, "balanced_accuracy": True, "f1_macro": True, "roc_auc": True,
         "log_loss": False, "mae": False, "rmse": False, "r2": True}
# share of the baseline's error the network removes → (a word for it, a headline)
GRADES = ((0.75, "a strong result", "Far better than the dumb baseline"),
          (0.4, "a good result", "Clearly better than the dumb baseline"),
          (0.1, "a modest result", "Somewhat better than the dumb baseline"),
          (0.0, "barely better than the baseline", "Barely better than the dumb baseline"))
NOT_BETTER = "No better than the dumb baseline"
SMALL_TEST = 200  # fewer test rows: say how uncertain the score is
BASELINE_WORDS = {"mean_predictor": "always predicting the training average",
                  "last_value": "repeating the last observed value"}
WEAK = 0.1  # removing less of the baseline's error than this is a risk worth naming
MAX_RISKS, MAX_STEPS = 4, 4


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


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(v) or "none"
    return "n/a" if v is None else str(v)


def data_notes(run: Any) -> list[str]:
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


def repair_lines(run: Any) -> list[str]:
    out = []
    for r in run.repairs:
        change = ", ".join(f"{k}={v}" for k, v in r["change"].items())
        before, after = r.get("before") or {}, r.get("after") or {}
        out.append(f"Attempt {r['attempt']}: {r['title']} → {change}; {r['restart']}. "
                   f"val_loss {fmt(before.get('val_loss'))} → {fmt(after.get('val_loss'))}")
    return out


def findings_lines(run: Any) -> list[str]:
    """The doctor's findings (worst first) and any repairs, as markdown lines."""
    out = []
    if run.findings:
        out += ["", "## The doctor's findings", ""]
        for f in run.findings:
            advice = f" Advice: {f.advice[0]}" if f.advice else ""
            out.append(f"- **{f.severity}** "
                       + md_text(f"{f.title}{_where(f)}: {f.explanation}{advice}"))
    if run.repairs:
        out += ["", "## Repairs (--auto-fix)", ""] + [f"- {md_text(x)}"
                                                     for x in repair_lines(run)]
    return out


def _where(f: Any) -> str:
    where = ", ".join(x for x in (f"epoch {f.epoch}" if f.epoch else "",
                                  f"layer {f.layer}" if f.layer else "") if x)
    return f" ({where})" if where else ""


# ---------------------------------------------------------------------- the facts

def summary_facts(run: Any) -> dict[str, Any]:
    """Everything the summary says, as plain-text sentences and rows."""
    ev, prof = run.evaluation, run.profile
    gain = improvement(ev)
    rows = metric_rows(ev)
    beats = next(better for name, _, _, better in rows if name == ev["main_metric"])
    risks, steps = _risks_and_steps(run, beats)
    status = getattr(run, "status", None)
    if isinstance(status, dict) and status.get("status") == "interrupted":
        risks.insert(0, f"Training was interrupted ({status.get('reason', 'Ctrl-C')}): these "
                        "are the best weights so far, not the finished run's. Go on with: "
                        f"{status.get('resume', 'nnrecipe train --resume RUN')}")
    return {
        "title": f"{prof.target} ({run.plan['task']})",
        "target": prof.target,
        "predicted": _what_predicted(run),
        "result": _result(run, gain, beats),
        "beats_baseline": beats,
        "grade": _grade(gain, beats),
        "headline": _grade(gain, beats, headline=True),
        "metrics": rows,
        "baseline_name": ev["baseline"]["name"].replace("_", " "),
        "n_test": ev["n_rows"],
        "model": _model_line(run.plan),
        "training": _training_line(ev.get("training", {})),
        "risks": risks,
        "next_steps": steps,
        "repairs": repair_lines(run),
        "notes": data_notes(run),
        "run_dir": str(run.path),
    }


def improvement(ev: dict[str, Any]) -> float | None:
    """The share of the baseline's error the network removes on the main metric (1: no
    error left, 0: as bad as the baseline, < 0: worse); None when undefined."""
    main = ev["main_metric"]
    m, b = ev["metrics"].get(main), ev["baseline"]["metrics"].get(main)
    if m is None or b is None or not (math.isfinite(m) and math.isfinite(b)):
        return None
    if main == "rmse":
        return 1 - m / b if b > 0 else None
    return ((1 - b) - (1 - m)) / (1 - b) if b < 1 else None


def _grade(gain: float | None, beats: bool, headline: bool = False) -> str:
    if not beats or gain is None or gain <= 0:
        return NOT_BETTER if headline else NOT_BETTER.lower()
    return next(h if headline else word for floor, word, h in GRADES if gain >= floor)


def inputs_phrase(prof: Any) -> str:
    """What the network reads, in words: columns of a table, images, text... (the
    modality's own words)."""
    return _modality(prof).describe_inputs(prof)


def _modality(prof: Any) -> Modality:
    return modalities.get(getattr(prof, "modality", "table"))


def _what_predicted(run: Any) -> str:
    prof, task = run.profile, run.plan["task"]
    classes = list(prof.target_summary.get("classes", {}))
    if task == "regression":
        ts = prof.target_summary
        what = f"a number (from {fmt(ts.get('min'))} to {fmt(ts.get('max'))} in the data)"
    else:
        shown = ", ".join(f"'{c}'" for c in classes[:6]) + (", …" if len(classes) > 6 else "")
        what = (f"one of two classes ({shown})" if task == "binary"
                else f"one of {len(classes)} classes ({shown})")
    s = prof.splits
    rows = _modality(prof).unit
    return (f"The network predicts '{prof.target}', {what}, from {inputs_phrase(prof)}. "
            f"It learned from {s.get('train')} {rows}, chose when to stop on {s.get('val')} "
            f"more, and was then tested on {s.get('test')} {rows} it had never seen."
            + _transfer_phrase(run.plan))


def _transfer_phrase(plan: Any) -> str:
    if "transfer.strategy" not in plan:
        return ""
    how = {"freeze": "kept its blocks frozen and trained a new head",
           "early": f"kept its first {plan['transfer.keep_blocks']} block(s) frozen and "
                    "re-learned the rest",
           "fine_tune": "fine-tuned it, the new head first and the blocks at a lower rate",
           "retrain": "trained all of it, starting from the pretrained weights"}
    return (f" It started from the network in {plan['transfer.source']} and "
            f"{how[plan['transfer.strategy']]} ({plan.decisions['transfer.strategy'].reason}).")


def _result(run: Any, gain: float | None, beats: bool) -> str:
    ev, prof = run.evaluation, run.profile
    m, b, n = ev["metrics"], ev["baseline"]["metrics"], ev["n_rows"]
    grade = _grade(gain, beats)
    if ev["main_metric"] == "rmse":
        dumb = BASELINE_WORDS.get(ev["baseline"]["name"], "the dumb baseline")
        text = (f"Its predictions are off by {m['mae']:.4g} on average (mean absolute error, "
                f"in the units of '{prof.target}'); {dumb} is off by {b['mae']:.4g}.")
        if gain is not None:
            text += (f" Its root-mean-square error is {abs(gain):.0%} "
                     f"{'below' if gain >= 0 else 'above'} the baseline's: {grade}.")
        if m.get("r2") is not None and math.isfinite(m["r2"]):
            text += (f" R² = {m['r2']:.2f}: it accounts for {max(m['r2'], 0):.0%} of the "
                     f"spread of '{prof.target}'.")
        return text
    classes = prof.target_summary.get("classes", {})
    majority = max(classes, key=classes.get) if classes else "?"
    text = (f"It labels {m['accuracy']:.1%} of the test rows correctly "
            f"({round(m['accuracy'] * n)} of {n}); always answering the most common class, "
            f"'{majority}', gets {b['accuracy']:.1%}.")
    if gain is not None and beats:
        text += f" It avoids {gain:.0%} of the baseline's mistakes: {grade}."
    elif not beats:
        text += " The network does not beat this baseline: it has not learned from the inputs."
    return text


def _risks_and_steps(run: Any, beats: bool) -> tuple[list[str], list[str]]:
    ev, prof = run.evaluation, run.profile
    table = bool(prof.columns)  # column-wise advice only where the inputs are columns
    risks, steps = [], []
    if not beats:
        risks.append("The network is no better than always giving the same answer.")
        steps.append("Check that the input columns can predict the target at all (a leak-free "
                     "feature that should matter), then look at the doctor's findings below.")
    gain = improvement(ev)
    if beats and gain is not None and gain < WEAK:
        risks.append(f"The network removes only {max(gain, 0):.0%} of the baseline's error: "
                     "the inputs may carry little signal, or the network underfits.")
        steps.append("Look for more informative columns, or give the network more capacity "
                     "or epochs (see the doctor's findings).")
    for f in [f for f in run.findings if f.severity != "info"][:3]:
        risks.append(f"{f.title}{_where(f)} — {_first_sentence(f.explanation)}")
        if f.advice and f.advice[0] not in steps:
            steps.append(f.advice[0])
    n, main = ev["n_rows"], ev["main_metric"]
    acc = ev["metrics"].get("accuracy")
    if main == "accuracy" and acc is not None and n < SMALL_TEST:
        half = 1.96 * math.sqrt(max(acc * (1 - acc), 0.25 / n) / n)
        risks.append(f"The test set is small ({n} rows): the accuracy is uncertain by about "
                     f"±{100 * half:.1f} percentage points (95% interval).")
        data = (getattr(run, "environment", None) or {}).get("data_path") or "DATA"
        if table:
            steps.append(f"Cross-validate for a score that does not hang on one split: "
                         f"nnrecipe cv {data} --target {prof.target}")
    share = prof.target_summary.get("minority_share")
    n_classes = len(prof.target_summary.get("classes") or {}) or 2
    # imbalanced: the rarest class has under half of an even share (and under 20%)
    if share is not None and share < min(0.2, 0.5 / n_classes) and main == "accuracy":
        risks.append(f"The classes are imbalanced (the rarest is {share:.0%} of rows): "
                     f"accuracy flatters; balanced accuracy is "
                     f"{fmt(ev['metrics'].get('balanced_accuracy'))}.")
    if not risks:
        risks.append("No warning signs: the doctor found nothing above information level.")
    use = (f"Predict new rows: nnrecipe predict {run.path} new.csv --out predictions.csv"
           if table else "Look at the test samples with the highest loss (the report's "
           f"Evaluation section, {RUN_FILES['mistakes']}) for what they have in common.")
    return risks[:MAX_RISKS], steps[:MAX_STEPS - 1] + [use]


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + "." if dot else text


def plan_value(plan: Any, key: str, default: Any = None) -> Any:
    """``plan[key]``, or ``default`` for a key this kind of plan does not have."""
    return plan[key] if key in plan else default


def _model_line(plan: Any) -> str:
    layers, kind = plan_value(plan, "model.hidden_layers"), plan_value(plan, "model.kind")
    if layers is None:
        shape = f"A {kind or plan_value(plan, 'model.arch') or 'neural'} network"
    else:
        shape = "A multilayer perceptron with " + (
            f"{layers} hidden layer{'s' if layers != 1 else ''} of "
            f"{plan_value(plan, 'model.width')} {plan_value(plan, 'model.activation')} units"
            if layers else "no hidden layer (linear)")
    params = plan_value(plan, "model.parameters")
    shape += f", {params:,} trainable parameters" if isinstance(params, int) else ""
    k = plan_value(plan, "model.ensemble", 1)
    if k > 1:
        shape = (f"An ensemble of {k} networks from seeds {plan['seed']}..{plan['seed'] + k - 1}"
                 f", their predictions averaged; each: {shape[0].lower()}{shape[1:]}")
    return (shape + f"; {plan_value(plan, 'optimizer.name')} at learning rate "
            f"{fmt(plan_value(plan, 'optimizer.lr'))}, batches of "
            f"{plan_value(plan, 'train.batch_size')}.")


def _training_line(training: dict[str, Any]) -> str:
    if not training:
        return ""
    line = (f"Trained for {training.get('epochs')} epochs in {fmt(training.get('seconds'))} s; "
            f"best epoch {training.get('best_epoch')}. Stopped: {training.get('stop_reason')}.")
    members = training.get("ensemble") or []
    if len(members) > 1:
        line += (" The ensemble's other networks: " + "; ".join(
            f"seed {m['seed']}, {m['epochs']} epochs (best {m['best_epoch']})"
            + (f", left out: {m['left_out']}" if m.get("left_out") else "")
            for m in members[1:]) + ".")
    return line


# ---------------------------------------------------------------------- Markdown

# Markdown-active characters, and the three that open raw HTML, as text (a class named
# "<b>yes</b>" or a column named "[x](y)" must stay text in summary.md)
_MD_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\\": "\\\\",
                          "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
                          "|": "\\|", "~": "\\~", "#": "\\#", "\n": " ", "\r": " "})


def md_text(text: Any) -> str:
    """``text`` (sentences quoting a user's column, class or path names) as Markdown text:
    no HTML, no emphasis, no link, no table cell break, no new line."""
    return str(text).translate(_MD_TEXT)


def md_code(text: Any) -> str:
    """``text`` as a Markdown code span (shown as it is), whatever backticks it holds."""
    text = " ".join(str(text).splitlines())
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_summary(run: Any) -> str:
    """summary.md: the report's summary section as Markdown. The facts quote the user's
    names (target, classes, columns, paths): every sentence goes in as text."""
    s = summary_facts(run)
    t = md_text
    lines = [f"# nnrecipe run: {t(s['title'])}", "", f"**{t(s['headline'])}.**", "",
             f"**What was predicted.** {t(s['predicted'])}", "",
             f"**How good it is.** {t(s['result'])}", "",
             f"| metric | network | baseline ({t(s['baseline_name'])}) |", "|---|---|---|"]
    lines += [f"| {n} | {v:.4g} | {'' if b is None else f'{b:.4g}'} |"
              for n, v, b, _ in s["metrics"]]
    lines += ["", "## Main risks", ""] + [f"- {t(x)}" for x in s["risks"]]
    lines += ["", "## What to do next", ""] + [f"- {t(x)}" for x in s["next_steps"]]
    if s["repairs"]:
        lines += ["", "## Repairs (--auto-fix)", ""] + [f"- {t(x)}" for x in s["repairs"]]
    if s["notes"]:
        lines += ["", "## What the data showed", ""] + [f"- {t(x)}" for x in s["notes"]]
    lines += ["", "## The model", "", t(s["model"]), t(s["training"])]
    lines += ["", "## Files", "", f"Run directory: {md_code(s['run_dir'])}", "",
              " · ".join(_listed_files(bool(s["repairs"]))), ""]
    return "\n".join(lines)


def _listed_files(repairs: bool) -> list[str]:
    """The run files summary.md points to, in reading order."""
    f = RUN_FILES
    return [f"{f['report']} (the full report: open it in a browser)",
            f"{f['plan']} (every decision and why)",
            *(f[k] for k in ("profile", "metrics", "evaluation", "findings", "model",
                             "preprocess")),
            f"{f['checkpoints']}/", *([f["repairs"]] if repairs else [])]
