"""Tests of trainables.data and trainables.procedural: factors recovered from pixels, sampling,
folder/.npz/MNIST loading from tiny files written here, and one-line errors that name the fix."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainables.config import InfoGANConfig
from trainables.data import OFFLINE_ENV, is_labelled, load_data
from trainables.errors import BadInputError
from trainables.procedural import BasicPropLine, BasicPropRects, Sprites


def _config(**values: object) -> InfoGANConfig:
    return InfoGANConfig.from_dict(values)


def _render(dataset: BasicPropLine | BasicPropRects | Sprites, factors: list[list[int]]) -> np.ndarray:
    """(n, S, S) float images of the given factor rows (numpy interface)."""
    return dataset.sample_observations_from_factors(np.array(factors), np.random.default_rng(0))[:, 0]


def _line_position(images: np.ndarray, dataset: BasicPropLine) -> np.ndarray:
    """Recover the position factor: the brightest column's index among the line's left edges."""
    first_col = (images > 0.5).sum(axis=1).argmax(axis=1)  # (n,) first column of the line
    return np.searchsorted(dataset.left.numpy(), first_col)


def _rect_heights(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bright rows per half -> (left heights, right heights) in pixels."""
    bright = images > 0.5
    half = images.shape[-1] // 2
    return bright[:, :, :half].any(axis=2).sum(axis=1), bright[:, :, half:].any(axis=2).sum(axis=1)


# ---------------------------------------------------------------------- procedural ground truth
@pytest.mark.parametrize("noise", [False, True])
def test_line_position_recovered_from_pixels(noise: bool) -> None:
    line = BasicPropLine(noise=noise)
    images = _render(line, [[k] for k in range(10)])
    assert images.shape == (10, 28, 28)
    np.testing.assert_array_equal(_line_position(images, line), np.arange(10))
    widths = (images > 0.5).any(axis=1).sum(axis=1)
    assert set(widths.tolist()) <= {2, 3}
    assert (images > 0.5).all(axis=1).sum(axis=1).min() >= 2  # full height


@pytest.mark.parametrize("noise", [False, True])
def test_rect_heights_recovered_from_pixels(noise: bool) -> None:
    rects = BasicPropRects(noise=noise)
    factors = [[a, b] for a in range(10) for b in range(10)]
    left, right = _rect_heights(_render(rects, factors))
    heights = rects.heights.numpy()
    assert len(set(heights.tolist())) == 10
    np.testing.assert_array_equal(np.searchsorted(heights, left), [f[0] for f in factors])
    np.testing.assert_array_equal(np.searchsorted(heights, right), [f[1] for f in factors])


def test_clean_basicprop_images_are_binary() -> None:
    for dataset in (BasicPropLine(), BasicPropRects()):
        _, images = dataset.sample(50, np.random.default_rng(1))
        assert set(np.unique(images).tolist()) == {0.0, 1.0}


def test_noise_trick_pixel_ranges() -> None:
    line = BasicPropLine(noise=True)
    factors = np.arange(10)[:, None]
    clean = BasicPropLine().sample_observations_from_factors(factors, np.random.default_rng(0)) > 0.5
    noisy = line.sample_observations_from_factors(factors, np.random.default_rng(0)) * 255.0
    fg, bg = noisy[clean], noisy[~clean]
    assert fg.min() >= 150 - 1e-3 and fg.max() <= 240 + 1e-3
    assert bg.min() >= 0 and bg.max() <= 60 + 1e-3
    assert fg.std() > 15 and bg.std() > 10  # really noisy, not constant
    again = line.sample_observations_from_factors(factors, np.random.default_rng(0)) * 255.0
    np.testing.assert_array_equal(noisy, again)  # the rng decides the noise


