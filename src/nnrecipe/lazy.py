"""Modules imported on first use.

``sklearn = lazy("sklearn.metrics")`` at the top of a module names a dependency in the
usual place, but loads it only when one of its attributes is first read. nnrecipe uses it
for the heavy libraries a command may not need (scikit-learn, matplotlib, Optuna, SciPy,
cleanlab) and, in the command line, for its own modules: ``nnrecipe --help`` or a typo
never pays for torch, and ``nnrecipe predict`` loads the network and its preprocessing,
not the trainer, the doctor and the report. The first load is timed as the ``imports``
stage of the running command (:mod:`nnrecipe.timing`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .timing import stage

__all__ = ["LazyModule", "lazy", "lazy_exports"]


class LazyModule:
    """Stands for the module ``name`` until an attribute is read, then for the module."""

    def __init__(self, name: str, then: Callable[[ModuleType], None] | None = None) -> None:
        self._name = name
        self._then = then
        self._module: ModuleType | None = None

    def load(self) -> ModuleType:
        if self._module is None:
            with stage("imports"):
                module = importlib.import_module(self._name)
                if self._then is not None:
                    self._then(module)
            self._module = module
        return self._module

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # copy, pickle and doctest probe these: not a first use
            raise AttributeError(attr)
        return getattr(self.load(), attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy(name: str, then: Callable[[ModuleType], None] | None = None) -> LazyModule:
    """The module ``name``, imported the first time one of its attributes is read;
    ``then(module)`` runs once, right after that import."""
    return LazyModule(name, then)


def lazy_exports(package: str, homes: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names are imported from
    their modules (``homes``: name → module) the first time they are read (PEP 562), so
    importing the package, or one of its modules, costs no more than that module."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)  # looked up once
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *homes})

    return __getattr__, __dir__
