"""What the convnet modalities share (images, volumes, sound, labelled sequences): transfer
learning from a pretrained convnet, with the similarity of the new data measured through
its blocks."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..models.build import build_network
from ..models.pretrained import PROBE, bn_divergence, feature_probe, load_blocks, load_pretrained
from ..plan.schema import Plan
from ..tune.search import Dim, conv_dims
from .base import Prepared, seeded_build
from .samples import ClassModality, Samples

__all__ = ["ConvModality"]


class ConvModality(ClassModality):
    """A classifier read by a convnet, which may start from a pretrained one."""

    def search_space(self, plan: Plan) -> list[Dim]:
        return [] if "transfer.strategy" in plan else conv_dims(plan)  # a pretrained shape

    def adopt_pretrained(self, data: Samples, source: Any) -> Any:
        pre = load_pretrained(source, self.name)
        if pre.modality != self.name:
            raise DataError(f"--pretrained {source} was trained on {pre.modality} data; this "
                            f"is {self.name} data: give a network trained on {self.name} data")
        return pre

    def measure_similarity(self, prep: Prepared) -> dict[str, Any]:
        """How unlike the pretrained network's data these training samples are, seen
        through its blocks (models/pretrained.bn_divergence; inputs normalised as the
        source run normalised its own, so a shift in the raw inputs counts too), and
        whether its features carry the new classes (models/pretrained.feature_probe)."""
        pre, plan, enc = prep.pretrained, prep.plan, prep.preprocessor
        have = pre.in_channels
        if have != enc.input_shape[0]:
            raise DataError(f"--pretrained {pre.source} reads inputs with {have} channels; "
                            f"this data has {enc.input_shape[0]}: give a network trained on "
                            "the same kind of input (greyscale or colour)")
        if pre.normalisation and len(pre.normalisation["mean"]) == len(enc.state["mean"]):
            enc.state.update(pre.normalisation,
                             normalisation=f"the pretrained run's ({pre.source})")
        model = seeded_build(lambda: build_network(plan, enc), plan["seed"])
        load_blocks(model, pre.state, plan["model.blocks"])
        train = prep.splits.train
        rng = np.random.default_rng(plan["seed"])
        probe = np.sort(rng.choice(train, size=min(PROBE, len(train)), replace=False))
        x, y = enc.encode(prep.data, probe)
        n = min(plan["model.blocks"], pre.arch["model.blocks"])
        return {"divergence": bn_divergence(model, x, n),
                "probe": feature_probe(model, x, y, n, plan["seed"])}
