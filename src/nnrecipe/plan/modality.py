"""Rules for non-tabular data: the notes map the data type to the architecture.

images → 2-D convnet; volumes / video → 3-D convnet; sound → 1-D convnet over log-mel
frames; text → recurrent network over word embeddings (a transformer when there is a lot of
text); time series → recurrent network over a window of past values. The convnet rules:
zero padding and 3×3 kernels, filters doubling with depth, pooling, global average pooling,
dropout 0.5 before the head, residual connections once the network is deep. RNNs: 2 layers,
dropout 0.3, gradient clipping.

Every rule reads the profile's ``modality`` and ``inputs`` (shape, lengths, vocabulary).
"""

from __future__ import annotations

import math

from .rules import Ctx, Decision, Rule

__all__ = ["MODALITY_RULES", "ARRAY_MODALITIES", "rules_for"]

ARRAY_MODALITIES = ("image", "volume", "audio", "text", "series", "sequence")
CONV_MODALITIES = ("image", "volume", "audio", "sequence")
MAX_IMAGE_SIDE = 64  # small networks on a CPU: larger images cost time, rarely accuracy here
LARGE_TEXT = 20_000  # texts from which a transformer beats a recurrent network (the notes)


def _inputs(ctx: Ctx) -> dict:
    return ctx.profile.inputs


def modality_rule(ctx: Ctx) -> Decision:
    why = {"image": "images: one class per folder or an .npz of (N, H, W[, C])",
           "volume": "volumes: an .npz of (N, D, H, W[, C])",
           "audio": "sound: WAV files, one folder per class",
           "text": f"text: column '{_inputs(ctx).get('text_column')}' holds free text",
           "series": f"time series: ordered by '{_inputs(ctx).get('time_column')}'",
           "sequence": f"labelled sequences: one per row, {_inputs(ctx).get('length')} steps "
                       "in the numeric columns"}
    return Decision(ctx.profile.modality, why[ctx.profile.modality], "data.modality")


def arch_rule(ctx: Ctx) -> Decision:
    m = ctx.profile.modality
    if m == "image":
        return Decision("cnn", "images → a 2-D convnet: local patterns, shared weights, "
                        "translation tolerance (the notes)", "model.arch_by_modality")
    if m == "volume":
        return Decision("cnn", "volumes → a 3-D convnet (the notes: 3-D convnets for video "
                        "and volumes)", "model.arch_by_modality")
    if m == "audio":
        return Decision("cnn", "sound → a 1-D convnet over log-mel frames (mel bands as "
                        "channels)", "model.arch_by_modality")
    if m == "sequence":
        return Decision("cnn", "labelled sequences → a 1-D convnet: it finds a shape wherever "
                        "it occurs in the sequence and reads every step at once (the notes: "
                        "RNNs or 1-D convnets for time series)", "model.arch_by_modality")
    if m == "text" and ctx.n_train >= LARGE_TEXT:
        return Decision("transformer", f"{ctx.n_train} texts: enough for a small transformer "
                        "encoder", "model.arch_by_modality")
    if m == "text":
        return Decision("gru", f"{ctx.n_train} texts (< {LARGE_TEXT:,}): a GRU over word "
                        "embeddings; transformers need more data", "model.arch_by_modality")
    return Decision("gru", "time series → a GRU over the window of past values (the notes: "
                    "RNNs or 1-D convnets)", "model.arch_by_modality")


def image_size_rule(ctx: Ctx) -> Decision:
    side = _inputs(ctx)["side"]
    why = (f"the median image side, capped at {MAX_IMAGE_SIDE} (small networks on a CPU)"
           if _inputs(ctx).get("capped") else "the images' common side")
    return Decision(side, f"{side}×{side} pixels: {why}", "data.image_size")


def blocks_rule(ctx: Ctx) -> Decision:
    spatial = _inputs(ctx)["spatial"]
    fits = max(1, int(math.log2(max(min(spatial), 2))) - 1)  # stop pooling at about 2-4 px
    want = 3 if ctx.n_train < 20_000 else 4
    n = min(fits, want)
    size = "×".join(map(str, spatial))
    return Decision(n, f"{n} conv blocks, each halving {size} by pooling (the input allows "
                    f"{fits}; {ctx.n_train} training samples support {want})",
                    "model.conv_depth")


