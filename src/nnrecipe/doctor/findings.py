"""Findings: what the doctor reports, in one fixed vocabulary of codes.

A finding carries numbers (``evidence``), where it happened (``layer``, ``epoch``,
``step``), a plain explanation, advice drawn from established practice (the sources are
listed in docs/architecture.md), and ``fix``: the plan overrides that would address it
(``None`` when no plan change does). A new code is added to ``CODES`` here together with
its test. :func:`findings_table` shows findings in the
terminal (the CLI and :class:`~nnrecipe.doctor.Doctor` print it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["Finding", "CODES", "EXPLAINS", "SEVERITIES", "TRAINING_FAMILIES",
           "doubt_label_check", "make_finding", "sort_findings", "findings_table"]

SEVERITIES = ("info", "warning", "error")

# code: (family, default severity, title)
CODES: dict[str, tuple[str, str, str]] = {
    # data (from the profile)
    "missing_values": ("data", "info", "Missing values were imputed"),
    "constant_feature": ("data", "info", "Constant feature dropped"),
    "id_like_feature": ("data", "warning", "Id-like feature dropped"),
    "target_leakage": ("data", "error", "A feature alone predicts the target"),
    "duplicates_across_splits": ("data", "warning", "Rows shared between splits"),
    "class_imbalance": ("data", "warning", "Imbalanced classes"),
    "unscaled_features": ("data", "warning", "Inputs far from zero mean and unit scale"),
    "too_many_parameters": ("data", "warning", "Far more parameters than training rows"),
    # configuration (before training)
    "loss_activation_mismatch": ("config", "error", "Output activation does not fit the loss"),
    "init_activation_mismatch": ("config", "warning", "Initialisation does not fit the activation"),
    "lr_out_of_range": ("config", "warning", "Learning rate outside the usual range"),
    "dropout_batchnorm_conflict": ("config", "warning", "Dropout feeds a BatchNorm layer"),
    "large_batch": ("config", "warning", "Large batch size"),
    # pre-flight (a few seconds before epoch 1)
    "bad_initial_loss": ("preflight", "warning", "Loss at initialisation is off"),
    "cannot_overfit_batch": ("preflight", "error", "Cannot overfit a tiny batch"),
    "no_gradient": ("preflight", "error", "Parameters get no gradient"),
    "no_signal": ("preflight", "error", "Inputs carry no signal the network uses"),
    # live (watchers in the loop)
    "nan_loss": ("live", "error", "Loss became NaN or infinite"),
    "exploding_gradients": ("live", "error", "Exploding gradients"),
    "vanishing_gradients": ("live", "error", "Vanishing gradients"),
    "dead_relu": ("live", "error", "Dead ReLU units"),
    "saturated_activations": ("live", "warning", "Saturated sigmoid/tanh units"),
    "loss_divergence": ("live", "error", "Loss is diverging"),
    "loss_oscillation": ("live", "warning", "Loss oscillates"),
    "slow_convergence": ("live", "warning", "Slow convergence"),
    # after training (learning curves)
    "overfitting": ("after", "warning", "Overfitting"),
    "underfitting": ("after", "warning", "Underfitting"),
    "noisy_validation": ("after", "warning", "Validation set too small for a stable metric"),
    "label_issues": ("after", "warning", "Rows whose label looks wrong"),
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    title: str
    evidence: dict[str, Any]
    explanation: str
    advice: list[str] = field(default_factory=list)
    fix: dict[str, Any] | None = None
    epoch: int | None = None
    step: int | None = None
    layer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(**d)


def make_finding(code: str, evidence: dict[str, Any], explanation: str, advice: list[str],
                 fix: dict[str, Any] | None = None, *, severity: str | None = None,
                 epoch: int | None = None, step: int | None = None,
                 layer: str | None = None) -> Finding:
    """A Finding with the code's default severity and title."""
    family, default, title = CODES[code]  # KeyError: an unknown code is a bug
    return Finding(code, severity or default, title, _rounded(evidence), explanation,
                   list(advice), fix, epoch, step, layer)


#: when each family's checks run: before training, during it, after it
_PHASE = {"data": 0, "config": 0, "preflight": 0, "live": 1, "after": 2}

