"""What the modalities other than tables share: samples held as one array, splits as
positions into it, an encoder fitted on the training split and saved as JSON, and the
prepare / score / predict steps built from a few hooks each modality fills in.

:class:`ClassModality` is the base of every classifier (images, volumes, sound, text,
labelled sequences); the time series modality (a forecaster) builds on
:class:`SampleModality` directly.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ..data.load import table_name
from ..data.profile import DataProfile, key_overlap, sample_leak_suspects, target_summary
from ..data.split import rare_classes
from ..errors import DataError
from ..evaluate import MAIN_METRIC, baseline_metrics, classification_metrics
from ..lazy import lazy
from ..models import outputs_to_predictions
from ..models.build import build_network
from ..plan.network_rules import compose_rules
from ..plan.rules import add_parameter_count, make_plan
from ..plan.schema import Plan
from ..plan.sizing import values_per_sample
from ..runs import atomic_write_bytes
from ..timing import stage
from ..train import predict_batches, target_tensor
from ..train.streams import PositionStream
from .base import Inputs, Modality, Prepared, Source, n_trainable, seeded_build, streamed_inputs

mpl_figure = lazy("matplotlib.figure")
model_selection = lazy("sklearn.model_selection")

__all__ = ["ClassModality", "EncodeFetch", "SampleEncoder", "SampleModality", "SampleSplits",
           "Samples", "class_samples", "figure", "save_figure", "streaming"]

VAL_SHARE = TEST_SHARE = 0.15  # as for tables
WORST = 16  # highest-loss test samples kept for the report
#: samples per forward pass when scoring samples read from disk: the activations of a
#: convnet's first blocks are ten to twenty times its input, so a chunk is a few training
#: batches, and at most SCORE_BYTES of encoded inputs (170 colour images of 224 px)
SCORE_ROWS = 128
SCORE_BYTES = 32 * 2**20


@dataclass
class Samples:
    """Loaded samples. ``x``: images (N,H,W,C) uint8, or an image folder's files
    (data/images.ImageFiles: names, decoded a batch at a time), volumes (N,D,H,W,C), waves
    (N,T), texts (N,) str, sequences (N,T,1), or a series' values (T, F); ``y``: class codes
    (N,) (None for a series: its targets are the future values)."""

    modality: str
    x: Any
    y: np.ndarray | None
    classes: list[str]
    names: list[str]
    target: str
    task: str
    task_reason: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SampleSplits:
    """Positions of each split's samples (windows for a series)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    how: str
    val_ids: list[Any] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


