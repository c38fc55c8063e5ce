"""The benchmark's data sets: public tables that ship inside installed packages (nothing is
downloaded), plus two seeded synthetic sets named as such.

Each loader returns ``(frame, target, task)``: a DataFrame holding the features and the target
column, the target's name, and the task (``binary``, ``multiclass`` or ``regression``).
Categorical features are pandas ``category`` columns of strings; classification targets are
strings, so no system can mistake a class code for a number. Where missing values are added
(``fair``, ``randhie``), they are added deterministically (a fixed seed), and the README says
so.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["DATASETS", "SOURCES", "load"]

Loaded = tuple[pd.DataFrame, str, str]


def _categorical(values: pd.Series, names: dict | None = None) -> pd.Series:
    """Codes as a ``category`` column of strings (``names`` maps a code to its label)."""
    out = values.map(lambda v: names.get(v, str(v)) if names else str(int(v)))
    return out.where(values.notna()).astype("category")


def _add_missing(df: pd.DataFrame, columns: list[str], share: float, seed: int) -> pd.DataFrame:
    """Blank ``share`` of the cells of each of ``columns``, at rows drawn with ``seed``
    (missing completely at random; the same cells on every run)."""
    rng = np.random.default_rng(seed)
    df = df.copy()
    for name in columns:
        blank = rng.random(len(df)) < share
        df.loc[blank, name] = np.nan
    return df


# ---- scikit-learn's bundled sets -----------------------------------------------------------------
def breast_cancer() -> Loaded:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer(as_frame=True)
    df = d.data.copy()
    df["diagnosis"] = np.where(d.target == 1, "benign", "malignant")
    return df, "diagnosis", "binary"


def diabetes() -> Loaded:
    from sklearn.datasets import load_diabetes

    d = load_diabetes(as_frame=True, scaled=False)
    df = d.data.copy()
    df["sex"] = _categorical(df["sex"], {1.0: "1", 2.0: "2"})
    df["progression"] = d.target
    return df, "progression", "regression"


def digits() -> Loaded:
    from sklearn.datasets import load_digits

    d = load_digits(as_frame=True)
    df = d.data.copy()
    df["digit"] = d.target.astype(str)
    return df, "digit", "multiclass"


# ---- statsmodels' bundled sets -------------------------------------------------------------------
def _statsmodels(name: str) -> pd.DataFrame:
    import statsmodels.api as sm

    return getattr(sm.datasets, name).load_pandas().data.copy()


_PARTY = {0.0: "strong Democrat", 1.0: "weak Democrat", 2.0: "independent Democrat",
          3.0: "independent", 4.0: "independent Republican", 5.0: "weak Republican",
          6.0: "strong Republican"}


def anes96() -> Loaded:
    """1996 American National Election Study: party identification (7 classes) from the
    respondent's views, news habits, demographics and vote."""
    df = _statsmodels("anes96").drop(columns=["logpopul"])  # log of popul, a duplicate
    df["PID"] = df["PID"].map(_PARTY)
    df["educ"] = _categorical(df["educ"])
    df["vote"] = _categorical(df["vote"], {0.0: "Clinton", 1.0: "Dole"})
    return df, "PID", "multiclass"


def fair() -> Loaded:
    """Fair's affairs survey (Redbook, 1974): did the woman have an extramarital affair?
    Occupations as categories; 10% of the cells of three columns blanked (seeded)."""
    df = _statsmodels("fair")
    df["had_affair"] = np.where(df.pop("affairs") > 0, "yes", "no")
    for name in ("occupation", "occupation_husb"):
        df[name] = _categorical(df[name])
    df = _add_missing(df, ["yrs_married", "educ", "occupation_husb"], 0.10, seed=1974)
    return df, "had_affair", "binary"


_MODE = {1.0: "air", 2.0: "train", 3.0: "bus", 4.0: "car"}


def modechoice() -> Loaded:
    """Travel mode choice between Sydney and Melbourne: one row per traveller and mode, was
    this mode chosen? (the traveller's id is dropped)."""
    df = _statsmodels("modechoice").drop(columns=["individual"])
    df["mode"] = _categorical(df["mode"], _MODE)
    df["choice"] = np.where(df["choice"] == 1, "chosen", "not chosen")
    return df, "choice", "binary"


def randhie() -> Loaded:
    """RAND health insurance experiment: the number of outpatient visits to a doctor in a
    year; 10% of the cells of three columns blanked (seeded)."""
    df = _statsmodels("randhie").astype({"mdvis": "float64"})
    df = _add_missing(df, ["lpi", "fmde", "disea"], 0.10, seed=1982)
    return df, "mdvis", "regression"


def star98() -> Loaded:
    """California schools (1998): the share of a school's students scoring above the national
    median in maths, from its demographics, staff and spending."""
    df = _statsmodels("star98")
    above, below = df.pop("NABOVE"), df.pop("NBELOW")
    df["share_above"] = above / (above + below)
    return df, "share_above", "regression"


# ---- seeded synthetic sets -----------------------------------------------------------------------
def synthetic_classification() -> Loaded:
    """``make_classification``: 10,000 rows, 20 features (8 informative, 4 redundant),
    3 classes of 2 clusters each, 2% of labels flipped; seed 0."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=10_000, n_features=20, n_informative=8,
                               n_redundant=4, n_classes=3, n_clusters_per_class=2,
                               flip_y=0.02, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    df["label"] = np.array(["a", "b", "c"])[y]
    return df, "label", "multiclass"


def synthetic_friedman1() -> Loaded:
    """``make_friedman1``: 5,000 rows, 10 features (5 used), noise 1.0; seed 0."""
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=5_000, n_features=10, noise=1.0, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    df["y"] = y
    return df, "y", "regression"


DATASETS: dict[str, Callable[[], Loaded]] = {
    "breast_cancer": breast_cancer,
    "diabetes": diabetes,
    "digits": digits,
    "anes96": anes96,
    "fair": fair,
    "modechoice": modechoice,
    "randhie": randhie,
    "star98": star98,
    "synthetic_classification": synthetic_classification,
    "synthetic_friedman1": synthetic_friedman1,
}

SOURCES = {
    "breast_cancer": "scikit-learn load_breast_cancer (Wisconsin diagnostic)",
    "diabetes": "scikit-learn load_diabetes (scaled=False)",
    "digits": "scikit-learn load_digits (8x8 handwritten digits)",
    "anes96": "statsmodels datasets.anes96",
    "fair": "statsmodels datasets.fair (+10% missing in 3 columns)",
    "modechoice": "statsmodels datasets.modechoice",
    "randhie": "statsmodels datasets.randhie (+10% missing in 3 columns)",
    "star98": "statsmodels datasets.star98",
    "synthetic_classification": "scikit-learn make_classification, seed 0",
    "synthetic_friedman1": "scikit-learn make_friedman1, seed 0",
}


def load(name: str) -> Loaded:
    return DATASETS[name]()
