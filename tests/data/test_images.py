import numpy as np
import pytest
import torch
from PIL import Image

from nnrecipe.data.images import (
    MAX_SIDE,
    channel_stats,
    common_size,
    load_array_npz,
    load_image_folder,
    save_thumbnail_grid,
    to_tensor,
)
from nnrecipe.errors import DataError


def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def _grey_folder(root, n=3, size=(10, 12)):
    rng = np.random.default_rng(0)
    for cls in ("b", "a"):
        for i in range(n):
            _save(root / cls / f"{i}.png", rng.integers(0, 256, size, dtype=np.uint8))
    return root


def test_folder_of_greyscale_pngs(tmp_path):
    data = load_image_folder(_grey_folder(tmp_path))
    assert data.classes == ["a", "b"]
    assert data.x.shape == (6, 10, 12, 1) and data.x.dtype == np.uint8
    assert data.y.tolist() == [0, 0, 0, 1, 1, 1] and data.y.dtype == np.int64
    assert data.names[0] == "a/0.png" and data.spatial_dims == 2 and not data.is_volume
    # no resize needed: the pixels are the file's own
    np.testing.assert_array_equal(data.x[0, :, :, 0], np.asarray(Image.open(tmp_path / "a/0.png")))


def test_mixed_formats_and_modes_become_rgb_of_the_median_size(tmp_path):
    rng = np.random.default_rng(1)
    _save(tmp_path / "cat" / "1.PNG", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    _save(tmp_path / "cat" / "2.jpg", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    _save(tmp_path / "cat" / "3.bmp", rng.integers(0, 256, (40, 50), dtype=np.uint8))
    _save(tmp_path / "dog" / "4.gif", rng.integers(0, 256, (10, 10), dtype=np.uint8))
    _save(tmp_path / "dog" / "5.JPEG", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path)
    assert data.x.shape == (5, 20, 30, 3)  # median height 20, width 30
    assert data.y.tolist() == [0, 0, 0, 1, 1]
    assert load_image_folder(tmp_path, size=(8, 16)).x.shape == (5, 8, 16, 3)


def test_grey_gifs_keep_one_channel_and_exif_rotation_is_applied(tmp_path):
    root = _grey_folder(tmp_path)
    _save(root / "a" / "g.gif", np.full((10, 12), 90, np.uint8))  # palette of greys
    assert load_image_folder(root).x.shape == (7, 10, 12, 1)
    stored = np.zeros((12, 10, 3), np.uint8)  # 12 high, 10 wide, bright top rows
    stored[:2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to show it upright
    Image.fromarray(stored).save(root / "b" / "p.jpg", exif=exif, quality=95)
    data = load_image_folder(root, size=(10, 12))
    assert data.x.shape == (8, 10, 12, 3)
    shown = data.x[data.names.index("b/p.jpg")].mean(axis=(0, 2))  # column means
    assert shown[-2:].min() > 200 and shown[:-3].max() < 40  # the top is now the right side


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    root = _grey_folder(tmp_path)
    deep = (np.arange(120).reshape(10, 12) * 500).astype(np.uint16)
    Image.fromarray(deep).save(root / "a" / "deep.png")
    data = load_image_folder(root)
    got = data.x[data.names.index("a/deep.png"), :, :, 0].astype(int)
    np.testing.assert_allclose(got, np.round(deep / 257), atol=1)


def test_common_size_is_the_median_capped_keeping_the_aspect_ratio():
    assert common_size([(28, 28), (28, 28), (30, 20)]) == (28, 28)
    assert common_size([(200, 100)] * 3) == (MAX_SIDE, MAX_SIDE // 2)
    assert common_size([(100, 300), (120, 320), (80, 310)]) == (21, MAX_SIDE)


@pytest.mark.parametrize("case,match", [
    ("missing", "not found"),
    ("one_class", "at least 2"),
    ("empty_class", "holds no image files"),
    ("broken", r"b/bad\.png .*could not be read"),
    ("truncated", r"b/cut\.png .*could not be read"),
])
def test_folder_errors_say_what_is_wrong(tmp_path, case, match):
    root = tmp_path / "imgs"
    if case != "missing":
        _grey_folder(root)
    if case == "one_class":
        for f in (root / "b").iterdir():
            f.unlink()
        (root / "b").rmdir()
    elif case == "empty_class":
        (root / "c").mkdir()
    elif case == "broken":
        (root / "b" / "bad.png").write_bytes(b"this is not a png")
    elif case == "truncated":
        _save(root / "b" / "cut.png", np.random.default_rng(0).integers(0, 256, (64, 64),
                                                                           dtype=np.uint8))
        raw = (root / "b" / "cut.png").read_bytes()
        (root / "b" / "cut.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=match):
        load_image_folder(root)


def test_npz_images_volumes_and_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    cases = {  # shape -> (loaded shape, spatial dims)
        (5, 8, 8): ((5, 8, 8, 1), 2),
        (5, 8, 8, 3): ((5, 8, 8, 3), 2),
        (5, 6, 8, 8): ((5, 6, 8, 8, 1), 3),
        (5, 4, 8, 8, 2): ((5, 4, 8, 8, 2), 3),
    }
    for shape, (want, dims) in cases.items():
        np.savez(tmp_path / "a.npz", x=rng.random(shape), y=np.array(["b", "a", "b", "c", "a"]))
        data = load_array_npz(tmp_path / "a.npz")
        assert data.x.shape == want and data.spatial_dims == dims and data.x.dtype == np.float32
        assert data.classes == ["a", "b", "c"] and data.y.tolist() == [1, 0, 1, 2, 0]
    np.savez(tmp_path / "b.npz", x=np.zeros((3, 4, 4), np.uint8), y=np.array([7, 3, 7]))
    data = load_array_npz(tmp_path / "b.npz")
    assert data.x.dtype == np.uint8 and data.classes == ["3", "7"] and data.names[2] == "row 2"


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "k.npz", images=np.zeros((2, 4, 4)), y=np.zeros(2))
    with pytest.raises(DataError, match=r"no array named 'x' \(found \['images', 'y'\]\)"):
        load_array_npz(tmp_path / "k.npz")
    np.savez(tmp_path / "n.npz", x=np.zeros((3, 4, 4)), y=np.zeros(2))
    with pytest.raises(DataError, match="3 samples but y has 2"):
        load_array_npz(tmp_path / "n.npz")
    np.savez(tmp_path / "o.npz", x=np.zeros((2, 4, 4)), y=np.array([{"a": 1}, None]))
    with pytest.raises(DataError, match="Python objects"):
        load_array_npz(tmp_path / "o.npz")
    (tmp_path / "t.npz").write_text("hello")
    with pytest.raises(DataError, match="not an .npz"):
        load_array_npz(tmp_path / "t.npz")
    with pytest.raises(DataError, match="not found"):
        load_array_npz(tmp_path / "missing.npz")


def test_channel_stats_and_to_tensor_normalise_each_channel():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 6, 5, 3), dtype=np.uint8)
    x[..., 2] = 7  # a constant channel
    mean, std = channel_stats(x)
    ref = x.reshape(-1, 3) / 255
    np.testing.assert_allclose(mean, ref.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(std, ref.std(axis=0), atol=1e-9)
    assert all(isinstance(v, float) for v in mean + std)
    t = to_tensor(x, mean, std)
    assert t.shape == (50, 3, 6, 5) and t.dtype == torch.float32
    per_channel = t.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_channel[:2].mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel[:2].std(1, unbiased=False), torch.ones(2),
                               atol=1e-4, rtol=0)
    assert torch.isfinite(t).all() and per_channel[2].abs().max() < 1e-3  # floored std
    vol = rng.random((4, 3, 6, 5, 2)).astype(np.float32)
    assert to_tensor(vol, *channel_stats(vol)).shape == (4, 2, 3, 6, 5)
    with pytest.raises(DataError, match="fitted on 3"):
        to_tensor(vol, mean, std)


def test_thumbnail_grid_is_written(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (10, 12, 12, 1), dtype=np.uint8)
    path = save_thumbnail_grid(grey, [f"true {i} / pred 8 (p=0.91)" for i in range(10)],
                               tmp_path / "worst.png", cols=4)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > im.height  # 4 columns, 3 rows
    rgb = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    assert save_thumbnail_grid(rgb, ["a", "b", "c"], tmp_path / "rgb.png").is_file()
