"""Sample quality in the feature space of a small classifier the project trains itself.

FID (Heusel et al. 2017, https://arxiv.org/abs/1706.08500) measures generated images in the
features of an ImageNet Inception-v3, whose weights need a download and whose features say little
about 28x28 digits. Like the "domain FID" of many GAN papers on MNIST, this module trains a small
CNN on the labelled held-out split (a few hundred Adam steps on CPU, cached to a file) and uses
its penultimate layer (128 features) for a Fréchet distance and its predictions for:

- `class_coverage`: the fraction of classes predicted for at least `min_class_share` (1%) of the
  generated images. With 10 balanced classes each should get ~10%; a class under 1% is
  effectively never generated (mode dropping), while one stray prediction does not count as
  covering it.
- `purity_per_category`: for images generated per value of a categorical code, the share of the
  majority predicted class, averaged over code values: 1 when each code value draws one class.

`inception_fid` computes the real FID with torchmetrics when it and the Inception weights are
available (neither is a project dependency); otherwise it returns None and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analysis.metrics.frechet import compute_frechet_distance
from trainables.errors import BadInputError, one_line

FORMAT_VERSION = 1


class FeatureClassifier(nn.Module):
    """Small CNN: images (N, C, H, W) in [-1, 1] -> logits (N, num_classes); `features` (N, 128)."""

    def __init__(self, *, in_channels: int, num_classes: int, feature_dim: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, stride=2, padding=1),  # (N, 32, H/2, W/2)
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),  # (N, 64, H/4, W/4)
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),  # (N, 64, H/8, W/8)
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),  # (N, 64, 4, 4) for any input size
            nn.Flatten(),
            nn.Linear(64 * 16, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        self.meta: dict = {}  # how it was trained (set when loaded from its cache file)

    def features(self, images: Tensor) -> Tensor:
        """The penultimate layer (N, feature_dim): the space the Fréchet distance is measured in."""
        return self.body(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.body(images))


def load_or_train_classifier(
    images: Tensor,
    labels: Tensor,
    *,
    cache_path: str | Path,
    num_classes: int,
    steps: int = 300,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
) -> FeatureClassifier:
    """The classifier cached at `cache_path`, or one trained on images (N, C, H, W), labels (N,).

    A cached file must match num_classes, the image shape and the training options; otherwise this
    raises rather than silently scoring with a different classifier. Returned on CPU in eval mode.
    """
    if images.ndim != 4 or labels.shape != (images.shape[0],):
        raise BadInputError(f"classifier data: images {tuple(images.shape)} must be (N, C, H, W) with labels (N,)")
    image_shape = list(images.shape[1:])
    meta = {
        "num_classes": num_classes,
        "image_shape": image_shape,
        "steps": steps,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
    }
    path = Path(cache_path)
    if path.exists():
        classifier = load_classifier(path)
        found = {key: classifier.meta.get(key) for key in meta}
        if found != meta:
            raise BadInputError(f"cached classifier {path} was trained with {found}, not {meta}; delete it to retrain")
        return classifier
    if labels.min() < 0 or labels.max() >= num_classes:
        raise BadInputError(
            f"labels span [{int(labels.min())}, {int(labels.max())}]; they must lie in [0, {num_classes})"
        )
    classifier = _train(images, labels, num_classes=num_classes, steps=steps, seed=seed, batch_size=batch_size, lr=lr)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.tmp")
    torch.save({"format_version": FORMAT_VERSION, **meta, "state_dict": classifier.state_dict()}, partial)
    partial.replace(path)  # atomic: a concurrent reader sees no file or a whole one
    return classifier


def load_classifier(cache_path: str | Path) -> FeatureClassifier:
    """A classifier written by `load_or_train_classifier`, on CPU in eval mode; its training options
    are in `.meta`."""
    path = Path(cache_path)
    if not path.is_file():
        raise BadInputError(f"no classifier at {path}; run `infogan-study analyze`, which trains it")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    classifier = FeatureClassifier(in_channels=saved["image_shape"][0], num_classes=saved["num_classes"])
    classifier.load_state_dict(saved["state_dict"])
    classifier.meta = {key: value for key, value in saved.items() if key != "state_dict"}
    return classifier.eval()


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one CPU thread, then restore the setting.

    On a machine busy with other work (Ray trials, parallel tests) torch's intra-op threads spin
    against it: 60 steps of this CNN took 15 s on two threads and under 1 s on one.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train(
    images: Tensor, labels: Tensor, *, num_classes: int, steps: int, seed: int, batch_size: int, lr: float
) -> FeatureClassifier:
    """Adam on random minibatches of images (N, C, H, W), labels (N,) for `steps` steps, on CPU."""
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the global RNG
        torch.manual_seed(seed)
        classifier = FeatureClassifier(in_channels=images.shape[1], num_classes=num_classes)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    images, labels = images.detach().float().cpu(), labels.detach().long().cpu()
    classifier.train()
    with _one_thread():
        for _ in range(steps):
            index = torch.randint(images.shape[0], (min(batch_size, images.shape[0]),), generator=generator)
            loss = F.cross_entropy(classifier(images[index]), labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return classifier.eval()


@torch.no_grad()
def _features_and_predictions(
    classifier: FeatureClassifier, images: Tensor, *, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """images (N, C, H, W) -> features (N, feature_dim) float64 and predicted classes (N,) int."""
    classifier.eval()
    device = next(classifier.parameters()).device
    features, predicted = [], []
    with _one_thread():
        for batch in images.split(batch_size):
            feats = classifier.features(batch.to(device, torch.float32))
            features.append(feats.double().cpu().numpy())
            predicted.append(classifier.head(feats).argmax(dim=1).cpu().numpy())
    return np.concatenate(features), np.concatenate(predicted)


def predict_classes(classifier: FeatureClassifier, images: Tensor, *, batch_size: int = 500) -> np.ndarray:
    """The classifier's predicted class (N,) of images (N, C, H, W) in [-1, 1]."""
    return _features_and_predictions(classifier, images, batch_size=batch_size)[1]


