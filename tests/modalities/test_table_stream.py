"""Tables read by row groups (data.loader=stream): a Parquet file of several small row
groups, and a CSV, train end to end; the split by hash is stable, disjoint and near
70/15/15; epochs are seeded, evaluation reads every row in file order, ranks get equal
batch counts; the profile and the plan say what was sampled and why the table streams."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import nnrecipe
from nnrecipe.data import tables_stream as ts
from nnrecipe.pipeline.prepare import prepare

ROWS, GROUP = 3000, 250


def _frame(n: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    x2[rng.random(n) < 0.05] = np.nan
    color = rng.choice(["red", "green", "blue"], size=n)
    y = (x1 + 0.5 * np.nan_to_num(x2) + rng.normal(scale=0.3, size=n) > 0).astype(int)
    y = pd.Series(y, dtype="Int64")
    y[rng.random(n) < 0.02] = pd.NA  # rows without a target are left out
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "y": y})


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("stream") / "table.parquet"
    pq.write_table(pa.Table.from_pandas(_frame(), preserve_index=False), path,
                   row_group_size=GROUP)
    return str(path)


@pytest.fixture(scope="module")
def prep(parquet):
    return prepare(parquet, "y", overrides={"data.loader": "stream", "data.workers": 0})


@pytest.fixture(scope="module")
def streams(prep):
    inputs = prep.modality.inputs(prep)
    return inputs.train_stream, inputs.val_stream


def _rows(batches) -> torch.Tensor:
    return torch.cat([x for x, _ in batches])


def test_a_streamed_parquet_trains_to_a_finished_run(parquet, tmp_path):
    run = nnrecipe.fit(parquet, "y", overrides={"data.loader": "stream",
                                                "train.max_epochs": 2},
                       out=tmp_path / "run")
    assert json.loads((run.path / "status.json").read_text())["status"] == "finished"
    evaluation = json.loads((run.path / "evaluation.json").read_text())
    assert evaluation["n_rows"] == run.profile.splits["test"]
    assert evaluation["metrics"]["accuracy"] > 0.8
    assert evaluation["details"]["worst_rows"]  # read back from the file by row index
    assert (run.path / "report.html").exists()
    assert run.plan["data.loader"] == "stream" and "data.workers" in run.plan
    # the profile says what it was computed from
    assert run.profile.inputs["sample_rows"] == run.profile.n_rows
    assert "seeded sample of" in run.plan.derived["data.statistics"].reason


def test_the_hash_split_is_stable_disjoint_and_near_70_15_15():
    ids = np.arange(200_000)
    split = ts.hash_split(ids, 0)
    assert np.array_equal(split, ts.hash_split(ids, 0))
    assert np.array_equal(split[:1000], ts.hash_split(ids[:1000], 0))  # row by row
    shares = np.bincount(split, minlength=3) / len(ids)
    assert np.allclose(shares, [0.15, 0.15, 0.70], atol=0.005)
    assert set(np.unique(split)) == {0, 1, 2}  # one split per row: disjoint
    assert (split != ts.hash_split(ids, 1)).mean() > 0.3  # the seed changes it


def test_split_counts_and_rows_agree_with_the_file(prep, streams, parquet):
    df = pd.read_parquet(parquet)
    df = df[df["y"].notna()]
    split = ts.hash_split(df.index.to_numpy(), 0)
    train, val = streams
    assert len(train) == (split == 2).sum() and len(val) == (split == 1).sum()
    assert len(prep.splits.test) == (split == 0).sum()
    assert prep.profile.n_rows == len(df)
    assert prep.profile.dropped_target_missing == int(pd.read_parquet(parquet)["y"].isna().sum())


def test_evaluation_reads_every_row_once_in_file_order(prep, streams, parquet):
    train, _ = streams
    df = pd.read_parquet(parquet)
    df = df[df["y"].notna() & (ts.hash_split(df.index.to_numpy(), 0) == 2)]
    expected = torch.from_numpy(prep.preprocessor.transform(df))
    got = list(train.epoch(64, None))
    assert all(len(x) == 64 for x, _ in got[:-1])
    assert torch.equal(_rows(got), expected)


def test_the_same_seed_gives_the_same_order_and_epochs_differ(streams):
    train, _ = streams
    a = _rows(train.epoch(32, torch.Generator().manual_seed(5)))
    b = _rows(train.epoch(32, torch.Generator().manual_seed(5)))
    assert torch.equal(a, b)
    gen = torch.Generator().manual_seed(5)
    first, second = _rows(train.epoch(32, gen)), _rows(train.epoch(32, gen))
    assert not torch.equal(first, second)
    # a shuffle of the same rows
    key = lambda t: torch.sort(t[:, 0]).values  # noqa: E731
    assert torch.equal(key(first), key(second)) and torch.equal(key(first), key(
        _rows(train.epoch(32, None))))


def test_a_small_buffer_still_shuffles_within_row_groups(prep, streams):
    train, _ = streams
    small = ts.TableStream(train.table, 2, 0, train.counts, train.encoding, buffer_chunks=2)
    a = _rows(small.epoch(50, torch.Generator().manual_seed(0)))
    assert len(a) == len(train) and not torch.equal(a, _rows(small.epoch(50, None)))


def test_skip_passes_over_done_batches_and_a_last_batch_of_one_is_dropped(streams):
    train, _ = streams
    n = len(train)
    bs = next(b for b in range(40, 200) if n % b == 1)
    full = list(train.epoch(bs, torch.Generator().manual_seed(3)))
    assert len(full) == train.n_batches(bs) == (n - 1) // bs
    assert sum(len(x) for x, _ in full) == n - 1
    rest = list(train.epoch(bs, torch.Generator().manual_seed(3), skip=4))
    assert len(rest) == len(full) - 4
    assert all(torch.equal(x, y[0]) for (x, _), y in zip(rest, full[4:], strict=True))


def test_shards_get_equal_batch_counts_and_share_the_epoch(streams):
    train, _ = streams
    bs, world = 64, 3
    per_rank = [list(train.epoch(bs, torch.Generator().manual_seed(1), shard=(r, world)))
                for r in range(world)]
    counts = {len(b) for b in per_rank}
    assert counts == {train.n_batches(bs, (0, world))}
    whole = list(train.epoch(bs, torch.Generator().manual_seed(1)))
    for r, batches in enumerate(per_rank):
        real = whole[r::world]
        assert all(torch.equal(x, y[0]) for (x, _), y in zip(batches, real, strict=False))
        for x, _ in batches[len(real):]:  # padding: the rank's first batch again
            assert torch.equal(x, batches[0][0])


def test_workers_read_in_the_same_order(streams):
    train, _ = streams
    with_worker = ts.TableStream(train.table, 2, 0, train.counts, train.encoding, workers=1)
    try:
        a = _rows(with_worker.epoch(32, torch.Generator().manual_seed(2)))
    finally:
        with_worker.close()
    assert torch.equal(a, _rows(train.epoch(32, torch.Generator().manual_seed(2))))


def test_the_plan_names_the_threshold_and_auto_streams_a_big_table(parquet, monkeypatch):
    plan = prepare(parquet, "y").plan
    assert plan["data.loader"] == "memory" and plan["data.workers"] == 0
    reason = plan.decisions["data.loader"].reason
    assert "threshold" in reason and "bytes" in reason
    choice, why = ts.loader_choice(10**9)
    assert choice == "stream" and "threshold" in why
    monkeypatch.setattr(ts, "MEMORY_CAP", 10_000)  # a tiny budget: this table is "big"
    streamed = prepare(parquet, "y", overrides={"data.workers": 0})
    assert streamed.plan["data.loader"] == "stream"
    assert "threshold" in streamed.plan.decisions["data.loader"].reason
    assert streamed.profile.inputs["sample_rows"] > 0


def test_a_streamed_csv_trains_and_predicts_in_chunks(tmp_path, monkeypatch):
    df = _frame(1200, seed=1)
    path = tmp_path / "table.csv"
    df.to_csv(path, index=False)
    run = nnrecipe.fit(str(path), "y", overrides={"data.loader": "stream",
                                                  "train.max_epochs": 1, "data.workers": 0},
                       out=tmp_path / "run")
    assert (run.path / "evaluation.json").exists()
    assert run.profile.splits["how"].startswith("test 15%")
    in_memory = nnrecipe.load_run(run.path).predict(str(path))
    monkeypatch.setattr(ts, "MEMORY_CAP", 10_000)  # predict reads it by batches
    chunked = nnrecipe.load_run(run.path).predict(str(path))
    assert len(chunked) == len(df) and list(chunked.columns) == list(in_memory.columns)
    proba = [c for c in chunked.columns if c.startswith("proba_")]
    assert np.allclose(chunked[proba].to_numpy(float), in_memory[proba].to_numpy(float),
                       atol=1e-5)
    monkeypatch.setattr(ts, "MEMORY_CAP", 1 << 40)
    whole = nnrecipe.load_run(run.path).evaluate(str(path))
    monkeypatch.setattr(ts, "MEMORY_CAP", 10_000)  # evaluate reads it by batches too
    chunked_eval = nnrecipe.load_run(run.path).evaluate(str(path))
    assert chunked_eval["n_rows"] == whole["n_rows"] == int(df["y"].notna().sum())
    for k, v in whole["metrics"].items():
        assert chunked_eval["metrics"][k] == pytest.approx(v, abs=1e-6), k


def test_a_csv_column_that_changes_type_later_is_widened(tmp_path):
    path = tmp_path / "late.csv"
    rows = [f"{i},{i % 7},{i % 2}" for i in range(200_000)] + ["5,2.5,1", "6,,0"]
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    table = ts.open_table(path)
    df = pd.concat(table.read(i) for i in range(table.n_chunks))
    assert len(df) == 200_002 and df["b"].dtype == np.float64 and df["b"].iloc[-2] == 2.5


def test_the_sample_bounds_what_the_profile_reads(parquet, monkeypatch):
    monkeypatch.setattr(ts, "SAMPLE_ROWS", 500)
    sc = ts.scan(ts.open_table(Path(parquet)), "y", 0)
    assert sc.sample_rows == 500 and len(sc.sample) <= 500
    assert sc.counts.sum() + sc.missing_target == ROWS
