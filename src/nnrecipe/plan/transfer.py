"""Rules for transfer learning (``--pretrained``): the four-case table of the Stanford
CS231n course ("Transfer Learning": new data small or large, similar or different), applied
to a pretrained convnet (models/pretrained.py does the work).

They read ``profile.inputs["pretrained"]``: the source, its architecture, the measured
``divergence`` of the new data from the data the network learned on, and the ``probe``:
whether its features separate the new classes as well as the raw inputs do. Data counts as
similar when both say so: inputs that look alike (low divergence) can still need features
the network never learned, as digits 5-9 do from a network that only ever told 0-4 apart."""

from __future__ import annotations

import math
from typing import Any

from .rules import Ctx, Decision, Rule

__all__ = ["SIMILAR_BELOW", "SMALL_BELOW", "TEXT_SIMILAR_BELOW", "text_transfer_rules",
           "transfer_rules"]

SMALL_BELOW = 1000  # training samples: below this the table's "small data" rows apply
# Mean BatchNorm KL divergence at or below which the new data counts as similar. Measured
# on a convnet trained on digits 0-4: digits 5-9 give about 0.1-0.3, while the same digits
# inverted, or noise, give 2 and more (tests/models/test_pretrained.py).
SIMILAR_BELOW = 0.75
HEAD_EPOCHS = 3  # fine_tune: epochs of the new head alone before the blocks unfreeze
BACKBONE_LR = 0.1  # fine_tune: the pretrained blocks learn 10× slower than the head

_TABLE = {
    (True, True): ("freeze", "small and similar: keep every pretrained block frozen and "
                   "train a new head on their features"),
    (True, False): ("early", "small and different: keep only the early blocks (generic "
                    "edges and blobs), frozen; re-learn the later ones and a new head"),
    (False, True): ("fine_tune", "large and similar: fine-tune the whole network from the "
                    "pretrained weights, the new head first"),
    (False, False): ("retrain", "large and different: train the whole network, starting "
                     "from the pretrained weights"),
}


def _pre(ctx: Ctx) -> dict[str, Any]:
    return ctx.profile.inputs["pretrained"]


def source_rule(ctx: Ctx) -> Decision:
    p = _pre(ctx)
    what = {"run": "a finished nnrecipe run", "state_dict": "a convnet state dict",
            "package": "ImageNet weights shipped in a package"}[p["kind"]]
    return Decision(p["source"], f"{what}: {p['blocks']} conv blocks trained on "
                    f"{p['modality']} data", "transfer.source")


def divergence_rule(ctx: Ctx) -> Decision:
    d = _pre(ctx).get("divergence")
    if d is None:
        return Decision(None, "not measured yet", "transfer.similarity")
    verdict = ("the inputs look like the ones it learned from" if d <= SIMILAR_BELOW
               else "the inputs differ from the ones it learned from")
    return Decision(round(d, 4), f"the training samples' statistics inside the pretrained "
                    f"blocks differ from the ones it learned by {d:.3g} (mean BatchNorm KL; "
                    f"≤ {SIMILAR_BELOW} counts as alike): {verdict}", "transfer.similarity")


def probe_rule(ctx: Ctx) -> Decision:
    probe = _pre(ctx).get("probe")
    if probe is None:
        return Decision(None, "not measured (fewer than 2 samples of some class, or not yet)",
                        "transfer.feature_probe")
    gain = probe["features"] - probe["raw"]
    verdict = ("the features carry these classes" if gain >= 0 else "the raw inputs separate "
               "these classes better than the features: they were learned for other ones")
    return Decision(round(gain, 4), f"a logistic regression on the pretrained blocks' pooled "
                    f"features scores {probe['features']:.3f} (cross-validated), on the raw "
                    f"inputs {probe['raw']:.3f}: {verdict}", "transfer.feature_probe")


