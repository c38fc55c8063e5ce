"""The package's shape: no import cycles, no private names reached across modules, no
imports of our own modules hidden inside functions, and nothing that points outside the
repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nnrecipe

SRC = Path(nnrecipe.__file__).parent
ROOT = SRC.parent.parent
MODULES = {".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__"): p
           for p in SRC.rglob("*.py")}


def _target(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name an ``import from`` statement names."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")[: len(module.split(".")) - (path.name != "__init__.py")]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _imports(module: str, path: Path, body: list[ast.stmt]) -> set[str]:
    """Our modules imported by the statements ``body`` (with the packages that run first)."""
    found = set()
    for node in body:
        names = []
        if isinstance(node, ast.ImportFrom):
            base = _target(module, path, node)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            found |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    return {m for m in found if m in MODULES and m != module and not module.startswith(m + ".")}


def _graph() -> dict[str, set[str]]:
    return {m: _imports(m, p, ast.parse(p.read_text()).body) for m, p in MODULES.items()}


def test_no_import_cycles():
    graph, state, cycles = _graph(), {}, []

    def visit(m: str, trail: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(trail[trail.index(n):] + [n])
            elif n not in state:
                visit(n, [*trail, n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_no_private_names_across_modules_and_no_hidden_imports_of_our_own():
    problems = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names
                           if a.name.startswith("_") and not a.name.startswith("__")]
                if private and _target(module, path, node).startswith("nnrecipe"):
                    problems.append(f"{module}:{node.lineno} imports {private}")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
                for n in inner:
                    if _imports(module, path, [n]):
                        problems.append(f"{module}:{n.lineno} imports our own module "
                                        "inside a function")
    assert problems == []


def test_nothing_points_outside_the_repository():
    outside = re.compile(r"DESIGN\.md|\.\./shared|shared/seeds|\bthe notes\b", re.IGNORECASE)
    files = [*SRC.rglob("*.py"), *SRC.rglob("*.html"), ROOT / "README.md"]
    found = [f"{p.relative_to(ROOT)}:{i}" for p in files
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if outside.search(line)]
    assert found == []


def test_test_modules_have_unique_names():
    """pytest imports test files by their base name (no packages): two alike break
    collection of the whole suite."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
