"""How big a convnet is for its data: the input values its training samples hold, its
parameter count for a given number of filters, and the limit between them that the
plan's parameter count and the doctor's ``too_many_parameters`` read."""

from __future__ import annotations

import math

__all__ = ["MAX_PARAMETERS_PER_VALUE", "WARN_PARAMETERS_PER_VALUE", "conv_parameters",
           "input_values", "values_per_sample"]

#: A convnet's trainable parameters per input value of its training samples above which it
#: is bigger than its data by an order of magnitude. Karpathy (char-rnn's advice): the
#: number of parameters and the size of the data, counted in characters, should be of the
#: same order of magnitude; a convnet reuses its weights at every position as an RNN does
#: at every character, so its data is counted in values (channels × positions). Over the
#: limit, the plan's parameter count says so and the doctor notes it; over twice it, the
#: doctor warns. The plan does not shrink its filters to fit: 8 filters instead of 16 on 42
#: training sequences learned too slowly for early stopping (chance accuracy, against
#: 1.000 for 16 filters at 14.6 parameters per value).
MAX_PARAMETERS_PER_VALUE = 10.0
WARN_PARAMETERS_PER_VALUE = 2 * MAX_PARAMETERS_PER_VALUE


def input_values(inputs: dict, image_size: int | None = None) -> int:
    """The values one sample gives the network: channels × positions of its grid
    (``inputs`` is the profile's: ``spatial`` or ``side``, ``channels``), the sides scaled
    down to ``image_size`` when that caps the longer one."""
    spatial = [int(s) for s in inputs.get("spatial") or [inputs["side"]] * 2]
    if image_size and max(spatial) > image_size:
        spatial = [max(1, round(s * image_size / max(spatial))) for s in spatial]
    return int(inputs.get("channels", 1)) * math.prod(spatial)


def conv_parameters(*, channels: int, dims: int, blocks: int, filters: int, n_outputs: int,
                    kernel: int = 3) -> int:
    """Trainable parameters of ``models.cnn.build_cnn``'s network without residual or
    separable convolutions: per block two bias-free convolutions and two BatchNorm layers
    (a scale and a shift per channel), then the linear head."""
    total, c_in = 0, channels
    for i in range(blocks):
        c = filters * 2 ** i
        total += (c_in + c) * c * kernel ** dims + 4 * c
        c_in = c
    return total + c_in * n_outputs + n_outputs


def values_per_sample(plan, inputs: dict) -> int | None:
    """:func:`input_values` for a convnet trained from scratch (``model.arch`` "cnn", no
    pretrained network in ``inputs``, the profile's); None for any other network: dense
    layers are judged per row, and a pretrained network's weights are not fitted to this
    data alone."""
    if "model.arch" not in plan or plan["model.arch"] != "cnn" or inputs.get("pretrained"):
        return None
    if not (inputs.get("spatial") or inputs.get("side")):
        return None
    return input_values(inputs, plan["data.image_size"] if "data.image_size" in plan else None)
