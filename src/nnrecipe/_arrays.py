"""Training on images, volumes, sound, text and time series (called by api.fit).

    1. load and profile the samples; plan by modality (plan/modality.py)
    2. split: stratified by class, or by time for a series
    3. fit the encoder on the training split; build the network the plan names
    4. (api._train_and_save) train under the doctor, augmenting training batches only
    5. evaluate on the test split against the dumb baseline (majority class, or the
       last observed value for a forecast); keep the highest-loss test samples
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import runs
from .data.arrays import (
    attach_test,
    load_arrays,
    load_for_run,
    match_channels,
    profile_arrays,
    split_arrays,
)
from .data.encode import ArrayEncoder
from .data.load import table_name
from .data.series import naive_forecast
from .errors import DataError
from .evaluate import MAIN_METRIC, baseline_metrics, classification_metrics, regression_metrics
from .models import outputs_to_predictions
from .models.build import build_network
from .plan import add_parameter_count, make_plan, validate_overrides
from .train import predict_batches, target_tensor

__all__ = ["array_inputs", "evaluate_arrays", "predict_arrays", "prepare_arrays",
           "score_arrays"]

WORST = 16  # highest-loss test samples kept for the report


def prepare_arrays(source: Any, target: str | None, *, modality: str, task: str,
                   overrides: dict | None, prepared: Any, test: Any = None,
                   pretrained: Any = None) -> Any:
    """Everything before training; ``prepared``: the API's _Prepared class; ``test``: a
    separate test set of the same kind (else the test split comes from ``source``);
    ``pretrained``: a convnet run or state dict to transfer from (models/pretrained.py)."""
    given = validate_overrides(overrides)
    data = load_arrays(source, modality, target, task)
    profile = profile_arrays(data)
    pre = None
    if pretrained is not None:
        from .models.pretrained import load_pretrained

        pre = load_pretrained(pretrained, modality)
        profile.inputs["pretrained"] = pre.describe()
        if modality == "image" and pre.in_channels == 3 and data.x.shape[-1] == 1:
            data.x = match_channels(data.x, 3)  # grey into the colour channels it reads
            profile.inputs["channels"] = data.info["channels"] = 3
    if test is not None:
        size = tuple(data.x.shape[1:3]) if modality == "image" else None
        data = attach_test(data, load_arrays(test, modality, target, task, size=size,
                                             min_classes=1), str(test))
    first = make_plan(profile, int(0.7 * len(data.x)), given)  # the window decides the split
    window = first["series.window"] if modality == "series" else 0
    horizon = first["series.horizon"] if modality == "series" else 0
    splits = split_arrays(data, first["seed"], window, horizon)
    profile.splits = {"how": splits.how, **splits.sizes()}
    the_plan = make_plan(profile, len(splits.train), given)
    enc = ArrayEncoder.fit(data, splits.train, the_plan)
    if data.y is not None:
        enc.state["counts"] = np.bincount(data.y[splits.train],
                                          minlength=len(data.classes)).tolist()
    if pre is not None:  # the similarity decides the strategy, so re-plan once measured
        profile.inputs["pretrained"].update(_similarity(pre, the_plan, enc, data,
                                                        splits.train))
        the_plan = make_plan(profile, len(splits.train), given)
    torch.manual_seed(the_plan["seed"])
    model = build_network(the_plan, enc, pre)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    the_plan = add_parameter_count(the_plan, n_params, len(splits.train))
    prep = prepared(the_plan, profile, enc, model, splits, table_name(source), given)
    prep.data, prep.augment, prep.pretrained = data, _augment(the_plan), pre
    if modality == "text":  # batches of similar length carry little padding
        from .data.text import length_order, tokenize

        lengths = [min(len(tokenize(t)), the_plan["text.max_len"]) for t in data.x[splits.train]]
        prep.order = length_order(lengths)
    return prep


def _similarity(pre: Any, plan: Any, enc: ArrayEncoder, data: Any, train: np.ndarray
                ) -> dict[str, Any]:
    """How unlike the pretrained network's data these training samples are, seen through
    its blocks (models/pretrained.bn_divergence; inputs normalised as the source run
    normalised its own, so a shift in the raw inputs counts too), and whether its features
    carry the new classes (models/pretrained.feature_probe)."""
    from .models.pretrained import PROBE, bn_divergence, feature_probe, load_blocks

    have = pre.in_channels
    if have != enc.input_shape[0]:
        raise DataError(f"--pretrained {pre.source} reads inputs with {have} channels; this "
                        f"data has {enc.input_shape[0]}: give a network trained on the same "
                        "kind of input (greyscale or colour)")
    if pre.normalisation and len(pre.normalisation["mean"]) == len(enc.state["mean"]):
        enc.state.update(pre.normalisation, normalisation=f"the pretrained run's ({pre.source})")
    model = build_network(plan, enc)
    load_blocks(model, pre.state, plan["model.blocks"])
    rng = np.random.default_rng(plan["seed"])
    probe = np.sort(rng.choice(train, size=min(PROBE, len(train)), replace=False))
    x, y = enc.encode(data, probe)
    n = min(plan["model.blocks"], pre.arch["model.blocks"])
    return {"divergence": bn_divergence(model, x, n),
            "probe": feature_probe(model, x, y, n, plan["seed"])}


def _augment(plan: Any) -> Any:
    if "augment.enabled" not in plan or not plan["augment.enabled"]:
        return None
    from .data.augment import ImageAugment, SeriesAugment

    kind = plan["data.modality"]
    if kind == "image":
        z = plan["augment.zoom"]
        return ImageAugment(shift=plan["augment.shift"], rotation=plan["augment.rotation"],
                            zoom=(1 - z, 1 + z), shear=plan["augment.shear"],
                            flip=plan["augment.flip"], noise=plan["augment.noise"],
                            seed=plan["seed"])
    if kind == "volume":
        from .data.augment import VolumeAugment

        z = plan["augment.zoom"]
        return VolumeAugment(shift=plan["augment.shift"], rotation=plan["augment.rotation"],
                             zoom=(1 - z, 1 + z), flip=plan["augment.flip"],
                             noise=plan["augment.noise"], seed=plan["seed"])
    if kind == "series":  # jitter only: scaling the inputs would need the targets scaled too
        return SeriesAugment(jitter=plan["augment.jitter"], seed=plan["seed"])
    if kind in ("audio", "sequence"):  # (N, channels, steps) → (N, steps, channels) and back
        aug = SeriesAugment(jitter=plan["augment.jitter"], scale=plan["augment.scaling"],
                            seed=plan["seed"])
        return lambda x: aug(x.transpose(1, 2)).transpose(1, 2)
    return None


def array_inputs(prep: Any) -> tuple:
    """(x_train, y_train, x_val, y_val, val_metrics), like the API's _inputs for tables."""
    plan, enc, data, s = prep.plan, prep.preprocessor, prep.data, prep.splits
    x_tr, y_tr = enc.encode(data, s.train)
    x_va, y_va = enc.encode(data, s.val)
    task = plan["task"]

    def as_target(y: np.ndarray) -> torch.Tensor:
        if data.modality == "series":
            return torch.from_numpy(y)
        return target_tensor(y, task, plan["loss.name"], plan["model.n_outputs"])

    def val_metrics(out: torch.Tensor, _y: torch.Tensor) -> dict[str, float]:
        if data.modality == "series":
            err = enc.inverse_target(out.detach().numpy()) - enc.inverse_target(y_va)
            return {"rmse": float(np.sqrt(np.mean(err**2)))}
        proba = outputs_to_predictions(out, task, plan["loss.name"])
        return {"accuracy": float(np.mean(proba.argmax(axis=1) == y_va))}

    return x_tr, as_target(y_tr), x_va, as_target(y_va), val_metrics


