"""Hyper-parameter search with Optuna: the search space from the rules, the study, pruning.

Tune the learning rate first (Smith 2017's range test), then try many configurations and
keep the best by validation (Bergstra & Bengio 2012: random beats grid; Bergstra et al.
2011: TPE). Here:

- the **space** comes from rules (:func:`default_space`): a log-uniform LR around the range
  test's suggestion, the network's size as its modality chooses (a table: 1-5 hidden
  layers, width 16-512), dropout 0.1-0.5, batch size 8-128,
  and the optimizer among Adam, Nadam, AdaMax, RMSprop and SGD with momentum. ``--set``
  fixes a key (it leaves the space); ``--space key=low:high`` (or ``key=a,b,c``) narrows or
  adds one;
- the **study** minimises the best validation loss with the TPE sampler; the median pruner
  is fed the validation loss after every epoch and stops a trial that is worse than the
  median of earlier trials at the same epoch;
- the **storage** is a journal file in the run directory by default (file locks make it safe
  for several local processes), or any Optuna storage URL (PostgreSQL, MySQL, SQLite) for
  several machines; the same study name and storage resume a study.

Only Optuna's own machinery schedules trials: ``--workers K`` starts K processes that each
run ``study.optimize`` on the shared storage.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PlanError
from ..lazy import lazy
from ..plan import KEYS, Plan, validate_overrides
from ..runs import RUN_FILES
from ..train import optimizers
from ..train.callbacks import TrainState, Watcher

optuna = lazy("optuna")

__all__ = ["Dim", "PruneOnValLoss", "check_storage", "conv_dims", "default_space",
           "fail_stale_trials", "finished", "merge_space", "mlp_dims", "open_study",
           "parse_space", "range_dim", "rnn_dims", "storage_for", "study_summary",
           "tuned_optimizers", "worker_record", "JOURNAL_FILE", "WORKER_ATTR"]

JOURNAL_FILE = RUN_FILES["study"]
# keys searched on a log scale when their range allows it (multiplicative effects); the L2
# penalty is optimizer.weight_decay
LOG_KEYS = ("optimizer.lr", "optimizer.weight_decay", "regularization.l1", "model.width",
            "train.batch_size", "schedule.k")
LR_SPAN = 10.0  # the LR is searched from suggestion/10 to suggestion*10
PRUNER_STARTUP_TRIALS = 5  # the median needs a few finished trials to mean anything
PRUNER_WARMUP_EPOCHS = 3  # the first epochs' validation loss is too noisy to judge a trial


def tuned_optimizers() -> tuple[str, ...]:
    """The optimizers the tuner tries, in their records' ``tune_rank`` order: the usual
    ones (L-BFGS is for full-batch problems, not a search)."""
    ranked = [(r.tune_rank, name) for name, r in optimizers.OPTIMIZERS.items()
              if r.tune_rank is not None]
    return tuple(name for _, name in sorted(ranked))


@dataclass(frozen=True)
class Dim:
    """One searched plan key: a float or int range (``log`` scale or not) or choices."""

    key: str
    kind: str  # "float" | "int" | "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None
    reason: str = ""

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices or ()))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in (self.choices or ())
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"kind": "choice", "choices": list(self.choices or ()), "reason": self.reason}
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log,
                "reason": self.reason}


def range_dim(plan: Plan, key: str, kind: str, low: float, high: float, *,
              log: bool = False, reason: str = "") -> Dim:
    """A searched range around ``plan``'s value of ``key``: widened to hold it, so the
    default plan is a point of the space and can be tried first."""
    v = plan[key]
    lo, hi = (min(low, v), max(high, v)) if isinstance(v, int | float) else (low, high)
    return Dim(key, kind, lo, hi, log, reason=reason)


def mlp_dims(plan: Plan) -> list[Dim]:
    """A table's MLP: depth and width."""
    return [range_dim(plan, "model.hidden_layers", "int", 1, 5,
                      reason="1-5 hidden layers: add depth only while it helps"),
            range_dim(plan, "model.width", "int", 16, 512, log=True,
                      reason="16-512 units, log scale: capacity grows multiplicatively")]


