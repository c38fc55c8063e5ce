"""The report's plots: matplotlib figures (Agg, no display) returned as base64 PNG data
URIs, so the HTML page carries its images inside it and opens offline.

Every function takes plain numbers (lists and dicts as read from the run directory) and
returns a data URI, or None when there is nothing to draw. Names a user chose (runs,
layers) are drawn as literal text: mathtext is off, so a ``$`` stays a dollar sign.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["png_data_uri", "learning_curves", "lr_per_epoch", "layer_monitor", "roc_pr",
           "residuals", "trial_curves", "overlay_curves", "fold_scores"]

DPI = 100
COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "best": "#2ca02c", "stop": "#d62728",
          "repair": "#9467bd", "error": "#d62728", "warning": "#e6a700", "info": "#7f7f7f"}
LOG_SPAN = 50.0  # a positive curve spanning more than this factor gets a log axis
SEVERITY_RANK = ["error", "warning", "info"]
# finished trials: the tab10 colours without its green (the best trial's) and grey (pruned)
TRIAL_COLORS = ["C0", "C1", "C3", "C4", "C5", "C6", "C8", "C9"]


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, color="#e5e5e5", lw=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, list(axes)


def _uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return png_data_uri(buf.getvalue())


def _text(s: Any) -> str:
    """Literal text for matplotlib: ``$`` would start mathtext."""
    return str(s).replace("$", r"\$")


def _maybe_log(ax: Any, values: Sequence[float]) -> None:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size and v.min() > 0 and v.max() / v.min() > LOG_SPAN:
        ax.set_yscale("log")


def _series(epochs: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pts = [(e["epoch"], e[key]) for e in epochs
           if e.get(key) is not None and math.isfinite(e[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


def learning_curves(epochs: list[dict[str, Any]], *, metric: str | None,
                    best_epoch: int | None = None, stopped_early: bool = False,
                    marks: Sequence[tuple[int, str, str]] = ()) -> str | None:
    """Train and validation loss (left) and the validation metric (right), the best epoch
    and an early stop marked, and ``marks``: (epoch, label, severity) of findings; repair
    attempts (the ``attempt`` field of the epochs) as vertical lines."""
    if not epochs:
        return None
    key = f"val_{metric}" if metric else None
    has_metric = bool(key and _series(epochs, key)[0])
    fig, axes = _figure(10.5 if has_metric else 6.5, 3.4, 2 if has_metric else 1)
    ax = axes[0]
    for part in ("train", "val"):
        xs, ys = _series(epochs, f"{part}_loss")
        ax.plot(xs, ys, color=COLORS[part], lw=1.6, marker="o" if len(xs) < 25 else None,
                ms=3, label=f"{'training' if part == 'train' else 'validation'} loss")
    _maybe_log(ax, [e.get("train_loss") for e in epochs] + [e.get("val_loss") for e in epochs])
    ax.set(xlabel="epoch", ylabel="loss", title="Loss per epoch")
    if has_metric:
        xs, ys = _series(epochs, key)
        axes[1].plot(xs, ys, color=COLORS["val"], lw=1.6, marker="o" if len(xs) < 25 else None,
                     ms=3, label=f"validation {metric}")
        axes[1].set(xlabel="epoch", ylabel=metric, title=f"Validation {metric} per epoch")
    last = epochs[-1]["epoch"]
    for a in axes:
        _mark_epochs(a, epochs, best_epoch, last if stopped_early else None, marks)
        a.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6),
               fontsize="small", frameon=False)
    return _uri(fig)


def _mark_epochs(ax: Any, epochs: list[dict[str, Any]], best: int | None, stop: int | None,
                 marks: Sequence[tuple[int, str, str]]) -> None:
    if best is not None:
        ax.axvline(best, color=COLORS["best"], ls="--", lw=1.2, label=f"best epoch ({best})")
    if stop is not None:
        ax.axvline(stop, color=COLORS["stop"], ls=":", lw=1.4, label=f"early stop ({stop})")
    prev = 0
    for e in epochs:
        attempt = e.get("attempt", 0) or 0
        if attempt > prev:
            ax.axvline(e["epoch"] - 0.5, color=COLORS["repair"], lw=1.2,
                       label=f"repair {attempt}")
            prev = attempt
    by_epoch: dict[int, list[tuple[str, str]]] = {}
    for epoch, label, severity in marks:
        by_epoch.setdefault(epoch, []).append((label, severity))
    for epoch, items in by_epoch.items():  # one label per epoch: "F2, F3"
        color = COLORS.get(min((s for _, s in items), key=SEVERITY_RANK.index), "#7f7f7f")
        ax.axvline(epoch, color=color, lw=0.8, alpha=0.7)
        ax.annotate(_text(", ".join(label for label, _ in items)), (epoch, 0.98),
                    xycoords=("data", "axes fraction"), ha="center", va="top", fontsize=8,
                    color=color, fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": color, "lw": 0.6})


def lr_per_epoch(epochs: list[dict[str, Any]]) -> str | None:
    xs, ys = _series(epochs, "lr")
    if not xs:
        return None
    fig, (ax,) = _figure(5.0, 2.8)
    ax.step(xs, ys, where="post", color="#555555", lw=1.6)
    ax.plot(xs, ys, "o", color="#555555", ms=2.5)
    _maybe_log(ax, ys)
    ax.set(xlabel="epoch", ylabel="learning rate", title="Learning rate per epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    return _uri(fig)


def layer_monitor(samples: list[dict[str, Any]]) -> str | None:
    """Left: log10 of each layer's gradient norm over the samples (a heatmap, layers top to
    bottom in network order). Right: the share of dead units per ReLU layer. The x axis
    is the sample, labelled with its epoch (steps restart after a repair; epochs don't);
    a repair is a vertical line."""
    layers = list(dict.fromkeys(k for s in samples for k in s.get("grad_norm", {})))
    if not samples or not layers:
        return None
    relus = list(dict.fromkeys(k for s in samples for k in s.get("dead_share", {})))
    fig, axes = _figure(10.5 if relus else 6.5, 0.9 + 0.35 * max(len(layers), 6),
                        2 if relus else 1)
    grid = np.full((len(layers), len(samples)), np.nan)
    for j, s in enumerate(samples):
        for i, name in enumerate(layers):
            v = s["grad_norm"].get(name)
            if v is not None and math.isfinite(v) and v > 0:
                grid[i, j] = math.log10(v)
    ax = axes[0]
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis",
                      extent=(-0.5, len(samples) - 0.5, len(layers) - 0.5, -0.5))
    ax.set_yticks(range(len(layers)), [_text(n) for n in layers], fontsize=8)
    ax.set(title="Gradient norm per layer (log10)")
    ax.grid(False)
    fig.colorbar(image, ax=ax, shrink=0.9, label="log10 ‖grad‖")
    if relus:
        for name in relus:
            pts = [(j, s["dead_share"][name]) for j, s in enumerate(samples)
                   if s.get("dead_share", {}).get(name) is not None]
            axes[1].plot([p[0] for p in pts], [100 * p[1] for p in pts], lw=1.4,
                         label=_text(name))
        axes[1].set(ylabel="% of units", ylim=(-2, 102), xlim=(-0.5, len(samples) - 0.5),
                    title="Dead units per ReLU layer (zero on a whole batch)")
        axes[1].legend(fontsize="small", loc="best")
    for i, a in enumerate(axes):  # white stands out on the heatmap, purple on the lines
        _epoch_ticks(a, samples, "white" if i == 0 else COLORS["repair"])
    return _uri(fig)


def _epoch_ticks(ax: Any, samples: list[dict[str, Any]], repair_color: str) -> None:
    """Sample-index x axis labelled with epochs; a line where a repair attempt begins."""
    epochs = [s.get("epoch") for s in samples]
    firsts = [j for j, e in enumerate(epochs) if j == 0 or e != epochs[j - 1]]
    keep = firsts[::max(1, math.ceil(len(firsts) / 8))]
    ax.set_xticks(keep, [str(epochs[j]) for j in keep])
    ax.set_xlabel(f"epoch ({len(samples)} samples)")
    for j in range(1, len(samples)):
        if samples[j].get("attempt", 0) != samples[j - 1].get("attempt", 0):
            ax.axvline(j - 0.5, color=repair_color, lw=1.6, ls="--")


def roc_pr(binary: dict[str, Any]) -> str:
    """ROC curve (left) and precision-recall curve (right) with chance levels."""
    fig, (a, b) = _figure(10.0, 3.9, 2)
    roc, pr = binary["roc"], binary["pr"]
    a.plot(roc["fpr"], roc["tpr"], color=COLORS["train"], lw=1.8,
           label=f"network (AUC {roc['auc']:.3f})")
    a.plot([0, 1], [0, 1], color="#999999", ls="--", lw=1, label="chance")
    a.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC curve",
          xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    b.plot(pr["recall"], pr["precision"], color=COLORS["val"], lw=1.8,
           label=f"network (AP {pr['average_precision']:.3f})")
    b.axhline(binary["prevalence"], color="#999999", ls="--", lw=1,
              label=f"chance ({binary['prevalence']:.2f})")
    b.set(xlabel="recall", ylabel="precision", title="Precision-recall curve",
          xlim=(-0.01, 1.01), ylim=(-0.01, 1.03))
    for ax in (a, b):
        ax.legend(fontsize="small", loc="lower right" if ax is a else "lower left")
    return _uri(fig)


def residuals(res: dict[str, Any]) -> str:
    """Predicted against actual (left) and the residual against the prediction (right)."""
    actual, pred = np.asarray(res["actual"], float), np.asarray(res["predicted"], float)
    fig, (a, b) = _figure(10.0, 3.9, 2)
    a.scatter(actual, pred, s=10, alpha=0.6, color=COLORS["train"], edgecolors="none")
    lo, hi = float(min(actual.min(), pred.min())), float(max(actual.max(), pred.max()))
    a.plot([lo, hi], [lo, hi], color="#999999", ls="--", lw=1, label="perfect")
    a.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    a.legend(fontsize="small", loc="upper left")
    b.scatter(pred, actual - pred, s=10, alpha=0.6, color=COLORS["val"], edgecolors="none")
    b.axhline(0, color="#999999", ls="--", lw=1)
    b.set(xlabel="predicted", ylabel="actual − predicted", title="Residuals")
    return _uri(fig)


def trial_curves(trials: list[dict[str, Any]], best: int | None) -> str | None:
    """Each trial's validation loss per epoch: finished trials in colour (the best thick),
    pruned ones grey."""
    drawn = [t for t in trials if t.get("intermediate")]
    if not drawn:
        return None
    fig, (ax,) = _figure(7.5, 3.6)
    values: list[float] = []
    others = iter(TRIAL_COLORS * (len(drawn) // len(TRIAL_COLORS) + 1))
    for t in sorted(drawn, key=lambda t: t.get("number") == best):  # best drawn last
        pts = sorted((int(k), v) for k, v in t["intermediate"].items()
                     if v is not None and math.isfinite(v))
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        values += ys
        if t.get("number") == best:
            ax.plot(xs, ys, color=COLORS["best"], lw=2.6, label=f"best (trial {best})")
        elif t.get("state") == "PRUNED":
            ax.plot(xs, ys, color="#b0b0b0", lw=0.9, alpha=0.8)
        else:
            ax.plot(xs, ys, color=next(others), lw=1.2, alpha=0.85)
    if any(t.get("state") == "PRUNED" for t in drawn):
        ax.plot([], [], color="#b0b0b0", lw=0.9, label="pruned")
    _maybe_log(ax, values)
    ax.set(xlabel="epoch", ylabel="validation loss", title="Validation loss of every trial")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small", loc="best")
    return _uri(fig)


def overlay_curves(runs: Sequence[tuple[str, list[dict[str, Any]]]],
                   metric: str | None) -> str | None:
    """Validation loss (and the validation metric, when every run has it) of several runs."""
    if not any(epochs for _, epochs in runs):
        return None
    key = f"val_{metric}" if metric else None
    has_metric = bool(key) and all(_series(e, key)[0] for _, e in runs)
    fig, axes = _figure(10.5 if has_metric else 6.5, 3.6, 2 if has_metric else 1)
    values: list[float] = []
    for i, (name, epochs) in enumerate(runs):
        xs, ys = _series(epochs, "val_loss")
        values += ys
        axes[0].plot(xs, ys, color=f"C{i % 10}", lw=1.6, label=_text(name))
        txs, tys = _series(epochs, "train_loss")
        axes[0].plot(txs, tys, color=f"C{i % 10}", lw=0.9, ls=":", alpha=0.8)
        if has_metric:
            axes[1].plot(*_series(epochs, key), color=f"C{i % 10}", lw=1.6, label=_text(name))
    _maybe_log(axes[0], values)
    axes[0].set(xlabel="epoch", ylabel="loss",
                title="Validation loss (solid) and training loss (dotted)")
    if has_metric:
        axes[1].set(xlabel="epoch", ylabel=metric, title=f"Validation {metric}")
    axes[0].legend(fontsize="small", loc="best")
    return _uri(fig)


def fold_scores(scores: Sequence[float], baseline: Sequence[float], metric: str) -> str | None:
    """Each fold's test metric beside the baseline's, with the means."""
    if not scores:
        return None
    fig, (ax,) = _figure(6.0, 3.0)
    folds = np.arange(1, len(scores) + 1)
    ax.plot(folds, scores, "o", color=COLORS["train"], ms=7, label="network")
    ax.axhline(float(np.mean(scores)), color=COLORS["train"], lw=1, ls="--", label="network mean")
    if baseline:
        ax.plot(folds[:len(baseline)], baseline, "s", color="#999999", ms=6, label="baseline")
        ax.axhline(float(np.mean(baseline)), color="#999999", lw=1, ls="--")
    ax.set(xlabel="fold", ylabel=metric, title=f"Test {metric} per fold", xticks=folds)
    ax.legend(fontsize="small", loc="best")
    return _uri(fig)
