"""Tables larger than memory: a Parquet or CSV file read a row group at a time.

The in-memory path (data/load.py → profile → split → Preprocessor → one tensor per split)
keeps every cell several times over: measured on a 400,000 × 51 numeric Parquet table,
``prepare`` and the split tensors peak at 31 to 36 bytes of memory per cell (VmHWM, two
runs), and a training epoch's shuffled gather adds about 3 more
(:data:`PEAK_BYTES_PER_CELL`). A table whose cells times that exceeds
:func:`memory_budget` is streamed instead (``data.loader=stream``):

    read       a Parquet file by row groups (``pyarrow.parquet.ParquetFile.read_row_group``);
               a CSV, or a Parquet file whose row groups are too big to hold a few of, is
               rewritten once (streaming: ``pyarrow.csv.open_csv`` / ``iter_batches``) as a
               temporary Parquet file of :data:`CHUNK_CELLS`-cell row groups, because a
               shuffled epoch visits row groups in a random order and a CSV cannot be read
               from the middle
    profile    one streaming pass counts every row (the target's classes or moments are
               exact) and keeps a seeded uniform sample of :data:`SAMPLE_ROWS` rows, which
               the profile (kinds, missing shares, histograms, leaks) and the
               preprocessing statistics (medians, means, spreads, category levels) come from
    split      by a hash of the row's index in the file (splitmix64 of the index and the
               seed, to a number in [0, 1): test below 0.15, validation below 0.30, else
               training), so every row's split is known without the others; classes are
               not stratified on this path
    shuffle    each epoch: the row groups in a random order, the rows shuffled within a
               buffer of several row groups (:data:`BUFFER_BYTES` of encoded inputs)

A row group is read and encoded (the fitted Preprocessor, as the in-memory path's tensors)
by a torch ``DataLoader`` worker process when ``data.workers`` > 0: the main process fixes
the order of row groups, the DataLoader returns them in that order whatever the number of
workers, and all the shuffling happens in the main process from the loop's generator, so
the same seed gives the same batches with or without workers.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import DataError
from ..lazy import lazy
from ..train.losses import target_tensor
from ..train.streams import Stream, used_rows

pa = lazy("pyarrow")
pq = lazy("pyarrow.parquet")
pacsv = lazy("pyarrow.csv")

__all__ = ["BUFFER_BYTES", "PEAK_BYTES_PER_CELL", "SAMPLE_ROWS", "SPLIT_NAMES", "TableFile",
           "TableStream", "estimate_cells", "hash_split", "iter_frames", "loader_choice",
           "memory_budget", "open_table", "splitmix64"]

#: peak memory of the in-memory path per table cell: 31 to 36 bytes measured for prepare and
#: the split tensors (a 400,000 × 51 numeric Parquet table: VmHWM 295 MiB before, 892 to
#: 1003 MiB after), plus about 3 for an epoch's shuffled copy of the training tensor (70% of
#: the rows, float32), rounded up
PEAK_BYTES_PER_CELL = 40
#: at most this much memory for the in-memory path (and at most a quarter of the machine's)
MEMORY_CAP = 4 * 2**30
#: rows of the seeded sample the profile and the preprocessing statistics come from
SAMPLE_ROWS = 100_000
#: cells per row group of a rewritten (spooled) table: 32 MB of float64
CHUNK_CELLS = 2**22
#: a Parquet row group with more cells than this is rewritten into smaller ones
MAX_CHUNK_CELLS = 2**25
#: encoded inputs (float32) held by the shuffle buffer: at least 2 row groups
BUFFER_BYTES = 128 * 2**20
#: a classification target with more distinct values than this cannot be counted in a pass
MAX_CLASSES = 100_000
#: the 70/15/15 split: (name, upper bound of the hash's [0, 1) number); train is the rest
SPLIT_NAMES = ("test", "val", "train")
SPLIT_BOUNDS = (0.15, 0.30, 1.0)
FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


# ---- the loader choice ---------------------------------------------------------------------
def memory_budget() -> int:
    """Bytes the in-memory path may use: :data:`MEMORY_CAP`, or a quarter of the machine's
    physical memory when that is less (``os.sysconf``; the rest is the other processes')."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return MEMORY_CAP
    return min(MEMORY_CAP, physical // 4) if physical > 0 else MEMORY_CAP


def loader_choice(cells: int, budget: int | None = None) -> tuple[str, str]:
    """(memory or stream, why) for a table of ``cells`` cells (rows × columns)."""
    budget = memory_budget() if budget is None else budget
    peak = cells * PEAK_BYTES_PER_CELL
    words = (f"{cells:,} cells × {PEAK_BYTES_PER_CELL} bytes (the in-memory path's measured "
             f"peak per cell) ≈ {_size(peak)}")
    limit = (f"the threshold {_size(budget)} (the lesser of {_size(MEMORY_CAP)} and a quarter "
             "of this machine's memory)")
    if peak > budget:
        return "stream", (f"{words}, over {limit}: read by row groups, a batch at a time, "
                          "shuffled within a buffer of row groups")
    return "memory", (f"{words}, under {limit}: each split as one tensor (the fast path; "
                      "--set data.loader=stream reads it by row groups all the same)")


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def file_format(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def estimate_cells(path: Path) -> int | None:
    """Rows × columns of a table file without reading it: a Parquet file's metadata; a CSV's
    size over the mean length of its first lines (None: not a table file we can measure)."""
    fmt = file_format(path)
    if fmt is None or not path.is_file():
        return None
    try:
        if fmt == "parquet":
            meta = pq.ParquetFile(path).metadata
            return meta.num_rows * meta.num_columns
        with open(path, "rb") as fh:
            head = fh.read(2**20)
        lines = head.splitlines()
        if len(lines) < 2:
            return None
        sep = b"\t" if fmt == "tsv" else b","
        columns = lines[0].count(sep) + 1
        body = lines[1:-1] if len(lines) > 2 else lines[1:]
        per_row = max(1.0, sum(len(b) + 1 for b in body) / len(body))
        rows = int((path.stat().st_size - len(lines[0]) - 1) / per_row)
        return rows * columns
    except Exception:  # a corrupt file: the ordinary reader says why
        return None


# ---- the split by hash ---------------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 values (Steele, Lea and Flood 2014): every input
    bit flips about half the output bits, so consecutive row indices hash to unrelated
    numbers."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hash_split(row_ids: np.ndarray, seed: int) -> np.ndarray:
    """The split of each row (0 test, 1 validation, 2 training) from its index in the file
    and the seed: splitmix64(index xor splitmix64(seed)), its top 53 bits as a number u in
    [0, 1); u < 0.15 test, u < 0.30 validation, else training."""
    key = splitmix64(np.array([seed], dtype=np.uint64))[0]
    u = (splitmix64(np.asarray(row_ids, dtype=np.uint64) ^ key) >> np.uint64(11)) \
        .astype(np.float64) / 2.0**53
    return np.searchsorted(np.array(SPLIT_BOUNDS), u, side="right").astype(np.int8)


# ---- the file ------------------------------------------------------------------------------
def _remove_spool(directory: str, owner: int) -> None:
    if os.getpid() == owner:  # not from a forked DataLoader worker
        shutil.rmtree(directory, ignore_errors=True)


class TableFile:
    """A Parquet file read by row groups: the user's file, or a temporary rewrite of it
    (a CSV, or row groups too big), removed when this object goes."""

    def __init__(self, path: Path, source: Path, spool_dir: str | None = None):
        self.path, self.source = Path(path), Path(source)
        meta = pq.ParquetFile(self.path).metadata
        self.columns = [str(c) for c in pq.ParquetFile(self.path).schema_arrow.names]
        self.chunk_rows = np.array([meta.row_group(i).num_rows
                                    for i in range(meta.num_row_groups)], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.chunk_rows)]).astype(np.int64)
        self.n_rows = int(self.starts[-1])
        self.spooled = spool_dir is not None
        self._pf: Any = None
        if spool_dir is not None:
            weakref.finalize(self, _remove_spool, spool_dir, os.getpid())

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_rows)

    def read(self, i: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Row group ``i`` as a DataFrame indexed by each row's index in the file."""
        if self._pf is None:
            self._pf = pq.ParquetFile(self.path)
        df = self._pf.read_row_group(i, columns=list(columns) if columns is not None
                                     else None).to_pandas()
        df.columns = [str(c) for c in df.columns]
        df.index = pd.RangeIndex(self.starts[i], self.starts[i + 1])
        return df

    def chunk_of(self, row_id: int) -> int:
        return int(np.searchsorted(self.starts, row_id, side="right") - 1)

    def __getstate__(self) -> dict[str, Any]:  # a worker opens its own handle
        return {**self.__dict__, "_pf": None}


def open_table(path: Path, what: str = "data") -> TableFile:
    """A table file ready to be read by row groups: a Parquet file as it is when its row
    groups are small enough to hold a few of, else (and for a CSV) rewritten once."""
    fmt = file_format(path)
    if not path.exists():
        raise DataError(f"{what} file {path} not found; check the path")
    if fmt is None or not path.is_file():
        raise DataError(f"{what} {path}: data.loader=stream reads a CSV or Parquet file")
    try:
        if fmt == "parquet":
            meta = pq.ParquetFile(path).metadata
            biggest = max((meta.row_group(i).num_rows for i in range(meta.num_row_groups)),
                          default=0)
            if meta.num_rows == 0 or meta.num_columns == 0:
                raise DataError(f"{what} {path} is empty ({meta.num_rows} rows, "
                                f"{meta.num_columns} columns); give a table with rows")
            if biggest * meta.num_columns <= MAX_CHUNK_CELLS:
                return TableFile(path, path)
        return _spool(path, fmt, what)
    except DataError:
        raise
    except Exception as e:  # pyarrow's own errors: a corrupt or unparsable file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"{what} {path} could not be read as {fmt}: {first}") from None


def _spool(path: Path, fmt: str, what: str) -> TableFile:
    """Rewrite ``path`` as a temporary Parquet file of row groups of about CHUNK_CELLS
    cells, one batch at a time. pyarrow infers a CSV's column types from its first block;
    a column that a later block cannot convert (a decimal in a column of integers) is read
    as float64, or else as text, and the rewrite starts again."""
    widened: dict[str, Any] = {}
    while True:
        directory = tempfile.mkdtemp(prefix="nnrecipe-table-")
        try:
            out = _spool_to(path, fmt, what, Path(directory) / "table.parquet", widened)
            return TableFile(out, path, spool_dir=directory)
        except BaseException as e:
            shutil.rmtree(directory, ignore_errors=True)
            column = _unconvertible(e, path, fmt)
            if column is None or widened.get(column) == pa.string():
                raise
            widened[column] = pa.float64() if column not in widened else pa.string()


def _unconvertible(e: BaseException, path: Path, fmt: str) -> str | None:
    """The column a CSV conversion error names (pyarrow: "In CSV column #3: ...")."""
    if fmt == "parquet" or not type(e).__module__.startswith("pyarrow"):
        return None
    found = re.search(r"CSV column #(\d+)", str(e))
    if found is None:
        return None
    reader = pacsv.open_csv(path, parse_options=_parse(fmt))
    names = reader.schema.names
    reader.close()
    i = int(found.group(1))
    return names[i] if i < len(names) else None


def _spool_to(path: Path, fmt: str, what: str, out: Path, types: dict[str, Any]) -> Path:
    writer, pending, n_pending = None, [], 0
    for batch in _batches(path, fmt, types):
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        n_pending += batch.num_rows
        if n_pending >= max(1024, CHUNK_CELLS // max(1, batch.num_columns)):
            writer = _write(writer, out, pending)
            pending, n_pending = [], 0
    if pending:
        writer = _write(writer, out, pending)
    if writer is None:
        raise DataError(f"{what} {path} has no rows; give a table with a header and rows")
    writer.close()
    return out


def _write(writer: Any, out: Path, batches: list) -> Any:
    table = pa.Table.from_batches(batches)
    if writer is None:
        writer = pq.ParquetWriter(out, table.schema)
    writer.write_table(table, row_group_size=table.num_rows)
    return writer


def _parse(fmt: str) -> Any:
    return pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")


def _batches(path: Path, fmt: str, types: dict[str, Any] | None = None) -> Iterator[Any]:
    """Record batches of a Parquet or CSV file, in file order, never the whole file.
    ``types``: CSV column types that override pyarrow's inference from the first block (a
    column empty there is read as text)."""
    if fmt == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=2**16)
        return
    read = pacsv.ReadOptions(block_size=8 * 2**20)
    first = pacsv.open_csv(path, read_options=read, parse_options=_parse(fmt))
    column_types = {f.name: pa.string() for f in first.schema if pa.types.is_null(f.type)}
    first.close()
    column_types.update(types or {})
    yield from pacsv.open_csv(path, read_options=read, parse_options=_parse(fmt),
                              convert_options=pacsv.ConvertOptions(column_types=column_types))


def iter_frames(path: Path, what: str = "data") -> Iterator[pd.DataFrame]:
    """A table file as DataFrames of consecutive rows (``nnrecipe predict`` on a big file)."""
    fmt = file_format(path)
    try:
        for batch in _batches(path, fmt or "csv"):
            df = batch.to_pandas()
            df.columns = [str(c) for c in df.columns]
            yield df
    except DataError:
        raise
    except Exception as e:
        if not type(e).__module__.startswith("pyarrow"):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"{what} {path} could not be read as {fmt}: {first}") from None