def filters_rule(ctx: Ctx) -> Decision:
    f = 32 if ctx.n_train >= 2000 else 16
    return Decision(f, f"{f} filters in the first block, doubling with each block (the "
                    "notes: fewer filters early, more deep)", "model.filters_double")


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
        return Decision(0.5, "dropout 0.5 before the convnet's head (the notes)",
                        "model.dropout_cnn_head")
    if ctx["model.arch"] == "transformer":
        return Decision(0.1, "dropout 0.1 inside the transformer (the usual setting)",
                        "model.dropout_transformer")
    return Decision(0.3, "dropout 0.3 in recurrent networks (the notes)", "model.dropout_rnn")


def hidden_rule(ctx: Ctx) -> Decision:
    h = 64 if ctx.n_train >= 2000 else 32
    return Decision(h, f"{h} units per recurrent layer / transformer width for "
                    f"{ctx.n_train} training samples", "model.rnn_width")


def layers_rule(ctx: Ctx) -> Decision:
    return Decision(2, "2 stacked layers (the notes: 2-3 for RNNs)", "model.rnn_depth")


def bidirectional_rule(ctx: Ctx) -> Decision:
    if ctx.profile.modality == "text":
        return Decision(True, "read the text both ways: a word's meaning depends on what "
                        "follows too", "model.bidirectional")
    return Decision(False, "a forecaster reads the past only in order", "model.bidirectional")


def embedding_rule(ctx: Ctx) -> Decision:
    v = _inputs(ctx).get("vocab_size", 0)
    d = 32 if v < 5000 else 64
    return Decision(d, f"{d}-dimensional word embeddings for a vocabulary of {v:,} words",
                    "model.embedding_dim")


def augment_rule(ctx: Ctx) -> Decision:
    m = ctx.profile.modality
    if m == "image":
        return Decision(True, "small shifts, rotations, zooms and shears make more training "
                        "images; off during the pre-flight overfit check", "augment.images")
    if m == "volume":
        return Decision(True, "small 3-D shifts, in-plane rotations and zooms make more "
                        "training volumes; off during the pre-flight overfit check",
                        "augment.volumes")
    return Decision(False, "augmentation off: the values themselves carry the signal; turn "
                    "on with augment.enabled=true (jitter, scaling)", "augment.off")


def grad_clip_rule(ctx: Ctx) -> Decision:
    if ctx["model.arch"] in ("gru", "lstm"):
        return Decision("global_norm", "RNNs: clip the global gradient norm against "
                        "exploding gradients (the notes)", "train.grad_clip_rnn")
    return Decision("none", "no sign of exploding gradients yet", "train.grad_clip")


def window_rule(ctx: Ctx) -> Decision:
    horizon = ctx["series.horizon"]
    w = max(8, 4 * horizon)
    return Decision(w, f"the forecaster sees the last {w} steps (at least 8, 4× the "
                    "horizon); set series.window to a full season when there is one",
                    "series.window")


def max_len_rule(ctx: Ctx) -> Decision:
    n = _inputs(ctx)["max_len"]
    return Decision(n, f"{n} tokens: the 95th percentile of the texts' lengths (longer texts "
                    "are cut)", "text.max_len")


def _const(value, reason: str, rule: str) -> Rule:
    return lambda ctx: Decision(value, reason, rule)


