"""nnrecipe's default plan against its peers on small public tables.

    .venv/bin/python benchmarks/tabular/bench.py            # train nnrecipe, print the table
    .venv/bin/python benchmarks/tabular/bench.py --table    # print the table, train nothing
    .venv/bin/python benchmarks/tabular/bench.py --peers    # also recompute the peers

For each data set and seed one train/test split is made (80/20, stratified for
classification, ``train_test_split(random_state=seed)``); every system fits on the same
training rows and is scored on the same test rows. The peers' results are kept in
peers.json (they do not change between runs of nnrecipe); nnrecipe's latest in
nnrecipe.json. Each record is written as soon as it is measured, so an interrupted run keeps
what it finished. See README.md.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from data_sets import DATASETS, load  # noqa: E402
from systems import DESCRIPTIONS, PEERS, SYSTEMS, fit_system, system_version  # noqa: E402

PEERS_FILE = HERE / "peers.json"
NNRECIPE_FILE = HERE / "nnrecipe.json"
TEST_SIZE = 0.2
#: The primary metric of each task (ranks and gaps use it) and the secondary one shown.
PRIMARY = {"binary": "accuracy", "multiclass": "accuracy", "regression": "rmse"}
SECONDARY = {"binary": "log_loss", "multiclass": "log_loss", "regression": "r2"}
HIGHER_IS_BETTER = {"accuracy": True, "log_loss": False, "rmse": False, "r2": True}


# ---- splits and scores ---------------------------------------------------------------------------
def split(df: pd.DataFrame, target: str, task: str, seed: int
          ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The seed's train/test split of ``df`` and a fingerprint of its test rows (every
    system's record carries it, so results made from different splits cannot be mixed)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(df, test_size=TEST_SIZE, random_state=seed,
                                   stratify=df[target] if task != "regression" else None)
    digest = hashlib.sha1(np.sort(test.index.to_numpy()).tobytes()).hexdigest()[:12]
    return train, test, digest


def score(fitted, test: pd.DataFrame, target: str, task: str, classes: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score

    X, y = test.drop(columns=[target]), test[target]
    if task == "regression":
        pred = fitted.predict(X).astype(np.float64)
        return {"rmse": float(np.sqrt(mean_squared_error(y, pred))),
                "r2": float(r2_score(y, pred))}
    proba = fitted.proba(X, classes)
    proba = proba / proba.sum(axis=1, keepdims=True)
    pred = np.asarray(classes)[np.argmax(proba, axis=1)]  # every system: the argmax class
    return {"accuracy": float(accuracy_score(y.astype(str), pred)),
            "log_loss": float(log_loss(y.astype(str), proba, labels=classes))}


# ---- the results files ---------------------------------------------------------------------------
def _key(r: dict) -> tuple:
    return r["dataset"], r["seed"], r["system"]


def read_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return json.loads(path.read_text())["results"]


def save_record(path: Path, record: dict, meta: dict) -> None:
    """Add ``record`` to ``path`` (replacing the one of the same data set, seed and system),
    under a lock: two processes may fill the same file (e.g. RealMLP beside the others)."""
    lock = os.open(path.parent, os.O_RDONLY)  # the folder itself: no lock file left behind
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = read_results(path)
        kept = [r for r in old if _key(r) != _key(record)] + [record]
        kept.sort(key=lambda r: (list(DATASETS).index(r["dataset"])
                                 if r["dataset"] in DATASETS else 99, r["seed"],
                                 SYSTEMS.index(r["system"])))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"meta": meta, "results": kept}, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        os.close(lock)  # releases the lock


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except OSError:
        return None


def meta(threads: int) -> dict:
    packages = ["nnrecipe", "torch", "scikit-learn", "lightgbm", "pytabkit", "numpy", "pandas"]
    versions = {}
    for name in packages:
        try:
            versions[name] = version(name)
        except Exception:  # not installed: that system cannot run here
            versions[name] = None
    return {"written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "nnrecipe_commit": _git_commit(), "versions": versions,
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "threads": threads, "test_size": TEST_SIZE,
            "systems": DESCRIPTIONS}


# ---- running -------------------------------------------------------------------------------------
def run_one(system: str, name: str, seed: int, threads: int, keep_runs: Path | None,
            overrides: dict | None = None) -> dict:
    df, target, task = load(name)
    train, test, digest = split(df, target, task, seed)
    classes = sorted(train[target].astype(str).unique()) if task != "regression" else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes, pytorch-lightning deprecations
        fitted, fit_s = fit_system(system, train, target, task, seed, threads,
                                   test=test if system == "nnrecipe" else None,
                                   keep_runs=keep_runs, overrides=overrides)
        start = time.perf_counter()
        metrics = score(fitted, test, target, task, classes)
        predict_s = time.perf_counter() - start
    return {"dataset": name, "seed": seed, "system": system, "task": task,
            "n_train": len(train), "n_test": len(test), "split": digest,
            "metrics": metrics, "fit_s": round(fit_s, 3), "predict_s": round(predict_s, 3),
            "version": system_version(system), "extra": fitted.extra}


def run(systems: list[str], datasets: list[str], seeds: list[int], threads: int,
        keep_runs: Path | None, overrides: dict | None = None,
        results: Path = NNRECIPE_FILE) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    info = meta(threads)
    with threadpool_limits(limits=threads):
        for name in datasets:
            for seed in seeds:
                for system in systems:
                    start = time.perf_counter()
                    record = run_one(system, name, seed, threads, keep_runs, overrides)
                    path = results if system == "nnrecipe" else PEERS_FILE
                    save_record(path, record, info)
                    shown = ", ".join(f"{k} {v:.4g}" for k, v in record["metrics"].items())
                    print(f"{name:<25} seed {seed}  {system:<9} {shown}  fit "
                          f"{record['fit_s']:.1f}s  ({time.perf_counter() - start:.1f}s in "
                          "all)", flush=True)


# ---- the table -----------------------------------------------------------------------------------
def _ranks(values: dict[str, float], higher: bool) -> dict[str, float]:
    s = pd.Series(values, dtype=float)
    return s.rank(ascending=not higher, method="average").to_dict()


def _fmt(v: float | None, metric: str) -> str:
    if v is None or not np.isfinite(v):
        return "—"
    return f"{v:.4f}" if metric in ("accuracy", "log_loss", "r2") or abs(v) < 10 else f"{v:.2f}"


def gap(nn: float, mlp: float, metric: str) -> float:
    """nnrecipe against scikit-learn's MLP in % of the MLP's metric; positive: nnrecipe is
    better."""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    return 100.0 * sign * (nn - mlp) / abs(mlp)


def _common_rank(frame: pd.DataFrame, names: list[str], system: str, present: list[str]
                 ) -> float:
    """``system``'s mean rank over ``names`` (data sets on which every system in
    ``present`` has results for every seed)."""
    ranks = []
    for name in names:
        part = frame[frame["dataset"] == name]
        m1 = PRIMARY[part["task"].iloc[0]]
        means = part.groupby("system")[m1].mean()
        ranks.append(_ranks({s: means[s] for s in present}, HIGHER_IS_BETTER[m1])[system])
    return float(np.mean(ranks)) if ranks else float("nan")


def table(datasets: list[str], seeds: list[int], systems: list[str],
          results: Path = NNRECIPE_FILE) -> str:
    records = [r for r in read_results(PEERS_FILE) + read_results(results)
               if r["dataset"] in datasets and r["seed"] in seeds and r["system"] in systems]
    if not records:
        return "no results yet: run without --table first"
    frame = pd.DataFrame([{**{k: r[k] for k in ("dataset", "seed", "system", "task", "split",
                                                "fit_s")}, **r["metrics"]} for r in records])
    lines: list[str] = []
    splits_differ = [n for n, g in frame.groupby("dataset") if g.groupby("seed")["split"]
                     .nunique().max() > 1]
    present = [s for s in systems if s in set(frame["system"])]
    head = "| data set | task | metric | " + " | ".join(present) + " |"
    rule = "|" + "---|" * (3 + len(present))
    main, second, times = [head, rule], [head, rule], [
        "| data set | " + " | ".join(present) + " |", "|" + "---|" * (1 + len(present))]
    rank_sum: dict[str, list[float]] = {s: [] for s in present}
    gaps: dict[str, float] = {}
    seed_gaps: dict[str, list[float]] = {}
    fit_total: dict[str, float] = {}
    common: list[str] = []  # the data sets every system has results on (all seeds)
    for name in [d for d in datasets if d in set(frame["dataset"])]:
        part = frame[frame["dataset"] == name]
        task = part["task"].iloc[0]
        complete = part.groupby("system")["seed"].nunique()
        n_seeds = int(complete.max())
        # a system's mean counts only when it has every seed the others have
        full = [s for s in present if complete.get(s, 0) == n_seeds]
        means = part[part["system"].isin(full)].groupby("system").mean(numeric_only=True)
        m1, m2 = PRIMARY[task], SECONDARY[task]
        ranks = _ranks({s: means.loc[s, m1] for s in full}, HIGHER_IS_BETTER[m1])
        for s in full:
            rank_sum[s].append(ranks[s])
        if len(full) == len(present):
            common.append(name)
        cells = [f"{_fmt(means.loc[s, m1], m1)} ({ranks[s]:g})" if s in full else "—"
                 for s in present]
        main.append(f"| {name} | {task} | {m1} | " + " | ".join(cells) + " |")
        cells = [_fmt(means.loc[s, m2], m2) if s in full else "—" for s in present]
        second.append(f"| {name} | {task} | {m2} | " + " | ".join(cells) + " |")
        for s in full:
            fit_total[s] = fit_total.get(s, 0.0) + means.loc[s, "fit_s"]
        cells = [f"{means.loc[s, 'fit_s']:.2f}" if s in full else "—" for s in present]
        times.append(f"| {name} | " + " | ".join(cells) + " |")
        if "nnrecipe" in full and "mlp" in full:
            gaps[name] = gap(means.loc["nnrecipe", m1], means.loc["mlp", m1], m1)
            by_seed = part.pivot_table(index="seed", columns="system", values=m1)
            seed_gaps[name] = [gap(row["nnrecipe"], row["mlp"], m1)
                               for _, row in by_seed.iterrows()]
    mean_rank = {s: float(np.mean(v)) for s, v in rank_sum.items() if v}
    main.append("| **mean rank** | | | " + " | ".join(
        f"**{mean_rank[s]:.2f}**" if s in mean_rank else "—" for s in present) + " |")
    n_sets = len(set(frame["dataset"]))
    if len(common) < n_sets:  # some system lacks a set: ranks over different sets
        # the targets compare mean ranks over the same sets
        mean_rank = {s: _common_rank(frame, common, s, present) for s in present}
        main.append(f"| **mean rank, the {len(common)} sets all have** | | | " + " | ".join(
            f"**{_common_rank(frame, common, s, present):.2f}**" for s in present) + " |")
    times.append("| **total** (the sets with every seed) | " + " | ".join(
        f"{fit_total.get(s, 0.0):.1f}" for s in present) + " |")
    lines += [f"Primary metric (mean over seeds {', '.join(map(str, sorted(set(frame['seed']))))}"
              "; rank on the data set in brackets, 1 = best; classification: accuracy, "
              "regression: RMSE):", "", *main, "",
              "Secondary metric (mean over seeds; classification: log loss, regression: R²):",
              "", *second, "", "Fit seconds (mean over seeds):", "", *times]
    if gaps:
        lines += ["", "nnrecipe against scikit-learn's MLP (% of the MLP's primary metric; "
                  "positive: nnrecipe better):", "",
                  "| data set | gap % | per seed |", "|---|---|---|"]
        lines += [f"| {n} | {g:+.2f} | {', '.join(f'{x:+.2f}' for x in seed_gaps[n])} |"
                  for n, g in gaps.items()]
        checks = []
        if "nnrecipe" in mean_rank:
            for peer in ("mlp", "realmlp"):
                if peer in mean_rank:
                    ok = mean_rank["nnrecipe"] < mean_rank[peer]
                    checks.append(f"- mean rank better than {peer}'s: "
                                  f"{'yes' if ok else 'NO'} ({mean_rank['nnrecipe']:.2f} "
                                  f"against {mean_rank[peer]:.2f})")
        worst = min(gaps, key=gaps.get)
        checks.append(f"- never more than 1% worse than scikit-learn's MLP: "
                      f"{'yes' if gaps[worst] >= -1.0 else 'NO'} (worst: {worst}, "
                      f"{gaps[worst]:+.2f}%)")
        lines += ["", "The issue's targets:", *checks]
    if splits_differ:
        lines += ["", f"WARNING: records made from different splits on {splits_differ}"]
    return "\n".join(lines)


# ---- command line --------------------------------------------------------------------------------
def _names(value: str | None, known: list[str], what: str) -> list[str]:
    if value is None:
        return list(known)
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (known: {', '.join(known)})")
    return names


def _value(text: str):
    """A --set value as JSON when it parses (numbers, booleans), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", action="store_true", help="print the table; train nothing")
    ap.add_argument("--peers", action="store_true",
                    help="also (re)compute the peers among --systems into peers.json")
    ap.add_argument("--systems", help=f"comma-separated, of {', '.join(SYSTEMS)} (all)")
    ap.add_argument("--datasets", help=f"comma-separated, of {', '.join(DATASETS)} (all)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (0,1,2)")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for every system (1: each system on one core)")
    ap.add_argument("--keep-runs", type=Path,
                    help="keep nnrecipe's run directories under this folder")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a plan override for nnrecipe (repeatable): measure a candidate "
                    "rule; use with --results so the default's results are kept")
    ap.add_argument("--results", type=Path, default=NNRECIPE_FILE,
                    help="nnrecipe's results file (nnrecipe.json)")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item}: expected KEY=VALUE")
        overrides[key.strip()] = _value(value.strip())
    systems = _names(args.systems, SYSTEMS, "systems")
    datasets = _names(args.datasets, list(DATASETS), "data sets")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not args.table:
        train = [s for s in systems if s == "nnrecipe" or (args.peers and s in PEERS)]
        if not train:
            raise SystemExit("nothing to train: the peers are trained only with --peers")
        if args.keep_runs is not None:
            args.keep_runs.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        run(train, datasets, seeds, args.threads, args.keep_runs, overrides, args.results)
        print(f"\ntrained {', '.join(train)} in {time.perf_counter() - start:.0f} s\n")
    print(table(datasets, seeds, SYSTEMS if args.systems is None else systems, args.results))


if __name__ == "__main__":
    main()