def _sprite_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(area, centroid column, centroid row) of binary sprite images (n, S, S)."""
    rows, cols = np.mgrid[: images.shape[1], : images.shape[2]]
    area = images.sum(axis=(1, 2))
    return area, (images * cols).sum(axis=(1, 2)) / area, (images * rows).sum(axis=(1, 2)) / area


def test_sprite_centroid_follows_position_and_area_follows_scale() -> None:
    sprites = Sprites(size=32)
    _, cx, cy = _sprite_stats(_render(sprites, [[0, 5, 0, p, 16] for p in range(32)]))
    assert (np.diff(cx) >= 0).all() and cx[-1] - cx[0] > 15
    assert np.ptp(cy) < 0.5
    _, cx, cy = _sprite_stats(_render(sprites, [[1, 5, 0, 16, p] for p in range(32)]))
    assert (np.diff(cy) >= 0).all() and cy[-1] - cy[0] > 15
    for shape in range(3):
        area, _, _ = _sprite_stats(_render(Sprites(size=64), [[shape, s, 7, 16, 16] for s in range(6)]))
        assert (np.diff(area) > 0).all()


def test_sprite_shapes_differ_and_stay_inside_the_canvas() -> None:
    sprites = Sprites(size=32)
    images = _render(sprites, [[shape, 5, 3, 16, 16] for shape in range(3)])
    areas = images.sum(axis=(1, 2))
    assert areas.min() > 20
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(images[a] - images[b]).sum() > 10
    extremes = [[sh, 5, o, x, y] for sh in range(3) for o in range(0, 40, 5) for x in (0, 31) for y in (0, 31)]
    big = _render(sprites, extremes)
    border = big[:, 0].sum() + big[:, -1].sum() + big[:, :, 0].sum() + big[:, :, -1].sum()
    assert border == 0 and big.sum(axis=(1, 2)).min() > 20


def test_sprite_orientation_rotates_the_ellipse() -> None:
    sprites = Sprites(size=64)
    flat, quarter = _render(sprites, [[1, 5, 0, 16, 16], [1, 5, 10, 16, 16]])  # 0 and pi/2
    rows, cols = np.nonzero(flat)
    assert np.ptp(cols) > 1.5 * np.ptp(rows)
    rows, cols = np.nonzero(quarter)
    assert np.ptp(rows) > 1.5 * np.ptp(cols)


@pytest.mark.parametrize("dataset", [BasicPropLine(), BasicPropRects(), Sprites(size=16)])
def test_sample_factors_covers_the_grid(dataset: BasicPropLine | BasicPropRects | Sprites) -> None:
    factors = dataset.sample_factors(5000, np.random.default_rng(0))
    assert factors.shape == (5000, dataset.num_factors) and factors.dtype == np.int64
    for column, k in zip(factors.T, dataset.factors_num_values, strict=True):
        assert set(column.tolist()) == set(range(k))
    if isinstance(dataset, BasicPropRects):
        assert len({tuple(f) for f in factors.tolist()}) == 100
    assert len(dataset.factor_names) == dataset.num_factors


def test_ground_truth_interface_shapes_and_determinism() -> None:
    sprites = Sprites(size=16)
    factors, images = sprites.sample(30, np.random.default_rng(5))
    assert images.shape == (30, *sprites.observation_shape) == (30, 1, 16, 16)
    assert images.dtype == np.float32 and images.min() >= 0.0 and images.max() <= 1.0
    factors2, images2 = sprites.sample(30, np.random.default_rng(5))
    np.testing.assert_array_equal(factors, factors2)
    np.testing.assert_array_equal(images, images2)
    with pytest.raises(ValueError, match="factor indices out of range"):
        sprites.sample_observations_from_factors(np.array([[3, 0, 0, 0, 0]]), np.random.default_rng(0))


@pytest.mark.parametrize(
    ("dataset", "size", "shape", "classes"),
    [("basicprop-line", 0, (1, 28, 28), 10), ("basicprop-rects", 32, (1, 32, 32), 10), ("sprites", 16, (1, 16, 16), 3)],
)
def test_load_procedural(dataset: str, size: int, shape: tuple[int, int, int], classes: int) -> None:
    data = load_data(_config(dataset=dataset, image_size=size, basicprop_noise=True))
    assert data.image_shape == shape and data.num_classes == classes
    assert data.ground_truth is not None and data.ground_truth.observation_shape == shape
    batch = data.sample(16, torch.Generator().manual_seed(3))
    assert batch.shape == (16, *shape) and batch.dtype == torch.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    torch.testing.assert_close(batch, data.sample(16, torch.Generator().manual_seed(3)))
    assert data.heldout is not None and is_labelled(dataset)
    assert data.heldout.images.shape == (2000, *shape) and set(data.heldout.labels.tolist()) == set(range(classes))
    again = load_data(_config(dataset=dataset, image_size=size, basicprop_noise=True))
    assert again.heldout is not None and torch.equal(data.heldout.images, again.heldout.images)


def test_line_heldout_labels_match_the_pixels() -> None:
    data = load_data(_config(dataset="basicprop-line"))
    assert data.heldout is not None and isinstance(data.ground_truth, BasicPropLine)
    images = (data.heldout.images[:200, 0].numpy() + 1) / 2
    np.testing.assert_array_equal(_line_position(images, data.ground_truth), data.heldout.labels[:200].numpy())


# ---------------------------------------------------------------------- folders and .npz
def _rgba_png(path: Path, size: int = 24) -> None:
    pixels = np.zeros((size, size, 4), dtype=np.uint8)
    pixels[:, : size // 2] = (255, 0, 0, 255)  # opaque red left half, transparent right half
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode="RGBA").save(path)


def test_folder_of_rgba_pngs_composited_on_white(tmp_path: Path) -> None:
    _rgba_png(tmp_path / "a.png")
    _rgba_png(tmp_path / "sub" / "b.png")
    Image.fromarray(np.full((30, 40), 128, dtype=np.uint8)).save(tmp_path / "sub" / "grey.jpg")
    data = load_data(_config(dataset="folder", data_root=str(tmp_path)))
    assert data.image_shape == (3, 32, 32) and data.num_classes is None and data.heldout is None
    assert not is_labelled("folder") and not is_labelled("celeba")  # CelebA is read unlabelled too
    assert data.images is not None and len(data.images) == 3
    red = data.images[0].float()  # a.png (sorted first)
    assert red[:, 16:20, 2:6].tolist() == torch.tensor([255.0, 0.0, 0.0])[:, None, None].expand(3, 4, 4).tolist()
    assert (red[:, :, 28:] == 255).all()  # transparent -> white
    grey = data.images[2]
    assert (grey[0] == grey[1]).all() and abs(grey.float().mean().item() - 128) < 3


def test_folder_of_greyscale_images_keeps_one_channel(tmp_path: Path) -> None:
    for i in range(4):
        Image.fromarray(np.full((28, 28), 40 * i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    data = load_data(_config(dataset="folder", data_root=str(tmp_path), image_size=28))
    assert data.image_shape == (1, 28, 28)
    batch = data.sample(100, torch.Generator().manual_seed(0))
    values = set(((batch[:, 0, 0, 0] + 1) * 127.5).round().tolist())
    assert values == {0.0, 40.0, 80.0, 120.0}  # uniform sampling reaches every image


def test_npz_layouts(tmp_path: Path) -> None:
    rgba = np.zeros((5, 24, 24, 4), dtype=np.uint8)
    rgba[..., 1] = 200
    rgba[..., 3] = 255
    rgba[:, :, 12:, 3] = 0  # transparent right half
    np.savez(tmp_path / "punks.npz", images=rgba, labels=np.arange(5))
    data = load_data(_config(dataset="folder", data_root=str(tmp_path / "punks.npz")))
    assert data.image_shape == (3, 32, 32) and data.images is not None
    assert data.images[0, :, 10, 2].tolist() == [0, 200, 0] and data.images[0, :, 10, 30].tolist() == [255] * 3

    np.savez(tmp_path / "chw.npz", np.random.default_rng(0).random((6, 3, 64, 64)).astype(np.float32))
    assert load_data(_config(dataset="folder", data_root=str(tmp_path / "chw.npz"), image_size=64)).image_shape == (
        3,
        64,
        64,
    )
    np.savez(tmp_path / "gray.npz", x=np.zeros((7, 28, 28), dtype=np.uint8))
    gray = load_data(_config(dataset="folder", data_root=str(tmp_path / "gray.npz"), image_size=28))
    assert gray.image_shape == (1, 28, 28) and gray.images is not None and len(gray.images) == 7


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: np.savez(p, a=np.zeros((2, 8, 8)), b=np.zeros(2)), "name the images array 'images'"),
        (lambda p: np.savez(p, images=np.full((2, 8, 8), 3.0)), "floats in \\[0, 1\\]"),
        (lambda p: np.savez(p, images=np.zeros((2, 8, 8, 8, 8), dtype=np.uint8)), "use \\(N,H,W\\)"),
        (lambda p: np.savez(p, images=np.zeros((0, 8, 8), dtype=np.uint8)), "holds no images"),
        (lambda p: p.write_bytes(b"not a zip"), "could not read"),
    ],
)
def test_bad_npz(tmp_path: Path, make: object, match: str) -> None:
    path = tmp_path / "bad.npz"
    make(path)  # type: ignore[operator]
    with pytest.raises(BadInputError, match=match) as err:
        load_data(_config(dataset="folder", data_root=str(path)))
    assert "\n" not in str(err.value)


def test_folder_errors(tmp_path: Path) -> None:
    cases = {
        str(tmp_path / "missing"): "does not exist",
        str(tmp_path): "no images under",
        "": "needs data_root",
    }
    for root, match in cases.items():
        with pytest.raises(BadInputError, match=match):
            load_data(_config(dataset="folder", data_root=root))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(BadInputError, match=r"could not read image .*broken\.png") as err:
        load_data(_config(dataset="folder", data_root=str(tmp_path)))
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- torchvision datasets
def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (big-endian header: 0, 0, type 0x08 = ubyte, ndim; then the dims) + raw uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _fake_mnist(root: Path, folder: str = "MNIST", *, n_train: int = 20, n_test: int = 10) -> np.ndarray:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    raw = root / folder / "raw"
    _write_idx(raw / "train-images-idx3-ubyte", train)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(n_train) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    _write_idx(raw / "t10k-labels-idx1-ubyte", (np.arange(n_test) * 3) % 10)
    return train


@pytest.mark.parametrize(("dataset", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_from_fake_idx_files(tmp_path: Path, dataset: str, folder: str) -> None:
    train = _fake_mnist(tmp_path, folder)
    data = load_data(_config(dataset=dataset, data_root=str(tmp_path)))
    assert data.image_shape == (1, 28, 28) and data.num_classes == 10 and data.ground_truth is None
    assert data.images is not None and torch.equal(data.images[:, 0], torch.from_numpy(train))
    assert data.heldout is not None and data.heldout.images.shape == (10, 1, 28, 28) and is_labelled(dataset)
    assert data.heldout.labels.dtype == torch.int64 and data.heldout.labels.tolist() == [0, 3, 6, 9, 2, 5, 8, 1, 4, 7]
    batch = data.sample(8, torch.Generator().manual_seed(1))
    idx = torch.randint(0, 20, (8,), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(batch, torch.from_numpy(train)[idx][:, None].float() / 127.5 - 1.0)


def test_mnist_resized_once_at_load(tmp_path: Path) -> None:
    _fake_mnist(tmp_path)
    data = load_data(_config(data_root=str(tmp_path), image_size=32))
    assert data.image_shape == (1, 32, 32) and data.images is not None and data.images.dtype == torch.uint8
    assert data.heldout is not None and data.heldout.images.shape == (10, 1, 32, 32)


def test_missing_dataset_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OFFLINE_ENV, "1")
    for dataset, layout in [("mnist", "MNIST/raw/"), ("svhn", "train_32x32.mat"), ("celeba", "img_align_celeba")]:
        with pytest.raises(BadInputError, match=f"not found under .*{layout}") as err:
            load_data(_config(dataset=dataset, data_root=str(tmp_path)))
        assert "\n" not in str(err.value) and OFFLINE_ENV in str(err.value)


def test_failed_download_reason_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    def no_network(self: object) -> None:
        raise RuntimeError("Error downloading x.gz:\nTried https://mirror/, got:\n<urlopen error no network>\n")

    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    monkeypatch.setattr(tvd.MNIST, "download", no_network)
    with pytest.raises(BadInputError, match=r"download failed: <urlopen error no network>\); put MNIST/raw"):
        load_data(_config(dataset="mnist", data_root=str(tmp_path)))


def test_a_failed_download_leaves_no_folder_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision makes ROOT/MNIST/raw before fetching; a failed attempt takes back what it made,
    and only that."""
    import torchvision.datasets as tvd

    def partial_then_no_network(self: tvd.MNIST) -> None:
        Path(self.raw_folder).mkdir(parents=True, exist_ok=True)
        Path(self.raw_folder, "train-images-idx3-ubyte.gz").write_bytes(b"half a file")
        raise RuntimeError("<urlopen error no network>")

    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    monkeypatch.setattr(tvd.MNIST, "download", partial_then_no_network)
    with pytest.raises(BadInputError, match="download failed: <urlopen error no network>"):
        load_data(_config(dataset="mnist", data_root=str(tmp_path / "new" / "data")))
    assert not any(tmp_path.iterdir())
    root = tmp_path / "data"  # a data root that exists keeps what it had
    (root / "FashionMNIST" / "raw").mkdir(parents=True)
    (root / "notes.txt").write_text("mine")
    with pytest.raises(BadInputError, match="download failed"):
        load_data(_config(dataset="mnist", data_root=str(root)))
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert left == ["FashionMNIST", "FashionMNIST/raw", "notes.txt"]