def score_arrays(prep: Any, model: torch.nn.Module, plan: Any, run_dir: Path | None
                 ) -> dict[str, Any]:
    """Test metrics beside the baseline's, and the highest-loss test samples."""
    enc, data, test = prep.preprocessor, prep.data, prep.splits.test
    x, y = enc.encode(data, test)
    out = predict_batches(model, x)
    task = plan["task"]
    if data.modality == "series":
        truth, pred = enc.inverse_target(y), enc.inverse_target(out.numpy())
        naive = enc.inverse_target(naive_forecast(x.numpy(), truth.shape[1],
                                                  enc.state["target_index"]))
        loss = ((pred - truth) ** 2).mean(axis=1)
        result = {"metrics": regression_metrics(truth.ravel(), pred.ravel()),
                  "baseline": {"name": "last_value",
                               "metrics": regression_metrics(truth.ravel(), naive.ravel())}}
        worst = _worst_series(data, test, loss, truth, pred, enc, run_dir)
    else:
        proba = outputs_to_predictions(out, task, plan["loss.name"])
        metrics = classification_metrics(y, proba, data.classes)
        base = baseline_metrics(task, {"counts": enc.state["counts"]}, y, data.classes)
        extra = {k: metrics.pop(k) for k in ("per_class", "confusion_matrix") if k in metrics}
        for k in ("per_class", "confusion_matrix"):
            base.pop(k, None)
        loss = -np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1))
        result = {"metrics": metrics, "baseline": {"name": "majority_class", "metrics": base},
                  **extra}
        worst = _worst_classes(data, test, loss, y, proba, run_dir)
    return {"task": task, "modality": data.modality, "n_rows": len(test),
            "main_metric": MAIN_METRIC[task], **result, "worst": worst}


