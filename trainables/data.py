"""Training images: loaded once, kept on the training device, sampled by index.

A GAN step wants a fresh random batch, not epochs, so there is no DataLoader: the whole training
set sits on the device as uint8 (N, C, H, W) and `ImageData.sample` draws indices uniformly with
replacement from a torch.Generator on that device (same generator state -> same batch).
Procedural sets (trainables/procedural.py) render each batch on the device from random factors.

Sources, by `config.dataset`:
- `mnist`, `fashion-mnist`, `svhn`, `celeba`: torchvision's files under `config.data_root`
  (default ./data). If absent, torchvision's download is tried once (10 s socket timeout; skipped
  with INFOGAN_STUDY_OFFLINE=1); a failed attempt leaves no folder behind. MNIST, Fashion-MNIST
  and SVHN keep their test split, with labels, as `heldout`; CelebA is read unlabelled (its train
  split; no held-out split, no label-based score).
- `folder`: unlabelled images from an image folder (png/jpg, recursive) or a `.npz` at data_root.
- `basicprop-line`, `basicprop-rects`, `sprites`: procedural, with ground-truth factors.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.procedural import PROCEDURAL, GroundTruthData, ProceduralData, make_procedural

__all__ = ["OFFLINE_ENV", "GroundTruthData", "ImageData", "LabelledSplit", "is_labelled", "load_data"]

OFFLINE_ENV = "INFOGAN_STUDY_OFFLINE"  # "1": never try to download a missing dataset
DOWNLOAD_TIMEOUT_S = 10.0
HELDOUT_SIZE = 2000  # labelled images kept for scoring procedural sets
HELDOUT_SEED = 20160612  # fixed, so every run scores on the same procedural held-out images
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
T = TypeVar("T")


@dataclass(frozen=True)
class LabelledSplit:
    """Held-out labelled images for label-based scoring (CPU)."""

    images: Tensor  # (N, C, H, W) float32 in [-1, 1]
    labels: Tensor  # (N,) int64


@dataclass(frozen=True)
class ImageData:
    """A training set on its device: stored uint8 images, or a procedural renderer."""

    name: str
    image_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int | None
    device: torch.device
    heldout: LabelledSplit | None = None
    ground_truth: ProceduralData | None = None  # procedural sets: renders batches and serves the metrics
    images: Tensor | None = field(default=None, repr=False)  # (N, C, H, W) uint8 on `device` (stored sets)
    labels: Tensor | None = field(default=None, repr=False)  # (N,) int64 on CPU: the classes of `images`, if known

    def train_images(self) -> Tensor:
        """The stored training images (N, C, H, W) float32 in [-1, 1] on CPU (stored sets only)."""
        assert self.images is not None, "procedural sets render their images: use sample()"
        return _to_float(self.images.cpu())

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n images (n, C, H, W) float32 in [-1, 1] on `device`; `generator` must live on `device`."""
        if self.images is None:
            assert self.ground_truth is not None
            return self.ground_truth.sample_images(n, generator) * 2.0 - 1.0
        idx = torch.randint(0, len(self.images), (n,), generator=generator, device=self.images.device)
        return _to_float(self.images[idx])

    def sample_many(self, n: int, generators: Sequence[torch.Generator]) -> Tensor:
        """`sample(n, g)` for each of K generators, as one batch (n, K, C, H, W): each generator makes
        the same draws as in `sample`, and the gather (or rendering) runs once for all of them."""
        if self.images is None:
            assert self.ground_truth is not None
            return self.ground_truth.sample_images_many(n, generators) * 2.0 - 1.0
        idx = torch.stack(
            [torch.randint(0, len(self.images), (n,), generator=g, device=g.device) for g in generators], 1
        )
        return _to_float(self.images[idx])  # (n, K, C, H, W)


def load_data(config: InfoGANConfig, *, device: torch.device | str = "cpu") -> ImageData:
    """Load (or set up the renderer of) `config.dataset` once, on `device`."""
    device = torch.device(device)
    name = config.dataset
    if name in PROCEDURAL:
        gt = make_procedural(name, size=config.image_size, noise=config.basicprop_noise)
        images, labels = gt.labelled_sample(HELDOUT_SIZE, seed=HELDOUT_SEED)
        heldout = LabelledSplit(images * 2.0 - 1.0, labels)
        return ImageData(name, gt.observation_shape, gt.factors_num_values[0], device, heldout, gt)
    root = Path(config.data_root or "./data")
    labels = None  # of the training images, for labelled sets
    if name == "folder":
        if not config.data_root:
            raise BadInputError("dataset=folder needs data_root=<image folder or .npz file>")
        train, heldout, num_classes = _read_folder_or_npz(root, size=config.image_size or 32), None, None
    elif name == "celeba":
        train, heldout, num_classes = _read_celeba(root, size=config.image_size or 64), None, None
    elif name in _LABELLED:
        (train, labels), (test_x, test_y) = _LABELLED[name](root)
        if config.image_size:
            train, test_x = _resize(train, config.image_size), _resize(test_x, config.image_size)
        heldout, num_classes = LabelledSplit(_to_float(test_x), test_y), 10
    else:
        raise BadInputError(f"dataset={name!r} is not known; choose one of: {', '.join(_KNOWN)}")
    shape = (train.shape[1], train.shape[2], train.shape[3])
    return ImageData(name, shape, num_classes, device, heldout, images=train.to(device), labels=labels)


