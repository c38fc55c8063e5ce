"""Plan rules shared by the networks of non-tabular data, and how a modality's plan is
composed from the tabular rules and its own (each modality module lists its rules: see
``nnrecipe.modalities``).

The convnet rules: zero padding and 3×3 kernels, filters doubling with depth, pooling,
global average pooling, dropout 0.5 before the head, residual connections once the network
is deep (Simonyan & Zisserman 2014; He et al. 2016; Srivastava et al. 2014). Recurrent
networks: 2 layers, dropout 0.3, gradient clipping (Pascanu et al. 2013).
"""

from __future__ import annotations

import math

from .rules import Ctx, Decision, Rule, patience_rule
from .transfer import transfer_rules

__all__ = ["CONV_RULES", "RNN_RULES", "compose_rules", "const", "dropout_rule",
           "grad_clip_rule"]


def const(value, reason: str, rule: str) -> Rule:
    """A rule that always decides ``value``."""
    return lambda ctx: Decision(value, reason, rule)


def blocks_rule(ctx: Ctx) -> Decision:
    spatial = ctx.profile.inputs["spatial"]
    fits = max(1, int(math.log2(max(min(spatial), 2))) - 1)  # stop pooling at about 2-4 px
    want = 3 if ctx.n_train < 20_000 else 4
    n = min(fits, want)
    size = "×".join(map(str, spatial))
    return Decision(n, f"{n} conv blocks, each halving {size} by pooling (the input allows "
                    f"{fits}; {ctx.n_train} training samples support {want})",
                    "model.conv_depth")


def filters_rule(ctx: Ctx) -> Decision:
    f = 32 if ctx.n_train >= 2000 else 16
    return Decision(f, f"{f} filters in the first block, doubling with each block (fewer "
                    "filters early, more deep: Simonyan & Zisserman 2014)",
                    "model.filters_double")


def residual_rule(ctx: Ctx) -> Decision:
    deep = ctx["model.blocks"] >= 4
    return Decision(deep, "residual connections: the network is deep enough to need them"
                    if deep else "no residual connections: a shallow stack trains without "
                    "them", "model.residual")


def dropout_rule(ctx: Ctx) -> Decision:
    if ctx["model.arch"].startswith("efficientnet"):
        return Decision(0.2, "dropout 0.2 before the new head, EfficientNet-Lite0's own rate",
                        "model.dropout_packaged")
    if ctx["model.arch"] == "cnn":
        return Decision(0.5, "dropout 0.5 before the convnet's head (Srivastava et al. 2014)",
                        "model.dropout_cnn_head")
    if ctx["model.arch"] == "transformer":
        return Decision(0.1, "dropout 0.1 inside the transformer (the usual setting)",
                        "model.dropout_transformer")
    return Decision(0.3, "dropout 0.3 in recurrent networks, between layers (as in Zaremba "
                    "et al. 2014)",
                    "model.dropout_rnn")


def hidden_rule(ctx: Ctx) -> Decision:
    h = 64 if ctx.n_train >= 2000 else 32
    return Decision(h, f"{h} units per recurrent layer / transformer width for "
                    f"{ctx.n_train} training samples", "model.rnn_width")


def activation_rule(ctx: Ctx) -> Decision:
    if ctx["model.arch"].startswith("efficientnet"):
        return Decision("relu", "the packaged network's ReLU6 (ReLU capped at 6), fixed",
                        "model.packaged")
    if ctx["model.arch"] == "cnn":
        return Decision("relu", "ReLU after every convolution (ReLU first: Nair & Hinton "
                        "2010)", "model.relu_first")
    return Decision("tanh", f"{ctx['model.arch']} cells use tanh inside with sigmoid gates",
                    "model.rnn_cells")


def grad_clip_rule(ctx: Ctx) -> Decision:
    if ctx["model.arch"] in ("gru", "lstm"):
        return Decision("global_norm", "RNNs: clip the global gradient norm against "
                        "exploding gradients (Pascanu et al. 2013)", "train.grad_clip_rnn")
    return Decision("none", "no sign of exploding gradients yet", "train.grad_clip")


#: a convnet's shape (images, volumes, sound, labelled sequences)
CONV_RULES: tuple[tuple[str, Rule, bool], ...] = (
    ("model.blocks", blocks_rule, False),
    ("model.filters", filters_rule, False),
    ("model.kernel", const(3, "3-wide kernels with zero padding: two stacked see 5 with "
                           "fewer weights (Simonyan & Zisserman 2014)", "model.kernel3"), False),
    ("model.residual", residual_rule, False),
    ("model.separable", const(False, "full convolutions (depthwise-separable ones save "
                              "weights for larger networks)", "model.separable"), False),
)

#: a recurrent network's size (text, series)
RNN_RULES: tuple[tuple[str, Rule, bool], ...] = (
    ("model.hidden", hidden_rule, False),
    ("model.layers", const(2, "2 stacked layers (2-3 for RNNs is the usual depth)",
                           "model.rnn_depth"), False),
)


def compose_rules(table_rules: tuple, own: tuple, table_only: tuple[str, ...],
                  replaces: dict[str, Rule], pretrained: dict | None
                  ) -> list[tuple[str, Rule, bool]]:
    """The rules of a non-tabular plan: the tabular rules for task, loss, optimisation and
    training, without ``table_only`` (the network's keys), with ``replaces`` and the shared
    activation and clipping rules in their place, and the modality's ``own`` rules right
    after the seed (the data's shape decides the architecture before anything else). With
    a ``pretrained`` network (profile.inputs["pretrained"]): its architecture and the
    transfer rules (plan/transfer.py). Patience is counted in epochs (the tables' rule in
    updates was measured on tables only)."""
    own = list(own)
    replace = {"model.activation": activation_rule, "train.grad_clip.kind": grad_clip_rule,
               "train.early_stopping.patience": patience_rule, **replaces}
    if pretrained is not None:
        extra, same = transfer_rules(pretrained)
        replace.update(same)
        own = [(k, same.get(k, r), d) for k, r, d in own] + extra
    out: list[tuple[str, Rule, bool]] = []
    for key, rule, derived in table_rules:
        if key not in table_only:
            out.append((key, replace.get(key, rule), derived))
        if key == "seed":
            out += own
    return out
