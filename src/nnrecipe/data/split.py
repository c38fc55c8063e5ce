"""Train / validation / test splits: seeded, stratified for classification."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from ..errors import DataError

__all__ = ["Splits", "split_table", "MIN_ROWS"]

MIN_ROWS = 20  # below this, a 15% test split holds too few rows to say anything


@dataclass
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    how: str  # one line for the plan: how the splits were made

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_table(df: pd.DataFrame, target: str, task: str, seed: int, *,
                val: float = 0.15, test: float = 0.15,
                val_df: pd.DataFrame | None = None, test_df: pd.DataFrame | None = None) -> Splits:
    """Split ``df``; a given ``val_df``/``test_df`` replaces the internal split of that part."""
    n_internal = (val_df is None) + (test_df is None)
    if n_internal and len(df) < MIN_ROWS:
        raise DataError(f"too few rows to split: {len(df)} rows, need at least {MIN_ROWS} "
                        "(or pass --valid and --test files)")
    stratify = task != "regression" and df[target].value_counts().min() >= 3
    parts, how = {}, []
    rest = df
    for name, given, share in (("test", test_df, test), ("val", val_df, val)):
        if given is not None:
            parts[name] = given
            how.append(f"{name} from the given file ({len(given)} rows)")
            continue
        # share of what is left, so 70/15/15 of the whole table
        frac = share / (1 - (test if name == "val" and test_df is None else 0))
        rest, parts[name] = train_test_split(
            rest, test_size=frac, random_state=seed,
            stratify=rest[target] if stratify else None,
        )
        how.append(f"{name} {share:.0%} held out")
    kind = "stratified by class" if stratify else (
        "shuffled" if task == "regression" else "shuffled (a class has < 3 rows: not stratified)")
    text = f"{'; '.join(how)}; {kind}, seed {seed}" if n_internal else "; ".join(how)
    return Splits(train=rest, val=parts["val"], test=parts["test"], how=text)
