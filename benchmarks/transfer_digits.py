"""Transfer learning on digits, measured: a convnet trained on digits 0-4 starts networks for
5-9 from a few examples per class; each strategy against training from scratch on the same
examples, over several random draws (the rest of 5-9 is the test set).

    .venv/bin/python benchmarks/transfer_digits.py [--shots 5] [--draws 5] [--out DIR]

Prints each draw's test accuracy and the mean per strategy. Not a timed test: accuracy on
tiny training sets varies a lot from draw to draw, so compare the means."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

import nnrecipe.api as api

STRATEGIES = {"scratch": None, "auto": {}, "freeze": {"transfer.strategy": "freeze"},
              "fine_tune": {"transfer.strategy": "fine_tune"},
              "retrain": {"transfer.strategy": "retrain"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, default=5, help="training examples per class")
    ap.add_argument("--draws", type=int, default=5, help="random few-shot sets")
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = args.out or Path(tempfile.mkdtemp(prefix="transfer-"))
    root.mkdir(parents=True, exist_ok=True)
    d = load_digits()
    x, y = (d.images * 16).clip(0, 255).astype(np.uint8), d.target
    np.savez(root / "d04.npz", x=x[y < 5], y=y[y < 5])
    src = api.fit(root / "d04.npz", overrides={"seed": 0}, out=root / "src")
    print(f"source (digits 0-4): test accuracy {src.evaluation['metrics']['accuracy']:.3f}")
    high = np.flatnonzero(y >= 5)
    acc: dict[str, list[float]] = {k: [] for k in STRATEGIES}
    for draw in range(args.draws):
        rng = np.random.default_rng(200 + draw)  # the draws tests/e2e/test_transfer.py uses
        few = np.concatenate([rng.choice(high[y[high] == c], args.shots, replace=False)
                              for c in range(5, 10)])
        rest = np.setdiff1d(high, few)
        np.savez(root / f"few{draw}.npz", x=x[few], y=y[few])
        np.savez(root / f"test{draw}.npz", x=x[rest], y=y[rest])
        for name, overrides in STRATEGIES.items():
            run = api.fit(root / f"few{draw}.npz", test=root / f"test{draw}.npz",
                          overrides={"seed": draw, **(overrides or {})},
                          out=root / f"{name}{draw}",
                          pretrained=None if overrides is None else root / "src")
            acc[name].append(run.evaluation["metrics"]["accuracy"])
            chosen = run.plan["transfer.strategy"] if "transfer.strategy" in run.plan else "-"
            print(f"draw {draw} {name:9s} ({chosen:9s}) accuracy {acc[name][-1]:.3f}",
                  flush=True)
    print(f"\n{args.shots} examples per class, {args.draws} draws, {len(rest)} test images")
    for name, values in acc.items():
        print(f"{name:9s} mean {np.mean(values):.3f}  " + " ".join(f"{v:.3f}" for v in values))
    print(f"runs in {root}")


if __name__ == "__main__":
    main()