def conv_dims(plan: Plan) -> list[Dim]:
    """A convnet: the filters of its first block (the depth is bound by the input size)."""
    return [range_dim(plan, "model.filters", "int", 8, 64, log=True,
                      reason="8-64 filters in the first block, log scale (doubling after)")]


def rnn_dims(plan: Plan) -> list[Dim]:
    """A recurrent network or transformer: width and depth."""
    return [range_dim(plan, "model.hidden", "int", 16, 256, log=True,
                      reason="16-256 units per layer, log scale"),
            range_dim(plan, "model.layers", "int", 1, 3,
                      reason="1-3 layers: 2-3 is the usual depth for RNNs")]


def default_space(plan: Plan, lr_center: float | None, lr_rule: str = "",
                  network: list[Dim] | None = None) -> dict[str, Dim]:
    """The rules' search space around ``plan``: the learning rate, the ``network``'s size
    (the modality's choice of dimensions; default: a table's MLP), dropout, batch size and
    the optimizer. Ranges are widened to hold the plan's own values."""
    center = lr_center or plan["optimizer.lr"]
    lr = range_dim(plan, "optimizer.lr", "float", center / LR_SPAN, center * LR_SPAN,
                   log=True, reason=(
                       f"log-uniform within ×{LR_SPAN:g} of the LR range test's suggestion "
                       f"{center:.3g}{' (' + lr_rule + ' rule)' if lr_rule else ''}"
                       if lr_center else
                       f"log-uniform within ×{LR_SPAN:g} of the planned rate {center:.3g}"))
    dims = [
        lr,
        *(mlp_dims(plan) if network is None else network),
        range_dim(plan, "model.dropout", "float", 0.1, 0.5,
                  reason="dropout 0.1-0.5, the usual range (Srivastava et al. 2014)"),
        range_dim(plan, "train.batch_size", "int", 8, 128, log=True,
                  reason="batch 8-128: small batches generalise better, large ones run "
                         "faster"),
        Dim("optimizer.name", "choice", choices=tuple(dict.fromkeys(
            [*tuned_optimizers(), plan["optimizer.name"]])),
            reason="the usual optimizers: Adam and its kin, RMSprop, SGD with momentum 0.9"),
    ]
    return {d.key: d for d in dims}


def parse_space(items: list[str] | None) -> dict[str, Dim]:
    """``["model.width=32:256", "optimizer.name=adam,sgd"]`` into dimensions; every problem
    is reported at once (PlanError)."""
    problems, out = [], {}
    for item in items or []:
        key, sep, text = (s.strip() for s in item.partition("="))
        spec = KEYS.get(key)
        if not sep or not text:
            problems.append(f"--space expects key=low:high or key=a,b,c, got '{item}'")
        elif spec is None:
            problems.append(f"--space: unknown plan key '{key}' (valid keys: "
                            + ", ".join(KEYS) + ")")
        elif spec.kind in ("int", "float"):
            dim, why = _numeric_dim(key, spec.kind, text)
            if dim is None:
                problems.append(why)
            else:
                out[key] = dim
        elif spec.kind in ("choice", "bool"):
            try:
                values = tuple(dict.fromkeys(validate_overrides({key: v})[key]
                                             for v in text.split(",")))
                out[key] = Dim(key, "choice", choices=values, reason="from --space")
            except PlanError as e:
                problems.append(f"--space {key}: {e}")
        else:
            problems.append(f"--space: '{key}' cannot be searched; fix it with --set")
    if problems:
        raise PlanError("; ".join(problems))
    return out


def _numeric_dim(key: str, kind: str, text: str) -> tuple[Dim | None, str]:
    lo_text, sep, hi_text = text.partition(":")
    if not sep:
        return None, f"--space {key} expects low:high (e.g. {key}=1:5), got '{text}'"
    try:
        lo, hi = (validate_overrides({key: t})[key] for t in (lo_text, hi_text))
    except PlanError as e:
        return None, f"--space {key}: {e}"
    if not lo < hi:
        return None, f"--space {key}: low must be below high, got {lo_text}:{hi_text}"
    log = key in LOG_KEYS and lo > 0
    return Dim(key, kind, lo, hi, log, reason="from --space"), ""


