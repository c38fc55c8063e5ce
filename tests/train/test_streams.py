"""The streaming data path (train/streams.py): a stream gives the loop the same batches in
the same order as the in-memory tensors, so a run's result does not depend on the path."""

import numpy as np
import pytest
import torch
from torch import nn

from nnrecipe.modalities.base import streamed_inputs
from nnrecipe.plan import make_plan
from nnrecipe.train import fit, make_loss, predict_batches
from nnrecipe.train.streams import PositionStream, shard_order


def _data(n=241, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] - x[:, 2] > 0).float().reshape(-1, 1)
    return x, y


class Fetch:
    """Reads rows of a tensor by position, counting the rows it read."""

    def __init__(self, x, y):
        self.x, self.y, self.rows = x, y, 0

    def __call__(self, pos):
        self.rows += len(pos)
        p = torch.as_tensor(pos)
        return self.x[p], self.y[p]


def _stream(x, y, **kw):
    return PositionStream(Fetch(x, y), np.arange(len(x)), **kw)


def _fit(profile_of, table, train, val, **overrides):
    plan = make_plan(profile_of(table(n=300, task="binary")), 241,
                     {"train.max_epochs": 4, "train.batch_size": 16, **overrides})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    h = fit(model, plan, train, val, loss_fn=make_loss("bce"), progress=False)
    return model, h


@pytest.mark.parametrize("workers", [0, 1])
def test_a_stream_trains_exactly_as_the_tensors(profile_of, table, workers):
    # 241 rows, batches of 16: the last batch of one row is dropped on both paths
    (x, y), (xv, yv) = _data(241), _data(60, seed=1)
    m1, h1 = _fit(profile_of, table, (x, y), (xv, yv))
    m2, h2 = _fit(profile_of, table, _stream(x, y, workers=workers),
                  _stream(xv, yv, workers=workers))
    strip = [[{k: v for k, v in e.items() if k != "seconds"} for e in h.epochs]
             for h in (h1, h2)]
    assert strip[0] == strip[1]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_an_evaluation_pass_reads_every_row_in_order_and_a_skip_reads_nothing_skipped():
    x, y = _data(50)
    fetch = Fetch(x, y)
    s = PositionStream(fetch, np.arange(50))
    xs = torch.cat([xb for xb, _ in s.epoch(16, None)])
    torch.testing.assert_close(xs, x)
    assert fetch.rows == 50
    fetch.rows = 0
    gen = torch.Generator().manual_seed(3)
    rest = list(s.epoch(16, gen, skip=2))
    assert len(rest) == s.n_batches(16) - 2 == 2
    assert fetch.rows == 50 - 32  # the skipped batches were never read
    model = nn.Linear(4, 2)
    torch.testing.assert_close(predict_batches(model, s, chunk=7), predict_batches(model, x))


def test_shards_cover_the_epoch_with_equal_batch_counts():
    order = torch.randperm(23, generator=torch.Generator().manual_seed(0))
    parts = [shard_order(order, (r, 3)) for r in range(3)]
    assert {len(p) for p in parts} == {8}
    assert set(torch.cat(parts).tolist()) == set(range(23))
    s = PositionStream(Fetch(*_data(23)), np.arange(23))
    counts = [len(list(s.epoch(4, torch.Generator().manual_seed(0), shard=(r, 3))))
              for r in range(3)]
    assert counts == [s.n_batches(4, (0, 3))] * 3 == [2, 2, 2]


def test_streamed_inputs_hold_a_bounded_seeded_sample():
    x, y = _data(10_000)
    tr, va = _stream(x, y), _stream(x[:300], y[:300])
    a = streamed_inputs(tr, va, lambda o, t: {}, seed=5)
    b = streamed_inputs(tr, va, lambda o, t: {}, seed=5)
    assert len(a.x_train) == 4096 and len(a.x_val) == 300
    torch.testing.assert_close(a.x_train, b.x_train)
    assert a.train_data is tr and a.val_data is va