def _worst_classes(data: Any, test: np.ndarray, loss: np.ndarray, y: np.ndarray,
                   proba: np.ndarray, run_dir: Path | None) -> list[dict[str, Any]]:
    order = np.argsort(-loss, kind="stable")[:WORST]
    rows = []
    for i in order:
        pred = int(proba[i].argmax())
        row = {"name": data.names[test[i]], "true": data.classes[y[i]],
               "pred": data.classes[pred], "p_pred": float(proba[i, pred]),
               "loss": float(loss[i])}
        if data.modality == "text":
            row["text"] = str(data.x[test[i]])[:300]
        rows.append(row)
    if run_dir is not None and data.modality in ("image", "volume") and len(order):
        from .data.images import save_thumbnail_grid

        pics = data.x[test[order]]
        if data.modality == "volume":  # the middle slice of each volume
            pics = pics[:, pics.shape[1] // 2]
        captions = [f"true {r['true']} / pred {r['pred']} (p={r['p_pred']:.2f})" for r in rows]
        save_thumbnail_grid(_as_uint8(pics), captions, run_dir / "mistakes.png")
    if run_dir is not None and data.modality == "sequence" and len(order):
        _plot_sequences(data.x[test[order[:6]]], rows[:6], run_dir / "mistakes.png")
    return rows


def _plot_sequences(x: np.ndarray, rows: list[dict[str, Any]], path: Path) -> None:
    """The worst-classified sequences, each with its true and predicted class."""
    fig = _figure(len(x))
    for k, (seq, row) in enumerate(zip(x, rows, strict=True)):
        ax = fig.add_subplot(len(x), 1, k + 1)
        ax.plot(seq[:, 0], color="tab:blue")
        ax.set_title(f"{row['name']}: true {row['true']} / pred {row['pred']} "
                     f"(p={row['p_pred']:.2f})", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    _save(fig, path)


def _figure(n: int) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(9, 1.8 * n))


def _save(fig: Any, path: Path) -> None:
    import io

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    runs.atomic_write_bytes(path, buf.getvalue())


def _as_uint8(pics: np.ndarray) -> np.ndarray:
    if pics.dtype == np.uint8:
        return pics
    lo, hi = float(pics.min()), float(pics.max())
    return ((pics - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)


def _worst_series(data: Any, test: np.ndarray, loss: np.ndarray, truth: np.ndarray,
                  pred: np.ndarray, enc: ArrayEncoder, run_dir: Path | None
                  ) -> list[dict[str, Any]]:
    order = np.argsort(-loss, kind="stable")[:WORST]
    w = enc.state["window"]
    rows = [{"name": data.names[test[i] + w], "loss": float(loss[i]),
             "true": truth[i].tolist(), "pred": pred[i].tolist()} for i in order]
    if run_dir is not None and len(order):
        _plot_series(data, test[order[:6]], truth[order[:6]], pred[order[:6]], enc,
                     run_dir / "mistakes.png")
    return rows


def _plot_series(data: Any, starts: np.ndarray, truth: np.ndarray, pred: np.ndarray,
                 enc: ArrayEncoder, path: Path) -> None:
    """The worst forecasts: the window the network saw, what came, what it said."""
    w, t = enc.state["window"], enc.state["target_index"]
    fig = _figure(len(starts))
    for k, (s, tr, pr) in enumerate(zip(starts, truth, pred, strict=True)):
        ax = fig.add_subplot(len(starts), 1, k + 1)
        ax.plot(range(w), data.x[s:s + w, t], color="0.4", label="seen")
        ax.plot(range(w, w + len(tr)), tr, "o-", color="tab:green", label="actual")
        ax.plot(range(w, w + len(pr)), pr, "x--", color="tab:red", label="forecast")
        ax.set_title(f"from {data.names[s + w]}", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=7, loc="upper left")
    _save(fig, path)


# ---- a finished run on new samples (Run.predict / Run.evaluate) ----------------------------
def predict_arrays(run: Any, source: Any) -> pd.DataFrame:
    """One row per sample: ``name``, ``prediction`` and ``proba_<class>``; for a forecast,
    the next ``series.horizon`` values after the last row of the given series."""
    enc = run.preprocessor
    data = load_for_run(source, enc.state, labelled=False)
    if enc.modality == "series":
        return _forecast(run, data, str(source))
    x, _ = enc.encode(data, np.arange(len(data.x)))
    proba = outputs_to_predictions(predict_batches(run.model, x), run.plan["task"],
                                   run.plan["loss.name"])
    out = pd.DataFrame({"name": data.names, "prediction": np.asarray(
        enc.classes, dtype=object)[proba.argmax(axis=1)]})
    for i, c in enumerate(enc.classes):
        out[f"proba_{c}"] = proba[:, i]
    return out


def _forecast(run: Any, data: Any, where: str) -> pd.DataFrame:
    from .data.series import scale

    s = run.preprocessor.state
    w, h = s["window"], s["horizon"]
    if len(data.x) < w:
        raise DataError(f"{where} has {len(data.x)} rows; the forecaster reads the last "
                        f"{w} (series.window): give at least {w}")
    last = torch.from_numpy(scale(data.x[-w:], s)[None])  # (1, W, F)
    pred = run.preprocessor.inverse_target(predict_batches(run.model, last).numpy())[0]
    return pd.DataFrame({"after": data.names[-1], "step": np.arange(1, h + 1),
                         "prediction": pred})


def evaluate_arrays(run: Any, source: Any) -> dict[str, Any]:
    """evaluation.json's layout for new labelled samples (every window of a series)."""
    from types import SimpleNamespace

    enc = run.preprocessor
    data = load_for_run(source, enc.state, labelled=True)
    if enc.modality == "series":
        n = len(data.x) - enc.state["window"] - enc.state["horizon"] + 1
        if n < 1:
            raise DataError(f"{source} has {len(data.x)} rows; window + horizon needs "
                            f"{len(data.x) - n + 1}")
        test = np.arange(n)
    else:
        test = np.arange(len(data.y))
        data.classes = enc.classes
    prep = SimpleNamespace(preprocessor=enc, data=data, splits=SimpleNamespace(test=test))
    return score_arrays(prep, run.model, run.plan, None)
