"""Data rules: what the profile and the prepared inputs show before any training.

Each rule is ``rule(ev: DataEvidence) -> Finding | None``: early returns first, thresholds
as keyword defaults, one finding per rule that sums up every affected column (the worst
few with their numbers, plus a count). ``RULES`` is the registry; ``check_data`` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ...data.profile import DataProfile
from ...plan.schema import Plan
from ...plan.sizing import (
    MAX_PARAMETERS_PER_VALUE,
    WARN_PARAMETERS_PER_VALUE,
    conv_parameters,
    values_per_sample,
)
from ..findings import Finding, make_finding

__all__ = ["DataEvidence", "RULES", "check_data", "missing_values", "constant_feature",
           "id_like_feature", "target_leakage", "duplicates_across_splits", "class_imbalance",
           "unscaled_features", "too_many_parameters"]

TOP = 5  # columns named in a finding's evidence; the rest are counted


@dataclass
class DataEvidence:
    profile: DataProfile
    plan: Plan
    input_means: dict[str, float]  # per numeric network input, as fed (training split)
    input_stds: dict[str, float]


def _features(p: DataProfile) -> dict[str, dict]:
    return {c: s for c, s in p.columns.items() if c != p.target}


def _n_train(p: DataProfile) -> int:
    return int(p.splits.get("train") or p.n_rows)


# ---- columns ----------------------------------------------------------------------------------
def missing_values(ev: DataEvidence, *, top: int = TOP) -> Finding | None:
    """Feature columns with gaps that reach the network (dropped columns don't)."""
    drop = ev.plan["data.drop"] if "data.drop" in ev.plan else []
    gaps = {c: s for c, s in _features(ev.profile).items()
            if c not in drop and s["missing_share"] > 0}
    if not gaps:
        return None
    worst = sorted(gaps, key=lambda c: -gaps[c]["missing_share"])[:top]
    numeric = [c for c, s in gaps.items() if s["kind"] in ("numeric", "boolean", "datetime")]
    evidence = {"n_columns": len(gaps), "imputed_numeric": len(numeric),
                "imputed_categorical": len(gaps) - len(numeric),
                **{f"missing_share.{c}": gaps[c]["missing_share"] for c in worst},
                "how": "numeric: training median plus a 0/1 was-missing column; "
                       "categorical: a '(missing)' level of its own"}
    if ev.profile.dropped_target_missing:
        evidence["rows_without_target"] = ev.profile.dropped_target_missing
    advice = ["Check why the values are missing: if the gap itself carries meaning (a test "
              "not taken, a field left empty), the was-missing column lets the network use it.",
              "A column missing in most rows adds little beyond its was-missing flag; "
              "consider leaving it out.",
              "New data must be missing in the same way; the training medians are reused."]
    return make_finding(
        "missing_values", evidence,
        f"{len(gaps)} feature column(s) have missing values; they were filled from the "
        f"training split (worst: {worst[0]}, {gaps[worst[0]]['missing_share']:.0%} missing).",
        advice)


def constant_feature(ev: DataEvidence, *, top: int = TOP) -> Finding | None:
    cols = list(ev.profile.constant_columns)
    if not cols:
        return None
    return make_finding(
        "constant_feature", {"n_columns": len(cols), "columns": ", ".join(cols[:top])},
        f"{len(cols)} column(s) hold a single value in every row; they carry no information "
        "and were dropped.",
        ["Nothing to do unless the column should vary: then check how the table was exported.",
         "A column constant here but not in new data would be ignored by the model."])


def id_like_feature(ev: DataEvidence, *, top: int = TOP) -> Finding | None:
    cols = list(ev.profile.id_like_columns)
    if not cols:
        return None
    p = ev.profile
    evidence = {"n_columns": len(cols),
                **{f"distinct_share.{c}": p.columns[c]["distinct"] / max(p.n_rows, 1)
                   for c in cols[:top]}}
    return make_finding(
        "id_like_feature", evidence,
        f"{len(cols)} column(s) look like identifiers (nearly one value per row): a network "
        "could only memorise them, so they were dropped.",
        ["Make sure each one really is an identifier and not a measurement stored as "
         "unique integers; if it is a measurement, convert it to a float column.",
         "An id that follows time or collection order can leak the target (sorted data); "
         "if rows are ordered in time, split by time rather than at random.",
         "If rows sharing an id-like key (a patient, a customer) repeat, keep each key in "
         "one split only."])


def target_leakage(ev: DataEvidence, *, top: int = TOP) -> Finding | None:
    sus = sorted(ev.profile.leak_suspects, key=lambda s: -s["score"])
    if not sus:
        return None
    evidence = {"n_columns": len(sus), "metric": sus[0]["metric"],
                **{f"score.{s['column']}": s["score"] for s in sus[:top]}}
    for key in ("majority_share", "single_feature_accuracy"):
        if key in sus[0]:
            evidence[key] = sus[0][key]
    first = sus[0]
    if first["metric"] == "correlation_ratio":  # the class code plus a little noise
        what = (f"'{first['column']}' is almost a copy of the class: "
                f"{first['score']:.1%} of its variance lies between the classes' means "
                f"(the correlation ratio), and one split on it alone gets "
                f"{first['single_feature_accuracy']:.0%} right against "
                f"{first['majority_share']:.0%} for the majority class.")
    else:
        what = (f"'{first['column']}' alone predicts the target almost perfectly "
                f"({first['metric']} {first['score']:.4g}) with a model too simple to "
                "memorise rows.")
    return make_finding(
        "target_leakage", evidence,
        f"{what} A feature that good usually holds the answer itself: a copy, a code derived "
        "from the label, or a value only known after the outcome.",
        ["Ask whether the column is available at prediction time, before the outcome is known; "
         "if not, remove it from the table and train again.",
         "If it is legitimately available, the problem may not need a neural network: a rule "
         "on that one column does as well.",
         "Expect the held-out score to collapse on real data if this is a leak."])


def duplicates_across_splits(ev: DataEvidence, *, min_share: float = 0.01) -> Finding | None:
    """Validation/test rows whose features also appear in training: more than ``min_share``
    of the held-out rows (a row or two can coincide by chance in coarse data)."""
    d = ev.profile.splits.get("duplicates_across_splits") or {}
    shared = {s: d.get(f"{s}_rows_also_in_train", 0) for s in ("val", "test")}
    held = sum(d.get(f"{s}_rows", 0) for s in ("val", "test"))
    if not held or sum(shared.values()) / held <= min_share:
        return None
    evidence = {"train_rows": d.get("train_rows", 0)}
    for s in ("val", "test"):
        rows = d.get(f"{s}_rows", 0)
        evidence[f"{s}_rows_also_in_train"] = shared[s]
        evidence[f"{s}_share_also_in_train"] = shared[s] / rows if rows else 0.0
    evidence["duplicate_rows_in_table"] = ev.profile.duplicate_rows
    return make_finding(
        "duplicates_across_splits", evidence,
        f"{sum(shared.values())} of {held} validation and test rows have feature values "
        "identical to a training row. The held-out score then partly measures memory, not "
        "generalisation, and early stopping is steered by rows the network has seen.",
        ["Remove exact duplicate rows before splitting (df.drop_duplicates()).",
         "If repeats are real (the same entity measured again), split by that entity so each "
         "one lands in a single split.",
         "With only a few coarse features identical rows can be natural; then read the "
         "held-out score as an upper bound."])


def class_imbalance(ev: DataEvidence, *, max_share_of_uniform: float = 0.4,
                    min_ratio: float = 0.1) -> Finding | None:
    """The rarest class has less than ``max_share_of_uniform`` of the share it would have
    with balanced classes (binary: below 20 %), or fewer than ``min_ratio`` rows per row
    of the commonest class (10 : 1, which catches one dominant class among many)."""
    if ev.profile.task == "regression":
        return None
    counts = ev.profile.target_summary.get("classes") or {}
    if len(counts) < 2:
        return None
    total = sum(counts.values())
    lo, hi = min(counts, key=counts.get), max(counts, key=counts.get)
    share, ratio, uniform = counts[lo] / total, counts[lo] / counts[hi], 1 / len(counts)
    if share >= max_share_of_uniform * uniform and ratio >= min_ratio:
        return None
    evidence = {"n_classes": len(counts), "minority_class": lo, "minority_rows": counts[lo],
                "minority_share": share, "majority_class": hi, "majority_share": counts[hi] / total,
                "minority_to_majority": ratio, "balanced_share": uniform}
    return make_finding(
        "class_imbalance", evidence,
        f"Class '{lo}' has {share:.1%} of the rows ({counts[lo]}), against {uniform:.0%} if "
        f"classes were balanced; always answering '{hi}' is already {counts[hi] / total:.0%} "
        "accurate, so accuracy hides how the rare class fares and the loss is dominated by "
        "the common one.",
        ["Weight the loss by inverse class frequency (pos_weight in BCEWithLogitsLoss, weight "
         "in CrossEntropyLoss), or oversample the rare class in the training split only.",
         "Judge the model by balanced accuracy, F1 or precision/recall of the rare class, "
         "not accuracy; compare with the majority-class baseline.",
         "Look at the rare class's errors: more (or better-labelled) examples of it help "
         "more than any setting."])


# ---- inputs and size --------------------------------------------------------------------------
def _is_binary(mean: float, std: float, rel: float = 0.1, tol: float = 1e-3) -> bool:
    """A 0/1 column (one-hot, boolean, was-missing flag): the only kind of [0, 1] column
    whose std reaches sqrt(p(1-p)) for its mean p (``rel`` allows for n-1 in the std).
    Such columns are left unscaled on purpose; a rare level has a small std, not a bad scale."""
    if not -tol <= mean <= 1 + tol:
        return False
    bernoulli = math.sqrt(max(mean * (1 - mean), 0.0))
    return abs(std - bernoulli) <= rel * bernoulli + tol


def _badness(mean: float, std: float, max_abs_mean: float, min_std: float,
             max_std: float) -> float:
    """How many decades outside the accepted box (0 = inside)."""
    over = [abs(mean) / max_abs_mean, std / max_std, min_std / std if std > 0 else math.inf]
    return max(0.0, max(math.log10(x) if x > 0 else -math.inf for x in over))


def unscaled_features(ev: DataEvidence, *, max_abs_mean: float = 3.0, min_std: float = 0.1,
                      max_std: float = 10.0, top: int = TOP) -> Finding | None:
    """Numeric inputs with |mean| > ``max_abs_mean`` or std outside [``min_std``,
    ``max_std``]: a factor of 3-10 away from standardised inputs (mean 0, std 1), where one
    learning rate no longer suits every weight."""
    bad = {}
    for col, mean in ev.input_means.items():
        std = ev.input_stds.get(col)
        if std is None or not math.isfinite(mean) or _is_binary(mean, std):
            continue
        score = _badness(mean, std, max_abs_mean, min_std, max_std)
        if score > 0:
            bad[col] = score
    if not bad:
        return None
    worst = sorted(bad, key=lambda c: -bad[c])[:top]
    scale = ev.plan["data.scale"] if "data.scale" in ev.plan else None
    evidence = {"n_columns": len(bad), "n_inputs": len(ev.input_means), "data.scale": str(scale)}
    for c in worst:
        evidence[f"mean.{c}"] = float(ev.input_means[c])
        evidence[f"std.{c}"] = float(ev.input_stds[c])
    fix = {"data.scale": "standard"} if scale != "standard" else None
    return make_finding(
        "unscaled_features", evidence,
        f"{len(bad)} of {len(ev.input_means)} numeric inputs reach the network far from zero "
        f"mean and unit spread (worst: {worst[0]}, mean {ev.input_means[worst[0]]:.3g}, std "
        f"{ev.input_stds[worst[0]]:.3g}). Weights on large inputs get large gradients and "
        "those on small inputs barely move, so training is slow or unstable.",
        ["Standardise inputs (data.scale=standard): subtract the training mean, divide by the "
         "training standard deviation.",
         "For a heavy-tailed column (incomes, counts) take a log first; a few huge values "
         "squash min-max scaling.",
         "Fit the scaling on the training split only and reuse it for new data."],
        fix)


def _width_for_budget(ev: DataEvidence, budget: float, floor: int = 8) -> int | None:
    """Largest power-of-two width below the current one whose parameter count fits
    ``budget``: the real count scaled by the plan's layout formula (weights only)."""
    plan = ev.plan
    n_in, depth, n_out = plan["data.n_inputs"], plan["model.hidden_layers"], plan["model.n_outputs"]
    width = plan["model.width"]
    if depth == 0 or width <= floor:
        return None

    def estimate(w: int) -> float:
        layout = n_in * w + (depth - 1) * w * w + w * n_out
        return plan["model.parameters"] * layout / (n_in * width + (depth - 1) * width**2
                                                    + width * n_out)

    w = 2 ** (math.ceil(math.log2(width)) - 1)
    while w > floor and estimate(w) > budget:
        w //= 2
    return max(w, floor)


def too_many_parameters(ev: DataEvidence, *, max_per_row: float = 10.0,
                        min_dropout: float = 0.2) -> Finding | None:
    """More than ``max_per_row`` trainable parameters per training row: the network can
    memorise the training split long before it learns anything that generalises.

    A convnet trained from scratch shares its weights across every position of a sample,
    so its data is counted in input values (channels × positions) and judged against
    ``MAX_PARAMETERS_PER_VALUE`` (:func:`_convnet_too_big`), the limit the plan's own
    parameter count reads."""
    per_sample = values_per_sample(ev.plan, ev.profile.inputs or {})
    if per_sample is not None:
        return _convnet_too_big(ev, per_sample)
    if not all(k in ev.plan for k in ("model.parameters", "model.width",
                                      "model.hidden_layers", "data.n_inputs")):
        return None
    n_params, n_train = ev.plan["model.parameters"], _n_train(ev.profile)
    ratio = n_params / max(n_train, 1)
    if ratio <= max_per_row:
        return None
    fix: dict = {}
    width = _width_for_budget(ev, max_per_row * n_train)
    if width is not None:
        fix["model.width"] = width
    if ev.plan["model.dropout"] < min_dropout:
        fix["model.dropout"] = 0.3
    evidence = {"parameters": n_params, "train_rows": n_train, "parameters_per_row": ratio,
                "max_per_row": max_per_row, "model.width": ev.plan["model.width"],
                "model.hidden_layers": ev.plan["model.hidden_layers"],
                "model.dropout": ev.plan["model.dropout"]}
    return make_finding(
        "too_many_parameters", evidence,
        f"The network has {n_params:,} trainable parameters for {n_train:,} training rows "
        f"({ratio:,.1f} per row). With that much capacity it can memorise the training rows, "
        "so expect the validation loss to part from the training loss early.",
        ["Use a smaller width first (fewer units per hidden layer), then fewer layers.",
         "Keep dropout on (0.2-0.5; larger rates for bigger layers) and early stopping, which "
         "restores the best validation checkpoint.",
         "Weight decay (optimizer.weight_decay) holds weights small; more training data is the "
         "surest cure."],
        fix or None)


def _convnet_too_big(ev: DataEvidence, per_sample: int, *,
                     warn_per_value: float = WARN_PARAMETERS_PER_VALUE) -> Finding | None:
    """A scratch convnet with more than ``MAX_PARAMETERS_PER_VALUE`` trainable parameters
    per input value of its training samples, an info note; over ``warn_per_value`` (twice
    that), a warning. A network just over the limit is often fine: 32 filters on 210
    sequences of 40 steps (11.5 per value) test at 1.000 like the plan's 16, and the plan's
    own 16 filters on 42 sequences (14.6) reach 1.000 too. Fix: the most filters (halving)
    whose network fits the limit. ``per_sample``: the input values of one sample."""
    plan, inputs = ev.plan, ev.profile.inputs
    if "model.parameters" not in plan:
        return None
    n_params, n_train = plan["model.parameters"], _n_train(ev.profile)
    values = n_train * per_sample
    ratio = n_params / max(values, 1)
    if ratio <= MAX_PARAMETERS_PER_VALUE:
        return None
    fix = None
    if plan["model.filters"] > 4:
        shape = {"channels": int(inputs.get("channels", 1)),
                 "dims": len(inputs.get("spatial") or [0, 0]), "blocks": plan["model.blocks"],
                 "n_outputs": plan["model.n_outputs"], "kernel": plan["model.kernel"]}
        f = plan["model.filters"] // 2
        while f > 4 and conv_parameters(filters=f, **shape) > MAX_PARAMETERS_PER_VALUE * values:
            f //= 2
        fix = {"model.filters": f}
    warn = ratio > warn_per_value
    evidence = {"parameters": n_params, "train_samples": n_train,
                "values_per_sample": per_sample, "parameters_per_value": ratio,
                "max_per_value": MAX_PARAMETERS_PER_VALUE,
                "warn_per_value": warn_per_value,
                "model.filters": plan["model.filters"], "model.blocks": plan["model.blocks"]}
    head = (f"The convnet has {n_params:,} trainable parameters for {n_train:,} training "
            f"samples of {per_sample:,} values each: {ratio:,.1f} parameters per input value, "
            f"more than {MAX_PARAMETERS_PER_VALUE:g} (parameters and data should be of the same "
            "order of magnitude: Karpathy).")
    return make_finding(
        "too_many_parameters", evidence,
        head + (" It can memorise the training samples, so expect the validation loss to part "
                "from the training loss early." if warn else
                f" Under {warn_per_value:g}, dropout and early stopping often hold a network "
                "this size; watch the gap between the training and validation loss."),
        ["Use fewer filters (model.filters), then fewer blocks.",
         "Augmentation multiplies the samples the network sees; early stopping restores the "
         "best validation checkpoint.",
         "With few images, start from a pretrained network (--pretrained): its weights come "
         "from other data, so the few samples here train only what is new."],
        fix, severity="warning" if warn else "info")


Rule = Callable[[DataEvidence], Finding | None]

RULES: list[Rule] = [
    target_leakage,
    duplicates_across_splits,
    id_like_feature,
    class_imbalance,
    unscaled_features,
    too_many_parameters,
    missing_values,
    constant_feature,
]


def check_data(ev: DataEvidence) -> list[Finding]:
    """Every data finding, in registry order (worst kinds first)."""
    return [f for f in (rule(ev) for rule in RULES) if f is not None]