def merge_space(rules: dict[str, Dim], given: dict[str, Dim], fixed: dict[str, Any]
                ) -> dict[str, Dim]:
    """The rules' space, narrowed or extended by --space, without the keys --set fixes."""
    clash = sorted(set(given) & set(fixed))
    if clash:
        raise PlanError(f"{', '.join(clash)} given both with --set (fixed) and --space "
                        "(searched); keep one")
    # "auto" leaves the choice to a rule, and the search is that rule here
    fixed_keys = {k for k, v in fixed.items() if v != "auto"}
    return {k: d for k, d in {**rules, **given}.items() if k not in fixed_keys}


class PruneOnValLoss(Watcher):
    """Reports each epoch's validation loss to the trial; raises TrialPruned when the
    pruner says so, or when the loss is no longer finite (a diverged trial)."""

    def __init__(self, trial: optuna.Trial, offset: int = 0):
        self.trial, self.offset = trial, offset

    def on_epoch_end(self, state: TrainState) -> None:
        loss = state.logs.get("val_loss")
        if loss is None:
            return
        epoch = state.epoch + self.offset
        if not math.isfinite(loss):
            self.trial.set_user_attr("pruned_because", f"validation loss {loss} at epoch {epoch}")
            raise optuna.TrialPruned(f"validation loss {loss} at epoch {epoch}")
        self.trial.report(float(loss), epoch)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_because", "worse than the median of earlier trials at "
                                     f"epoch {epoch}")
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")


HEARTBEAT_SECONDS = 60  # a database storage's trials say they are alive this often
HEARTBEAT_GRACE = 180  # ... and one silent this long is failed (a killed worker)
STALE_WITHOUT_RECORD_SECONDS = 120  # a RUNNING trial that never recorded its worker
WORKER_ATTR = "worker"  # user attribute: "host pid start-time" of the process running a trial
_URL_EXAMPLES = "a journal file path, or a database URL such as sqlite:///study.db"


def _shown_url(url: str) -> str:
    """The URL without its password, for messages and tune.json."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show the scheme only
        return url.split("://", 1)[0] + "://..."


def check_storage(storage: str | None) -> None:
    """Refuse a ``--storage`` that Optuna cannot use, before anything is created: a path
    that is a folder, lies in a missing folder or holds something other than an Optuna
    journal; a URL whose database kind or driver is unknown, or that cannot be reached."""
    if not storage:
        return
    if "://" in storage:
        _check_url(storage)
        return
    path = Path(storage)
    if path.is_dir():
        raise PlanError(f"--storage {storage} is a folder; give {_URL_EXAMPLES}")
    if not path.parent.is_dir():
        raise PlanError(f"--storage {storage}: folder {path.parent} does not exist; create it "
                        "or give another path")
    if path.exists() and path.stat().st_size:
        try:
            with path.open("rb") as f:
                first = json.loads(f.readline())
            ok = isinstance(first, dict) and "op_code" in first
        except (ValueError, OSError):
            ok = False
        if not ok:
            raise PlanError(f"--storage {storage} exists but is not an Optuna journal file; "
                            "give a new path (it is created) or the journal of an earlier "
                            "tune to resume it")


def _check_url(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    shown = _shown_url(url)
    try:
        parsed = make_url(url)
        parsed.get_dialect()  # the database kind and its driver
    except ImportError as e:
        raise PlanError(f"--storage {shown}: the database driver is not installed ({e}); "
                        f"install it, or give {_URL_EXAMPLES}") from None
    except Exception as e:
        raise PlanError(f"--storage {shown} is not a database URL Optuna can use "
                        f"({_first_line(e)}); give {_URL_EXAMPLES}") from None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not Path(db).parent.is_dir():
            raise PlanError(f"--storage {shown}: folder {Path(db).parent} does not exist")
        return  # connecting would create the file: leave that to the run
    try:
        engine = create_engine(parsed, connect_args=_connect_timeout(parsed))
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as e:
        raise PlanError(f"--storage {shown}: cannot connect ({_first_line(e)}); check the URL "
                        "and that the database is running") from None


def _connect_timeout(url: Any) -> dict[str, Any]:
    name = url.get_backend_name()
    return {"connect_timeout": 10} if name in ("postgresql", "mysql", "mariadb") else {}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def storage_for(storage: str | None, run_dir: Path) -> tuple[Any, str]:
    """(an Optuna storage, how to name it, without a password): a database URL with
    heartbeats (a killed worker's trial is failed after ``HEARTBEAT_GRACE`` seconds), a file
    path or the default as a journal file (file locks: safe for several local processes).
    Check a user's ``storage`` with :func:`check_storage` first."""
    if storage and "://" in storage:
        try:
            rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_SECONDS,
                                             grace_period=HEARTBEAT_GRACE)
        except Exception as e:
            raise PlanError(f"--storage {_shown_url(storage)}: Optuna cannot use it "
                            f"({_first_line(e)})") from None
        return rdb, _shown_url(storage)
    path = Path(storage) if storage else Path(run_dir) / JOURNAL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend), str(path)


