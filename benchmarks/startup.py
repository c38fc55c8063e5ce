"""How fast nnrecipe answers: `--help`, a bad option, and `predict` on 1,000 rows, each
against `python -c "import torch"` on the same machine in the same run.

Every command runs in a fresh process; the commands are interleaved (round robin) for
``--repeats`` rounds so that whatever else runs on the machine hits them all alike, and
the median wall time of each is shown, with its ratio to `import torch`.

    .venv/bin/python benchmarks/startup.py [--repeats 7]

Targets (issue 14): `--help` and a bad option under 0.5 s; predict on 1,000 rows under
1.5 x `import torch`. The model predicted with is trained first (a 2,000-row table, a
few epochs: its size does not matter here).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

NNRECIPE = str(Path(sys.executable).with_name("nnrecipe"))


def table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, 12)), columns=[f"x{i}" for i in range(12)])
    df["colour"] = rng.choice(list("abcde"), rows)
    df["y"] = (df["x0"] + df["x1"] - df["x2"] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return df


def timed(cmd: list[str], expect: int) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}, expected {expect}: "
                         f"{done.stderr.strip()[-300:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        table(2_000, 0).to_csv(tmp / "train.csv", index=False)
        table(1_000, 1).drop(columns="y").to_csv(tmp / "new.csv", index=False)
        subprocess.run([NNRECIPE, "train", str(tmp / "train.csv"), "--target", "y", "--out",
                        str(tmp / "run"), "--max-epochs", "5", "-q"], check=True,
                       capture_output=True)
        commands = {
            "import torch": ([sys.executable, "-c", "import torch"], 0),
            "nnrecipe --help": ([NNRECIPE, "--help"], 0),
            "nnrecipe train --help": ([NNRECIPE, "train", "--help"], 0),
            "bad option": ([NNRECIPE, "train", "--no-such-option"], 2),
            "predict 1,000 rows": ([NNRECIPE, "predict", str(tmp / "run"), str(tmp / "new.csv"),
                                    "--out", str(tmp / "p.csv"), "--overwrite"], 0),
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        for cmd, code in commands.values():  # one untimed warm-up (disk cache)
            timed(cmd, code)
        for _ in range(args.repeats):
            for name, (cmd, code) in commands.items():
                times[name].append(timed(cmd, code))
    torch_s = statistics.median(times["import torch"])
    print("command | median s | min s | max s | × import torch | target")
    print("---|---|---|---|---|---")
    targets = {"nnrecipe --help": "< 0.5 s", "nnrecipe train --help": "< 0.5 s",
               "bad option": "< 0.5 s", "predict 1,000 rows": "< 1.5 ×"}
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name} | {med:.3f} | {min(ts):.3f} | {max(ts):.3f} | {med / torch_s:.2f} | "
              f"{targets.get(name, '')}")
    print(f"\n{args.repeats} interleaved rounds, fresh processes, wall seconds.")


if __name__ == "__main__":
    main()
