"""The big-table case: `nnrecipe train` on a 1,000,000 x 50 numeric CSV, one epoch.

Generates (seeded) a numeric CSV with a binary target column ``y`` under a temporary
directory, or uses ``--csv PATH`` (generated there if the file does not exist), then runs

    nnrecipe train CSV --target y --max-epochs 1 --quiet --out <tmpdir>/run

as a subprocess and reports: the time ``pandas.read_csv`` takes on the file (measured
separately, in this process), the epoch time (``seconds`` in the run's metrics.jsonl), the
total wall time of the command, and its peak resident memory (``/usr/bin/time -v`` when
available, else ``getrusage(RUSAGE_CHILDREN)``), against the 4 GB target. A psutil poll of the
child also records when the peak happened (seconds after start) and the memory over time.

    .venv/bin/python benchmarks/big_table.py [--rows 1000000] [--features 50] [--csv PATH]
        [--keep] [--profile OUT.prof] [--threads N]

``--profile`` runs the command under ``python -m cProfile -o OUT.prof`` (slower) and prints
the nnrecipe functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_BYTES = 4 * 1024**3
SEED = 0
NNRECIPE = Path(sys.executable).with_name("nnrecipe")


def generate_csv(path: Path, rows: int, features: int, seed: int = SEED) -> None:
    """``features`` N(0,1) columns f0.. (4 decimals) and ``y`` = 1[noisy linear score > 0],
    written in chunks so generating never holds the whole table as text."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(features)
    cols = [f"f{i}" for i in range(features)] + ["y"]
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(",".join(cols) + "\n")
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            x = rng.standard_normal((n, features)).round(4)
            y = (x @ w / np.sqrt(features) + 0.5 * rng.standard_normal(n) > 0).astype(int)
            df = pd.DataFrame(x, columns=cols[:-1])
            df["y"] = y
            df.to_csv(fh, header=False, index=False, float_format="%.4f")
    tmp.rename(path)


class RssPoller(threading.Thread):
    """Samples the memory of a process and its children every ``every`` seconds: the sum
    of PSS (proportional set size: pages shared by forked workers are split between them,
    not counted twice) where the kernel offers it, else the sum of RSS."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int, int]] = []  # (seconds, bytes, processes)
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        t0 = time.perf_counter()
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._halt.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                total = sum(_pss(p) for p in procs)
            except psutil.NoSuchProcess:
                break
            except psutil.AccessDenied:
                continue
            self.samples.append((time.perf_counter() - t0, total, len(procs)))
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _pss(p) -> int:
    try:
        return p.memory_full_info().pss
    except AttributeError:  # no PSS on this platform
        return p.memory_info().rss


def gnu_time() -> str | None:
    return "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def run_train(csv: Path, out: Path, profile: Path | None, threads: int) -> dict:
    cmd = [str(NNRECIPE), "train", str(csv), "--target", "y", "--max-epochs", "1", "--quiet",
           "--out", str(out)]
    if profile is not None:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), *cmd]
    if gnu_time():
        cmd = [gnu_time(), "-v", *cmd]
    t0 = time.perf_counter()
    env = dict(os.environ)
    if threads:  # the CLI sets torch's threads from NNRECIPE_THREADS (default 1)
        env.update(NNRECIPE_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    poller = RssPoller(proc.pid)
    poller.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    poller.stop()
    if proc.returncode != 0:
        sys.exit(f"nnrecipe train failed (exit {proc.returncode}):\n{stdout}\n{stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    if m:
        peak, how = int(m.group(1)) * 1024, "/usr/bin/time -v"
    else:
        peak, how = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, "getrusage"
    polled = max(poller.samples, key=lambda s: s[1]) if poller.samples else None
    return {"wall": wall, "peak": peak, "peak_how": how, "polled_peak": polled,
            "samples": poller.samples}


def fmt_bytes(b: float) -> str:
    return f"{b / 1024**3:.2f} GiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--csv", type=Path, help="CSV to use; generated there if it does not exist")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (CSV and run)")
    ap.add_argument("--profile", type=Path, help="run under cProfile, writing this file")
    ap.add_argument("--threads", type=int, default=0,
                    help="NNRECIPE_THREADS (and OMP_NUM_THREADS) for the command "
                    "(0: leave unset, the CLI's default of 1)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nnrecipe-big-"))
    csv = args.csv or work / "big.csv"
    try:
        if not csv.exists():
            t0 = time.perf_counter()
            generate_csv(csv, args.rows, args.features)
            print(f"generated {csv} in {time.perf_counter() - t0:.1f} s")
        print(f"csv: {csv} ({csv.stat().st_size / 1024**2:,.0f} MiB)")
        import nnrecipe  # the child imports the same package (same interpreter, same env)
        print(f"nnrecipe from {Path(nnrecipe.__file__).parent}")

        t0 = time.perf_counter()
        df = pd.read_csv(csv, low_memory=False)  # as nnrecipe.data.load reads it
        load_s = time.perf_counter() - t0
        shape, frame_bytes = df.shape, int(df.memory_usage(deep=True).sum())
        del df

        r = run_train(csv, work / "run", args.profile, args.threads)
        metrics = [json.loads(line) for line in
                   (work / "run" / "metrics.jsonl").read_text().splitlines() if line]
        epoch_s = sum(m["seconds"] for m in metrics)
        evaluation = json.loads((work / "run" / "evaluation.json").read_text())
        train_rows = json.loads((work / "run" / "profile.json").read_text())["splits"]["train"]

        print(f"table {shape[0]:,} x {shape[1]} ({fmt_bytes(frame_bytes)} as a DataFrame), "
              f"{train_rows:,} training rows; torch threads: "
              f"{args.threads or 'CLI default'}; cpus {os.cpu_count()}")
        print()
        rows = [
            ("pandas.read_csv (this process)", f"{load_s:.1f} s"),
            ("epoch (metrics.jsonl seconds)", f"{epoch_s:.1f} s"),
            ("total wall (nnrecipe train)", f"{r['wall']:.1f} s"),
            ("everything but read + epoch", f"{r['wall'] - load_s - epoch_s:.1f} s"),
            (f"peak RSS ({r['peak_how']})", f"{fmt_bytes(r['peak'])} "
             f"({'under' if r['peak'] < TARGET_BYTES else 'OVER'} the 4 GiB target)"),
        ]
        if r["polled_peak"]:
            t, b, k = r["polled_peak"]
            rows.append(("peak PSS, all processes (psutil)", f"{fmt_bytes(b)} at {t:.1f} s "
                         f"({k - 1 if gnu_time() else k} process(es) then)"))
        rows.append(("test " + evaluation["main_metric"],
                     f"{evaluation['metrics'][evaluation['main_metric']]:.4f} (baseline "
                     f"{evaluation['baseline']['metrics'][evaluation['main_metric']]:.4f})"))
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
        if r["samples"]:
            step = max(1, len(r["samples"]) // 20)
            print("\nmemory over time (s: GiB, PSS sum): " + ", ".join(
                f"{t:.0f}: {b / 1024**3:.1f}" for t, b, _ in r["samples"][::step]))
        if args.profile:
            print()
            stats = pstats.Stats(str(args.profile))
            stats.sort_stats("cumulative").print_stats(r"nnrecipe|pandas/io|sklearn", 25)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
