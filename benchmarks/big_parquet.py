"""A table larger than memory: one epoch on a 10,000,000 x 50 numeric Parquet file.

Writes (seeded, streaming with ``pyarrow.parquet.ParquetWriter``: never the whole table in
memory) ``--cols`` float32 N(0,1) columns f0.. and a binary target ``y`` = 1[noisy linear
score > 0], in row groups of ``--row-group`` rows, to ``--path`` (kept and reused when the
file exists), then trains through the library in a child process:

    nnrecipe.fit(PATH, "y", overrides={"train.max_epochs": 1, "train.batch_size": 1024})

(``--batch-size 0``: the plan's own batch size, 32, whose per-step cost rather than the
reading would then be what is measured; ``--no-preflight``: skip the doctor's pre-flight
training runs on the in-memory sample) with ``data.loader`` left to its rule (at this
size it chooses stream: read by row groups, profiled from a seeded sample, split by hash;
``--loader stream`` forces it on a smaller table). The child reports its peak resident
memory (``VmHWM`` in /proc/self/status, and the largest of its DataLoader worker
processes from ``getrusage(RUSAGE_CHILDREN)``), against the 1.5 GB target, and the epoch's
training rows per second (training rows over the epoch's seconds in the run's
metrics.jsonl, validation included).

    .venv/bin/python benchmarks/big_parquet.py [--rows 10000000] [--cols 50]
        [--path /tmp/nnrecipe-big.parquet] [--row-group 100000] [--loader auto|stream]
        [--batch-size 1024] [--no-preflight]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_BYTES = 1.5e9
SEED = 0


def generate(path: Path, rows: int, cols: int, row_group: int, seed: int = SEED) -> None:
    """The table, one row group at a time (the writer holds one in memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    w = rng.standard_normal(cols)
    names = [f"f{i}" for i in range(cols)]
    tmp = path.with_suffix(".part")
    writer = None
    try:
        for start in range(0, rows, row_group):
            n = min(row_group, rows - start)
            x = rng.standard_normal((n, cols), dtype=np.float32)
            y = (x @ w / np.sqrt(cols) + 0.5 * rng.standard_normal(n) > 0).astype(np.int8)
            table = pa.table({**{c: x[:, i] for i, c in enumerate(names)}, "y": y})
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=n)
    finally:
        if writer is not None:
            writer.close()
    tmp.rename(path)


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def child(path: Path, out: Path, loader: str, batch_size: int, preflight: bool) -> None:
    """Train one epoch through the library; print one JSON line of figures."""
    import nnrecipe

    overrides: dict = {"train.max_epochs": 1}
    if loader != "auto":
        overrides["data.loader"] = loader
    if batch_size:
        overrides["train.batch_size"] = batch_size
    t0 = time.perf_counter()
    run = nnrecipe.fit(str(path), "y", overrides=overrides, out=out, preflight=preflight)
    wall = time.perf_counter() - t0
    metrics = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text()
               .splitlines() if line]
    epoch_s = sum(m["seconds"] for m in metrics if "seconds" in m)
    env = json.loads((run.path / "environment.json").read_text())
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({
        "wall_s": wall, "epoch_s": epoch_s, "stages": env.get("stages"),
        "train_rows": run.profile.splits["train"], "rows": run.profile.n_rows,
        "loader": run.plan["data.loader"],
        "loader_reason": run.plan.decisions["data.loader"].reason,
        "statistics": run.plan.derived["data.statistics"].reason,
        "workers": run.plan["data.workers"], "batch_size": run.plan["train.batch_size"],
        "peak_rss": _status("VmHWM"), "worker_peak_rss": workers,
        "metric": run.evaluation["metrics"][run.evaluation["main_metric"]],
        "baseline": run.evaluation["baseline"]["metrics"][run.evaluation["main_metric"]]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--cols", type=int, default=50)
    ap.add_argument("--path", type=Path, default=Path(tempfile.gettempdir())
                    / "nnrecipe-big.parquet")
    ap.add_argument("--row-group", type=int, default=100_000)
    ap.add_argument("--loader", choices=("auto", "stream", "memory"), default="auto")
    ap.add_argument("--batch-size", type=int, default=1024, help="0: the plan's rule")
    ap.add_argument("--no-preflight", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.path, args.out, args.loader, args.batch_size, not args.no_preflight)
        return
    if not args.path.exists():
        t0 = time.perf_counter()
        generate(args.path, args.rows, args.cols, args.row_group)
        print(f"generated {args.path} in {time.perf_counter() - t0:.1f} s")
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(args.path).metadata
    print(f"table {args.path}: {meta.num_rows:,} rows x {meta.num_columns} columns, "
          f"{meta.num_row_groups} row groups, {args.path.stat().st_size / 2**30:.2f} GiB")
    with tempfile.TemporaryDirectory(prefix="nnrecipe-big-parquet-") as work:
        cmd = [sys.executable, __file__, "--child", "--path", str(args.path), "--out",
               str(Path(work) / "run"), "--loader", args.loader, "--batch-size",
               str(args.batch_size)] + (["--no-preflight"] if args.no_preflight else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"training failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = r["peak_rss"]
    print(f"data.loader = {r['loader']}: {r['loader_reason']}")
    print(f"statistics {r['statistics']}")
    print(f"data.workers = {r['workers']}, batch size {r['batch_size']}")
    print(f"one epoch: {r['train_rows']:,} training rows in {r['epoch_s']:.1f} s "
          f"({r['train_rows'] / r['epoch_s']:,.0f} rows/s, validation included)")
    print(f"total wall (prepare, pre-flight, epoch, test scoring, report): "
          f"{r['wall_s']:.1f} s; stages: {r['stages']}")
    print(f"peak RSS: {peak / 1e9:.2f} GB in the training process "
          f"({'under' if peak < TARGET_BYTES else 'OVER'} the 1.5 GB target); largest "
          f"worker process {r['worker_peak_rss'] / 1e9:.2f} GB")
    print(f"test metric {r['metric']:.4f} (baseline {r['baseline']:.4f})")


if __name__ == "__main__":
    main()
