"""Plant each fault the doctor knows, train, and report whether it was found, when, and
(for the faults --auto-fix repairs) the test metric without and with the repair.

Base data: scikit-learn's breast-cancer table (569 rows, 30 features, binary), changed per
fault through plan overrides (--set) or by making the data have the fault.

    .venv/bin/python benchmarks/planted_faults.py [--max-epochs 80] [--only CODE ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer

import nnrecipe

warnings.filterwarnings("ignore")
Frame = Callable[[pd.DataFrame], pd.DataFrame]
NO_BN = {"model.batchnorm": False}


def _same(df: pd.DataFrame) -> pd.DataFrame:
    return df


def _with(**cols: Callable[[pd.DataFrame], object]) -> Frame:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for name, make in cols.items():
            df[name] = make(df)
        return df
    return change


def _holes(df):
    df = df.copy()
    df.loc[df.index[::5], "mean radius"] = np.nan
    return df


def _duplicated(df):
    return pd.concat([df, df.sample(200, random_state=0)], ignore_index=True)


def _imbalanced(df):
    return pd.concat([df[df.target == 1], df[df.target == 0].head(25)], ignore_index=True)


def _unscaled(df):
    df = df.copy()
    df["mean area"] *= 1000
    return df


def _shuffled(df):
    df = df.copy()
    df["target"] = df["target"].sample(frac=1, random_state=0).to_numpy()
    return df


def _flipped(df):
    df = df.copy()
    idx = df.sample(frac=0.08, random_state=1).index
    df.loc[idx, "target"] = 1 - df.loc[idx, "target"]
    return df


# code: (how the fault is planted, data change, overrides, try --auto-fix?)
FAULTS: dict[str, tuple[str, Frame, dict, bool]] = {
    "missing_values": ("20% of one column blank", _holes, {}, False),
    "constant_feature": ("a constant column", _with(const=lambda d: 1.0), {}, False),
    "id_like_feature": ("a row-id column", _with(row_id=lambda d: np.arange(len(d))), {}, False),
    "target_leakage": ("a column = the target", _with(leak=lambda d: d.target * 3 + 1), {},
                       False),
    "duplicates_across_splits": ("200 duplicated rows", _duplicated, {}, False),
    "class_imbalance": ("25 of 212 negatives kept", _imbalanced, {}, False),
    "unscaled_features": ("data.scale=none, a column x1000", _unscaled, {"data.scale": "none"},
                          False),
    "too_many_parameters": ("width 1024 x 3 layers", _same,
                            {"model.width": 1024, "model.hidden_layers": 3}, False),
    "loss_activation_mismatch": ("sigmoid output into bce", _same,
                                 {"model.output_activation": "sigmoid"}, False),
    "init_activation_mismatch": ("glorot init with relu", _same,
                                 {"model.init": "glorot_uniform"}, False),
    "lr_out_of_range": ("adam lr=0.5", _same, {"optimizer.lr": 0.5}, False),
    "large_batch": ("batch 1024", _same, {"train.batch_size": 1024}, False),
    "bad_initial_loss": ("init_scale=30", _same, {"model.init_scale": 30, **NO_BN}, False),
    "cannot_overfit_batch": ("lr=1e-9", _same, {"optimizer.lr": 1e-9}, True),
    "no_gradient": ("zero init", _same, {"model.init": "zeros"}, False),
    "no_signal": ("labels shuffled", _shuffled, {}, False),
    "nan_loss": ("sgd lr=10, no BatchNorm", _same,
                 {"optimizer.name": "sgd", "optimizer.lr": 10, **NO_BN}, True),
    "exploding_gradients": ("sgd lr=10, no BatchNorm", _same,
                            {"optimizer.name": "sgd", "optimizer.lr": 10, **NO_BN}, True),
    "vanishing_gradients": ("10 sigmoid layers, normal init", _same,
                            {"model.activation": "sigmoid", "model.hidden_layers": 10,
                             "model.init": "normal", **NO_BN}, True),
    "dead_relu": ("bias_init=-5", _same, {"model.bias_init": -5.0, **NO_BN}, True),
    "saturated_activations": ("tanh, init_scale=10", _same,
                              {"model.activation": "tanh", "model.init_scale": 10, **NO_BN},
                              False),
    "loss_divergence": ("sgd lr=3, no BatchNorm", _same,
                        {"optimizer.name": "sgd", "optimizer.lr": 3, **NO_BN}, True),
    "loss_oscillation": ("adam lr=1, no dropout", _same,
                         {"optimizer.lr": 1.0, "model.dropout": 0.0}, False),
    "slow_convergence": ("lr=1e-7", _same, {"optimizer.lr": 1e-7}, False),
    "overfitting": ("width 512 x 3, no dropout, no early stop", _same,
                    {"model.width": 512, "model.hidden_layers": 3, "model.dropout": 0.0,
                     "train.early_stopping.patience": 0}, False),
    "underfitting": ("linear model, lr=1e-5", _shuffled,
                     {"model.hidden_layers": 0, "optimizer.lr": 1e-5}, False),
    "noisy_validation": ("lr=0.05, no BatchNorm", _same,
                         {"optimizer.lr": 0.05, **NO_BN}, False),
    "label_issues": ("8% of labels flipped", _flipped, {}, False),
}


def run(df: pd.DataFrame, overrides: dict, auto_fix: bool, out: Path) -> nnrecipe.Run:
    return nnrecipe.fit(df, "target", overrides=overrides, auto_fix=auto_fix, out=out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-epochs", type=int, default=80)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = load_breast_cancer(as_frame=True).frame
    rows = ["| fault (code) | planted | found | severity | epoch | test acc. plain | "
            "with --auto-fix | repairs |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (code, (how, change, over, fix)) in enumerate(FAULTS.items()):
            if args.only and code not in args.only:
                continue
            t0 = time.perf_counter()
            over = {"train.max_epochs": args.max_epochs, **over}
            data = change(base)
            plain = run(data, over, False, Path(tmp) / f"{i}p")
            hit = [f for f in plain.findings if f.code == code]
            acc = plain.evaluation["metrics"]["accuracy"]
            fixed_acc, n_rep = "", ""
            if fix:
                fixed = run(data, over, True, Path(tmp) / f"{i}f")
                fixed_acc = f"{fixed.evaluation['metrics']['accuracy']:.3f}"
                n_rep = ", ".join(f"{r['finding']}→{r['change']}" for r in fixed.repairs)
            f = hit[0] if hit else None
            rows.append(f"| {code} | {how} | {'yes' if f else 'NO'} | "
                        f"{f.severity if f else ''} | {f.epoch or '' if f else ''} | "
                        f"{acc:.3f} | {fixed_acc} | {n_rep} |")
            print(rows[-1], f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
