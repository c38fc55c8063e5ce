"""``nnrecipe train ... --nproc N``: start N processes on this machine that train together
(DistributedDataParallel), as ``torchrun --standalone --nproc-per-node N -m nnrecipe train
...`` would, through torch's own launcher (``torch.distributed.launcher``).

Each process runs the same command without ``--nproc`` and learns its rank from the
environment torchrun's agent sets; rank 0 writes the run directory and prints. When a
process fails, the agent ends the others (no hang) and this returns the failed process's
exit code; its own one-line message is already on stderr.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from signal import SIGTERM
from typing import Any

from .errors import PlanError

__all__ = ["end_with_launcher", "first_failure", "run_processes", "without_nproc"]

#: exit codes whose process printed its own one-line message (cli.py): 1 strict findings,
#: 2 bad input, 3 a run's state, 4 diverged, 130 Ctrl-C
OWN_MESSAGE = {1, 2, 3, 4, 130}
LAUNCHED = "NNRECIPE_LAUNCHED"  # set in the processes this module starts
LAUNCHER_PID = "NNRECIPE_LAUNCHER_PID"  # the launcher's process id, in the same processes
PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def without_nproc(argv: list[str]) -> list[str]:
    """The command line with ``--nproc N`` / ``--nproc=N`` taken out."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def end_with_launcher() -> None:
    """In a process ``run_processes`` started: end when the launcher ends. The launcher
    (torch's agent, in the ``nnrecipe train --nproc`` process) stops its processes when it
    is interrupted or one of them fails, but a launcher killed outright (SIGKILL, the
    out-of-memory killer) cannot; its processes would train on as orphans, holding CPUs
    and the run directory. On Linux the kernel sends them SIGTERM when it dies
    (``PR_SET_PDEATHSIG``); a launcher already gone before this ran is checked by its id.
    Elsewhere (no prctl) nothing changes."""
    parent = os.environ.get(LAUNCHER_PID)
    if not parent or not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(SIGTERM))
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the launcher died before the request was made
        os.kill(os.getpid(), SIGTERM)


def first_failure(failures: dict[int, Any]) -> tuple[int, Any]:
    """The failure that ended the job: the first (by time) of the processes killed by a
    signal other than the agent's own SIGTERM (a process killed from outside or crashed),
    else the first of all. The agent stamps a killed process when it notices it, so a peer
    that noticed the loss sooner (and exits quietly, leaving the telling to us) can carry
    an earlier time; ranking by time alone then told nothing."""
    by_time = sorted(failures.items(), key=lambda kv: kv[1].timestamp)
    return next(((r, f) for r, f in by_time if f.exitcode < 0 and f.exitcode != -SIGTERM),
                by_time[0])


def run_processes(nproc: int, args: list[str]) -> int:
    """Run ``python -m nnrecipe ARGS`` in ``nproc`` processes with a local rendezvous;
    the exit code of the first that failed (0 when all finished)."""
    if nproc < 1:
        raise PlanError(f"--nproc must be at least 1, got {nproc}")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # the agent logs every start and stop; the processes say what matters themselves, and
    # a process that lost the others (one of them failed) leaves the telling to this one
    os.environ[LAUNCHED] = "1"
    os.environ[LAUNCHER_PID] = str(os.getpid())  # end_with_launcher: its processes watch it
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=f"nnrecipe-{uuid.uuid4().hex[:8]}", rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.2)
    try:
        elastic_launch(config, sys.executable)("-m", "nnrecipe", *args)
    except ChildFailedError as e:
        rank, failure = first_failure(e.failures)
        code = failure.exitcode if failure.exitcode > 0 else 1  # < 0: killed by a signal
        if failure.exitcode not in OWN_MESSAGE:
            why = (f"killed by signal {-failure.exitcode}" if failure.exitcode < 0
                   else f"exit code {failure.exitcode}")
            print(f"nnrecipe: error: process {rank} of {nproc} failed ({why}); the others "
                  "were stopped", file=sys.stderr)
        return code
    return 0
