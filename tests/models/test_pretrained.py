"""Transfer learning's parts: reading a pretrained convnet, measuring similarity through its
BatchNorm statistics, freezing, discriminative learning rates and staged unfreezing."""

from __future__ import annotations

import pytest
import torch
import yaml

from nnrecipe import modalities
from nnrecipe.data.profile import DataProfile
from nnrecipe.errors import DataError, PlanError
from nnrecipe.models.cnn import build_cnn
from nnrecipe.models.pretrained import (
    Pretrained,
    Unfreeze,
    apply_transfer,
    bn_divergence,
    feature_probe,
    infer_cnn_arch,
    load_pretrained,
)
from nnrecipe.plan import make_plan
from nnrecipe.plan.transfer import SIMILAR_BELOW, SMALL_BELOW
from nnrecipe.train.callbacks import TrainState
from nnrecipe.train.optim import make_optimizer, parameter_groups


def _cnn(dims=2, blocks=2, filters=8, residual=False, separable=False, n_out=5, size=8,
         in_channels=1):
    return build_cnn(dims=dims, in_channels=in_channels, input_size=(size,) * dims,
                     n_outputs=n_out, blocks=blocks, filters=filters, residual=residual,
                     separable=separable)


def _remember(model, x, passes=100):
    """Give the BatchNorm layers running statistics of ``x`` (as training would)."""
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(x)
    return model


@pytest.mark.parametrize("dims,blocks,filters,residual,separable",
                         [(2, 2, 8, False, False), (2, 3, 16, True, False),
                          (1, 2, 4, False, True), (3, 1, 8, True, True)])
def test_the_architecture_is_read_off_the_weights(dims, blocks, filters, residual, separable):
    state = _cnn(dims, blocks, filters, residual, separable).state_dict()
    arch = infer_cnn_arch(state)
    assert arch == {"model.arch": "cnn", "model.blocks": blocks, "model.filters": filters,
                    "model.kernel": 3, "model.separable": separable,
                    "model.residual": residual, "_dims": dims}


def test_divergence_is_small_for_data_like_the_source_and_large_for_other_data():
    g = torch.Generator().manual_seed(0)
    source = torch.rand(256, 1, 8, 8, generator=g) * torch.linspace(0, 2, 8)  # a gradient
    model = _remember(_cnn(), source)
    same = torch.rand(256, 1, 8, 8, generator=g) * torch.linspace(0, 2, 8)
    other = torch.randn(256, 1, 8, 8, generator=g) * 3 + 2
    near, far = bn_divergence(model, same, 2), bn_divergence(model, other, 2)
    assert near < 0.05 < SIMILAR_BELOW < far
    assert model.training  # the probe puts the model back as it found it


def test_the_feature_probe_compares_pretrained_features_with_the_raw_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 8, 8, generator=g)
    y = torch.arange(60) % 2
    x[y == 1, :, :, :4] += 1.0  # class 1: a bright left half; plain to a linear model
    blind = _cnn()
    with torch.no_grad():
        for p in blind.blocks.parameters():
            p.zero_()  # every sample gives the same features: they carry nothing
    probe = feature_probe(blind, x, y.numpy(), 2, seed=0)
    assert probe["raw"] > 0.95 and probe["features"] < 0.7
    assert feature_probe(blind, x[:3], torch.tensor([0, 0, 1]).numpy(), 2, seed=0) is None


def _pretrained(model, **arch) -> Pretrained:
    arch = {"model.arch": "cnn", "model.blocks": len(model.blocks), **arch}
    return Pretrained("src", "state_dict", "image", model.state_dict(), arch)


def _plan(strategy, keep, head_epochs=0, lr_factor=1.0, lr=0.01):
    return {"transfer.strategy": strategy, "transfer.keep_blocks": keep,
            "transfer.head_epochs": head_epochs, "transfer.backbone_lr": lr_factor,
            "optimizer.lr": lr}


