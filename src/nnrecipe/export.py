"""Export a finished run for serving without nnrecipe: one ONNX or TorchScript file, and a
JSON sidecar beside it that says how to build its inputs and read its outputs.

The exported network is the trained one wrapped with the preprocessing that can live in
the graph, and with the step that turns its outputs into predictions:

* tables: the numeric inputs arrive raw, as float64 with NaN for a missing value; the graph
  imputes them with the fitted fill values, adds the "was missing" indicators, scales them
  with the fitted statistics, expands the categorical codes into their one-hot blocks (or
  passes them to the embeddings), runs the MLP and turns its outputs into class
  probabilities, or into values in the target's units for a regression. What stays
  outside is turning a category's value into its index in the sidecar's ``levels``.
* images and volumes: the input is the pixel array, channels last, on the 0-1 scale; the
  graph normalises each channel with the training statistics and runs the convnet.

Other kinds of data (sound, text, series, sequences) are refused with one line
(:class:`ExportError`, exit code 2): their preprocessing (log-mel frames, tokenising,
windows) does not fold into a graph.

The ONNX file is written by PyTorch's TorchScript-based exporter (``dynamo=False``), which
needs only the ``onnx`` package: these wrappers are feed-forward graphs without
data-dependent branches, which tracing captures exactly, and one ``dynamic_axes`` argument
makes the batch axis dynamic. The ``torch.export`` path (torch's default since 2.9) gives
the same graph here but needs onnxscript as well, takes seconds instead of a fraction of
one and prints its progress; switch when torch drops the legacy exporter. Before a file is
kept, onnx checks it (with shape inference) and onnxruntime, or torch.jit.load for
TorchScript, runs it on probe rows against the network. Every file goes through a
temporary sibling renamed into place (runs.py), so a failed export leaves none.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__, runs
from .data import Preprocessor
from .data.images import STD_FLOOR
from .errors import NnrecipeError
from .modalities.image import ImageEncoder
from .pipeline.saved import Run, load_run

__all__ = ["ExportError", "FORMATS", "OPSET", "Serving", "export_run", "serving_module",
           "sidecar_path"]

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}  # format → the default file's suffix
OPSET = 17  # ONNX opset: onnxruntime ≥ 1.13 runs it; every op these wrappers need is in it
SUPPORTED = "tables (table), images (image) and volumes (volume)"
INSTALL = "pip install 'nnrecipe[onnx]'"
MISSING_LEVEL = "(missing)"  # the level a missing category becomes (data/preprocess.py)
PROBE_ROWS = 16  # rows of the example input: traced, then run by both to compare
PROBE_SEED = 0
# the exported file must give what the network gives on the probe rows (onnxruntime's kernels
# differ from torch's in the last bits; an exporter bug is far larger)
CHECK_RTOL, CHECK_ATOL = 1e-4, 1e-5


class ExportError(NnrecipeError):
    """The run cannot be exported as asked (format, kind of data, output file, package)."""


@dataclass
class Serving:
    """A run's network ready to export: ``module`` maps the ``inputs`` (tensors in the
    order of ``input_names``) to the ``output_names``; ``inputs`` and ``outputs`` are the
    sidecar's descriptions."""

    module: nn.Module
    example: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)


# ---- the public function ----------------------------------------------------------------------
def export_run(run_dir: str | Path, format: str = "onnx", out: str | Path | None = None, *,
               overwrite: bool = False) -> Path:
    """Export the finished run in ``run_dir`` as ``format`` ("onnx" or "torchscript") to
    ``out`` (default: beside the run directory, ``<run>.onnx`` or ``<run>.pt``), with the
    sidecar ``<out>.json``; returns the path of the model file. ``overwrite``: replace
    files already there. Raises :class:`ExportError` (one line) for an unknown format, a
    kind of data that does not export, a missing package or an output that is taken, and
    :class:`~nnrecipe.errors.RunError` for a directory that is not a finished run."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of "
                          f"{', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    if format == "onnx":
        require_onnx()
    here = run_dir.resolve()
    target = Path(out) if out is not None else here.parent / (here.name + FORMATS[format])
    side = sidecar_path(target)
    check_free(target, side, overwrite)
    run = load_run(run_dir)
    serving = serving_module(run)
    data = onnx_bytes(serving) if format == "onnx" else torchscript_bytes(serving)
    sidecar = describe(run, serving, format, target)
    runs.atomic_write_bytes(target, data)
    try:
        runs.atomic_write_json(side, sidecar)
    except BaseException:
        target.unlink(missing_ok=True)  # no model file without the sidecar that explains it
        raise
    return target


def sidecar_path(model_file: str | Path) -> Path:
    """The JSON sidecar of an exported file: ``model.onnx`` → ``model.onnx.json``."""
    model_file = Path(model_file)
    return model_file.with_name(model_file.name + ".json")


def require_onnx() -> tuple[Any, Any]:
    """The ``onnx`` and ``onnxruntime`` modules (onnxruntime checks the exported file), or
    an ExportError saying how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise ExportError(f"exporting to ONNX needs the {e.name or 'onnx'} package: "
                          f"{INSTALL}") from None
    return onnx, onnxruntime


