"""Overhead of nnrecipe's training loop against a hand-written PyTorch loop.

Both loops train the same TabularMLP (built from a real Plan), from the same initial
weights, on the same in-memory synthetic tensors, with the same seed, Adam and learning
rate, doing the same work per epoch: one randperm gather, contiguous slices of
``batch_size``, forward, BCE-with-logits, zero_grad, backward, Adam step, sum of the loss.
No validation, no run directory, no progress bar. The two are run in interleaved repeats
(ours, hand, hand, ours, ours, hand, ...) so machine noise and order effects hit both; the
table shows the median samples/s of each and the ratio ours / hand-written (1.00 = no
overhead).

    .venv/bin/python benchmarks/loop_overhead.py [--rows 200000] [--features 50]
        [--epochs 3] [--batch-size 32] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import pandas as pd
import torch
from torch import nn

from nnrecipe.data import profile_table
from nnrecipe.models import build_mlp
from nnrecipe.plan import make_plan
from nnrecipe.train import fit

SEED = 0


def make_data(rows: int, features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x ~ N(0, 1) (rows, features); y binary (rows, 1) from a noisy linear score."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=g)
    w = torch.randn(features, generator=g)
    score = x @ w / math.sqrt(features) + 0.5 * torch.randn(rows, generator=g)
    y = (score > 0).float().reshape(-1, 1)
    return x, y


def make_bench_plan(x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace):
    """The plan nnrecipe would choose for this data (profiled on a 2,000-row sample, sized
    for the full row count), with epochs / batch size / seed fixed and early stopping off."""
    sample = pd.DataFrame(x[:2000].numpy(), columns=[f"f{i}" for i in range(x.shape[1])])
    sample["y"] = y[:2000, 0].numpy().astype(int)
    profile = profile_table(sample, "y")
    return make_plan(profile, len(x), {
        "seed": SEED, "train.max_epochs": args.epochs, "train.batch_size": args.batch_size,
        "train.early_stopping.patience": 0})


def run_ours(model: nn.Module, plan, x: torch.Tensor, y: torch.Tensor) -> float:
    history = fit(model, plan, (x, y), None, loss_fn=nn.BCEWithLogitsLoss(), run_dir=None,
                  progress=False)
    return history.epochs[-1]["train_loss"]


def run_hand(model: nn.Module, plan, x: torch.Tensor, y: torch.Tensor) -> float:
    """The plain PyTorch loop: the same seeding, optimizer and arithmetic as ``fit``."""
    seed, bs, epochs = plan["seed"], plan["train.batch_size"], plan["train.max_epochs"]
    torch.manual_seed(seed)                      # dropout draws
    gen = torch.Generator().manual_seed(seed)    # shuffling
    opt = torch.optim.Adam(model.parameters(), lr=plan["optimizer.lr"],
                           betas=tuple(plan["optimizer.betas"]),
                           weight_decay=plan["optimizer.weight_decay"])
    loss_fn = nn.BCEWithLogitsLoss()
    n = len(x)
    n_used = n - 1 if n % bs == 1 and n > 1 else n  # as fit: never a batch of one
    train_loss = math.nan
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        xs, ys = x[perm], y[perm]
        total = torch.zeros(())
        for i in range(0, n_used, bs):
            xb, yb = xs[i:i + bs], ys[i:i + bs]
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(xb)
        train_loss = total.item() / n_used
    return train_loss


def checksum(model: nn.Module) -> float:
    return float(sum(p.double().sum() for p in model.state_dict().values()
                     if p.is_floating_point()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads (0: torch's default, one per core)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    x, y = make_data(args.rows, args.features, SEED)
    plan = make_bench_plan(x, y, args)
    torch.manual_seed(SEED)
    initial = build_mlp(plan, args.features, [])
    n_params = sum(p.numel() for p in initial.parameters())
    samples = args.rows * args.epochs  # rows seen per run (n_used differs by at most one)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()} "
          f"(interop {torch.get_num_interop_threads()})")
    print(f"data {args.rows:,} x {args.features} (binary), batch {args.batch_size}, "
          f"{args.epochs} epoch(s), {args.repeats} repeat(s)")
    print(f"model: {plan['model.hidden_layers']} x {plan['model.width']} relu, batchnorm "
          f"{plan['model.batchnorm']}, dropout {plan['model.dropout']}, {n_params:,} params; "
          f"{plan['optimizer.name']} lr {plan['optimizer.lr']}")
    print()

    loops = {"nnrecipe.fit": run_ours, "hand-written": run_hand}
    # Untimed warm-up of each loop: the first training run in a process pays one-off costs
    # (kernel dispatch, allocator, thread pool: seconds here) that would land on whichever
    # loop happens to run first.
    n_warm = min(args.rows, 20_000)
    warm_plan = make_bench_plan(x[:n_warm], y[:n_warm], argparse.Namespace(
        epochs=1, batch_size=args.batch_size))
    for run in loops.values():
        run(copy.deepcopy(initial), warm_plan, x[:n_warm], y[:n_warm])
    rates: dict[str, list[float]] = {k: [] for k in loops}      # by wall time
    cpu_rates: dict[str, list[float]] = {k: [] for k in loops}  # by this process's CPU time
    finals: dict[str, set[tuple[float, float]]] = {k: set() for k in loops}
    for r in range(1, args.repeats + 1):
        order = list(loops.items())
        for name, run in order if r % 2 else order[::-1]:  # interleaved: AB BA AB ...
            model = copy.deepcopy(initial)
            t0, c0 = time.perf_counter(), time.process_time()
            final = run(model, plan, x, y)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            rates[name].append(samples / dt)
            cpu_rates[name].append(samples / dc)
            finals[name].add((final, checksum(model)))
            print(f"  repeat {r} {name:<13} {dt:7.2f} s wall {dc:7.2f} s cpu  "
                  f"{samples / dt:9,.0f} samples/s  final train loss {final:.6f}")

    med = {k: statistics.median(v) for k, v in rates.items()}
    cmed = {k: statistics.median(v) for k, v in cpu_rates.items()}
    print()
    print(f"{'loop':<14}{'samples/s (median)':>20}{'min':>10}{'max':>10}"
          f"{'samples/CPU-s (median)':>25}")
    for k, v in rates.items():
        print(f"{k:<14}{med[k]:>20,.0f}{min(v):>10,.0f}{max(v):>10,.0f}{cmed[k]:>25,.0f}")
    print(f"{'ours / hand':<14}{med['nnrecipe.fit'] / med['hand-written']:>20.3f}{'':>20}"
          f"{cmed['nnrecipe.fit'] / cmed['hand-written']:>25.3f}")
    print()
    ours, hand = finals["nnrecipe.fit"], finals["hand-written"]
    same = len(ours) == 1 and ours == hand
    f_ours, c_ours = next(iter(ours))
    f_hand, c_hand = next(iter(hand))
    print(f"sanity: final train loss ours {f_ours:.8f}, hand {f_hand:.8f}; weight checksum "
          f"ours {c_ours:.8f}, hand {c_hand:.8f} -> "
          f"{'identical' if same else 'DIFFERENT (see README)'}"
          + ("" if len(ours) == 1 and len(hand) == 1 else "; repeats disagree"))


if __name__ == "__main__":
    main()
