import time

import pytest
import torch

from nnrecipe.data.augment import ImageAugment, SeriesAugment, VolumeAugment
from nnrecipe.errors import PlanError


def _batch(n=4, c=3, h=12, w=10, seed=0):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_identity_parameters_return_the_input():
    x = _batch()
    aug = ImageAugment()
    params = {"tx": torch.zeros(4), "ty": torch.zeros(4), "angle": torch.zeros(4),
              "shear": torch.zeros(4), "scale": torch.ones(4), "flip": torch.zeros(4).bool()}
    torch.testing.assert_close(aug.apply(x, params), x, atol=1e-5, rtol=0)
    assert aug(x) is x  # nothing configured: no resampling at all


def test_flip_with_probability_one_is_torch_flip():
    x = _batch()
    torch.testing.assert_close(ImageAugment(flip=1.0)(x), torch.flip(x, dims=[-1]))
    # the same through the affine path (a tiny rotation range forces resampling)
    aug = ImageAugment(flip=1.0, rotation=1.0)
    params = aug.sample_params(4)
    params["angle"] = torch.zeros(4)
    torch.testing.assert_close(aug.apply(x, params), torch.flip(x, dims=[-1]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("h,w", [(28, 28), (12, 20)])
def test_a_one_pixel_shift_moves_a_bright_pixel_by_one_pixel(h, w):
    x = torch.zeros(1, 1, h, w)
    x[0, 0, 5, 7] = 1.0
    aug = ImageAugment()
    right = aug.apply(x, {"tx": torch.tensor([1 / w]), "ty": torch.tensor([0.0])})
    down = aug.apply(x, {"tx": torch.tensor([0.0]), "ty": torch.tensor([1 / h])})
    want_right, want_down = torch.zeros_like(x), torch.zeros_like(x)
    want_right[0, 0, 5, 8] = 1.0
    want_down[0, 0, 6, 7] = 1.0
    torch.testing.assert_close(right, want_right, atol=1e-5, rtol=0)
    torch.testing.assert_close(down, want_down, atol=1e-5, rtol=0)


def test_rotation_by_90_degrees_on_a_square_image_is_a_transpose_and_flip():
    x = _batch(n=1, c=1, h=9, w=9)
    out = ImageAugment().apply(x, {"angle": torch.tensor([90.0])})
    # Either direction of rotation is fine, but it must be an exact quarter turn.
    assert (torch.allclose(out, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)
            or torch.allclose(out, torch.rot90(x, -1, dims=(2, 3)), atol=1e-5))


def test_zoom_enlarges_the_content():
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 8:13, 8:13] = 1.0  # a 5x5 square at the centre
    out = ImageAugment().apply(x, {"scale": torch.tensor([2.0])})
    assert (out > 0.5).sum() > 4 * 20  # about 10x10 = 100 pixels now


def test_same_seed_same_batches_and_shape_preserved():
    x = _batch(n=8, c=1, h=28, w=28)
    cfg = dict(shift=0.1, rotation=15, zoom=(0.9, 1.1), shear=10, flip=0.5, noise=0.1)
    a, b, c = ImageAugment(**cfg, seed=3), ImageAugment(**cfg, seed=3), ImageAugment(**cfg, seed=4)
    out_a, out_b, out_c = a(x), b(x), c(x)
    assert out_a.shape == x.shape
    torch.testing.assert_close(out_a, out_b)
    assert not torch.allclose(out_a, out_c)
    torch.testing.assert_close(a(x), b(x))  # the streams stay in step


def test_disabled_returns_input_and_settings_round_trip():
    x = _batch()
    aug = ImageAugment(shift=0.1, zoom=(0.9, 1.2), enabled=False, seed=5)
    assert aug(x) is x
    state = aug.to_dict()
    assert state == {"enabled": False, "seed": 5, "shift": 0.1, "rotation": 0.0,
                     "zoom": [0.9, 1.2], "shear": 0.0, "flip": 0.0, "noise": 0.0}
    assert ImageAugment.from_dict(state).to_dict() == state


def test_rng_state_resumes_the_stream():
    x = _batch()
    aug = ImageAugment(rotation=20, noise=0.1)
    state = aug.get_rng_state()
    first = aug(x)
    aug.set_rng_state(state)
    torch.testing.assert_close(aug(x), first)


def test_bad_settings_are_rejected():
    with pytest.raises(PlanError, match="rotation"):
        ImageAugment(rotation=-5)
    with pytest.raises(PlanError, match="zoom"):
        ImageAugment(zoom=(1.2, 0.8))
    with pytest.raises(PlanError, match="flip"):
        ImageAugment(flip=1.5)
    with pytest.raises(PlanError, match="jitter"):
        SeriesAugment(jitter=-0.1)


def test_image_augment_is_cheap():
    x = _batch(n=64, c=1, h=28, w=28)
    aug = ImageAugment(shift=0.1, rotation=10, zoom=(0.9, 1.1), shear=5, noise=0.05)
    aug(x)
    start = time.perf_counter()
    for _ in range(20):
        aug(x)
    per_batch = (time.perf_counter() - start) / 20
    assert per_batch < 0.05, f"{per_batch * 1000:.1f} ms per batch of 64 28x28 images"


def test_series_jitter_is_relative_to_each_feature():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 20, 2, generator=g) * torch.tensor([1.0, 100.0])
    out = SeriesAugment(jitter=0.1)(x)
    noise_std = (out - x).reshape(-1, 2).std(dim=0)
    torch.testing.assert_close(noise_std, torch.tensor([0.1, 10.0]), rtol=0.05, atol=0)
    given = SeriesAugment(jitter=0.1, feature_std=[2.0, 2.0])(x)
    torch.testing.assert_close((given - x).reshape(-1, 2).std(dim=0), torch.tensor([0.2, 0.2]),
                               rtol=0.05, atol=0)