def compute_sample_quality(
    classifier: FeatureClassifier,
    real_images: Tensor,
    fake_images: Tensor,
    *,
    min_class_share: float = 0.01,
    batch_size: int = 500,
) -> dict[str, float]:
    """`fd`: Fréchet distance of real (N, C, H, W) and fake (M, C, H, W) images in classifier
    features; `class_coverage`: fraction of classes predicted for >= min_class_share of fakes."""
    real_features, _ = _features_and_predictions(classifier, real_images, batch_size=batch_size)
    fake_features, fake_classes = _features_and_predictions(classifier, fake_images, batch_size=batch_size)
    num_classes = classifier.head.out_features
    share = np.bincount(fake_classes, minlength=num_classes) / fake_classes.size  # (num_classes,)
    return {
        "fd": compute_frechet_distance(real_features, fake_features),
        "class_coverage": float(np.mean(share >= min_class_share)),
    }


def purity_per_category(
    classifier: FeatureClassifier, images: Tensor, codes: np.ndarray | Sequence[int], *, batch_size: int = 500
) -> float:
    """Mean over categorical code values of the majority predicted class's share among the
    images (N, C, H, W) generated with that value; codes (N,) holds each image's code value."""
    codes = np.asarray(codes)
    if codes.shape != (images.shape[0],):
        raise BadInputError(f"codes {codes.shape} must hold one code value per image ({images.shape[0]},)")
    _, predicted = _features_and_predictions(classifier, images, batch_size=batch_size)
    shares = [np.bincount(predicted[codes == value]).max() / np.sum(codes == value) for value in np.unique(codes)]
    return float(np.mean(shares))


def inception_fid(real_images: Tensor, fake_images: Tensor, *, batch_size: int = 100) -> tuple[float | None, str]:
    """Inception-v3 FID of real (N, C, H, W) and fake (M, C, H, W) images in [-1, 1] via torchmetrics.

    Returns (fid, "") or (None, reason) when torchmetrics, torch-fidelity or the Inception weights
    (downloaded on first use) are unavailable. Grey images are repeated to 3 channels.
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as error:
        return None, f"torchmetrics (with its image extra) is not installed: {error}"
    try:
        metric = FrechetInceptionDistance(feature=2048, normalize=True)
    except Exception as error:  # noqa: BLE001 - missing torch-fidelity, a failed weight download, ...
        return None, f"Inception weights unavailable: {one_line(error)}"
    for images, real in ((real_images, True), (fake_images, False)):
        for batch in images.split(batch_size):
            rgb = batch.float().cpu().expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch.float().cpu()
            metric.update(((rgb + 1) / 2).clamp(0, 1), real=real)  # normalize=True: floats in [0, 1]
    return float(metric.compute()), ""