def _table_decision(ctx: Ctx, table: dict[tuple[bool, bool], tuple[str, str]],
                    similar: bool, noun: str, divergence: str, probe: str) -> Decision:
    """The CS231n transfer-learning table's cell for the data's size and ``similar``, with
    the measured divergence and probe gain (``divergence``, ``probe``: how to word them,
    each with one ``{}`` for the value) in the reason."""
    d, gain = ctx["transfer.divergence"], ctx["transfer.feature_gain"]
    small = ctx.n_train < SMALL_BELOW
    value, why = table[(small, similar)]
    size = f"{ctx.n_train} training {noun} ({'<' if small else '≥'} {SMALL_BELOW:,})"
    sim = "similarity not measured" if d is None else divergence.format(d)
    if gain is not None:
        sim += ", " + probe.format(gain)
    return Decision(value, f"{size}, {sim}: {why} (the CS231n transfer-learning table)",
                    "transfer.table")


def strategy_rule(ctx: Ctx) -> Decision:
    d, gain = ctx["transfer.divergence"], ctx["transfer.feature_gain"]
    similar = (d is None or d <= SIMILAR_BELOW) and (gain is None or gain >= 0)
    return _table_decision(ctx, _TABLE, similar, "samples", "divergence {:.3g}",
                           "feature probe {:+.3f} against the raw inputs")


