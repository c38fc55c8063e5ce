"""Where `nnrecipe train` spends its time, stage by stage, on a few bundled data sets.

Each data set is written to a CSV, then trained with the real command in a fresh process
(`nnrecipe train DATA --target y --out DIR -q`), as a user would run it. The run's
environment.json holds the stage timings (load, profile, plan, pre-flight, epochs,
after-training checks, evaluation, save, report, and the imports the command needed); the
table adds the process's wall time, measured here, and the time outside the epochs:

    outside = wall - epochs            target: outside <= max(epochs, 5 s) up to 10k rows

    .venv/bin/python benchmarks/stages.py [--sets breast_cancer,digits,...] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets

NNRECIPE = Path(sys.executable).with_name("nnrecipe")


def mixed_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """A binary table with 12 numbers (5% missing in one), a 5-level category."""
    x, y = datasets.make_classification(n_samples=rows, n_features=12, n_informative=6,
                                        random_state=seed)
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(12)])
    df["colour"] = rng.choice(list("abcde"), rows)
    df.loc[rng.random(rows) < 0.05, "x3"] = np.nan
    df["y"] = y
    return df


def bundled(name: str) -> pd.DataFrame:
    load = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits,
            "diabetes": datasets.load_diabetes, "wine": datasets.load_wine}[name]
    frame = load(as_frame=True).frame
    return frame.rename(columns={"target": "y"})


SETS = {
    "breast_cancer": lambda: bundled("breast_cancer"),  # 569 x 30, binary
    "diabetes": lambda: bundled("diabetes"),  # 442 x 10, regression
    "digits": lambda: bundled("digits"),  # 1,797 x 64, 10 classes
    "mixed_2380": lambda: mixed_table(2_380),  # numbers, a category, missing values
    "mixed_10000": lambda: mixed_table(10_000),
}


def train_once(csv: Path, out: Path) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run([str(NNRECIPE), "train", str(csv), "--target", "y", "--out", str(out),
                           "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{csv.name}: nnrecipe train failed ({done.returncode}): "
                         f"{done.stderr.strip()[-500:]}")
    env = json.loads((out / "environment.json").read_text())
    epochs = json.loads((out / "evaluation.json").read_text())["training"]["epochs"]
    return {"wall": wall, "epochs_run": epochs, **env["stages"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    ap.add_argument("--repeats", type=int, default=1, help="runs per set (the median is shown)")
    args = ap.parse_args()
    names = [s for s in args.sets.split(",") if s]
    stage_names = ["imports", "load", "profile", "plan", "preflight", "epochs",
                   "after_training", "evaluation", "save", "report"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            df = SETS[name]()
            csv = Path(tmp) / f"{name}.csv"
            df.to_csv(csv, index=False)
            runs = [train_once(csv, Path(tmp) / f"{name}-run{r}") for r in range(args.repeats)]
            med = {k: statistics.median(r.get(k, 0.0) for r in runs)
                   for k in ["wall", "total", *stage_names]}
            med["rows"], med["epochs_run"] = len(df), runs[0]["epochs_run"]
            rows.append((name, med))
            print(f"{name}: done ({med['wall']:.1f} s)", file=sys.stderr)
    head = ["data", "rows", "ep", "wall", *stage_names, "outside", "target", "ok"]
    print(" | ".join(head))
    print("|".join("---" for _ in head))
    for name, m in rows:
        outside = m["wall"] - m["epochs"]
        target = max(m["epochs"], 5.0)
        cells = [name, f"{m['rows']:,}", str(m["epochs_run"]), f"{m['wall']:.2f}",
                 *(f"{m[s]:.2f}" for s in stage_names), f"{outside:.2f}", f"{target:.2f}",
                 "yes" if outside <= target else "no"]
        print(" | ".join(cells))
    print("\nSeconds. wall: the whole process (interpreter start to exit), measured here; the "
          "stages come from the run's environment.json; outside = wall - epochs.")


if __name__ == "__main__":
    main()
