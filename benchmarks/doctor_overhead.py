"""Overhead of the doctor's live monitor on nnrecipe's training loop.

The same training (same TabularMLP from a real plan, same initial weights, same seeded
data) is run without watchers and with ``LiveMonitor`` at its default sampling rate
(statistics every 50 steps), in interleaved repeats so machine noise hits both. Prints the
median samples/s of each and the ratio with / without (1.00 = no overhead; the target is
≤ 1.05 in time, i.e. a ratio of samples/s ≥ 0.95). Pre-flight is not included: it runs
once before training (benchmarks/README.md gives its own timing).

    .venv/bin/python benchmarks/doctor_overhead.py [--rows 100000] [--features 50]
        [--epochs 2] [--batch-size 32] [--repeats 5] [--threads 1] [--sample-every 50]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from loop_overhead import make_bench_plan, make_data  # same data and plan as the loop bench
from torch import nn

from nnrecipe.doctor import LiveMonitor
from nnrecipe.models import build_mlp
from nnrecipe.train import fit


def timed(model: nn.Module, plan, x, y, watchers) -> tuple[float, float]:
    t0 = time.perf_counter()
    h = fit(model, plan, (x, y), None, loss_fn=nn.BCEWithLogitsLoss(), watchers=watchers,
            progress=False)
    return time.perf_counter() - t0, h.epochs[-1]["train_loss"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sample-every", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y = make_data(args.rows, args.features, seed=0)
    plan = make_bench_plan(x, y, args)
    torch.manual_seed(0)
    init = build_mlp(plan, args.features, [])
    times: dict[str, list[float]] = {"plain": [], "doctor": []}
    losses: dict[str, float] = {}
    for r in range(args.repeats):
        order = ("plain", "doctor") if r % 2 == 0 else ("doctor", "plain")
        for name in order:
            watchers = [LiveMonitor(sample_every=args.sample_every)] if name == "doctor" else []
            seconds, losses[name] = timed(copy.deepcopy(init), plan, x, y, watchers)
            times[name].append(seconds)
    samples = args.rows * args.epochs
    plain, doctor = (statistics.median(times[k]) for k in ("plain", "doctor"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {args.rows} rows x "
          f"{args.features} features, {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.repeats} interleaved repeats, LiveMonitor(sample_every={args.sample_every})")
    print(f"{'loop':<16}{'median s':>10}{'samples/s':>12}")
    print(f"{'without doctor':<16}{plain:>10.2f}{samples / plain:>12.0f}")
    print(f"{'with doctor':<16}{doctor:>10.2f}{samples / doctor:>12.0f}")
    print(f"time ratio with/without: {doctor / plain:.3f}  "
          f"(final train loss {losses['plain']:.6f} vs {losses['doctor']:.6f}: the monitor "
          "only reads)")


if __name__ == "__main__":
    main()