# ---- the pass at prepare time --------------------------------------------------------------
@dataclass
class Moments:
    """Count, mean, sum of squared deviations, min and max, merged chunk by chunk (Chan et
    al.'s parallel update: exact in float64 whatever the order)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf

    def add(self, v: np.ndarray) -> None:
        if len(v):
            mean = float(v.mean())
            self.merge(Moments(len(v), mean, float(((v - mean) ** 2).sum()), float(v.min()),
                               float(v.max())))

    def merge(self, other: Moments) -> None:
        if other.n == 0:
            return
        delta, total = other.mean - self.mean, self.n + other.n
        self.mean += delta * other.n / total
        self.m2 += other.m2 + delta**2 * self.n * other.n / total
        self.n, self.lo, self.hi = total, min(self.lo, other.lo), max(self.hi, other.hi)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else 0.0

    def summary(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "min": self.lo, "max": self.hi}


@dataclass
class Scan:
    """What one streaming pass over the file saw."""

    counts: np.ndarray  # (chunks, 3): rows with a target in each split (test, val, train)
    missing_target: int  # rows without a target value (left out)
    sample: pd.DataFrame  # the seeded sample (rows with a target), indexed by row id
    sample_rows: int  # rows drawn (with or without a target)
    classes: dict[str, dict[Any, int]] | None  # per split name: value → rows (None: too many)
    moments: dict[str, Moments] = field(default_factory=dict)  # numeric target, per split

    def class_counts(self, names: Sequence[str]) -> dict[Any, int]:
        out: dict[Any, int] = {}
        for name in names:
            for k, v in (self.classes or {}).get(name, {}).items():
                out[k] = out.get(k, 0) + v
        return out


def scan(table: TableFile, target: str, seed: int, sample_rows: int | None = None) -> Scan:
    """One pass: rows per split (by hash) with a target value, the target's classes or
    moments per split, and a uniform sample of ``sample_rows`` rows (SAMPLE_ROWS) drawn
    with ``seed``."""
    rng = np.random.default_rng(seed)
    m = min(SAMPLE_ROWS if sample_rows is None else sample_rows, table.n_rows)
    picks = np.sort(rng.choice(table.n_rows, size=m, replace=False)).astype(np.int64)
    counts = np.zeros((table.n_chunks, 3), dtype=np.int64)
    classes: dict[str, dict[Any, int]] | None = {n: {} for n in SPLIT_NAMES}
    moments = {n: Moments() for n in SPLIT_NAMES}
    numeric, missing, parts = True, 0, []
    for i in range(table.n_chunks):
        df = table.read(i)
        y = df[target]
        has = y.notna().to_numpy()
        missing += int((~has).sum())
        split = hash_split(df.index.to_numpy(), seed)
        numeric = numeric and pd.api.types.is_numeric_dtype(y) \
            and not pd.api.types.is_bool_dtype(y)
        for k, name in enumerate(SPLIT_NAMES):
            rows = has & (split == k)
            counts[i, k] = int(rows.sum())
            if classes is not None:
                for value, c in y[rows].value_counts(sort=False).items():
                    key = value.item() if hasattr(value, "item") else value
                    classes[name][key] = classes[name].get(key, 0) + int(c)
                if len(classes[name]) > MAX_CLASSES:
                    classes = None
            if numeric:
                moments[name].add(y[rows].to_numpy(dtype=np.float64))
        lo, hi = np.searchsorted(picks, [table.starts[i], table.starts[i + 1]])
        if hi > lo:
            parts.append(df.loc[picks[lo:hi]])
    sample = pd.concat(parts) if parts else table.read(0).iloc[:0]
    sample = sample[sample[target].notna()]
    return Scan(counts, missing, sample, m, classes, moments if numeric else {})


# ---- a split as a stream -------------------------------------------------------------------
@dataclass
class Encoding:
    """How a row group becomes tensors: the fitted Preprocessor and the plan's target shape."""

    pre: Any  # data.preprocess.Preprocessor
    task: str
    loss: str
    n_outputs: int

    def tensors(self, df: pd.DataFrame, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.pre.transform(df, what=what))
        y = self.pre.transform_target(df[self.pre.state["target"]])
        return x, target_tensor(y, self.task, self.loss, self.n_outputs)