def test_series_scaling_uses_one_factor_per_window_and_scales_targets_too():
    x = torch.rand(64, 10, 3) + 1
    y = torch.rand(64, 4) + 1
    out_x, out_y = SeriesAugment(scale=0.1, seed=1)(x, y)
    ratio_x, ratio_y = out_x / x, out_y / y
    per_window = ratio_x.reshape(64, -1)
    torch.testing.assert_close(per_window, per_window[:, :1].expand_as(per_window))
    torch.testing.assert_close(ratio_y[:, 0], per_window[:, 0])
    assert 0.05 < per_window[:, 0].std() < 0.15
    torch.testing.assert_close(SeriesAugment(scale=0.1, seed=1)(x), out_x)
    assert SeriesAugment(jitter=0.5, enabled=False)(x) is x
    assert SeriesAugment(jitter=0.1, scale=0.2).to_dict() == {
        "enabled": True, "seed": 0, "jitter": 0.1, "scale": 0.2, "feature_std": None}


# ---- volumes ---------------------------------------------------------------------------------
def _blob(d=12, h=14, w=16, at=(6.0, 7.0, 8.0)):
    z, y, x = torch.meshgrid(torch.arange(d), torch.arange(h), torch.arange(w), indexing="ij")
    r2 = (z - at[0]) ** 2 + (y - at[1]) ** 2 + (x - at[2]) ** 2
    return torch.exp(-r2 / 4.0)[None, None].float()  # (1, 1, D, H, W)


def _centre(v):
    d, h, w = v.shape[-3:]
    z, y, x = torch.meshgrid(torch.arange(d), torch.arange(h), torch.arange(w), indexing="ij")
    m = v[0, 0]
    return torch.stack([(m * c).sum() / m.sum() for c in (z, y, x)])


def test_volume_shift_moves_the_content_by_the_sampled_voxels():

    vol = _blob()
    aug = VolumeAugment(shift=0.15, seed=3)
    theta = VolumeAugment(shift=0.15, seed=3).theta(1, 12, 14, 16)  # the same draw
    out = aug(vol)
    t_vox = -theta[0, :, 3] * torch.tensor([16 / 2, 14 / 2, 12 / 2])  # x, y, z in voxels
    moved = _centre(out) - _centre(vol)  # z, y, x
    torch.testing.assert_close(moved, t_vox.flip(0), atol=0.1, rtol=0)
    assert float(t_vox.abs().max()) > 0.5  # it did move


def test_volume_rotation_stays_in_its_slices_and_flip_and_seeds_are_exact():

    vol = _blob()
    out = VolumeAugment(rotation=40, seed=0)(vol)
    # a rotation in the height-width plane keeps each depth slice's mass on that slice
    torch.testing.assert_close(out[0, 0].sum((1, 2)), vol[0, 0].sum((1, 2)), atol=0.05,
                               rtol=0.05)
    assert not torch.allclose(out, vol, atol=1e-3)
    assert torch.equal(VolumeAugment(flip=1.0)(vol), vol.flip(-1))
    assert torch.equal(VolumeAugment()(vol), vol)  # nothing asked, nothing changed
    a = VolumeAugment(shift=0.1, rotation=10, zoom=(0.9, 1.1), noise=0.1, seed=7)
    b = VolumeAugment(shift=0.1, rotation=10, zoom=(0.9, 1.1), noise=0.1, seed=7)
    batch = vol.repeat(4, 1, 1, 1, 1)
    assert torch.equal(a(batch), b(batch))