# ---------------------------------------------------------------------- torchvision datasets
Split = tuple[Tensor, Tensor]  # (images (N, C, H, W) uint8, labels (N,) int64)


def _read_mnist_like(root: Path, *, cls_name: str, what: str) -> tuple[Split, Split]:
    """MNIST or FashionMNIST: (train, test), images (N, 1, 28, 28) uint8."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    layout = f"put {cls_name}/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte there (torchvision layout)"

    def split(train: bool) -> Split:
        ds = _open(lambda download: cls(str(root), train=train, download=download), what, root, layout)
        if len(ds.data) != len(ds.targets):
            raise BadInputError(
                f"could not read {what} under {root}: {len(ds.data)} images but "
                f"{len(ds.targets)} labels; replace the files ({layout})"
            )
        return ds.data[:, None].contiguous(), ds.targets.long()

    return split(True), split(False)


def _read_svhn(root: Path) -> tuple[Split, Split]:
    """SVHN's train and test splits, images (N, 3, 32, 32) uint8, labels 0-9."""
    import torchvision.datasets as tvd

    layout = "put train_32x32.mat and test_32x32.mat there (torchvision layout)"

    def split(name: str) -> Split:
        ds = _open(lambda download: tvd.SVHN(str(root), split=name, download=download), "SVHN", root, layout)
        return torch.from_numpy(ds.data), torch.from_numpy(ds.labels).long()

    return split("train"), split("test")


_LABELLED: dict[str, Callable[[Path], tuple[Split, Split]]] = {
    "mnist": lambda root: _read_mnist_like(root, cls_name="MNIST", what="MNIST"),
    "fashion-mnist": lambda root: _read_mnist_like(root, cls_name="FashionMNIST", what="Fashion-MNIST"),
    "svhn": _read_svhn,
}
_KNOWN = (*_LABELLED, "celeba", "folder", *PROCEDURAL)


def is_labelled(dataset: str) -> bool:
    """Whether `load_data` keeps a labelled held-out split for this dataset (`ImageData.heldout`):
    the procedural sets and MNIST, Fashion-MNIST, SVHN; not CelebA (used unlabelled: its train
    split only) nor an image folder."""
    return dataset in PROCEDURAL or dataset in _LABELLED


def _read_celeba(root: Path, *, size: int) -> Tensor:
    """CelebA's train split, center-cropped to 178x178 and resized: (N, 3, size, size) uint8."""
    import torchvision.datasets as tvd

    layout = "put celeba/img_align_celeba/ and its annotation .txt files there (torchvision layout)"
    ds = _open(
        lambda download: tvd.CelebA(str(root), split="train", target_type=[], download=download), "CelebA", root, layout
    )
    folder = root / "celeba" / "img_align_celeba"
    return _read_image_files([folder / name for name in ds.filename], size=size, crop=178)


def _open(make: Callable[[bool], T], what: str, root: Path, layout: str) -> T:
    """make(download=False); if the files are missing, try make(download=True) once, guarded."""
    try:
        return make(False)
    except Exception as e:  # noqa: BLE001 - torchvision reports missing files as RuntimeError("Dataset not found ...")
        if not (isinstance(e, RuntimeError) and "not found" in str(e)):
            raise BadInputError(
                f"could not read {what} under {root}: {_short(e)}; replace the files ({layout})"
            ) from None
    if os.environ.get(OFFLINE_ENV) == "1":
        reason = f"not tried, {OFFLINE_ENV}=1"
    else:
        try:
            with _download_guard(), _removed_on_error(root):
                return make(True)
        except Exception as e:  # noqa: BLE001 - no network, a dead mirror, a bad checksum: all end the same way
            reason = _short(e)
    raise BadInputError(
        f"{what} not found under {root} (download failed: {reason}); {layout} or run where torchvision can download it"
    )


@contextlib.contextmanager
def _removed_on_error(root: Path) -> Iterator[None]:
    """If the block raises, remove what it created under `root`: the folders a failed download
    made (torchvision makes ROOT/MNIST/raw before fetching), with any partial file in them. Only
    folders that did not exist before are removed, so nothing the user had is touched."""
    top = root.resolve()
    while not top.parent.exists():
        top = top.parent  # the outermost folder the block would create (root itself if it exists)

    def folders() -> set[Path]:
        return {p for p in top.rglob("*") if p.is_dir()} if top.is_dir() else set()

    existed, before = top.exists(), folders()
    try:
        yield
    except BaseException:
        created = folders() - before if existed else {top}
        for folder in sorted(created, key=lambda p: len(p.parts)):  # outer first: one rmtree per new tree
            shutil.rmtree(folder, ignore_errors=True)
        raise


