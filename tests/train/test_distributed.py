"""The loop under DistributedDataParallel (gloo, 2 CPU processes): with the same global
batch, two processes take exactly the steps one process takes; a stop asked by one rank
stops both at the same step; the plan's learning-rate scaling rules."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from nnrecipe.train import Watcher, fit, make_loss
from nnrecipe.train.distributed import lr_scale

pytestmark = pytest.mark.slow

ROWS = 2048  # even: no padding row


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(bs: int, stop_rank: int | None = None):
    from tests.conftest import make_table

    from nnrecipe.data import profile_table
    from nnrecipe.plan import make_plan

    plan = make_plan(profile_table(make_table(300), "y"), ROWS, {
        "train.max_epochs": 2, "train.batch_size": bs, "optimizer.name": "sgd",
        "optimizer.lr": 0.05, "train.early_stopping.patience": 0})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(ROWS, 4, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).float().reshape(-1, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))

    class StopAt(Watcher):  # one rank alone asks to stop at step 5
        wants_steps = True

        def after_step(self, state):
            if state.step == 5 and int(os.environ.get("RANK", 0)) == stop_rank:
                state.request_stop("asked by one rank")

    h = fit(model, plan, (x, y), (x[:256], y[:256]), loss_fn=make_loss("bce"), progress=False,
            watchers=[StopAt()])
    return h, {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _rank(rank: int, port: int, stop_rank, out) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    h, w = _train(32, stop_rank)
    out.put((rank, [{k: v for k, v in e.items() if k != "seconds"} for e in h.epochs],
             h.stop_reason, w))
    import torch.distributed as dist
    dist.barrier()
    dist.destroy_process_group()


def _two(stop_rank=None):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, stop_rank, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict((r, rest) for r, *rest in (out.get(timeout=120) for _ in procs))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return got


def test_two_processes_take_the_steps_of_one_with_the_same_global_batch():
    one, w1 = _train(64)
    got = _two()
    for rank in (0, 1):
        epochs, _, w = got[rank]
        assert len(epochs) == len(one.epochs) == 2
        for a, b in zip(one.epochs, epochs, strict=True):
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
            assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
        for k in w1:
            torch.testing.assert_close(torch.from_numpy(w[k]), torch.from_numpy(w1[k]),
                                       rtol=1e-5, atol=1e-6)


def test_a_stop_asked_by_one_rank_stops_every_rank_at_the_same_step():
    got = _two(stop_rank=1)
    assert got[0][1] == got[1][1]
    assert got[0][1].startswith("asked by one rank")
    for k in got[0][2]:  # the same weights: the same steps were taken
        assert (got[0][2][k] == got[1][2][k]).all()


def test_learning_rate_scaling_rules():
    assert lr_scale("sgd", 4) == (4.0, "linear scaling (Goyal et al. 2017): × 4")
    k, why = lr_scale("adam", 4)
    assert k == 2.0 and "Malladi et al. 2022" in why
    assert lr_scale("lbfgs", 4)[0] == 1.0
    assert lr_scale("adam", 1)[0] == 1.0


def test_the_job_tells_the_failure_that_ended_it_not_a_quiet_peer():
    """A process killed from outside (SIGKILL) is stamped when the agent notices it, so the
    peer that lost it (exit 3, quiet: it leaves the telling to the launcher) can look
    first by time. The kill is the failure to tell; the others the agent ended itself
    (SIGTERM) never are; with no kill, the first by time."""
    from types import SimpleNamespace as F

    from nnrecipe.launch import first_failure

    quiet, killed, ended = F(exitcode=3, timestamp=10), F(exitcode=-9, timestamp=12), \
        F(exitcode=-15, timestamp=11)
    assert first_failure({0: quiet, 1: killed, 2: ended}) == (1, killed)
    assert first_failure({0: quiet, 2: ended}) == (0, quiet)
    bad_input = F(exitcode=2, timestamp=5)
    assert first_failure({0: bad_input, 1: ended}) == (0, bad_input)


@pytest.mark.parametrize(("ending", "code", "stderr"), [
    ("pass", 0, ""), ("sys.exit(3)", 3, ""), ("sys.exit('bad flag')", 1, "bad flag\n")])
def test_a_process_of_a_group_ends_with_its_code_after_the_atexit_handlers(ending, code,
                                                                           stderr):
    # a process of a multi-process run skips the interpreter's teardown (os._exit): its exit
    # code, the atexit handlers and its buffered output must survive that
    import subprocess
    import sys
    script = ("import atexit, sys\nfrom nnrecipe import cli\n"
              "atexit.register(lambda: print('handlers ran', end=''))\n"
              "sys.stdout.write('buffered ')\n"
              f"try:\n    {ending}\nfinally:\n    cli._end_process()\n"
              "print('not reached')\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (code, "buffered handlers ran", stderr)
