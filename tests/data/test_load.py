import numpy as np
import pandas as pd

from nnrecipe.data import infer_kinds, load_table


def test_column_kinds_are_inferred():
    n = 100
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "num": rng.normal(size=n),
        "count": rng.integers(0, 5, size=n),
        "flag01": rng.integers(0, 2, size=n),
        "yesno": rng.choice(["yes", "no"], size=n),
        "when": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "city": rng.choice(["Paris", "Rome", "Oslo"], size=n),
        "review": [f"this product was fine number {i} overall" for i in range(n)],
        "customer_id": rng.permutation(n) + 1000,
        "code": [f"A{i:05d}" for i in range(n)],
    })
    assert infer_kinds(df) == {
        "num": "numeric", "count": "numeric", "flag01": "boolean", "yesno": "boolean",
        "when": "datetime", "city": "categorical", "review": "text", "customer_id": "id",
        "code": "id",
    }


def test_csv_tsv_and_parquet_load_the_same_table(tmp_path):
    df = pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]})
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    df.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.tsv", "t.parquet"):
        pd.testing.assert_frame_equal(load_table(tmp_path / name), df)
