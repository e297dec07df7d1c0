"""The project's own feature classifier and the sample-quality scores built on it.

Images are tiny and separable: class k lights up quadrant k of an 8x8 grey image.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.metrics import compute_sample_quality, inception_fid, load_or_train_classifier, purity_per_category
from trainables.errors import BadInputError

NUM_CLASSES = 4
QUICK = {"num_classes": NUM_CLASSES, "steps": 60, "seed": 0, "batch_size": 64}


def quadrant_images(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """(N, 1, 8, 8) in [-1, 1]: background -1, quadrant labels[n] at +1, plus a little noise."""
    images = -torch.ones(labels.shape[0], 1, 8, 8)
    for k in range(NUM_CLASSES):
        row, col = divmod(k, 2)
        images[labels == k, :, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4] = 1.0
    noise = 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return (images + noise).clamp(-1, 1)


def balanced_labels(n: int) -> torch.Tensor:
    return torch.arange(n) % NUM_CLASSES


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    labels = balanced_labels(400)
    path = tmp_path_factory.mktemp("classifier") / "classifier.pt"
    return load_or_train_classifier(quadrant_images(labels, seed=1), labels, cache_path=path, **QUICK), path


def test_classifier_learns_separable_classes_and_is_cached(trained: tuple[torch.nn.Module, Path]) -> None:
    classifier, path = trained
    labels = balanced_labels(200)
    with torch.no_grad():
        predicted = classifier(quadrant_images(labels, seed=2)).argmax(dim=1)
    assert (predicted == labels).float().mean() > 0.95
    assert path.exists()
    # the cache is read back, not retrained: garbage training data gives the same weights
    garbage = torch.zeros(8, 1, 8, 8)
    reloaded = load_or_train_classifier(garbage, torch.zeros(8, dtype=torch.long), cache_path=path, **QUICK)
    for a, b in zip(classifier.state_dict().values(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_cache_with_other_settings_is_refused(trained: tuple[torch.nn.Module, Path]) -> None:
    _, path = trained
    labels = balanced_labels(8)
    with pytest.raises(BadInputError, match="delete it to retrain"):
        load_or_train_classifier(quadrant_images(labels, 0), labels, cache_path=path, **{**QUICK, "steps": 61})


def test_sample_quality_separates_faithful_from_collapsed_samples(trained: tuple[torch.nn.Module, Path]) -> None:
    classifier, _ = trained
    real = quadrant_images(balanced_labels(400), seed=3)
    faithful = quadrant_images(balanced_labels(400), seed=4)
    collapsed = quadrant_images(torch.zeros(400, dtype=torch.long), seed=5)  # only class 0
    good = compute_sample_quality(classifier, real, faithful)
    bad = compute_sample_quality(classifier, real, collapsed)
    assert good["class_coverage"] == 1.0
    assert bad["class_coverage"] == pytest.approx(1 / NUM_CLASSES)
    assert bad["fd"] > 10 * good["fd"]


def test_purity_per_category(trained: tuple[torch.nn.Module, Path]) -> None:
    classifier, _ = trained
    labels = balanced_labels(400)
    images = quadrant_images(labels, seed=6)
    assert purity_per_category(classifier, images, labels.numpy()) > 0.95  # code value = class
    shuffled = np.random.default_rng(0).permutation(labels.numpy())  # code unrelated to class
    assert purity_per_category(classifier, images, shuffled) < 0.5
    with pytest.raises(BadInputError, match="one code value per image"):
        purity_per_category(classifier, images, labels.numpy()[:10])


def test_inception_fid_reports_why_it_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # as if torchmetrics were not installed
    images = quadrant_images(balanced_labels(4), seed=0)
    value, reason = inception_fid(images, images)
    assert value is None
    assert "torchmetrics" in reason
