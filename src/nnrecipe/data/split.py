"""Train / validation / test splits: seeded, stratified for classification."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError
from ..lazy import lazy
from .profile import show_names

model_selection = lazy("sklearn.model_selection")

__all__ = ["Splits", "split_table", "check_classes", "rare_classes", "MIN_ROWS"]

MIN_ROWS = 20  # below this, a 15% test split holds too few rows to say anything


@dataclass
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    how: str  # one line for the plan: how the splits were made

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def rare_classes(labels: pd.Series | np.ndarray, min_rows: int) -> str | None:
    """None when every class has ``min_rows`` rows; else a short sentence naming the rarest
    classes (the first few and a count), for a one-line error."""
    counts = pd.Series(np.asarray(labels, dtype=object)).astype(str).value_counts()
    rare = counts[counts < min_rows].sort_values(kind="stable")
    if rare.empty:
        return None
    return (f"{len(rare):,} of {len(counts):,} classes have fewer than {min_rows} rows, too "
            f"few to split (one each for training, validation and test): "
            f"{show_names(list(rare.index), len(rare))}")


def check_classes(df: pd.DataFrame, target: str, task: str, *, internal_splits: int = 2
                  ) -> None:
    """Refuse a classification target with a class too rare to appear in the training split
    and in each split made from the table (``internal_splits``: 2 for validation and test,
    1 when one of them is a given file). Without this a class seen only in the validation or
    test rows stops the run later, with every class name in the message."""
    if task == "regression" or internal_splits == 0:
        return
    why = rare_classes(df[target], 1 + internal_splits)
    if why:
        raise DataError(f"target '{target}': {why}; merge or drop the rare classes, or give "
                        "more rows")


def split_table(df: pd.DataFrame, target: str, task: str, seed: int, *,
                val: float = 0.15, test: float = 0.15,
                val_df: pd.DataFrame | None = None, test_df: pd.DataFrame | None = None) -> Splits:
    """Split ``df``; a given ``val_df``/``test_df`` replaces the internal split of that part."""
    n_internal = (val_df is None) + (test_df is None)
    if n_internal and len(df) < MIN_ROWS:
        raise DataError(f"too few rows to split: {len(df)} rows, need at least {MIN_ROWS} "
                        "(or pass --valid and --test files)")
    check_classes(df, target, task, internal_splits=n_internal)
    n_classes = df[target].nunique() if task != "regression" else 0
    # scikit-learn stratifies only when each split can hold one row of every class
    smallest = min((round(len(df) * s) for s, given in ((val, val_df), (test, test_df))
                    if given is None), default=len(df))
    stratify = task != "regression" and n_classes <= smallest
    parts, how = {}, []
    rest = df
    for name, given, share in (("test", test_df, test), ("val", val_df, val)):
        if given is not None:
            parts[name] = given
            how.append(f"{name} from the given file ({len(given)} rows)")
            continue
        # share of what is left, so 70/15/15 of the whole table
        frac = share / (1 - (test if name == "val" and test_df is None else 0))
        rest, parts[name] = model_selection.train_test_split(
            rest, test_size=frac, random_state=seed,
            stratify=rest[target] if stratify else None,
        )
        how.append(f"{name} {share:.0%} held out")
    kind = "stratified by class" if stratify else "shuffled"
    if task != "regression" and not stratify and n_internal:
        rest, parts = _keep_every_class_in_train(rest, parts, target, val_df, test_df)
        kind = (f"shuffled ({n_classes:,} classes: too many to stratify), one row of each "
                "class kept in training")
    text = f"{'; '.join(how)}; {kind}, seed {seed}" if n_internal else "; ".join(how)
    return Splits(train=rest, val=parts["val"], test=parts["test"], how=text)


def _keep_every_class_in_train(train: pd.DataFrame, parts: dict[str, pd.DataFrame],
                               target: str, val_df: pd.DataFrame | None,
                               test_df: pd.DataFrame | None
                               ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Move one row of each class the training split lacks from the internal validation or
    test split into training, so the network has seen every class it is scored on."""
    seen = set(train[target].astype(str))
    parts = dict(parts)
    for name, given in (("val", val_df), ("test", test_df)):
        if given is not None:
            continue
        part = parts[name]
        labels = part[target].astype(str)
        unseen = ~labels.isin(seen) & ~labels.duplicated()
        if unseen.any():
            train = pd.concat([train, part[unseen.to_numpy()]])
            parts[name] = part[~unseen.to_numpy()]
            seen |= set(labels[unseen])
    return train, parts
