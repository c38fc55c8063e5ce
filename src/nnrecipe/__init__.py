"""nnrecipe: train neural networks the way experienced practitioners do, and say why.

>>> import nnrecipe
>>> run = nnrecipe.fit("data.csv", target="y")
>>> run.evaluation["metrics"], run.plan["optimizer.lr"]

``import nnrecipe`` is cheap: each public name below is imported from its module the first
time it is used (PEP 562), so a command that needs only part of the package (``--help``,
``predict``) never pays for the rest (torch, scikit-learn, matplotlib, cleanlab).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .lazy import lazy_exports

if TYPE_CHECKING:  # what static tools see; at run time the table below serves the names
    from .api import Run, cv, diagnose, experiment, find_lr, fit, load_run, plan, resume, tune
    from .doctor import Doctor, Finding
    from .errors import DataError, NnrecipeError, PlanError, RunError
    from .train.lr_find import LRFindResult, lr_find

# Public name → the module that defines it.
_HOMES = {
    **dict.fromkeys(("Run", "cv", "diagnose", "experiment", "find_lr", "fit", "load_run",
                     "plan", "resume", "tune"), "nnrecipe.api"),
    **dict.fromkeys(("Doctor", "Finding"), "nnrecipe.doctor"),
    **dict.fromkeys(("DataError", "NnrecipeError", "PlanError", "RunError"), "nnrecipe.errors"),
    **dict.fromkeys(("LRFindResult", "lr_find"), "nnrecipe.train.lr_find"),
}

__all__ = ["DataError", "Doctor", "Finding", "LRFindResult", "NnrecipeError", "PlanError", "Run",
           "RunError", "cv", "diagnose", "experiment", "find_lr", "fit", "load_run", "lr_find",
           "plan", "resume", "tune"]
__version__ = "0.1.0"


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)


def _function_over_subpackage(name: str) -> property:
    """``nnrecipe.<name>`` stays the API function although a subpackage has the same name:
    the import system binds each subpackage on its parent when it is imported, and that
    binding is dropped (``from nnrecipe.<name> import X`` still finds the subpackage)."""

    def get(package: ModuleType) -> Any:
        function = vars(package).get(f"_api_{name}")
        return function if function is not None else __getattr__(name)

    def set_(package: ModuleType, value: Any) -> None:
        if not isinstance(value, ModuleType):
            vars(package)[f"_api_{name}"] = value

    return property(get, set_)


class _Package(ModuleType):
    plan = _function_over_subpackage("plan")  # nnrecipe/plan/
    tune = _function_over_subpackage("tune")  # nnrecipe/tune/


sys.modules[__name__].__class__ = _Package