def test_corrupt_mnist_is_one_line_error(tmp_path: Path) -> None:
    _fake_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:500])  # truncated
    with pytest.raises(BadInputError, match="could not read MNIST") as err:
        load_data(_config(data_root=str(tmp_path)))
    assert "\n" not in str(err.value)


def test_unknown_dataset_is_refused() -> None:
    with pytest.raises(BadInputError, match="cifar10"):
        _config(dataset="cifar10")
    config = _config()
    object.__setattr__(config, "dataset", "cifar10")  # bypass the config's own check
    with pytest.raises(BadInputError, match="not known; choose one of: mnist"):
        load_data(config)


PROCEDURAL_CASES = [
    (name, noise) for name in ("basicprop-line", "basicprop-rects", "sprites") for noise in (False, True)
]


@pytest.mark.parametrize(("dataset", "noise"), [*PROCEDURAL_CASES, ("folder", False)])
def test_sample_many_is_each_generators_own_sample(dataset: str, noise: bool, tmp_path: Path) -> None:
    """A pack's batch (n, K, C, H, W) holds exactly what each member's generator gives a single run,
    and leaves each generator where the single run's draw leaves it."""
    if dataset == "folder":  # stored images: a gather
        path = tmp_path / "images.npz"
        np.savez(path, images=np.random.default_rng(0).integers(0, 256, (50, 12, 12, 3), dtype=np.uint8))
        config = _config(dataset="folder", data_root=str(path))
    else:
        config = _config(dataset=dataset, basicprop_noise=noise, image_size=16 if dataset == "sprites" else 0)
    data = load_data(config)
    seeds = [3, 1, 4]
    many = data.sample_many(6, [torch.Generator().manual_seed(s) for s in seeds])
    assert many.shape == (6, len(seeds), *data.image_shape)
    for k, seed in enumerate(seeds):
        single, packed = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        data.sample_many(6, [packed])
        torch.testing.assert_close(many[:, k], data.sample(6, single), rtol=0, atol=0)
        torch.testing.assert_close(torch.rand(3, generator=packed), torch.rand(3, generator=single), rtol=0, atol=0)