def _step(model, x, y, lr=0.1):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def test_freeze_keeps_the_pretrained_blocks_and_their_statistics_while_the_head_learns():
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 5, (32,))
    source = _remember(_cnn(), x + 1)
    target = _cnn(n_out=3)
    loaded = apply_transfer(target, _plan("freeze", 2), _pretrained(source))
    assert loaded and all(k.startswith("blocks.") for k in loaded)  # never the head
    before = {k: v.clone() for k, v in target.state_dict().items()}
    _step(target, x, y % 3)
    after = target.state_dict()
    for k in before:
        if k.startswith("blocks."):  # weights and BatchNorm running statistics alike
            assert torch.equal(before[k], after[k]), k
            assert torch.equal(after[k], source.state_dict()[k]), k
    assert not torch.equal(before["head.3.weight"], after["head.3.weight"])
    assert all(not b.training for b in target.blocks) and target.head.training


def test_the_new_head_starts_near_zero_so_the_loss_at_init_is_ln_classes():
    source = _remember(_cnn(), torch.randn(64, 1, 8, 8) * 4 + 3)  # large features
    target = _cnn(n_out=4)
    apply_transfer(target, _plan("retrain", 2), _pretrained(source))
    target.eval()
    x, y = torch.randn(64, 1, 8, 8) * 4 + 3, torch.randint(0, 4, (64,))
    loss = torch.nn.functional.cross_entropy(target(x), y)
    torch.testing.assert_close(loss, torch.log(torch.tensor(4.0)), atol=0.02, rtol=0)


def test_early_keeps_only_the_first_blocks_and_trains_the_rest():
    source = _remember(_cnn(blocks=3), torch.randn(32, 1, 8, 8))
    target = _cnn(blocks=3)
    loaded = apply_transfer(target, _plan("early", 1), _pretrained(source))
    assert {k.split(".")[1] for k in loaded} == {"0"}
    assert not any(p.requires_grad for p in target.blocks[0].parameters())
    assert all(p.requires_grad for b in target.blocks[1:] for p in b.parameters())
    assert not torch.equal(target.blocks[1].conv1.weight, source.blocks[1].conv1.weight)


def test_weights_that_fit_nothing_are_refused():
    source = _cnn(filters=4)
    with pytest.raises(DataError, match="none of its weights fit"):
        apply_transfer(_cnn(filters=8), _plan("retrain", 2), _pretrained(source))


def test_discriminative_learning_rates_match_a_hand_written_sgd_step():
    torch.manual_seed(0)
    model = _cnn()
    plan = {**_plan("fine_tune", 2, 3, 0.1, lr=0.5), "optimizer.name": "sgd",
            "optimizer.weight_decay": 0.0, "optimizer.betas": [0.9, 0.999],
            "optimizer.momentum": 0.0, "optimizer.nesterov": False}
    groups = parameter_groups(model, plan)
    assert [g.get("lr") for g in groups] == [None, pytest.approx(0.05)]
    opt = make_optimizer(plan, groups)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 5, (16,))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.nn.functional.cross_entropy(model(x), y).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    for n, p in model.named_parameters():
        lr = 0.05 if n.startswith("blocks.") else 0.5
        torch.testing.assert_close(p.detach(), before[n] - lr * grads[n])
    plain = parameter_groups(model, {"optimizer.lr": 0.1})  # no transfer: one group
    assert [id(p) for p in plain] == [id(p) for p in model.parameters()]


def test_staged_unfreezing_lets_the_blocks_learn_after_the_head_epochs():
    model = _cnn()
    model.freeze(2)
    watcher = Unfreeze(3)
    state = TrainState(model=model, optimizer=None, plan=None, max_epochs=10)
    for epoch in (1, 2):
        state.epoch = epoch
        watcher.on_epoch_end(state)
        assert model.frozen == 2 and not model.blocks[0].conv1.weight.requires_grad
    state.epoch = 3
    watcher.on_epoch_end(state)
    assert model.frozen == 0 and watcher.unfrozen_at == 3
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    assert all(m.training for m in model.modules())


