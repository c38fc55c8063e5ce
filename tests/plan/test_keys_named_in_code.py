"""Every plan key the package's code names exists.

The test reads every .py file under src/nnrecipe (whatever is there when it runs) with
``ast`` and collects the strings that look like plan keys (a dotted name whose first part is
a plan section, such as ``optimizer.lr``) where the code uses them as keys:

- ``plan["key"]``, ``ctx["key"]``, any ``x["key"]``;
- ``"key" in plan`` and ``"key" not in plan``;
- ``x.get("key")``, ``x.pop("key")``, ``plan.with_derived("key", ...)``,
  ``plan.with_decision("key", ...)``, ``plan_value(plan, "key")``;
- the keys of dict literals (fixes, overrides, replacements);
- the strings of a tuple, list or set assigned to a name ending in ``KEYS`` (``LOG_KEYS``);
- the first item of a rule-table entry ``("key", rule, derived, ...)``.

Rule ids (``Decision(value, reason, "model.relu_first")``) are dotted too, but they sit in
none of these places, so they are not mistaken for keys.

Each key must be settable (``nnrecipe.plan.KEYS``) or derived: filled in by a rule-table
entry whose derived flag is True (plan/rules.py's RULES, the modality tables), by
``with_derived`` or by ``ctx.derived["key"] = ...``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import nnrecipe
from nnrecipe.plan import KEYS, RULES

SRC = Path(nnrecipe.__file__).parent
SECTIONS = {key.split(".")[0] for key in KEYS} | {
    "model", "optimizer", "loss", "train", "schedule", "data", "augment", "series", "text",
    "audio", "transfer", "regularization", "output", "seed", "task"}
KEY_LIKE = re.compile(rf"^(?:{'|'.join(sorted(SECTIONS))})(?:\.[a-z0-9_]+)+$")
# call name → the position of the key among its arguments
KEY_CALLS = {"get": 0, "pop": 0, "with_derived": 0, "with_decision": 0, "plan_value": 1}
# keys the code names that exist nowhere, owned by another change: each entry says where.
# The test fails when one of them is no longer named, so the list cannot go stale.
KNOWN_MISSING = {
    "model.kind": "report/compare.py and report/summary.py read it with plan_value; no rule "
                  "sets it, so it is always None there",
}


def _text(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _table_entry(node: ast.AST) -> tuple[str, bool] | None:
    """("key", rule, derived, ...) → (key, derived)."""
    if not isinstance(node, ast.Tuple) or len(node.elts) < 3:
        return None
    key, flag = _text(node.elts[0]), node.elts[2]
    if key is None or not (isinstance(flag, ast.Constant) and isinstance(flag.value, bool)):
        return None
    return key, flag.value


def _named_keys(node: ast.AST) -> Iterator[str | None]:
    """The strings ``node`` uses as plan keys (None where a place holds no string)."""
    if isinstance(node, ast.Subscript):
        yield _text(node.slice)
    elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
        yield _text(node.left)
    elif isinstance(node, ast.Call) and _call_name(node) in KEY_CALLS:
        at = KEY_CALLS[_call_name(node)]
        yield _text(node.args[at]) if len(node.args) > at else None
    elif isinstance(node, ast.Dict):
        yield from (_text(k) for k in node.keys)
    elif isinstance(node, ast.Assign | ast.AnnAssign) and _names_keys(node):
        if isinstance(node.value, ast.Tuple | ast.List | ast.Set):
            yield from (_text(e) for e in node.value.elts)
    elif (entry := _table_entry(node)) is not None:
        yield entry[0]


def _names_keys(node: ast.Assign | ast.AnnAssign) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return any(isinstance(t, ast.Name) and t.id.endswith("KEYS") for t in targets)


def _derived_keys(node: ast.AST) -> Iterator[str | None]:
    """The keys ``node`` fills in as derived facts."""
    entry = _table_entry(node)
    if entry is not None and entry[1]:
        yield entry[0]
    if isinstance(node, ast.Call) and _call_name(node) == "with_derived" and node.args:
        yield _text(node.args[0])
    if (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Attribute) and node.value.attr == "derived"):
        yield _text(node.slice)


def scan(source: str, where: str = "<source>") -> tuple[list[tuple[str, str]], set[str]]:
    """(every (key, "file:line") named in ``source``, the keys it fills in as derived)."""
    named, derived = [], set()
    for node in ast.walk(ast.parse(source, filename=where)):
        for key in _named_keys(node):
            if key is not None and KEY_LIKE.match(key):
                named.append((key, f"{where}:{node.lineno}"))
        derived.update(k for k in _derived_keys(node) if k is not None)
    return named, derived


def _scan_package() -> tuple[list[tuple[str, str]], set[str]]:
    named, derived = [], {key for key, _rule, is_derived, *_ in RULES if is_derived}
    for path in sorted(SRC.rglob("*.py")):
        more, filled = scan(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)))
        named += more
        derived |= filled
    return named, derived


def test_every_key_named_in_the_code_exists():
    named, derived = _scan_package()
    missing = sorted({f"{where}: '{key}'" for key, where in named
                      if key not in KEYS and key not in derived and key not in KNOWN_MISSING})
    assert not missing, "plan keys that exist nowhere:\n" + "\n".join(missing)


def test_the_known_missing_keys_are_still_named():
    named = {key for key, _ in _scan_package()[0]}
    assert set(KNOWN_MISSING) <= named, "a known missing key is gone: drop it from the list"


def test_the_scan_finds_keys_and_passes_over_rule_ids():
    source = '''
LOG_KEYS = ("optimizer.lr", "regularization.l2")
def rule(ctx, plan):
    if "transfer.backbone_lr" in plan and plan["model.width"]:
        return Decision(ctx["model.kernel"], "why", "model.relu_first")
    fix = {"optimizer.lr": 1e-3}
    return plan.with_derived("model.parameters", x), plan_value(plan, "model.kind")
RULES = (("data.modality", rule, True), ("model.blocks", rule, False))
'''
    named, derived = scan(source)
    assert sorted({key for key, _ in named}) == [
        "data.modality", "model.blocks", "model.kernel", "model.kind", "model.parameters",
        "model.width", "optimizer.lr", "regularization.l2", "transfer.backbone_lr"]
    assert derived == {"data.modality", "model.parameters"}
    assert "regularization.l2" not in KEYS  # the key LOG_KEYS once named
