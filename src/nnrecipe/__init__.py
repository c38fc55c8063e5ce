"""nnrecipe: train neural networks the way experienced practitioners do, and say why.

>>> import nnrecipe
>>> run = nnrecipe.fit("data.csv", target="y")
>>> run.evaluation["metrics"], run.plan["optimizer.lr"]
"""

from .api import Run, diagnose, fit, load_run, plan
from .doctor import Doctor, Finding
from .errors import DataError, NnrecipeError, PlanError, RunError

__all__ = ["DataError", "Doctor", "Finding", "NnrecipeError", "PlanError", "Run", "RunError",
           "diagnose", "fit", "load_run", "plan"]
__version__ = "0.1.0"
