"""Read a table (CSV or Parquet) and infer what kind of data each column holds."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["COLUMN_KINDS", "load_table", "infer_kinds", "table_name"]

COLUMN_KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "id")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
_BOOL_WORDS = {"true", "false", "yes", "no", "y", "n", "t", "f"}
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key)$|^id[_\s-]|ID$", re.IGNORECASE)


def table_name(source: str | Path | pd.DataFrame) -> str:
    return "dataframe" if isinstance(source, pd.DataFrame) else Path(source).stem


def load_table(source: str | Path | pd.DataFrame, *, what: str = "data") -> pd.DataFrame:
    """Read ``source`` into a DataFrame, or raise DataError saying why it cannot be read."""
    if isinstance(source, pd.DataFrame):
        df = source.copy()
    else:
        df = _read_file(Path(source), what)
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataError(f"{what} {source if not isinstance(source, pd.DataFrame) else ''} "
                        f"is empty ({df.shape[0]} rows, {df.shape[1]} columns); "
                        "give a table with a header and at least one row".replace("  ", " "))
    df.columns = [str(c) for c in df.columns]
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        raise DataError(f"{what} has repeated column names {dupes}; rename them so each is unique")
    return df


def _read_file(path: Path, what: str) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{what} file {path} not found; check the path")
    if path.is_dir():
        raise DataError(f"{what} {path} is a directory; give a CSV or Parquet file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{what} {path} has an unknown format '{path.suffix or '(no extension)'}'; "
            f"expected one of {', '.join(sorted(FORMATS))}"
        )
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} {path} is empty; give a table with a header and rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{what} {path} could not be read as {fmt}: {first}") from None
    except Exception as e:  # pyarrow raises its own types for a corrupt Parquet file
        if type(e).__module__.startswith("pyarrow"):
            raise DataError(f"{what} {path} could not be read as parquet: {e}") from None
        raise


def infer_kinds(df: pd.DataFrame) -> dict[str, str]:
    """Kind of each column: numeric, categorical, boolean, datetime, text or id."""
    return {c: _infer_kind(df[c]) for c in df.columns}


def _infer_kind(s: pd.Series) -> str:
    nonnull = s.dropna()
    n, distinct = len(nonnull), nonnull.nunique()
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    if pd.api.types.is_numeric_dtype(s):
        if distinct == 2 and set(nonnull.unique().tolist()) <= {0, 1}:
            return "boolean"
        integral = pd.api.types.is_integer_dtype(s) or bool(np.all(np.mod(nonnull, 1) == 0))
        if integral and n > 20 and distinct == n and (_ID_NAME.search(s.name or "")
                                                     or _is_consecutive(nonnull)):
            return "id"
        return "numeric"
    values = nonnull.astype(str)
    if distinct <= 2 and set(values.str.lower().unique()) <= _BOOL_WORDS:
        return "boolean"
    if _looks_like_dates(values):
        return "datetime"
    mean_words = values.str.count(r"\s+").mean() + 1 if n else 0
    if n > 20 and distinct / n > 0.5 and mean_words >= 4:
        return "text"
    if n > 20 and distinct / n > 0.95:
        return "id"
    return "categorical"


def _is_consecutive(s: pd.Series) -> bool:
    """A row counter (0..n-1, 1..n, in any order) is an id, not a measurement."""
    v = np.sort(s.to_numpy())
    return bool(np.all(np.diff(v) == 1))


def _looks_like_dates(values: pd.Series) -> bool:
    sample = values.head(200)
    if sample.empty or not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}").mean() > 0.9:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.95)