_FAILS_TO_LEARN = ("cannot_overfit_batch", "no_signal")
#: cause → the generic symptoms it explains when both are found in one run (generic: they
#: say that something is wrong without naming what). A network
#: that cannot memorise a batch, or learns nothing from its inputs, is the debugging
#: recipe's alarm bell (Karpathy 2019); when the run also names why (unscaled inputs, dead
#: units, vanishing gradients...), that is the illness to treat, and it is listed first.
EXPLAINS: dict[str, tuple[str, ...]] = {
    "unscaled_features": (*_FAILS_TO_LEARN, "bad_initial_loss", "slow_convergence"),
    "lr_out_of_range": (*_FAILS_TO_LEARN, "slow_convergence"),
    "loss_activation_mismatch": (*_FAILS_TO_LEARN, "bad_initial_loss"),
    "no_gradient": _FAILS_TO_LEARN,
    # inputs that say nothing about the target: a network that learns nothing from them
    # looks, from its curves alone, held back or too slow
    "no_signal": ("slow_convergence", "underfitting"),
    "bad_initial_loss": ("cannot_overfit_batch",),
    "nan_loss": _FAILS_TO_LEARN,
    "exploding_gradients": (*_FAILS_TO_LEARN, "loss_divergence", "loss_oscillation",
                            "nan_loss", "dead_relu"),
    # steps that overshoot (seen in the loss) also knock ReLU biases so far negative that
    # the units never fire again: the overshoot, which names the rate, comes first
    "loss_divergence": (*_FAILS_TO_LEARN, "dead_relu"),
    "loss_oscillation": ("dead_relu",),
    "vanishing_gradients": (*_FAILS_TO_LEARN, "slow_convergence", "underfitting"),
    "dead_relu": (*_FAILS_TO_LEARN, "bad_initial_loss", "slow_convergence", "underfitting"),
    "saturated_activations": (*_FAILS_TO_LEARN, "bad_initial_loss"),
}
#: A learning rate above its optimizer's range also explains what steps too large do: the
#: loss oscillates, then diverges (the LR range test's picture, Smith 2017), and one large
#: step can push a ReLU's bias so far negative that it never fires again.
TOO_LARGE_STEPS = ("nan_loss", "exploding_gradients", "loss_divergence", "loss_oscillation",
                   "dead_relu")


#: Weights that all start at zero: every ReLU unit outputs 0 and passes no gradient back,
#: so the layers below the head get none, and the network cannot learn.
ALL_ZERO_INIT = ("dead_relu", "no_gradient", "vanishing_gradients", "bad_initial_loss",
                 *_FAILS_TO_LEARN, "underfitting")


#: Labels that disagree with every input (``label_issues`` on its noise-floor basis) put a
#: floor under the training loss that no network goes below: from its curves alone the
#: network looks held back (20% of breast cancer's labels flipped: underfitting's warning).
NOISY_LABELS_EXPLAIN = ("underfitting",)


#: The families whose findings say the training itself went wrong: its configuration, the
#: pre-flight, the live monitors. A model trained that way is no judge of its labels (a
#: rate out of range or dropout feeding BatchNorm leaves it sure and wrong on rows whose
#: labels are right), so beside any of them at warning or above, ``label_issues`` is an
#: info note.
TRAINING_FAMILIES = ("config", "preflight", "live")


def doubt_label_check(findings: Sequence[Finding]) -> list[Finding]:
    """The findings, with a ``label_issues`` warning made an info note when a finding of
    ``TRAINING_FAMILIES`` at warning or above stands beside it (its evidence names them)."""
    doubts = [f.code for f in findings if f.severity != "info" and f.code in CODES
              and CODES[f.code][0] in TRAINING_FAMILIES]
    if not doubts:
        return list(findings)
    codes = ", ".join(dict.fromkeys(doubts))
    return [replace(f, severity="info", evidence={**f.evidence, "doubted_by": codes},
                    explanation=f"{f.explanation} Only an info note here: {codes} say the "
                    "training itself went wrong, so the model is no judge of the labels.")
            if f.code == "label_issues" and f.severity != "info" else f for f in findings]


