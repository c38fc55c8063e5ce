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


class _Package(ModuleType):
    """``nnrecipe.plan`` is the API function, although a subpackage has the same name: the
    import system binds each subpackage on its parent when it is imported, and for this
    one the binding is ignored (``from nnrecipe.plan import Plan`` still finds it)."""

    @property
    def plan(self) -> Any:
        function = vars(self).get("_plan_function")
        return function if function is not None else __getattr__("plan")

    @plan.setter
    def plan(self, value: Any) -> None:
        if not isinstance(value, ModuleType):  # the subpackage's binding is dropped
            vars(self)["_plan_function"] = value


sys.modules[__name__].__class__ = _Package