class _ChunkReader(torch.utils.data.Dataset):
    """One item: a row group's rows of the split, encoded (runs in a worker when there are
    workers: it draws no random numbers)."""

    def __init__(self, stream: TableStream):
        self.stream = stream

    def __len__(self) -> int:
        return self.stream.table.n_chunks

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.stream.read_chunk(int(i))


class _Order:
    """The DataLoader's sampler: this epoch's row groups, replaced before each pass."""

    def __init__(self) -> None:
        self.chunks: list[int] = []

    def __iter__(self) -> Iterator[int]:
        return iter(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)


class TableStream(Stream):
    """One split (0 test, 1 validation, 2 training) of a table file, read by row groups.

    ``counts``: the split's rows with a target in each row group (from :func:`scan`), so
    the length is exact and a resumed epoch passes over row groups it has done without
    reading them. ``buffer_chunks``: row groups shuffled together (default: enough for
    BUFFER_BYTES of encoded inputs, at least 2). ``workers``: DataLoader worker processes
    that read and encode row groups ahead (0: the main process reads)."""

    def __init__(self, table: TableFile, split: int, seed: int, counts: np.ndarray,
                 encoding: Encoding, *, workers: int = 0, pin: bool = False,
                 buffer_chunks: int | None = None):
        self.table, self.split, self.seed = table, split, seed
        self.counts = np.asarray(counts, dtype=np.int64)
        self.encoding, self.workers, self.pin = encoding, workers, pin
        self.what = {0: "test data", 1: "validation data", 2: "training data"}[split]
        pre = encoding.pre.state
        self.columns = [c for c in pre["columns"] if c not in pre["dropped"]] + [pre["target"]]
        if buffer_chunks is None:
            per_chunk = max(1.0, float(self.counts.mean()) * (encoding.pre.n_numeric
                                                                + len(pre["embed"])) * 4)
            buffer_chunks = max(2, int(BUFFER_BYTES // per_chunk))
        self.buffer_chunks = buffer_chunks
        self._loader: torch.utils.data.DataLoader | None = None
        self._order = _Order()

    def __len__(self) -> int:
        return int(self.counts.sum())

    # ---- reading ------------------------------------------------------------------------
    def rows(self, i: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Row group ``i``'s rows of this split that have a target, as read."""
        df = self.table.read(i, self.columns if columns is None else
                             list(dict.fromkeys([*columns, self.encoding.pre.state["target"]])))
        keep = (hash_split(df.index.to_numpy(), self.seed) == self.split) \
            & df[self.encoding.pre.state["target"]].notna().to_numpy()
        return df[keep]

    def read_chunk(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoding.tensors(self.rows(i), self.what)

    def _read(self, chunks: list[int]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.workers == 0 or len(chunks) < 2:
            return (self.read_chunk(i) for i in chunks)
        self._order.chunks = chunks
        if self._loader is None:
            self._loader = torch.utils.data.DataLoader(
                _ChunkReader(self), sampler=self._order, batch_size=None,
                num_workers=self.workers, pin_memory=self.pin, persistent_workers=True,
                prefetch_factor=2, generator=torch.Generator().manual_seed(0))
        return iter(self._loader)

    # ---- epochs -------------------------------------------------------------------------
    def n_batches(self, batch_size: int, shard: tuple[int, int] = (0, 1)) -> int:
        total = math.ceil(used_rows(len(self), batch_size) / batch_size)
        return math.ceil(total / shard[1])

    def epoch(self, batch_size: int, gen: torch.Generator | None, *, skip: int = 0,
              shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, (rank, world) = len(self), shard
        total = used_rows(n, batch_size) if gen is not None else n
        n_global = math.ceil(total / batch_size)
        # this rank's batches: every world-th one, padded with its first to the same count
        mine = list(range(rank, n_global, world))
        pad_src = mine[0] if mine else 0
        n_pad = max(0, math.ceil(n_global / world) - max(len(mine), skip))
        yielded = set(mine[skip:])
        keep = np.array(sorted(yielded | ({pad_src} if n_pad else set())), dtype=np.int64)
        if len(keep) == 0:
            return
        nonempty = np.flatnonzero(self.counts)
        seed = None
        if gen is None:  # every row in file order: one row group at a time
            groups = [nonempty[i:i + 1] for i in range(len(nonempty))]
        else:  # row groups in a random order, shuffled together buffer_chunks at a time
            seed = int(torch.randint(2**62, (1,), generator=gen).item())
            order = np.random.default_rng(seed).permutation(nonempty)
            b = self.buffer_chunks
            groups = [order[i:i + b] for i in range(0, len(order), b)]
        bounds = np.concatenate([[0], np.cumsum([self.counts[g].sum() for g in groups])]
                                ).astype(np.int64)
        # buffers that hold a row of a batch this rank yields (a resumed epoch's done ones,
        # and other ranks' buffers, are not read)
        needed = [g for g in range(len(groups)) if bounds[g] < total
                  and _overlaps(keep, int(bounds[g]) // batch_size,
                                (min(int(bounds[g + 1]), total) - 1) // batch_size)]
        reader = self._read([int(c) for g in needed for c in groups[g]])
        saved = None
        xs: list[torch.Tensor] = []
        ys: list[torch.Tensor] = []
        have, k = 0, 0  # rows held (epoch positions k * batch_size on), the next batch
        for j, g in enumerate(needed):
            parts = [next(reader) for _ in groups[g]]
            x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
            if seed is not None:  # each buffer its own generator: a skipped one draws nothing
                perm = torch.from_numpy(np.random.default_rng([seed, g]).permutation(len(x)))
                x, y = x[perm], y[perm]
            start, end = int(bounds[g]), int(bounds[g + 1])
            if end > total:  # the last row of an epoch whose last batch would hold one
                x, y = x[: total - start], y[: total - start]
            if have == 0:  # rows before the next whole batch belong to batches passed over
                k = max(k, -(-start // batch_size))
                x, y = x[k * batch_size - start:], y[k * batch_size - start:]
            xs.append(x)
            ys.append(y)
            have += len(x)
            while have and (have >= batch_size or k * batch_size + have >= total):
                bx, by, xs, ys = _take(xs, ys, batch_size)
                have -= len(bx)
                if k in yielded:
                    yield bx, by
                if n_pad and k == pad_src:
                    saved = (bx, by)
                k += 1
            if j + 1 < len(needed) and needed[j + 1] != g + 1:  # held rows: a passed batch
                xs, ys, have = [], [], 0
        for _ in range(n_pad):
            if saved is not None:
                yield saved

    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` rows drawn with ``seed`` from at most 16 row groups chosen with it (a
        uniform draw over every row group would cost a pass over the file)."""
        rng = np.random.default_rng(seed)
        nonempty = np.flatnonzero(self.counts)
        chosen = np.sort(rng.choice(nonempty, size=min(16, len(nonempty)), replace=False))
        available = int(self.counts[chosen].sum())
        pick = np.sort(rng.choice(available, size=min(n, available), replace=False))
        bounds = np.concatenate([[0], np.cumsum(self.counts[chosen])])
        xs, ys = [], []
        for j, i in enumerate(chosen):
            lo, hi = np.searchsorted(pick, [bounds[j], bounds[j + 1]])
            if hi > lo:
                x, y = self.read_chunk(int(i))
                local = torch.from_numpy(pick[lo:hi] - bounds[j])
                xs.append(x[local])
                ys.append(y[local])
        return torch.cat(xs), torch.cat(ys)

    def row_ids(self) -> RowIds:
        return RowIds(self)

    def close(self) -> None:
        self._loader = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loader": None}


def _overlaps(keep: np.ndarray, first: int, last: int) -> bool:
    """Whether a sorted ``keep`` holds a batch index in [first, last]."""
    i = int(np.searchsorted(keep, first))
    return i < len(keep) and keep[i] <= last


def _take(xs: list[torch.Tensor], ys: list[torch.Tensor], n: int):
    """The first ``n`` held rows as one batch, and the rest."""
    x, y = torch.cat(xs) if len(xs) > 1 else xs[0], torch.cat(ys) if len(ys) > 1 else ys[0]
    rest = [x[n:]] if len(x) > n else []
    return x[:n], y[:n], rest, ([y[n:]] if len(x) > n else [])


class RowIds(Sequence):
    """The file row index of each row of a split, in file order, found when asked (a
    row group's target column is read): label issues and worst rows name a few of them."""

    def __init__(self, stream: TableStream):
        self.stream = stream
        self.bounds = np.concatenate([[0], np.cumsum(stream.counts)]).astype(np.int64)
        self._cache: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        chunk = int(np.searchsorted(self.bounds, i, side="right") - 1)
        if self._cache is None or self._cache[0] != chunk:
            target = self.stream.encoding.pre.state["target"]
            self._cache = (chunk, self.stream.rows(chunk, [target]).index.to_numpy())
        return int(self._cache[1][i - self.bounds[chunk]])


class StreamedRows:
    """Enough of a DataFrame of a split's input columns for the report's worst rows
    (``columns``, ``index[i]``, ``iloc[i]``), read from the file when a row is asked for."""

    def __init__(self, stream: TableStream, columns: list[str]):
        self.columns = pd.Index(columns)
        self.index = RowIds(stream)
        self.stream = stream

    @property
    def iloc(self) -> StreamedRows:
        return self

    def __getitem__(self, i: int) -> pd.Series:
        row_id = self.index[int(i)]
        chunk = self.stream.table.chunk_of(row_id)
        return self.stream.table.read(chunk, list(self.columns)).loc[row_id]
