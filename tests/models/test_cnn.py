import itertools

import pytest
import torch
from torch import nn

from nnrecipe.errors import PlanError
from nnrecipe.models.cnn import ConvNet, build_cnn, conv_output_size, max_blocks


def _cnn(**kw) -> ConvNet:
    cfg = dict(dims=2, in_channels=3, input_size=(16, 16), n_outputs=5, blocks=3, filters=4)
    cfg.update(kw)
    return build_cnn(**cfg)


@pytest.mark.parametrize("size,kernel,stride,padding,dilation", [
    c for c in itertools.product([1, 2, 5, 8, 13], [1, 2, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2])
    if c[0] + 2 * c[3] >= c[4] * (c[1] - 1) + 1  # only windows that fit somewhere
])
def test_conv_output_size_matches_what_pytorch_produces(size, kernel, stride, padding, dilation):
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    expected = conv_output_size(size, kernel, **kw)
    assert nn.Conv1d(1, 1, kernel, **kw)(torch.zeros(1, 1, size)).shape[-1] == expected
    out = nn.Conv2d(1, 1, kernel, **kw)(torch.zeros(1, 1, size, size + 3))
    assert out.shape[-2] == expected
    assert out.shape[-1] == conv_output_size(size + 3, kernel, **kw)
    if 2 * padding <= kernel:  # PyTorch's own limit on pooling padding
        pooled = nn.MaxPool2d(kernel, **kw)(torch.zeros(1, 1, size, size))
        assert pooled.shape[-2:] == (expected, expected)


@pytest.mark.parametrize("dims,size", [(1, (40,)), (2, (16, 12)), (3, (8, 8, 6))])
@pytest.mark.parametrize("residual,separable", [(False, False), (True, False), (False, True),
                                                (True, True)])
def test_output_shape_for_every_dimensionality_and_block_kind(dims, size, residual, separable):
    model = _cnn(dims=dims, input_size=size, residual=residual, separable=separable)
    out = model(torch.randn(4, 3, *size))
    assert out.shape == (4, 5)
    assert model.features(torch.randn(2, 3, *size)).shape[:2] == (2, 4 * 2 ** 2)


def test_filters_double_with_each_block_and_each_block_halves_the_grid():
    model = _cnn(blocks=3, filters=8)
    x = torch.randn(2, 3, 16, 16)
    shapes = []
    for block in model.blocks:
        x = block(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(8, 8, 8), (16, 4, 4), (32, 2, 2)]


def test_convs_keep_the_size_with_zero_padding():
    model = _cnn(kernel=5)
    conv = model.blocks[0].conv1
    assert conv.padding == (2, 2) and conv.padding_mode == "zeros"
    assert conv(torch.randn(1, 3, 9, 9)).shape[-2:] == (9, 9)


def test_separable_convs_have_fewer_parameters_than_full_ones():
    def count(m):
        return sum(p.numel() for p in m.parameters())
    full, separable = _cnn(filters=16), _cnn(filters=16, separable=True)
    assert count(separable) < count(full) / 3
    depthwise = separable.blocks[1].conv1[0]
    assert depthwise.groups == depthwise.in_channels == 16


def test_residual_projection_only_where_the_channel_count_changes():
    model = _cnn(residual=True, filters=3)  # block 0: 3 → 3 channels, then 3 → 6, 6 → 12
    kinds = [type(b.shortcut).__name__ for b in model.blocks]
    assert kinds == ["Identity", "Sequential", "Sequential"]
    projection = model.blocks[1].shortcut[0]
    assert projection.kernel_size == (1, 1) and projection.out_channels == 6
    assert all(b.shortcut is None for b in _cnn(residual=False).blocks)


def test_residual_block_adds_its_input_back():
    block = _cnn(residual=True, filters=3, blocks=1).blocks[0].eval()
    nn.init.zeros_(block.bn2.weight)  # the conv path now contributes only bn2's bias (0)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(block(x), nn.functional.max_pool2d(torch.relu(x), 2))


def test_too_small_image_is_refused_with_the_size_the_depth_and_the_fix():
    with pytest.raises(PlanError) as err:
        _cnn(input_size=(6, 6), blocks=4)
    message = str(err.value)
    assert "\n" not in message
    for part in ("6×6", "4 pooling blocks", "6→3→1→0", "at most 3", "model.blocks=3"):
        assert part in message
    with pytest.raises(PlanError, match="length 3 .*3→1→0"):
        _cnn(dims=1, input_size=(3,), blocks=3)


def test_max_blocks_is_the_deepest_net_that_builds():
    assert [max_blocks(s) for s in (1, 2, 3, 4, 7, 8, 224)] == [1, 2, 2, 3, 3, 4, 8]
    assert max_blocks((32, 5)) == 3  # the smallest side decides
    model = _cnn(input_size=(5, 5), blocks=max_blocks((5, 5)))
    assert model(torch.randn(2, 3, 5, 5)).shape == (2, 5)
    # the block whose grid is already 1×1 keeps it instead of pooling it away
    assert isinstance(model.blocks[-1].pool, nn.Identity)


def test_even_kernel_is_refused():
    with pytest.raises(PlanError, match="odd.*model.kernel=3"):
        _cnn(kernel=4)


def test_blocks_and_head_are_exposed_for_transfer():
    model = _cnn(blocks=3, dropout=0.5)
    assert isinstance(model.blocks, nn.ModuleList) and len(model.blocks) == 3
    assert isinstance(model.head[-1], nn.Linear) and model.head[-1].out_features == 5
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.head)
    assert isinstance(model.head[0], nn.AdaptiveAvgPool2d)


def test_he_initialisation_and_identity_batchnorm():
    torch.manual_seed(0)
    model = _cnn(filters=64, blocks=1)
    conv = model.blocks[0].conv2  # 64 → 64, 3×3: fan_out = 64·9
    assert conv.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
    bn = model.blocks[0].bn1
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_learns_a_tiny_two_class_image_problem():
    # Class 1 has a bright square somewhere; class 0 is noise only.
    torch.manual_seed(0)
    n = 64
    x = torch.randn(n, 1, 12, 12) * 0.5
    y = torch.arange(n) % 2
    for i in range(1, n, 2):
        r, c = torch.randint(0, 9, (2,)).tolist()
        x[i, 0, r:r + 3, c:c + 3] += 2.0
    model = _cnn(in_channels=1, input_size=(12, 12), n_outputs=2, blocks=2, filters=8,
                 residual=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0]
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() > 0.9
