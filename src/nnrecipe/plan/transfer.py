"""Rules for transfer learning (``--pretrained``): the four-case table of the Stanford
CS231n course ("Transfer Learning": new data small or large, similar or different), applied
to a pretrained convnet (models/pretrained.py does the work).

They read ``profile.inputs["pretrained"]``: the source, its architecture, the measured
``divergence`` of the new data from the data the network learned on, and the ``probe``:
whether its features separate the new classes as well as the raw inputs do. Data counts as
similar when both say so: inputs that look alike (low divergence) can still need features
the network never learned, as digits 5-9 do from a network that only ever told 0-4 apart."""

from __future__ import annotations

from typing import Any

from .rules import Ctx, Decision, Rule

__all__ = ["SIMILAR_BELOW", "SMALL_BELOW", "transfer_rules"]

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


def strategy_rule(ctx: Ctx) -> Decision:
    d, gain = ctx["transfer.divergence"], ctx["transfer.feature_gain"]
    small = ctx.n_train < SMALL_BELOW
    similar = (d is None or d <= SIMILAR_BELOW) and (gain is None or gain >= 0)
    value, why = _TABLE[(small, similar)]
    size = f"{ctx.n_train} training samples ({'<' if small else '≥'} {SMALL_BELOW:,})"
    sim = "similarity not measured" if d is None else f"divergence {d:.3g}"
    if gain is not None:
        sim += f", feature probe {gain:+.3f} against the raw inputs"
    return Decision(value, f"{size}, {sim}: {why} (the CS231n transfer-learning table)",
                    "transfer.table")


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