def keep_rule(ctx: Ctx) -> Decision:
    have = min(_pre(ctx)["blocks"], ctx["model.blocks"])
    if ctx["transfer.strategy"] == "early":
        k = max(1, have // 2)
        return Decision(k, f"the first {k} of {have} pretrained blocks: early layers hold "
                        "features that carry over to different data", "transfer.keep_early")
    return Decision(have, f"all {have} pretrained blocks", "transfer.keep_all")


def backbone_lr_rule(ctx: Ctx) -> Decision:
    if ctx["transfer.strategy"] == "fine_tune":
        return Decision(BACKBONE_LR, f"discriminative learning rates: the pretrained blocks "
                        f"learn at {BACKBONE_LR}× the head's rate, so fine-tuning adjusts "
                        "their features instead of overwriting them", "transfer.discriminative")
    return Decision(1.0, "one learning rate: frozen blocks do not learn, and retraining "
                    "treats the pretrained weights as a starting point only",
                    "transfer.discriminative")


def head_epochs_rule(ctx: Ctx) -> Decision:
    if ctx["transfer.strategy"] == "fine_tune":
        return Decision(HEAD_EPOCHS, f"staged unfreezing: {HEAD_EPOCHS} epochs of the new "
                        "head alone (its random start would send large gradients into the "
                        "pretrained blocks), then every block", "transfer.staged_unfreezing")
    return Decision(0, "no staged unfreezing: frozen blocks stay frozen; retraining starts "
                    "with everything learning", "transfer.staged_unfreezing")


def transfer_rules(pretrained: dict[str, Any]) -> tuple[list, dict[str, Rule]]:
    """(the transfer rules, in order; replacements for the architecture rules, which must
    build the pretrained network's shape for its weights to fit)."""
    rules = [("transfer.source", source_rule, True),
             ("transfer.divergence", divergence_rule, True),
             ("transfer.feature_gain", probe_rule, True),
             ("transfer.strategy", strategy_rule, False),
             ("transfer.keep_blocks", keep_rule, False),
             ("transfer.backbone_lr", backbone_lr_rule, False),
             ("transfer.head_epochs", head_epochs_rule, False)]
    same: dict[str, Rule] = {}
    for key, value in pretrained["arch"].items():
        why = ("the pretrained network's input size: its features were learned at this scale"
               if key == "data.image_size" else
               f"the pretrained network's, so its weights fit ({pretrained['source']})")
        same[key] = _fixed(value, why)
    return rules, same


def _fixed(value: Any, reason: str) -> Rule:
    return lambda ctx: Decision(value, reason, "transfer.same_arch")


# --- text: a sentence encoder shipped in a package (models/text_encoder.py) ----------------
# The same table, with the similarity measured on words. A transformer keeps no statistics of
# the data it learned from (LayerNorm normalises each token by itself), so there is no
# BatchNorm divergence to read; what it does keep is its word-piece vocabulary. The share of
# the new texts' words that the vocabulary does not hold whole (cut into pieces, or unknown)
# is Rust et al. 2021's "proportion of continued words", which they found to track how well a
# pretrained model serves a language; vocabulary overlap is also how Gururangan et al. 2020
# measure how far a domain is from the pretraining data. With all-MiniLM-L6-v2's tokenizer,
# English prose, docstrings and Python source score 3-11%, German and French sentences about
# 50%, random letters 99%: at most a quarter counts as text like its own.
TEXT_SIMILAR_BELOW = 0.25
# fine_tune: BERT-like encoders are fine-tuned at 2e-5 to 5e-5 with Adam (Devlin et al. 2019);
# rates near 1e-4 and above make them forget what they learned (Sun et al. 2019)
TEXT_FINE_TUNE_LR = 0.03
# large and different text: still fine-tuned (head first, then every layer), at a higher
# rate, 0.1×: faster than for text like its own, but a post-LayerNorm transformer such as
# BERT diverges at Adam's 1e-3 without a warmup (Xiong et al. 2020; Liu et al. 2020).
# Fine-tuning starts with the encoder frozen, which also keeps the doctor's pre-flight (it
# trains the network as it starts) to the head: with every layer learning from the first
# step it took 11 minutes on 112 texts, against 16 s of training.
TEXT_DIFFERENT_LR = 0.1

_TEXT_TABLE = {
    (True, True): ("freeze", "small and similar: keep the encoder frozen and train a new head "
                   "on its sentence embeddings (how sentence encoders are evaluated: "
                   "SentEval, Conneau & Kiela 2018)"),
    (True, False): ("early", "small and different: keep only the word-piece embeddings and "
                    "the lower layers, frozen, and read the sentence from there: features "
                    "turn from general to specific with depth (Yosinski et al. 2014), in BERT "
                    "from surface and syntax below to the task it was tuned for above "
                    "(Jawahar et al. 2019)"),
    (False, True): ("fine_tune", "large and similar: fine-tune the whole encoder, the new head "
                    "first, then every layer at a lower rate (gradual unfreezing and "
                    "discriminative rates: Howard & Ruder 2018)"),
    (False, False): ("fine_tune", "large and different: fine-tune the whole encoder, the new "
                     "head first, then every layer at a higher rate than for text like its "
                     "own: its word pieces and layers are still the best starting point"),
}


def text_source_rule(ctx: Ctx) -> Decision:
    p = _pre(ctx)
    return Decision(p["source"], f"{p['about']}: its word-piece embeddings and "
                    f"{p['blocks'] - 1} transformer layers, {p['blocks']} blocks",
                    "transfer.source")


def split_words_rule(ctx: Ctx) -> Decision:
    p = _pre(ctx)
    d = p.get("divergence")
    if d is None:
        return Decision(None, "not measured yet", "transfer.split_words")
    verdict = ("the encoder's vocabulary reads them as its own kind of text"
               if d <= TEXT_SIMILAR_BELOW else "the encoder's vocabulary was made for other "
               "text (another language, or no words at all)")
    return Decision(round(d, 4), f"{d:.1%} of the training texts' words are not whole words "
                    f"of the encoder's vocabulary ({p.get('fertility', 0):.2f} word pieces a "
                    f"word; Rust et al. 2021's proportion of continued words; ≤ "
                    f"{TEXT_SIMILAR_BELOW:.0%} counts as alike): {verdict}",
                    "transfer.split_words")


def _probe_noise(probe: dict[str, float]) -> float:
    """Two standard errors of the difference of two accuracies measured on the same ``n``
    texts, sqrt(2·p(1−p)/n) each: a gap smaller than this is the probe's noise (with 512
    texts at 84%, about ±0.046)."""
    p = (probe["features"] + probe["raw"]) / 2
    return 2 * math.sqrt(2 * p * (1 - p) / max(probe.get("n", 1), 1))


def text_probe_rule(ctx: Ctx) -> Decision:
    probe = _pre(ctx).get("probe")
    if probe is None:
        return Decision(None, "not measured (fewer than 2 texts of some class, or not yet)",
                        "transfer.feature_probe")
    gain, noise = probe["features"] - probe["raw"], _probe_noise(probe)
    verdict = ("the sentence embeddings carry these classes" if gain >= 0 else
               f"the bag of words is ahead by less than the probe's noise (±{noise:.3f}: two "
               "standard errors): the sentence embeddings carry these classes as well"
               if gain >= -noise else "a bag of words separates these classes better than "
               "the sentence embeddings: they were learned for other distinctions")
    return Decision(round(gain, 4), f"a logistic regression on the encoder's sentence "
                    f"embeddings scores {probe['features']:.3f} (cross-validated on "
                    f"{probe.get('n', '?')} training texts), on a bag of words (TF-IDF) "
                    f"{probe['raw']:.3f}: {verdict}", "transfer.feature_probe")


def _text_similar(ctx: Ctx) -> bool:
    d, gain = ctx["transfer.divergence"], ctx["transfer.feature_gain"]
    probe = _pre(ctx).get("probe")
    behind = gain is not None and probe is not None and gain < -_probe_noise(probe)
    return (d is None or d <= TEXT_SIMILAR_BELOW) and not behind


def text_strategy_rule(ctx: Ctx) -> Decision:
    return _table_decision(ctx, _TEXT_TABLE, _text_similar(ctx), "texts",
                           "{:.1%} of the words split",
                           "embedding probe {:+.3f} against a bag of words")


def text_keep_rule(ctx: Ctx) -> Decision:
    have = _pre(ctx)["blocks"]
    if ctx["transfer.strategy"] == "early":
        k = 1 + (have - 1) // 2
        return Decision(k, f"the word-piece embeddings and the first {k - 1} of {have - 1} "
                        "layers; the upper layers, tuned to the encoder's own task, are left "
                        "out", "transfer.keep_early")
    return Decision(have, f"all {have} blocks: the word-piece embeddings and every layer",
                    "transfer.keep_all")


def text_backbone_lr_rule(ctx: Ctx) -> Decision:
    strategy = ctx["transfer.strategy"]
    if strategy == "fine_tune" and _text_similar(ctx):
        return Decision(TEXT_FINE_TUNE_LR, f"discriminative learning rates: the encoder learns "
                        f"at {TEXT_FINE_TUNE_LR}× the head's rate (3e-5 at Adam's usual 1e-3), "
                        "BERT's fine-tuning range of 2e-5 to 5e-5 (Devlin et al. 2019); faster, "
                        "it forgets what it learned (Sun et al. 2019)", "transfer.discriminative")
    if strategy in ("fine_tune", "retrain"):
        return Decision(TEXT_DIFFERENT_LR, f"the encoder learns at {TEXT_DIFFERENT_LR}× the "
                        "head's rate: text unlike its own needs its layers to move further, "
                        "but a post-LayerNorm transformer diverges at Adam's 1e-3 without a "
                        "warmup (Xiong et al. 2020)", "transfer.discriminative")
    return Decision(1.0, "one learning rate: the frozen encoder does not learn",
                    "transfer.discriminative")


def text_transfer_rules(pretrained: dict[str, Any]) -> tuple[list, dict[str, Rule]]:
    """(the transfer rules of a packaged sentence encoder, in order; rules fixing its
    architecture keys to the encoder's, which the text modality lists as derived)."""
    rules = [("transfer.source", text_source_rule, True),
             ("transfer.divergence", split_words_rule, True),
             ("transfer.feature_gain", text_probe_rule, True),
             ("transfer.strategy", text_strategy_rule, False),
             ("transfer.keep_blocks", text_keep_rule, False),
             ("transfer.backbone_lr", text_backbone_lr_rule, False),
             ("transfer.head_epochs", head_epochs_rule, False)]
    why = f"the pretrained encoder's, so its weights fit ({pretrained['source']})"
    return rules, {key: _fixed(value, why) for key, value in pretrained["arch"].items()}
