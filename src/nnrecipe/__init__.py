"""nnrecipe: train neural networks the way experienced practitioners do, and say why.

>>> import nnrecipe
>>> run = nnrecipe.fit("data.csv", target="y")
>>> run.evaluation["metrics"], run.plan["optimizer.lr"]
"""

from .api import Run, cv, diagnose, experiment, find_lr, fit, load_run, plan, resume, tune
from .doctor import Doctor, Finding
from .errors import DataError, NnrecipeError, PlanError, RunError
from .train.lr_find import LRFindResult, lr_find

__all__ = ["DataError", "Doctor", "Finding", "LRFindResult", "NnrecipeError", "PlanError", "Run",
           "RunError", "cv", "diagnose", "experiment", "find_lr", "fit", "load_run", "lr_find",
           "plan", "resume", "tune"]
__version__ = "0.1.0"