class SampleEncoder(ABC):
    """Fitted on the training split, saved as JSON (``state``): ``encode(data, positions)
    -> (x, y)`` with x shaped for the network."""

    def __init__(self, state: dict[str, Any]):
        self.state = state

    @property
    def modality(self) -> str:
        return self.state["modality"]

    @property
    def classes(self) -> list[str]:
        return self.state["classes"]

    @property
    def vocab_size(self) -> int | None:
        return None

    @property
    @abstractmethod
    def input_shape(self) -> list[int]:
        ...

    @abstractmethod
    def encode(self, data: Samples, pos: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        ...

    def inverse_target(self, values: np.ndarray) -> np.ndarray:
        """Scaled targets back to the data's units (identity for classes)."""
        return values

    def to_dict(self) -> dict[str, Any]:
        return self.state

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleEncoder:
        return cls(d)

    @staticmethod
    def base_state(data: Samples) -> dict[str, Any]:
        return {"version": 1, "modality": data.modality, "target": data.target,
                "task": data.task, "classes": data.classes}


class SampleModality(Modality):
    """prepare / replan / refold for samples held in one array; subclasses give the hooks:
    ``load``, ``load_for_run``, ``split``, ``fit_encoder``, ``inputs``, ``score``."""

    encoder: ClassVar[type[SampleEncoder]]
    #: the table rules these networks do not use (they choose their own)
    table_only: ClassVar[tuple[str, ...]] = (
        "data.scale", "data.drop", "data.impute", "data.n_inputs", "model.hidden_layers",
        "model.width", "model.init", "model.init_scale", "model.bias_init",
        "model.batchnorm", "model.dropout")
    #: table rules replaced by this modality's own
    replaces: ClassVar[dict[str, Any]] = {}

    # hooks ---------------------------------------------------------------------------------
    @abstractmethod
    def load(self, source: Source, target: str | None, task: str, *,
             like: Samples | None = None, min_classes: int = 2) -> Samples:
        """Read ``source``; ``like``: the training samples a test set must match;
        ``min_classes``: 1 for a test set, which may hold some of the classes only."""
        ...

    @abstractmethod
    def load_for_run(self, source: Source, state: dict[str, Any], labelled: bool) -> Samples:
        """New samples for a finished run whose encoder state is ``state``."""
        ...

    @abstractmethod
    def split(self, data: Samples, plan: Plan, held: np.ndarray | None) -> SampleSplits:
        ...

    @abstractmethod
    def fit_encoder(self, data: Samples, train: np.ndarray, plan: Plan) -> SampleEncoder:
        ...

    def profile_inputs(self, data: Samples) -> dict[str, Any]:
        return dict(data.info)

    def augment(self, plan: Plan) -> Any:
        return None

    def settle(self, data: Samples, plan: Plan, profile: DataProfile | None) -> Samples:
        """The samples as the plan reads them, once it is made: a modality that loaded
        only file names decodes them here when ``data.loader`` is memory (and corrects the
        ``profile`` from the pixels). Default: as they are."""
        return data

    def on_disk(self, data: Samples) -> bool:
        """True when ``data.x`` names files rather than holding the samples: scoring and
        prediction then read them a chunk at a time."""
        return False

    def concat(self, a: Any, b: Any) -> Any:
        """Training samples followed by a separate test set's (``--test``)."""
        return np.concatenate([a, b])

    def order(self, data: Samples, splits: SampleSplits, plan: Plan) -> Any:
        return None

    def adopt_pretrained(self, data: Samples, source: Any) -> Any:
        raise DataError(f"--pretrained works for convnets (image, volume, audio and "
                        f"sequence data); {self.name} networks train from scratch")

    def measure_similarity(self, prep: Prepared) -> dict[str, Any]:
        return {}

    def attach_test(self, data: Samples, test: Samples, where: str) -> Samples:
        raise DataError(f"--test does not apply to {self.name} data")

    # the shared steps ----------------------------------------------------------------------
    def prepare(self, source: Source, target: str | None, *, task: str,
                given: dict[str, Any], test: Source | None, valid: Source | None,
                pretrained: Any) -> Prepared:
        if valid is not None:
            raise DataError(f"--valid applies to tabular data, not {self.name} data; the "
                            "validation split is made inside the training data")
        with stage("load"):
            data = self.load(source, target, task)
            pre = self.adopt_pretrained(data, pretrained) if pretrained is not None else None
            if test is not None:
                data = self.attach_test(data, self.load(test, target, task, like=data,
                                                        min_classes=1), str(test))
        return self._prepare(data, given, table_name(source), pre, None)

    def _prepare(self, data: Samples, given: dict[str, Any], name: str, pre: Any,
                 held: np.ndarray | None) -> Prepared:
        with stage("profile"):
            profile = self.profile(data)
        with stage("plan"):
            if pre is not None:
                profile.inputs["pretrained"] = pre.describe()
            first = make_plan(profile, int(0.7 * len(data.x)), given)  # the window decides
            splits = self.split(data, first, held)
            profile.splits = {"how": splits.how, **splits.sizes(),
                              **self.split_overlap(data, splits)}
            the_plan = make_plan(profile, len(splits.train), given)
            data = self.settle(data, the_plan, profile)
            enc = self.fit_encoder(data, splits.train, the_plan)
            prep = Prepared(self, the_plan, profile, enc, None, splits, name, given,
                            data=data, pretrained=pre)
            if pre is not None:  # the similarity decides the strategy: re-plan once measured
                profile.inputs["pretrained"].update(self.measure_similarity(prep))
                the_plan = make_plan(profile, len(splits.train), given)
            return self._finish(prep, the_plan, enc)

    def _finish(self, prep: Prepared, the_plan: Plan, enc: SampleEncoder) -> Prepared:
        model = self.build(the_plan, enc, prep.pretrained)
        the_plan = add_parameter_count(the_plan, n_trainable(model), prep.n_train,
                                       values_per_sample(the_plan, prep.profile.inputs))
        return prep.with_(plan=the_plan, preprocessor=enc, model=model,
                          augment=self.augment(the_plan),
                          order=self.order(prep.data, prep.splits, the_plan))

    def replan(self, prep: Prepared, given: dict[str, Any]) -> Prepared:
        the_plan = make_plan(prep.profile, prep.n_train, given)
        data = self.settle(prep.data, the_plan, None)
        same = data is prep.data and all(prep.plan[k] == the_plan[k] for k in self.encoder_keys
                                         if k in prep.plan and k in the_plan)
        enc = prep.preprocessor if same else self.fit_encoder(data, prep.splits.train,
                                                               the_plan)
        return self._finish(prep.with_(overrides=given, data=data), the_plan, enc)

    def refold(self, prep: Prepared, held: np.ndarray) -> Prepared:
        return self._prepare(prep.data, prep.overrides, prep.name, prep.pretrained, held)

    def profile(self, data: Samples) -> DataProfile:
        return DataProfile(n_rows=len(data.x), n_columns=0, target=data.target,
                           task=data.task, task_reason=data.task_reason, columns={},
                           target_summary=self.target_summary(data),
                           duplicate_rows=self.duplicates(data), constant_columns=[],
                           id_like_columns=[], text_columns=[], leak_suspects=[],
                           modality=data.modality, inputs=self.profile_inputs(data))

    def target_summary(self, data: Samples) -> dict[str, Any]:
        return target_summary(pd.Series(np.asarray(data.classes)[data.y]), data.task)

    def duplicates(self, data: Samples) -> int:
        keys = _sample_keys(data.x)
        return len(keys) - len(set(keys))

    def split_overlap(self, data: Samples, splits: SampleSplits) -> dict[str, Any]:
        """``duplicates_across_splits`` for the profile (the data check of that name):
        validation and test samples identical to a training sample. None here: a series'
        windows overlap by construction."""
        return {}

    def plan_rules(self, table_rules: tuple, pretrained: dict | None) -> list:
        return compose_rules(table_rules, self.own_rules, self.table_only, self.replaces,
                             pretrained)

    def build(self, plan: Plan, encoder: Any, pretrained: Any = None) -> torch.nn.Module:
        return seeded_build(lambda: build_network(plan, encoder, pretrained), plan["seed"])

    def encoder_from_dict(self, state: dict[str, Any]) -> SampleEncoder:
        return self.encoder.from_dict(state)


class ClassModality(SampleModality):
    """Samples with one class each: stratified splits, accuracy against the majority
    class, the highest-loss test samples kept (and shown, where a picture helps)."""

    def profile(self, data: Samples) -> DataProfile:
        """With the tables' leak check, per input position (``sample_leak_suspects``)."""
        profile = super().profile(data)
        if isinstance(data.x, np.ndarray):
            profile.leak_suspects = sample_leak_suspects(
                data.x, np.asarray(data.classes, dtype=object)[data.y])
        return profile

    def split_overlap(self, data: Samples, splits: SampleSplits) -> dict[str, Any]:
        keys = _sample_keys(data.x)
        return {"duplicates_across_splits": key_overlap(
            [keys[i] for i in splits.train],
            {name: [keys[i] for i in getattr(splits, name)] for name in ("val", "test")})}

    def split(self, data: Samples, plan: Plan, held: np.ndarray | None) -> SampleSplits:
        """Stratified 70/15/15; with a test set attached (``--test``) or ``held`` out (a
        fold): train/validation 85/15 of the rest, and that test set."""
        seed = plan["seed"]
        if held is not None:
            rest = np.setdiff1d(np.arange(len(data.y)), held)
            return self._split_rest(data, rest, np.sort(held), seed, "held-out fold")
        if "test_start" in data.info:
            start = data.info["test_start"]
            return self._split_rest(data, np.arange(start), np.arange(start, len(data.y)),
                                    seed, data.info["test_source"])
        idx = np.arange(len(data.y))
        labels = np.asarray(data.classes, dtype=object)[data.y]
        rare = rare_classes(labels, 3)  # one sample each for training, validation and test
        if rare:
            raise DataError(f"cannot split {len(idx):,} samples by class: {rare}; give more "
                            "samples of those classes or remove them")
        try:
            rest, test = model_selection.train_test_split(
                idx, test_size=TEST_SHARE, random_state=seed, stratify=data.y)
            train, val = model_selection.train_test_split(
                rest, test_size=VAL_SHARE / (1 - TEST_SHARE), random_state=seed,
                stratify=data.y[rest])
        except ValueError as e:  # more classes than a split has samples
            raise DataError(f"cannot split {len(idx):,} samples into train/val/test by class "
                            f"({str(e)[:200]}); give more samples per class") from None
        return SampleSplits(np.sort(train), np.sort(val), np.sort(test),
                            "stratified 70/15/15 by class", [data.names[i] for i in np.sort(val)])

    @staticmethod
    def _split_rest(data: Samples, rest: np.ndarray, test: np.ndarray, seed: int,
                    where: str) -> SampleSplits:
        try:
            train, val = model_selection.train_test_split(
                rest, test_size=VAL_SHARE / (1 - TEST_SHARE), random_state=seed,
                stratify=data.y[rest])
        except ValueError as e:
            raise DataError(f"cannot split {len(rest)} samples into train/validation by class "
                            f"({e}); give more samples per class") from None
        return SampleSplits(np.sort(train), np.sort(val), test,
                            f"stratified 85/15 by class; test: {where}",
                            [data.names[i] for i in np.sort(val)])

    def fit_encoder(self, data: Samples, train: np.ndarray, plan: Plan) -> SampleEncoder:
        enc = self.fit_features(data, train, plan)
        enc.state["counts"] = np.bincount(data.y[train], minlength=len(data.classes)).tolist()
        return enc

    @abstractmethod
    def fit_features(self, data: Samples, train: np.ndarray, plan: Plan) -> SampleEncoder:
        ...

    def fold_labels(self, prep: Prepared) -> np.ndarray | None:
        return prep.data.y

    def load_for_run(self, source: Source, state: dict[str, Any], labelled: bool) -> Samples:
        """New samples for a finished run: the same kind of data as it trained on, without
        labels (to predict: files with or without class subfolders, an .npz without y, a
        table without the label column) or with them, as the run's class codes."""
        data = self.read_for_run(source, state, labelled)
        if labelled:
            data.y = _run_codes(data, state["classes"], str(source))
        return data

    @abstractmethod
    def read_for_run(self, source: Source, state: dict[str, Any], labelled: bool) -> Samples:
        """New samples as read, their labels coded by their own classes."""
        ...

    def attach_test(self, data: Samples, test: Samples, where: str) -> Samples:
        """``data`` with a separate test set appended; the split then holds it out as the
        test split (``info["test_start"]``). Its classes must be among the training data's."""
        unknown = sorted(set(test.classes) - set(data.classes))
        if unknown:
            raise DataError(f"{where} has classes the training data lacks: "
                            f"{', '.join(unknown)}; the training classes are "
                            f"{', '.join(data.classes)}")
        codes = np.asarray([data.classes.index(c) for c in test.classes])[test.y]
        x = self.like(test.x, data.x, where)
        info = {**data.info, "test_start": len(data.x), "test_source": where}
        return Samples(data.modality, self.concat(data.x, x),
                       np.concatenate([data.y, codes]), data.classes,
                       data.names + [f"test:{n}" for n in test.names], data.target,
                       data.task, data.task_reason, info)

    def like(self, x: np.ndarray, ref: np.ndarray, where: str) -> np.ndarray:
        """Test samples shaped as the training samples."""
        if x.shape[1:] != ref.shape[1:]:
            raise DataError(f"{where} holds samples of shape {x.shape[1:]}, the training data "
                            f"{ref.shape[1:]}; give both at the same size")
        return x.astype(ref.dtype)

    def inputs(self, prep: Prepared) -> Inputs:
        """Each split as tensors (``data.loader=memory``), or as streams that encode a
        batch at a time (``stream``: :class:`EncodeFetch` in DataLoader workers), with a
        seeded sample of each in memory for the doctor."""
        plan, enc, data, s = prep.plan, prep.preprocessor, prep.data, prep.splits
        task = plan["task"]
        y_va = data.y[s.val]

        def val_metrics(out: torch.Tensor, _y: torch.Tensor) -> dict[str, float]:
            proba = outputs_to_predictions(out, task, plan["loss.name"])
            return {"accuracy": float(np.mean(proba.argmax(axis=1) == y_va))}

        fetch = EncodeFetch(enc, data, plan)
        if streaming(plan):
            pin = plan["train.device"] == "cuda" if "train.device" in plan else False
            workers = plan["data.workers"] if "data.workers" in plan else 0
            train, val = (PositionStream(fetch, pos, workers=workers, pin=pin)
                          for pos in (s.train, s.val))
            return streamed_inputs(train, val, val_metrics, plan["seed"])
        return Inputs(*fetch(s.train), *fetch(s.val), val_metrics)

    def score(self, prep: Prepared, model: torch.nn.Module, plan: Plan,
              run_dir: Path | None) -> dict[str, Any]:
        return self._score(prep.preprocessor, prep.data, prep.splits.test, model, plan, run_dir)

    def _score(self, enc: SampleEncoder, data: Samples, test: np.ndarray,
               model: torch.nn.Module, plan: Plan, run_dir: Path | None) -> dict[str, Any]:
        """Test metrics beside the majority class's, and the highest-loss test samples."""
        task = plan["task"]
        proba, y = self._predict(enc, data, test, model, plan)
        metrics = classification_metrics(y, proba, data.classes)
        base = baseline_metrics(task, {"counts": enc.state["counts"]}, y, data.classes)
        extra = {k: metrics.pop(k) for k in ("per_class", "confusion_matrix") if k in metrics}
        for k in ("per_class", "confusion_matrix"):
            base.pop(k, None)
        loss = -np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1))
        order = np.argsort(-loss, kind="stable")[:WORST]
        rows = []
        for i in order:
            pred = int(proba[i].argmax())
            rows.append({"name": data.names[test[i]], "true": data.classes[y[i]],
                         "pred": data.classes[pred], "p_pred": float(proba[i, pred]),
                         "loss": float(loss[i]), **self.worst_extra(data, test[i])})
        if run_dir is not None and len(order):
            self.show_worst(data, test[order], rows, Path(run_dir))
        return {"task": task, "modality": data.modality, "n_rows": len(test),
                "main_metric": MAIN_METRIC[task], "metrics": metrics,
                "baseline": {"name": "majority_class", "metrics": base}, **extra,
                "worst": rows}

    def _predict(self, enc: SampleEncoder, data: Samples, pos: np.ndarray,
                 model: torch.nn.Module, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
        """Predicted probabilities of the samples at ``pos``, and their class codes. Samples
        on disk are encoded a chunk at a time (SCORE_ROWS), never all at once."""
        if not self.on_disk(data):
            x, y = enc.encode(data, pos)
            out = predict_batches(model, x)
        else:
            per_sample = 4 * int(np.prod(enc.input_shape))
            chunk = max(1, min(SCORE_ROWS, SCORE_BYTES // per_sample))
            stream = PositionStream(EncodeFetch(enc, data, plan, targets=False), pos)
            out, y = predict_batches(model, stream, chunk), data.y[pos]
        return outputs_to_predictions(out, plan["task"], plan["loss.name"]), y

    def worst_extra(self, data: Samples, pos: int) -> dict[str, Any]:
        """More to say about one of the worst test samples (text: the text)."""
        return {}

    def show_worst(self, data: Samples, pos: np.ndarray, rows: list[dict[str, Any]],
                   run_dir: Path) -> None:
        """Draw the worst test samples into the run directory, where a picture helps."""

    def predict(self, run: Any, source: Source) -> pd.DataFrame:
        """One row per sample: ``name``, ``prediction`` and ``proba_<class>``."""
        enc = run.preprocessor
        data = self.load_for_run(source, enc.state, labelled=False)
        proba, _ = self._predict(enc, data, np.arange(len(data.x)), run.model, run.plan)
        out = pd.DataFrame({"name": data.names, "prediction": np.asarray(
            enc.classes, dtype=object)[proba.argmax(axis=1)]})
        for i, c in enumerate(enc.classes):
            out[f"proba_{c}"] = proba[:, i]
        return out

    def evaluate(self, run: Any, source: Source) -> dict[str, Any]:
        """evaluation.json's layout for new labelled samples."""
        enc = run.preprocessor
        data = self.load_for_run(source, enc.state, labelled=True)
        data.classes = enc.classes
        return self._score(enc, data, np.arange(len(data.y)), run.model, run.plan, None)


def streaming(plan: Any) -> bool:
    """True when the plan reads its splits a batch at a time (``data.loader=stream``)."""
    return "data.loader" in plan and plan["data.loader"] == "stream"


class EncodeFetch:
    """Reads and encodes the samples at some positions: ``(x, y)`` tensors, y shaped for
    the plan's loss (``targets=False``: the class codes as they are). What a
    :class:`~nnrecipe.train.streams.PositionStream` calls, in DataLoader worker processes
    when there are any: a plain object (the encoder, the samples, three plan values), so it
    pickles, and it draws no random numbers (augmentation runs in the loop)."""

    def __init__(self, enc: SampleEncoder, data: Samples, plan: Plan, targets: bool = True):
        self.enc, self.data, self.targets = enc, data, targets
        self.task, self.loss = plan["task"], plan["loss.name"]
        self.n_outputs = plan["model.n_outputs"] if targets else 0

    def __call__(self, pos: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.enc.encode(self.data, pos)
        if not self.targets:
            return x, torch.as_tensor(y)
        return x, target_tensor(y, self.task, self.loss, self.n_outputs)


def _run_codes(data: Samples, classes: list[str], where: str) -> np.ndarray:
    unknown = sorted(set(data.classes) - set(classes))
    if unknown:
        raise DataError(f"{where} has classes the run never saw: {', '.join(unknown)}; its "
                        f"classes are {', '.join(classes)}")
    return np.asarray([classes.index(c) for c in data.classes], dtype=np.int64)[data.y]


def class_samples(modality: str, s: Any, target: str, info: dict, min_classes: int = 2
                  ) -> Samples:
    """Samples from a loader's ArraySet (images, volumes, sound), with their task."""
    if len(s.classes) < min_classes:
        raise DataError(f"found {len(s.classes)} class; a classifier needs at least 2")
    task = "binary" if len(s.classes) == 2 else "multiclass"
    why = f"{len(s.classes)} classes ({', '.join(map(str, s.classes[:10]))})"
    return Samples(modality, s.x, s.y, list(map(str, s.classes)), s.names, target, task,
                   why, info)


def save_figure(fig: Any, path: Path) -> None:
    """A matplotlib figure as a PNG, written atomically."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(path, buf.getvalue())


def figure(n: int) -> Any:  # a matplotlib Figure
    """A figure of ``n`` plots stacked, one per sample."""
    return mpl_figure.Figure(figsize=(9, 1.8 * n))


def _sample_keys(x: Any) -> list[bytes]:
    """Each sample's bytes (a file's digest when the samples are files not yet read):
    equal keys, identical samples."""
    if hasattr(x, "digests"):
        return x.digests()
    return [np.ascontiguousarray(v).tobytes() for v in x]