def check_free(model_file: Path, side: Path, overwrite: bool) -> None:
    for p in (model_file, side):
        if p.is_dir():
            raise ExportError(f"{p} is a directory; give a file name to export to")
        if p.exists() and not overwrite:
            raise ExportError(f"{p} already exists; choose another --out or pass --overwrite")


# ---- the networks to export -------------------------------------------------------------------
def serving_module(run: Run) -> Serving:
    """The run's network with its preprocessing folded in (see the module's docstring).
    Raises :class:`ExportError` for a kind of data that does not export."""
    pre = run.preprocessor
    head = PredictionHead(run.task, run.plan["loss.name"], run.plan["model.n_outputs"],
                          getattr(pre, "state", {}).get("target_transform", {}))
    if isinstance(pre, Preprocessor):
        serving = table_serving(pre, run.model, head)
    elif isinstance(pre, ImageEncoder):
        serving = image_serving(pre, run.model, head, run.profile.modality)
    else:
        raise ExportError(f"{run.profile.modality} runs cannot be exported: their "
                          f"preprocessing does not fold into a graph; export supports "
                          f"{SUPPORTED}")
    serving.module.eval()
    serving.output_names, serving.outputs = head.describe(run.preprocessor.classes)
    return serving


class PredictionHead(nn.Module):
    """Network outputs → what ``Run.predict`` gives: class probabilities (and the index of
    the likeliest class), or a regression value in the target's units (float64).
    The same reading as models/heads.py: outputs_to_predictions."""

    def __init__(self, task: str, loss: str, n_outputs: int, target: dict[str, Any]):
        super().__init__()
        self.regression = task == "regression"
        self.loss, self.n_outputs = loss, n_outputs
        self.loc = float(target.get("loc", 0.0))
        self.scale = float(target.get("scale", 1.0))

    def forward(self, out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = out.float()
        if self.regression:
            return (out[:, 0].double() * self.scale + self.loc,)
        if self.loss == "bce":
            p = torch.sigmoid(out)
        elif self.loss == "cross_entropy":
            p = torch.softmax(out, dim=1)
        else:
            p = out.clamp(0, 1)
        if self.n_outputs == 1:  # one unit: P(positive class)
            p = torch.cat([1 - p, p], dim=1)
        elif self.loss != "cross_entropy":  # independent scores: normalised to sum to one
            s = p.sum(dim=1, keepdim=True)
            p = torch.where(s > 0, p / torch.where(s > 0, s, torch.ones_like(s)),
                            torch.full_like(p, 1.0 / self.n_outputs))
        return p, p.argmax(dim=1)

    def describe(self, classes: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
        if self.regression:
            return ["prediction"], [{
                "name": "prediction", "dtype": "float64", "shape": ["batch"],
                "about": "the predicted value, in the target's units"}]
        return ["probabilities", "class_index"], [
            {"name": "probabilities", "dtype": "float32", "shape": ["batch", len(classes)],
             "classes": classes, "about": "the probability of each class, in the order of "
             "classes"},
            {"name": "class_index", "dtype": "int64", "shape": ["batch"], "classes": classes,
             "about": "the likeliest class, as its index in classes"}]


class TableServing(nn.Module):
    """Raw numeric columns (float64, NaN = missing) and category codes (int64) → the
    Preprocessor's matrix → the MLP → the prediction head."""

    def __init__(self, pre: Preprocessor, model: nn.Module, head: PredictionHead):
        super().__init__()
        specs = pre.state["numeric"]
        self.sources = [s["name"] for s in specs if not s["indicator"]]
        # each fitted column reads one input column: its own, or (an indicator) its base's
        base = [s["name"].removesuffix("__missing") if s["indicator"] else s["name"]
                for s in specs]
        self.register_buffer("source_index", torch.tensor(
            [self.sources.index(b) for b in base], dtype=torch.long))
        for key in ("fill", "center", "scale"):
            self.register_buffer(key, torch.tensor([float(s[key]) for s in specs],
                                                   dtype=torch.float64))
        self.register_buffer("indicator", torch.tensor([bool(s["indicator"]) for s in specs],
                                                       dtype=torch.bool))
        self.onehot = [len(c["levels"]) for c in pre.state["onehot"]]
        self.n_embed = len(pre.state["embed"])
        self.n_categories = len(self.onehot) + self.n_embed
        self.register_buffer("n_levels", torch.tensor(
            self.onehot + [len(c["levels"]) for c in pre.state["embed"]], dtype=torch.long))
        self.model, self.head = model, head

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        parts, i = [], 0
        if self.sources:
            v = inputs[i].double().index_select(1, self.source_index)
            i += 1
            nan = torch.isnan(v)
            scaled = (torch.where(nan, self.fill.expand_as(v), v) - self.center) / self.scale
            parts.append(torch.where(self.indicator, nan.double(), scaled).float())
        if self.n_categories:
            codes = inputs[i].long()
            codes = codes.masked_fill((codes < 0) | (codes >= self.n_levels), -1)  # unseen
            for k, n in enumerate(self.onehot):
                levels = torch.arange(n, dtype=torch.long, device=codes.device)
                parts.append((codes[:, k:k + 1] == levels).float())
            if self.n_embed:  # the embeddings' codes: 0 = unseen, level j → j + 1
                parts.append((codes[:, len(self.onehot):] + 1).float())
        return self.head(self.model(torch.cat(parts, dim=1)))


def table_serving(pre: Preprocessor, model: nn.Module, head: PredictionHead) -> Serving:
    module = TableServing(pre, model, head)
    example, names, inputs = [], [], []
    gen = torch.Generator().manual_seed(PROBE_SEED)
    if module.sources:
        by_name = {s["name"]: s for s in pre.state["numeric"]}
        columns = []
        for name in module.sources:
            s = by_name[name]
            columns.append({"name": name, "source": s["source"], "kind": s["kind"],
                            "part": s["part"], "missing_becomes": s["fill"],
                            "missing_indicator": f"{name}__missing" in by_name})
        numbers = torch.randn(PROBE_ROWS, len(columns), generator=gen, dtype=torch.float64)
        numbers[torch.rand(numbers.shape, generator=gen) < 0.25] = float("nan")
        example.append(numbers)
        names.append("numeric")
        inputs.append({
            "name": "numeric", "dtype": "float64", "shape": ["batch", len(columns)],
            "columns": columns,
            "about": "one column per entry of columns, in that order: numeric columns as "
                     "numbers; boolean columns as 1.0 (true) or 0.0 (false); datetime "
                     "columns as their parts (year, month, day, weekday with Monday = 0, "
                     "hour); NaN for a missing value, which the graph imputes (with "
                     "missing_becomes) and scales; no infinities"})
    cats = [{**c, "encoding": "onehot"} for c in pre.state["onehot"]] + [
        {**c, "encoding": "embedding"} for c in pre.state["embed"]]
    if cats:
        example.append(torch.stack([  # every level, -1 (unseen) and one past the last
            torch.randint(-1, len(c["levels"]) + 1, (PROBE_ROWS,), generator=gen)
            for c in cats], dim=1))
        names.append("categories")
        inputs.append({
            "name": "categories", "dtype": "int64", "shape": ["batch", len(cats)],
            "columns": [{"name": c["name"], "levels": c["levels"], "encoding": c["encoding"]}
                        for c in cats],
            "missing_level": MISSING_LEVEL,
            "about": "one column per entry of columns, in that order: the index in levels "
                     "of the value written as text (str(value)); a missing value: the "
                     f"index of {MISSING_LEVEL!r} where levels has it, else -1; a value "
                     "not in levels: -1 (read as a level never seen in training)"})
    return Serving(module, tuple(example), names, [], inputs)


class ImageServing(nn.Module):
    """Channels-last pixels on the 0-1 scale → normalised per channel, channels first → the
    convnet → the prediction head (data/images.py: to_tensor)."""

    def __init__(self, enc: ImageEncoder, model: nn.Module, head: PredictionHead):
        super().__init__()
        rank = len(enc.state["spatial"]) + 2  # (batch, *spatial, channels)
        self.channels_first = [0, rank - 1, *range(1, rank - 1)]
        self.register_buffer("mean", torch.tensor(enc.state["mean"], dtype=torch.float32))
        self.register_buffer("std", torch.tensor(enc.state["std"], dtype=torch.float32)
                             .clamp_min(STD_FLOOR))
        self.model, self.head = model, head

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = ((pixels.float() - self.mean) / self.std).permute(self.channels_first)
        return self.head(self.model(x))


def image_serving(enc: ImageEncoder, model: nn.Module, head: PredictionHead,
                  modality: str) -> Serving:
    shape = [*enc.state["spatial"], len(enc.state["mean"])]
    axes = ["depth", "height", "width"][-len(enc.state["spatial"]):] + ["channels"]
    return Serving(ImageServing(enc, model, head),
                   (torch.rand(PROBE_ROWS, *shape, generator=torch.Generator().manual_seed(
                       PROBE_SEED)),), ["pixels"], [], [{
                       "name": "pixels", "dtype": "float32", "shape": ["batch", *shape],
                       "axes": ["batch", *axes], "modality": modality,
                       "channel_mean": enc.state["mean"], "channel_std": enc.state["std"],
                       "about": "channels last, at the size the network reads (resize "
                                "first); on the 0-1 scale: 8-bit pixels divided by 255, "
                                "float arrays as given to nnrecipe; the graph normalises "
                                "each channel"}])


# ---- writing ----------------------------------------------------------------------------------
def onnx_bytes(serving: Serving) -> bytes:
    """The ONNX model, with a dynamic batch axis on every input and output; checked by onnx
    (with shape inference) and run by onnxruntime on the probe rows against the network."""
    onnx, ort = require_onnx()
    names = serving.input_names + serving.output_names
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the legacy exporter's notice that torch.export is now the default
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(serving.module, serving.example, buf, dynamo=False,
                              input_names=serving.input_names,
                              output_names=serving.output_names, opset_version=OPSET,
                              dynamic_axes={n: {0: "batch"} for n in names})
        data = buf.getvalue()
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        got = session.run(serving.output_names, {
            n: t.numpy() for n, t in zip(serving.input_names, serving.example, strict=True)})
    except Exception as e:  # noqa: BLE001 - an exporter failure, said in one line
        raise ExportError(f"the network could not be exported to ONNX "
                          f"({type(e).__name__}: {one_line(e)})") from None
    check_same(serving, got, "ONNX")
    return data


def torchscript_bytes(serving: Serving) -> bytes:
    """The TorchScript module (traced), saved as torch.jit.save writes it; the saved module
    is loaded back and run on the probe rows against the network."""
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's own notice
            traced = torch.jit.trace(serving.module, serving.example, check_trace=False)
            torch.jit.save(traced, buf)
            data = buf.getvalue()
            loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
            got = [t.numpy() for t in loaded(*serving.example)]
    except Exception as e:  # noqa: BLE001
        raise ExportError(f"the network could not be exported to TorchScript "
                          f"({type(e).__name__}: {one_line(e)})") from None
    check_same(serving, got, "TorchScript")
    return data


def check_same(serving: Serving, got: list[Any], what: str) -> None:
    """Refuse an exported file whose outputs on the probe rows differ from the network's
    (the floating outputs; the class index follows from the probabilities)."""
    with torch.no_grad():
        want = [t.numpy() for t in serving.module(*serving.example)]
    for name, g, w in zip(serving.output_names, got, want, strict=True):
        if w.dtype.kind == "f" and not (g.shape == w.shape and np.allclose(
                g, w, rtol=CHECK_RTOL, atol=CHECK_ATOL)):
            raise ExportError(f"the {what} file gives other {name} than the network on "
                              "test inputs; this network does not export faithfully")


def one_line(e: BaseException, limit: int = 300) -> str:
    return " ".join(str(e).split())[:limit]


def describe(run: Run, serving: Serving, format: str, model_file: Path) -> dict[str, Any]:
    """The sidecar: what the file is, what to feed it and what it gives."""
    return {
        "format": format,
        "file": model_file.name,
        "nnrecipe_version": __version__,
        "torch_version": torch.__version__,
        **({"opset": OPSET} if format == "onnx" else {}),
        "run": str(run.path) if run.path is not None else None,
        "modality": run.profile.modality,
        "task": run.task,
        "target": run.profile.target,
        "inputs": serving.inputs,
        "outputs": serving.outputs,
        "folded_in": folded_in(run),
        "dropped_columns": dict(getattr(run.preprocessor, "state", {}).get("dropped", {})),
    }


def folded_in(run: Run) -> list[str]:
    if isinstance(run.preprocessor, Preprocessor):
        steps = ["numeric imputation (training medians) and missing-value indicators",
                 f"scaling ({run.preprocessor.state['scale']})",
                 "one-hot blocks and embedding codes from the category indices"]
    else:
        steps = ["per-channel normalisation with the training mean and std"]
    steps.append("the network" + (" and the inverse target scaling" if run.task ==
                                  "regression" else " and its outputs as probabilities"))
    return steps