@contextlib.contextmanager
def _download_guard() -> Iterator[None]:
    """Bound every socket operation of a download attempt; keep stdout clean for the CLI."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        socket.setdefaulttimeout(previous)


def _short(error: BaseException) -> str:
    """The last non-empty line of an error message (torchvision's are multi-line), at most 160 chars."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[-1] if lines else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# ---------------------------------------------------------------------- image folders and .npz
def _read_folder_or_npz(path: Path, *, size: int) -> Tensor:
    """Unlabelled images at `path` (folder or .npz) -> (N, 1 or 3, size, size) uint8."""
    if not path.exists():
        raise BadInputError(f"data_root {path} does not exist; point data_root at an image folder or a .npz file")
    if path.is_file():
        if path.suffix != ".npz":
            raise BadInputError(f"data_root {path} is a file but not a .npz; point it at an image folder or a .npz")
        return _resize(_square(_read_npz(path)), size)
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise BadInputError(f"no images under {path}; put .png/.jpg files there (subfolders are searched)")
    return _read_image_files(files, size=size, crop=None)


def _read_npz(path: Path) -> Tensor:
    """The images array of a .npz -> (N, C, H, W) uint8 with C in (1, 3), alpha composited on white."""
    try:
        with np.load(path) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as e:
        raise BadInputError(f"could not read {path}: {_short(e)}; write it with numpy.savez") from None
    if "images" not in arrays and len(arrays) != 1:
        raise BadInputError(f"{path} holds arrays {list(arrays)}; name the images array 'images' or keep only one")
    array = arrays["images"] if "images" in arrays else next(iter(arrays.values()))
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 2, 3, 4):
        array = array.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    elif not (array.ndim == 4 and array.shape[1] in (1, 2, 3, 4)):
        raise BadInputError(f"{path}: images of shape {array.shape}; use (N,H,W), (N,H,W,C) or (N,C,H,W), C in 1..4")
    if len(array) == 0:
        raise BadInputError(f"{path} holds no images; write at least one")
    if array.dtype == np.uint8:
        images = torch.from_numpy(np.ascontiguousarray(array)).float()
    elif array.dtype.kind == "f" and array.min() >= 0.0 and array.max() <= 1.0:
        images = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)) * 255.0
    else:
        raise BadInputError(f"{path}: images must be uint8 or floats in [0, 1] (got {array.dtype}); rescale them")
    if images.shape[1] in (2, 4):  # colour + alpha: composite on white
        alpha = images[:, -1:] / 255.0
        images = images[:, :-1] * alpha + 255.0 * (1.0 - alpha)
    return images.round().to(torch.uint8)


def _read_image_files(paths: list[Path], *, size: int, crop: int | None) -> Tensor:
    """Decode image files in threads: composite alpha on white, center-crop (to `crop` or the short
    side), resize (bilinear, antialiased) -> (N, C, size, size) uint8; C = 1 if all are greyscale."""

    def read(path: Path) -> np.ndarray:  # (size, size, 3) or (size, size) uint8
        try:
            with Image.open(path) as img:
                grey = img.mode in ("1", "L", "LA", "I", "I;16", "F")
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                out = Image.alpha_composite(white, rgba).convert("L" if grey else "RGB")
        except OSError as e:
            raise BadInputError(f"could not read image {path}: {_short(e)}; remove or replace it") from None
        side = crop or min(out.size)
        left, top = (out.width - side) // 2, (out.height - side) // 2
        out = out.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(out)

    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(read, paths))
    if all(a.ndim == 2 for a in arrays):
        return torch.from_numpy(np.stack(arrays))[:, None]  # (N, 1, S, S)
    rgb = [np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
    return torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).contiguous()  # (N, 3, S, S)


# ---------------------------------------------------------------------- pixel helpers
def _square(images: Tensor) -> Tensor:
    """Center-crop (N, C, H, W) to the short side."""
    side = min(images.shape[2], images.shape[3])
    top, left = (images.shape[2] - side) // 2, (images.shape[3] - side) // 2
    return images[:, :, top : top + side, left : left + side]


def _resize(images: Tensor, size: int, *, chunk: int = 8192) -> Tensor:
    """Resize uint8 (N, C, H, W) to (N, C, size, size), bilinear with antialiasing, in chunks."""
    if images.shape[2:] == (size, size):
        return images
    parts = [
        F.interpolate(
            images[i : i + chunk].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        for i in range(0, len(images), chunk)
    ]
    return torch.cat(parts)


def _to_float(images: Tensor) -> Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1]."""
    return images.float() / 127.5 - 1.0