# (key, rule, derived?, modalities it applies to) — inserted before model.activation
MODALITY_RULES: tuple[tuple[str, Rule, bool, tuple[str, ...]], ...] = (
    ("data.modality", modality_rule, True, ARRAY_MODALITIES),
    ("data.image_size", image_size_rule, False, ("image",)),
    ("series.horizon", _const(1, "forecast one step ahead (set --horizon)", "series.horizon"),
     False, ("series",)),
    ("series.window", window_rule, False, ("series",)),
    ("text.max_len", max_len_rule, False, ("text",)),
    ("text.min_freq", _const(2, "a word seen once gets the 'unknown' id: it cannot be "
                             "learned from one example", "text.min_freq"), False, ("text",)),
    ("text.batching", _const("by_length", "each batch holds texts of similar length, in "
                             "random batch order: little padding to read or mask",
                             "text.bucket_by_length"), True, ("text",)),
    ("audio.n_mels", _const(40, "40 log-mel bands: the usual resolution for speech",
                            "audio.log_mel"), False, ("audio",)),
    ("model.arch", arch_rule, False, ARRAY_MODALITIES),
    ("model.blocks", blocks_rule, False, CONV_MODALITIES),
    ("model.filters", filters_rule, False, CONV_MODALITIES),
    ("model.kernel", _const(3, "3-wide kernels with zero padding: two stacked see 5 with "
                            "fewer weights (the notes)", "model.kernel3"), False,
     CONV_MODALITIES),
    ("model.residual", residual_rule, False, CONV_MODALITIES),
    ("model.separable", _const(False, "full convolutions (depthwise-separable ones save "
                               "weights for larger networks)", "model.separable"), False,
     CONV_MODALITIES),
    ("model.embedding_dim", embedding_rule, False, ("text",)),
    ("model.hidden", hidden_rule, False, ("text", "series")),
    ("model.layers", layers_rule, False, ("text", "series")),
    ("model.bidirectional", bidirectional_rule, False, ("text", "series")),
    ("model.heads", _const(4, "4 attention heads (transformer only)", "model.heads"), False,
     ("text",)),
    ("model.dropout", dropout_rule, False, ARRAY_MODALITIES),
    ("augment.enabled", augment_rule, False, ("image", "volume", "audio", "series", "sequence")),
    ("augment.shift", _const(0.1, "shift up to 10% of the side", "augment.images"), False,
     ("image", "volume")),
    ("augment.rotation", _const(10.0, "rotate up to 10°", "augment.images"), False,
     ("image", "volume")),
    ("augment.zoom", _const(0.1, "zoom by up to 10%", "augment.images"), False,
     ("image", "volume")),
    ("augment.shear", _const(5.0, "shear up to 5°", "augment.images"), False, ("image",)),
    ("augment.flip", _const(0.0, "no flips: they change the meaning of digits and text; "
                            "0.5 suits natural photos", "augment.images"), False,
     ("image", "volume")),
    ("augment.noise", _const(0.0, "no added noise", "augment.images"), False,
     ("image", "volume")),
    ("augment.jitter", _const(0.03, "noise of 3% of each feature's spread when on",
                              "augment.series"), False, ("audio", "series", "sequence")),
    ("augment.scaling", _const(0.1, "loudness scaling by N(1, 0.1) when on",
                               "augment.audio"), False, ("audio", "sequence")),
)

# tabular keys that non-tabular plans don't have (their networks choose these themselves)
TABLE_ONLY = ("data.scale", "data.drop", "data.impute", "data.n_inputs", "model.hidden_layers",
              "model.width", "model.init", "model.init_scale", "model.bias_init",
              "model.batchnorm", "model.dropout")


def activation_rule(ctx: Ctx) -> Decision:
    if ctx["model.arch"].startswith("efficientnet"):
        return Decision("relu", "the packaged network's ReLU6 (ReLU capped at 6), fixed",
                        "model.packaged")
    if ctx["model.arch"] == "cnn":
        return Decision("relu", "ReLU after every convolution (the notes: ReLU first)",
                        "model.relu_first")
    return Decision("tanh", f"{ctx['model.arch']} cells use tanh inside with sigmoid gates",
                    "model.rnn_cells")


def rules_for(modality: str, table_rules: tuple, pretrained: dict | None = None
              ) -> list[tuple[str, Rule, bool]]:
    """The rules of a ``modality`` plan: the tabular rules for task, loss, optimisation and
    training, without the tabular network's keys, plus the modality's own; with a
    ``pretrained`` network (profile.inputs["pretrained"]), its architecture and the transfer
    rules (plan/transfer.py)."""
    if modality == "table":
        return list(table_rules)
    own = [(k, r, d) for k, r, d, mods in MODALITY_RULES if modality in mods]
    replace = {"model.activation": activation_rule, "train.grad_clip.kind": grad_clip_rule}
    if pretrained is not None:
        from .transfer import transfer_rules

        extra, same = transfer_rules(pretrained)
        replace.update(same)
        own = [(k, same.get(k, r), d) for k, r, d in own] + extra
    if modality == "series":
        replace.update({"model.n_outputs": horizon_outputs_rule,
                        "model.output_activation": _const(
                            "linear", "the series is standardised: a linear output reaches "
                            "any scaled value", "output.linear")})
    out: list[tuple[str, Rule, bool]] = []
    for key, rule, derived in table_rules:
        if key not in TABLE_ONLY:
            out.append((key, replace.get(key, rule), derived))
        if key == "seed":  # the data's shape decides the architecture before anything else
            out += own
    return out


def horizon_outputs_rule(ctx: Ctx) -> Decision:
    h = ctx["series.horizon"]
    return Decision(h, f"one output per forecast step ({h})", "output.horizon")
