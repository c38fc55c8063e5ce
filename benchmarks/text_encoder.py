"""The packaged sentence encoder against the scratch GRU, measured: the same labelled texts, the
same splits, several seeds; test accuracy, log loss and time for each.

    .venv/bin/python benchmarks/text_encoder.py [--seeds 0 1 2] [--per-class N] [--out DIR]

The data (tests/data/docstrings.csv, 1,200 rows): the first paragraph of the docstrings of
public functions, classes and methods of four libraries, labelled by library: numpy
(numpy, .linalg, .random, .fft, .ma), pandas (pandas, .api.types), torch (torch, .nn,
.nn.functional, .optim, .utils.data) and matplotlib (.pyplot, .axes, .figure, .colors); one
line of 4 to 200 characters each ("Return the cumulative sum of the elements along a given
axis."), deduplicated, 300 drawn at random per library. It was made from numpy 2.4.6,
pandas, torch 2.13.0 and matplotlib as installed in the project's environment with
``--rebuild-data`` (other versions give other lines), and is kept in the repository so every
run reads the same texts. Nothing is downloaded.

Each seed makes one stratified 70/15/15 split (nnrecipe splits by the plan's seed, so both
systems train, stop and test on the same rows) and trains both with nnrecipe's own plan:
``nnrecipe train`` as a subprocess, once without and once with ``--pretrained
all-minilm-l6-v2``. Printed per run: test accuracy and log loss, the strategy the plan
chose, the training epochs and their seconds, and the command's wall time (process start,
imports, loading the encoder, the similarity probe, training, evaluation and the report).
``--per-class N`` uses the first N texts of each library instead of all 300."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import warnings
from importlib import import_module
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "docstrings.csv"
NNRECIPE = Path(sys.executable).parent / "nnrecipe"
SYSTEMS = {"scratch GRU": [], "all-minilm-l6-v2": ["--pretrained", "all-minilm-l6-v2"]}
LIBRARIES = {"numpy": ["numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.ma"],
             "pandas": ["pandas", "pandas.api.types"],
             "torch": ["torch", "torch.nn", "torch.nn.functional", "torch.optim",
                       "torch.utils.data"],
             "matplotlib": ["matplotlib.pyplot", "matplotlib.axes", "matplotlib.figure",
                            "matplotlib.colors"]}
PER_LIBRARY = 300
SIGNATURE = re.compile(r"^[\w.]+\(.*\)")


def summaries(modules: list[str]) -> list[str]:
    """The first paragraph of each public docstring, on one line, 4 words to 200
    characters, signature lines left out, each line once."""
    seen: set[str] = set()
    out = []
    for name in modules:
        module = import_module(name)
        for attr in sorted(dir(module)):
            if attr.startswith("_"):
                continue
            try:
                obj = getattr(module, attr)
            except Exception:  # noqa: BLE001 - a lazy attribute that fails to load: skip it
                continue
            objs = [obj]
            if inspect.isclass(obj):
                objs += [getattr(obj, a, None) for a in sorted(vars(obj)) if not a.startswith("_")]
            for o in objs:
                if o is None or not (inspect.isroutine(o) or inspect.isclass(o)):
                    continue
                doc = inspect.getdoc(o)
                if not doc:
                    continue
                line = " ".join(doc.strip().split("\n\n")[0].split())
                if SIGNATURE.match(line):
                    continue  # "name(args)": a signature, not a sentence
                if len(line.split()) < 4 or len(line) > 200 or line in seen:
                    continue
                seen.add(line)
                out.append(line)
    return out


def rebuild_data(path: Path) -> None:
    rows = []
    for label, modules in LIBRARIES.items():
        with warnings.catch_warnings():  # deprecated attributes warn when read
            warnings.simplefilter("ignore")
            lines = summaries(modules)
        rows += [(line, label) for line in random.Random(12).sample(lines, PER_LIBRARY)]
    random.Random(0).shuffle(rows)
    pd.DataFrame(rows, columns=["text", "library"]).to_csv(path, index=False)
    print(f"wrote {len(rows)} rows to {path}")


def train(csv: Path, seed: int, extra: list[str], out: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run([str(NNRECIPE), "train", str(csv), "--target", "library",
                           "--modality", "text", "--seed", str(seed), "--out", str(out),
                           "--quiet", *extra], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"nnrecipe train failed ({done.returncode}): {done.stderr[-2000:]}")
    ev = json.loads((out / "evaluation.json").read_text())
    stages = json.loads((out / "environment.json").read_text())["stages"]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    plan = yaml.safe_load((out / "plan.yaml").read_text())["decisions"]
    strategy = plan["transfer.strategy"]["value"] if "transfer.strategy" in plan else "-"
    return {"accuracy": ev["metrics"]["accuracy"], "log_loss": ev["metrics"]["log_loss"],
            "epochs": len(metrics), "train_s": stages.get("epochs", float("nan")),
            "wall_s": wall, "strategy": strategy}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--per-class", type=int, default=None, help="texts per library (all: 300)")
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here")
    ap.add_argument("--data", type=Path, default=DATA, help="the labelled texts")
    ap.add_argument("--rebuild-data", action="store_true",
                    help="write --data again from the installed libraries, then stop")
    args = ap.parse_args()
    if args.rebuild_data:
        rebuild_data(args.data)
        return
    root = args.out or Path(tempfile.mkdtemp(prefix="text-encoder-"))
    root.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(args.data)
    if args.per_class:
        df = df.groupby("library", sort=True).head(args.per_class).reset_index(drop=True)
    csv = root / "docstrings.csv"
    df.to_csv(csv, index=False)
    print(f"{len(df)} texts, {df['library'].nunique()} libraries; seeds {args.seeds}")
    print(f"{'system':18s} {'seed':>4s} {'accuracy':>8s} {'log_loss':>8s} {'epochs':>6s} "
          f"{'train_s':>7s} {'wall_s':>7s}  strategy", flush=True)
    results: dict[str, list[dict]] = {name: [] for name in SYSTEMS}
    for seed in args.seeds:
        for name, extra in SYSTEMS.items():
            r = train(csv, seed, extra, root / f"{name.split()[0]}-{seed}")
            results[name].append(r)
            print(f"{name:18s} {seed:4d} {r['accuracy']:8.4f} {r['log_loss']:8.4f} "
                  f"{r['epochs']:6d} {r['train_s']:7.1f} {r['wall_s']:7.1f}  {r['strategy']}",
                  flush=True)
    print()
    for name, rs in results.items():
        acc, loss = [r["accuracy"] for r in rs], [r["log_loss"] for r in rs]
        print(f"{name:18s} mean accuracy {np.mean(acc):.4f} ± {np.std(acc):.4f}, log loss "
              f"{np.mean(loss):.4f} ± {np.std(loss):.4f}, train "
              f"{np.mean([r['train_s'] for r in rs]):.1f} s, wall "
              f"{np.mean([r['wall_s'] for r in rs]):.1f} s")
    print(f"runs in {root}")


if __name__ == "__main__":
    main()