def test_sources_that_cannot_serve_are_refused_clearly(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_pretrained(tmp_path / "nope.pt", "image")
    (tmp_path / "junk.pt").write_text("not a tensor file")
    with pytest.raises(DataError, match="not a PyTorch state dict"):
        load_pretrained(tmp_path / "junk.pt", "image")
    torch.save({"layers.0.weight": torch.zeros(2, 2)}, tmp_path / "mlp.pt")
    with pytest.raises(DataError, match="not the weights of an nnrecipe convnet"):
        load_pretrained(tmp_path / "mlp.pt", "image")
    torch.save(_cnn(dims=1).state_dict(), tmp_path / "audio.pt")
    with pytest.raises(DataError, match="trained on audio data; this is image data"):
        modalities.get("image").adopt_pretrained(None, tmp_path / "audio.pt")
    with pytest.raises(DataError, match="trained on image data; this is audio data"):
        modalities.get("audio").adopt_pretrained(None, "efficientnet-lite0")
    with pytest.raises(DataError, match="convnets"):
        load_pretrained(tmp_path / "audio.pt", "text")
    run = tmp_path / "table_run"
    run.mkdir()
    for name in ("model.pt", "preprocess.json"):
        (run / name).write_text("{}")
    plan = {"decisions": {"model.width": {"value": 8, "reason": "", "rule": ""}}, "derived": {}}
    (run / "plan.yaml").write_text(yaml.safe_dump(plan))
    with pytest.raises(DataError, match="transfer works from convnets"):
        load_pretrained(run, "image")
    pre = load_pretrained(tmp_path / "audio.pt", "audio")
    assert pre.kind == "state_dict" and pre.arch["model.blocks"] == 2 and pre.in_channels == 1


# ---- the plan: the CS231n transfer-learning table ------------------------------------------
def _profile(divergence, blocks=2) -> DataProfile:
    pre = {"source": "src", "kind": "run", "modality": "image", "blocks": blocks,
           "divergence": divergence,
           "arch": {"model.arch": "cnn", "model.blocks": blocks, "model.filters": 24,
                    "data.image_size": 8}}
    return DataProfile(n_rows=150, n_columns=0, target="label", task="multiclass",
                       task_reason="test", columns={},
                       target_summary={"classes": {"a": 75, "b": 75}, "majority_share": 0.5,
                                       "minority_share": 0.5},
                       duplicate_rows=0, constant_columns=[], id_like_columns=[],
                       text_columns=[], leak_suspects=[], modality="image",
                       inputs={"spatial": [8, 8], "side": 8, "channels": 1, "pretrained": pre})


@pytest.mark.parametrize("n_train,divergence,strategy,keep,factor,head", [
    (SMALL_BELOW - 1, SIMILAR_BELOW / 2, "freeze", 2, 1.0, 0),
    (SMALL_BELOW - 1, SIMILAR_BELOW * 4, "early", 1, 1.0, 0),
    (SMALL_BELOW, SIMILAR_BELOW / 2, "fine_tune", 2, 0.1, 3),
    (SMALL_BELOW, SIMILAR_BELOW * 4, "retrain", 2, 1.0, 0),
])
def test_the_strategy_follows_the_cs231n_table(n_train, divergence, strategy, keep, factor,
                                               head):
    plan = make_plan(_profile(divergence), n_train)
    assert plan["transfer.strategy"] == strategy
    assert plan["transfer.keep_blocks"] == keep
    assert plan["transfer.backbone_lr"] == factor and plan["transfer.head_epochs"] == head
    reason = plan.decisions["transfer.strategy"].reason
    assert str(n_train) in reason and f"{divergence:.3g}" in reason
    # the architecture is the pretrained network's, so its weights fit
    assert plan["model.filters"] == 24 and plan.decisions["model.filters"].rule == \
        "transfer.same_arch"
    assert plan["transfer.source"] == "src"


def test_alike_inputs_with_features_that_miss_the_new_classes_count_as_different():
    profile = _profile(SIMILAR_BELOW / 2)
    profile.inputs["pretrained"]["probe"] = {"features": 0.6, "raw": 0.8}
    plan = make_plan(profile, 50)
    assert plan["transfer.feature_gain"] == pytest.approx(-0.2)
    assert plan["transfer.strategy"] == "early"
    assert "0.600" in plan.derived["transfer.feature_gain"].reason
    profile.inputs["pretrained"]["probe"] = {"features": 0.9, "raw": 0.8}
    assert make_plan(profile, 50)["transfer.strategy"] == "freeze"


def test_the_user_may_choose_the_strategy_and_transfer_keys_need_a_source():
    plan = make_plan(_profile(0.1), 50, {"transfer.strategy": "retrain"})
    assert plan["transfer.strategy"] == "retrain"
    assert plan.decisions["transfer.strategy"].rule == "user"
    no_source = _profile(0.1)
    del no_source.inputs["pretrained"]
    with pytest.raises(PlanError, match="--pretrained"):
        make_plan(no_source, 50, {"transfer.strategy": "freeze"})