def _explains(f: Finding) -> tuple[str, ...]:
    codes = EXPLAINS.get(f.code, ())
    ev = f.evidence
    if f.code == "lr_out_of_range" and isinstance(ev.get("lr"), int | float) \
            and isinstance(ev.get("usual_high"), int | float) and ev["lr"] > ev["usual_high"]:
        codes += TOO_LARGE_STEPS
    if f.code == "init_activation_mismatch" and ev.get("init") == "zeros":
        codes += ALL_ZERO_INIT
    if f.code == "label_issues" and ev.get("basis") == "noise_floor" and f.severity != "info":
        codes += NOISY_LABELS_EXPLAIN
    return codes


def _explained(findings: list[Finding]) -> dict[int, list[int]]:
    """For each finding (by index) that explains others, the indices of all it explains,
    directly or through another cause (saturated units → a bad initial loss → a batch
    that cannot be memorised)."""
    codes = [f.code for f in findings]
    direct = {i: [j for j, c in enumerate(codes) if c in _explains(findings[i]) and j != i]
              for i in range(len(findings))}
    out = {}
    for i, js in direct.items():
        seen, todo = set(), list(js)
        while todo:
            j = todo.pop()
            if j not in seen and j != i:
                seen.add(j)
                todo += direct[j]
        if seen:
            out[i] = sorted(seen)
    return out


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Worst first, then in the order they happened: the checks before training, then the
    live ones by epoch and step (a check at the end of an epoch after that epoch's steps),
    then the after-training ones in the order they ran (their epoch, e.g. overfitting's best
    epoch, is evidence, not when the check ran).

    A cause comes before the generic symptoms it explains (``EXPLAINS``): it takes the
    severity of the worst of them, its place in time is that of the earliest, and its
    evidence lists them under "explains". A label-issues warning beside a finding that says
    the training went wrong is first made an info note (:func:`doubt_label_check`)."""
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    findings = doubt_label_check(findings)
    explained = _explained(findings)

    def when(f: Finding) -> tuple:
        phase = _PHASE[CODES[f.code][0]] if f.code in CODES else 1
        if phase == 2:  # the after-training checks: in the order they ran
            return (phase, 0, 0)
        return (phase, f.epoch or 0, f.step if f.step is not None else math.inf)

    keys = {}
    for i, f in enumerate(findings):
        if i in explained:
            group = [findings[j] for j in explained[i]]
            worst = max([f, *group], key=lambda g: SEVERITIES.index(g.severity)).severity
            codes = ", ".join(c for c in CODES if c in {g.code for g in group})
            findings[i] = f = replace(f, severity=worst, evidence={**f.evidence,
                                                                   "explains": codes})
            keys[i] = (rank[worst], *min(when(g) for g in [f, *group]), -len(group))
        else:
            keys[i] = (rank[f.severity], *when(f), 0)
    return [findings[i] for i in sorted(range(len(findings)), key=keys.__getitem__)]


def _rounded(evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence numbers to 4 significant digits: enough to judge, short enough to read."""
    out = {}
    for k, v in evidence.items():
        if isinstance(v, float):
            v = float(f"{v:.4g}")
        elif hasattr(v, "item"):
            v = v.item()
        out[k] = v
    return out


SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def findings_table(findings: Sequence[Finding], *, advice: bool = False,
                   title: str = "The doctor's findings (worst first)") -> Table:
    """A rich table of findings for the terminal: severity, title, where, the first few
    evidence numbers (and the first two pieces of advice when ``advice``). Every text is
    escaped: a column or layer named ``[/]`` is printed as it is, never read as markup."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    for col in ("severity", "finding", "where", "evidence") + (("advice",) if advice else ()):
        table.add_column(col, overflow="fold")
    for f in findings:
        where = " ".join(x for x in (f"epoch {f.epoch}" if f.epoch else "",
                                     f"step {f.step}" if f.step and not f.epoch else "",
                                     f.layer or "") if x)
        evidence = ", ".join(f"{k}={v}" for k, v in list(f.evidence.items())[:4])
        row = [f"[{SEVERITY_STYLE[f.severity]}]{escape(f.severity)}", escape(f.title),
               escape(where), escape(evidence)]
        table.add_row(*row, *([escape("\n".join(f"• {a}" for a in f.advice[:2]))]
                              if advice else []))
    return table