def worker_record() -> str:
    """"host pid start-time" of this process, kept on each trial it runs (``WORKER_ATTR``),
    so a later resume can tell whether that process is gone."""
    return f"{socket.gethostname()} {os.getpid()} {_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux /proc), '' elsewhere: with
    the pid it names one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name may hold spaces


def _worker_gone(record: str) -> bool:
    host, _, rest = record.partition(" ")
    pid_text, _, start = rest.partition(" ")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's worker: not ours to judge
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state == "Z" or (bool(start) and _start_time(pid) != start)


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Mark the trials of killed workers FAIL, so a resumed study does not keep them RUNNING
    forever; returns their numbers.

    A database storage has Optuna's heartbeat: ``optuna.storages.fail_stale_trials`` fails
    the trials whose heartbeat stopped. Optuna's JournalStorage has no heartbeat (Optuna
    5.0), so a journal's RUNNING trials are judged by the worker record each trial keeps
    (``worker_record``): failed only when that worker ran on this machine and its process is
    gone (no such pid, a zombie, or the pid reused by a later process) — a live worker's
    trial is never touched, and another machine's is left alone. A trial killed before it
    recorded its worker is failed once it is ``STALE_WITHOUT_RECORD_SECONDS`` old (a live
    worker records it at once). This runs when a study is opened, i.e. on resume only.
    The same check runs on a database's RUNNING trials whose heartbeat has not expired yet.
    Failing goes through ``study.tell``, Optuna's public way to finish a trial another
    process started; ``skip_if_finished`` makes a race with the trial's own end harmless."""
    with warnings.catch_warnings():  # "experimental" in some Optuna versions
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)  # heartbeats (databases); else a no-op
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    now = datetime.datetime.now()
    stale = []
    for t in running:
        record = t.user_attrs.get(WORKER_ATTR)
        if record is None:
            age = (now - t.datetime_start).total_seconds() if t.datetime_start else 0.0
            gone = age > STALE_WITHOUT_RECORD_SECONDS
        else:
            gone = _worker_gone(str(record))
        if gone:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            stale.append(t.number)
    return stale


def open_study(storage: Any, name: str, seed: int) -> optuna.Study:
    """Create the study, or load it when it exists (resume: the trials of killed workers
    are marked failed, :func:`fail_stale_trials`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # we print our own progress
    study = optuna.create_study(
        storage=storage, study_name=name, direction="minimize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS,
                                           n_warmup_steps=PRUNER_WARMUP_EPOCHS))
    fail_stale_trials(study)
    return study


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """Every trial (number, state, value, params, the per-epoch validation losses) and the
    best; JSON-ready."""
    trials = []
    for t in study.get_trials(deepcopy=False):
        seconds = ((t.datetime_complete - t.datetime_start).total_seconds()
                   if t.datetime_complete and t.datetime_start else None)
        trials.append({"number": t.number, "state": t.state.name, "value": t.value,
                       "params": t.params, "seconds": seconds,
                       "epochs": max(t.intermediate_values, default=None),
                       "intermediate": {str(k): v for k, v in
                                        sorted(t.intermediate_values.items())},
                       **({"note": t.user_attrs["pruned_because"]}
                          if "pruned_because" in t.user_attrs else {})})
    complete = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    best = min(complete, key=lambda t: t["value"]) if complete else None
    return {"trials": trials, "n_trials": len(trials),
            "n_complete": len(complete),
            "n_pruned": sum(t["state"] == "PRUNED" for t in trials),
            "best": None if best is None else {k: best[k] for k in ("number", "value", "params")}}
