"""What a modality is: the one place that knows a kind of data.

The pipeline (``nnrecipe.pipeline``) is the same for every kind of data:

    prepare (load → profile → split → plan → fit the encoder → build)
      → train under the doctor → score on the test split → save the run

and it asks the :class:`Modality` whenever the kind of data matters: how to recognise a
source, read it, split it, encode it for the network, which plan rules apply, how to score
and show the worst test samples, and how to read new samples for a finished run. A new kind
of data is one new module with a subclass, plus one line in ``modalities/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ..data.profile import DataProfile
from ..errors import DataError
from ..lazy import lazy
from ..plan.rules import Rule
from ..plan.schema import Plan
from ..train.streams import Stream
from ..tune.search import Dim

model_selection = lazy("sklearn.model_selection")

__all__ = ["Inputs", "Modality", "Prepared", "fold_positions", "n_trainable", "seeded_build",
           "streamed_inputs"]

Source = Any  # a path (table, folder, .npz) or a DataFrame
ValMetrics = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]


@dataclass
class Inputs:
    """Tensors for training and validation, shaped for the plan's loss, and the validation
    metric in the data's own units.

    With ``data.loader=stream`` the splits are :class:`~nnrecipe.train.streams.Stream` s
    (``train_stream``, ``val_stream``), which training and validation read a batch at a
    time; the tensors are then a seeded sample of each (:func:`streamed_inputs`), what the
    doctor's pre-flight, the range test and the baseline loss look at."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    val_metrics: ValMetrics
    train_stream: Stream | None = None
    val_stream: Stream | None = None

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training rows in memory (a sample of them when streamed)."""
        return self.x_train, self.y_train

    @property
    def val(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_val, self.y_val

    @property
    def train_data(self) -> tuple[torch.Tensor, torch.Tensor] | Stream:
        """What training reads: the stream when there is one, else the tensors."""
        return self.train_stream if self.train_stream is not None else self.train

    @property
    def val_data(self) -> tuple[torch.Tensor, torch.Tensor] | Stream:
        return self.val_stream if self.val_stream is not None else self.val


#: rows of each streamed split held in memory for the doctor: at most this many, and at most
#: DOCTOR_BYTES of inputs (4,096 rows of a 50-column table, 1,365 colour images of 64 px,
#: 111 of 224 px): the memory a streamed run holds stops growing with the data set there
DOCTOR_ROWS = 4096
DOCTOR_BYTES = 64 * 2**20


def streamed_inputs(train: Stream, val: Stream, val_metrics: ValMetrics, seed: int) -> Inputs:
    """Inputs that stream both splits, with a seeded sample of each in memory: at most
    DOCTOR_ROWS rows and DOCTOR_BYTES of inputs (at least 64 rows)."""
    x1, _ = train.sample(1, seed)
    per_row = max(1, x1.element_size() * x1[0].numel())
    n = max(64, min(DOCTOR_ROWS, DOCTOR_BYTES // per_row))
    x_tr, y_tr = train.sample(n, seed)
    x_va, y_va = val.sample(n, seed + 1)
    return Inputs(x_tr, y_tr, x_va, y_va, val_metrics, train_stream=train, val_stream=val)


@dataclass
class Prepared:
    """Everything before training, for any kind of data."""

    modality: Modality
    plan: Plan
    profile: DataProfile
    preprocessor: Any  # the encoder fitted on the training split (preprocess.json)
    model: torch.nn.Module
    splits: Any  # the modality's splits: train / val / test, with ``how`` and ``sizes()``
    name: str  # the data's name (for the run directory)
    overrides: dict[str, Any]  # the user's validated plan settings
    data: Any = None  # the loaded data the splits index (a table or the samples)
    augment: Callable | None = None  # applied to training batches only
    pretrained: Any = None  # transfer learning: models.pretrained.Pretrained
    order: Callable | None = None  # each epoch's order of the training rows

    @property
    def n_train(self) -> int:
        return len(self.splits.train)

    def with_(self, **changes: Any) -> Prepared:
        return replace(self, **changes)


class Modality(ABC):
    """One kind of data. Subclasses set ``name`` and implement the methods below; the
    defaults here are shared by every modality."""

    name: ClassVar[str]
    unit: ClassVar[str] = "samples"  # what one example is called in the summary
    fallback: ClassVar[bool] = False  # asked last by ``--modality auto`` (tables)
    #: plan keys the fitted encoder depends on: another plan with the same values reuses it
    encoder_keys: ClassVar[tuple[str, ...]] = ()
    #: the plan keys of this modality's own rules, for the registry's key check
    own_rules: ClassVar[tuple[tuple[str, Rule, bool], ...]] = ()

    # ---- recognising and reading a source -------------------------------------------------
    def detect(self, source: Source, *, horizon: int | None, window: int | None) -> bool:
        """True when ``source`` is this kind of data (``--modality auto``)."""
        return False

    @abstractmethod
    def prepare(self, source: Source, target: str | None, *, task: str,
                given: dict[str, Any], test: Source | None, valid: Source | None,
                pretrained: Any) -> Prepared:
        ...

    @abstractmethod
    def replan(self, prep: Prepared, given: dict[str, Any]) -> Prepared:
        """``prep`` with another plan: same data, profile and splits."""
        ...

    @abstractmethod
    def refold(self, prep: Prepared, held: np.ndarray) -> Prepared:
        """``prep`` re-split with the samples at positions ``held`` as the test split
        (one fold of cross-validation)."""
        ...

    def fold_labels(self, prep: Prepared) -> np.ndarray | None:
        """What cross-validation stratifies by: one label per sample (None: no classes to
        stratify by, the folds are shuffled)."""
        return None

    def folds(self, prep: Prepared, k: int, seed: int) -> list[np.ndarray]:
        """Positions of each fold's held-out samples."""
        labels = self.fold_labels(prep)
        n = len(labels) if labels is not None else len(prep.data)
        return fold_positions(n, labels, k, seed)

    # ---- plan and network -----------------------------------------------------------------
    @abstractmethod
    def plan_rules(self, table_rules: tuple, pretrained: dict | None
                   ) -> list[tuple[str, Rule, bool]]:
        """The rules of this modality's plan, in order (plan/rules.make_plan runs them)."""
        ...

    @abstractmethod
    def build(self, plan: Plan, encoder: Any, pretrained: Any = None) -> torch.nn.Module:
        ...

    def search_space(self, plan: Plan) -> list[Dim]:
        """The network's size dimensions ``nnrecipe tune`` searches (the learning rate,
        dropout, batch size and optimizer are searched for every kind of data)."""
        return []

    # ---- training, scoring, the doctor ----------------------------------------------------
    @abstractmethod
    def inputs(self, prep: Prepared) -> Inputs:
        ...

    @abstractmethod
    def score(self, prep: Prepared, model: torch.nn.Module, plan: Plan,
              run_dir: Path | None) -> dict[str, Any]:
        """evaluation.json: test metrics beside the dumb baseline's."""
        ...

    def numeric_columns(self, prep: Prepared) -> list[str] | None:
        """Names of the numeric input columns the data checks look at (tables); None when
        the inputs are not columns."""
        return None

    def val_ids(self, prep: Prepared) -> list[Any]:
        """A name for each validation sample (label issues point at them)."""
        return list(getattr(prep.splits, "val_ids", []))

    # ---- a finished run -------------------------------------------------------------------
    @abstractmethod
    def encoder_from_dict(self, state: dict[str, Any]) -> Any:
        ...

    @abstractmethod
    def predict(self, run: Any, source: Source) -> pd.DataFrame:
        ...

    @abstractmethod
    def evaluate(self, run: Any, source: Source) -> dict[str, Any]:
        ...

    # ---- words ----------------------------------------------------------------------------
    def describe_inputs(self, profile: Any) -> str:
        """What the network reads, in words (the summary)."""
        return f"{self.name} inputs"


def fold_positions(n: int, labels: np.ndarray | None, folds: int, seed: int
                   ) -> list[np.ndarray]:
    """Positions of each fold's held-out samples: stratified by class when ``labels`` are
    given, shuffled otherwise."""
    if folds < 2:
        raise DataError(f"--folds must be at least 2, got {folds}")
    if folds > n // 5:
        raise DataError(f"--folds {folds} is too many for {n} rows: each fold needs at "
                        f"least 5 held-out rows (at most {max(2, n // 5)} folds)")
    if labels is not None:
        smallest = pd.Series(labels).value_counts().min()
        if smallest < folds:
            raise DataError(f"a class has only {smallest} rows, fewer than --folds {folds}; "
                            "use fewer folds")
        splitter: Any = model_selection.StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = model_selection.KFold(folds, shuffle=True, random_state=seed)
    y = np.zeros(n) if labels is None else labels
    return [test for _, test in splitter.split(np.zeros(n), y)]


def n_trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def seeded_build(build: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """Build a network with its initial weights drawn from ``seed``, leaving the caller's
    global torch random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


