"""Evaluators: read factors of variation off images, independently of the model being scored.

The generator-side scores (`analysis.metrics.compute_generator_scores`) need to know what a
generated image shows without asking the model's own D, Q or E. Per dataset:

- `basicprop-line`, `basicprop-rects`: an exact read-off. Every combination of factor values is
  rendered once as a clean mask; an image, binarised at 0.5 (the seed's noise trick keeps the
  foreground above 150/255 and the background below 60/255), is read as the combination whose
  mask it overlaps best (intersection over union). Below `min_iou` the image shows none of the
  dataset's images and is unreadable (-1).
- `sprites`: one classifier per factor, trained on rendered sprites with known factors.
- labelled sets (MNIST, Fashion-MNIST, SVHN): the project's quality classifier (also the feature
  space of its Fréchet distance), trained on the labelled training split; factor = the class.
- unlabelled sets (folder, CelebA): no evaluator; the generator-side scores are NaN.

`reader_accuracy` says how far to trust an evaluator: its accuracy on real held-out images with
known factors (1.0 for the exact read-off).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from analysis import metrics
from analysis.metrics import UNREADABLE, FactorReader, TraverseFn
from trainables.data import ImageData, is_labelled
from trainables.models import InfoGAN
from trainables.procedural import BasicPropLine, BasicPropRects, ProceduralData
from trainables.visualize import traversal_images

__all__ = [
    "PROBE_METRICS",
    "ClassifierReader",
    "EvaluatorFiles",
    "FactorReader",
    "ProbeFactory",
    "TemplateReader",
    "generator_probe",
    "heldout_factors",
    "make_reader",
    "model_traversals",
    "prepare_evaluator",
    "probe_metrics",
    "reader_accuracy",
]

EXACT_READOFF = (BasicPropLine, BasicPropRects)
FACTOR_SAMPLE = 20_000  # rendered images per factor classifier (sprites)
FACTOR_SAMPLE_SEED = 1606


class TemplateReader:
    """Exact read-off of a procedural dataset by its best-overlapping clean mask."""

    def __init__(self, data: ProceduralData, *, min_iou: float = 0.5) -> None:
        self.factor_names = list(data.factor_names)
        self.factors_num_values = list(data.factors_num_values)
        self.min_iou = min_iou
        grid = itertools.product(*(range(k) for k in self.factors_num_values))
        self.combinations = np.array(list(grid), dtype=np.int64)  # (T, F)
        masks = data.render(torch.from_numpy(self.combinations))  # (T, 1, S, S) bool
        self.masks = masks.reshape(len(self.combinations), -1).float().numpy()  # (T, S*S)

    def read(self, images: np.ndarray) -> np.ndarray:
        """images (n, 1, S, S) in [0, 1] -> (n, F) factor values, -1 where the best IoU < min_iou."""
        on = (np.asarray(images).reshape(len(images), -1) > 0.5).astype(np.float32)  # (n, S*S)
        overlap = on @ self.masks.T  # (n, T)
        union = on.sum(axis=1, keepdims=True) + self.masks.sum(axis=1) - overlap
        iou = overlap / np.maximum(union, 1.0)
        best = iou.argmax(axis=1)
        out = self.combinations[best].copy()
        out[iou[np.arange(len(best)), best] < self.min_iou] = UNREADABLE
        return out


class ClassifierReader:
    """One classifier per factor: each factor value is its classifier's predicted class."""

    def __init__(self, classifiers: Sequence[metrics.FeatureClassifier], factor_names: Sequence[str]) -> None:
        self.classifiers = list(classifiers)
        self.factor_names = list(factor_names)
        self.factors_num_values = [c.head.out_features for c in self.classifiers]

    def read(self, images: np.ndarray) -> np.ndarray:
        """images (n, C, H, W) in [0, 1] -> (n, F) predicted classes."""
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32) * 2 - 1  # classifiers read [-1, 1]
        return np.stack([metrics.predict_classes(c, x) for c in self.classifiers], axis=1).astype(np.int64)


def reader_accuracy(reader: FactorReader, images: np.ndarray, factors: np.ndarray) -> float:
    """Mean over factors of the share of real images (n, C, H, W) in [0, 1] whose factors (n, F)
    the reader gets exactly right."""
    return float(np.mean(reader.read(images) == np.asarray(factors)))


@dataclass(frozen=True)
class EvaluatorFiles:
    """Where a dataset's cached classifiers are (picklable, handed to scoring workers)."""

    quality: str | None  # the quality classifier (FD, coverage, purity; the reader of labelled sets)
    factors: tuple[str, ...] = ()  # sprites: one classifier per factor


def _load_or_train(images: torch.Tensor, labels: torch.Tensor, path: str, *, what: str, num_classes: int,
                   steps: int, batch_size: int) -> None:  # fmt: skip
    if not Path(path).exists():
        print(f"training the {what} ({steps} steps, once; cached in {path})", file=sys.stderr, flush=True)
    metrics.load_or_train_classifier(images, labels, cache_path=path, num_classes=num_classes, steps=steps,
                                     batch_size=batch_size)  # fmt: skip


def prepare_evaluator(
    data: ImageData, cache_stem: Path, *, steps: int, batch_size: int, readers_only: bool = False
) -> EvaluatorFiles:
    """Train (or find in the cache) the classifiers a dataset needs: `<stem>.pt` for quality and
    labelled reading, `<stem>-<factor>.pt` per sprites factor. Labelled sets train on their
    labelled training split, procedural ones on their fixed labelled held-out sample.
    `readers_only`: only what reads factors (no quality classifier for procedural data)."""
    quality = None
    if data.num_classes is not None and not (readers_only and data.ground_truth is not None):
        if data.labels is not None:
            images, labels = data.train_images(), data.labels
        else:
            images, labels = data.heldout.images, data.heldout.labels
        quality = str(cache_stem.with_name(cache_stem.name + ".pt"))
        _load_or_train(images, labels, quality, what=f"{data.name} classifier", num_classes=data.num_classes,
                       steps=steps, batch_size=batch_size)  # fmt: skip
    factors: tuple[str, ...] = ()
    gt = data.ground_truth
    if gt is not None and not isinstance(gt, EXACT_READOFF):
        found, images = gt.sample(FACTOR_SAMPLE, np.random.default_rng(FACTOR_SAMPLE_SEED))
        x = torch.from_numpy(images) * 2 - 1
        paths = []
        for f, (name, k) in enumerate(zip(gt.factor_names, gt.factors_num_values)):
            path = str(cache_stem.with_name(f"{cache_stem.name}-{name}.pt"))
            _load_or_train(x, torch.from_numpy(found[:, f].copy()), path, what=f"{data.name} {name} classifier",
                           num_classes=k, steps=steps, batch_size=batch_size)  # fmt: skip
            paths.append(path)
        factors = tuple(paths)
    return EvaluatorFiles(quality, factors)


def make_reader(
    data: ImageData, quality: metrics.FeatureClassifier | None, factors: Sequence[metrics.FeatureClassifier] = ()
) -> FactorReader | None:
    """The dataset's evaluator (None: nothing can read this dataset's factors)."""
    gt = data.ground_truth
    if isinstance(gt, EXACT_READOFF):
        return TemplateReader(gt)
    if gt is not None and factors:
        return ClassifierReader(factors, gt.factor_names)
    if gt is None and data.heldout is not None and quality is not None:
        return ClassifierReader([quality], ["class"])
    return None


def heldout_factors(data: ImageData, *, num: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Real images (n, C, H, W) in [0, 1] with their factors (n, F) for `reader_accuracy`."""
    if data.ground_truth is not None:
        found, images = data.ground_truth.sample(num, np.random.default_rng(seed))
        return images, found
    if data.heldout is not None:
        images = (data.heldout.images[:num].numpy() + 1) / 2
        return images, data.heldout.labels[:num].numpy()[:, None]
    return None


def model_traversals(model: InfoGAN) -> TraverseFn:
    """The model's latent traversals for `compute_generator_scores`: rows of fixed noise (and other
    codes) drawn from `rng`, one code swept over `values`; images (rows, V, C, H, W) in [0, 1]."""

    def traverse(code: str, values: np.ndarray, rows: int, rng: np.random.Generator) -> np.ndarray:
        seed = int(rng.integers(0, 2**63 - 1))
        images = traversal_images(model, code, rows=rows, values=torch.as_tensor(values), seed=seed)
        return images.reshape(rows, len(values), *images.shape[1:]).cpu().numpy()

    return traverse


PROBE_ROWS = 50  # traversal rows per categorical code when probing during training (K x 50 images)
# What the probe adds to every report of a trial whose data has an evaluator, and which way is
# better (the default direction of a study objective on it; the loop's own: trainables.loop.METRICS).
PROBE_METRICS = {"gen/cat_acc": "max", "gen/valid": "max"}


def probe_metrics(dataset: str) -> dict[str, str]:
    """The probe's metrics for models trained on `dataset` (see `generator_probe`): every labelled
    dataset (procedural, MNIST, Fashion-MNIST, SVHN) has an evaluator; CelebA and folders none."""
    return dict(PROBE_METRICS) if is_labelled(dataset) else {}


def generator_probe(
    data: ImageData,
    quality: metrics.FeatureClassifier | None = None,
    factors: Sequence[metrics.FeatureClassifier] = (),
    *,
    rows: int = PROBE_ROWS,
    seed: int = 0,
) -> Callable[[InfoGAN], dict[str, float]] | None:
    """A cheap generator-side score to report during training (None: no evaluator for this data):
    model -> PROBE_METRICS {"gen/cat_acc", "gen/valid"} from `rows` traversals of each categorical
    code, the same rows at every call (`seed`), so a curve shows the model changing, not the
    sample; NaN for a model without a categorical code (every trial of a study reports the same keys)."""
    reader = make_reader(data, quality, factors)
    if reader is None:
        return None

    def probe(model: InfoGAN) -> dict[str, float]:
        cfg = model.config
        if cfg.n_cat_codes == 0:
            return dict.fromkeys(PROBE_METRICS, float("nan"))
        scores = metrics.compute_generator_scores(
            model_traversals(model), reader, np.random.default_rng(seed), n_cat_codes=cfg.n_cat_codes,
            cat_dim=cfg.cat_dim, n_cont_codes=0, num_rows=rows,
        )  # fmt: skip
        return {"gen/cat_acc": scores["cat_acc"], "gen/valid": scores["valid"]}

    return probe


@dataclass(frozen=True)
class ProbeFactory:
    """Builds a trial's generator probe from the data it trains on. Picklable: the classifiers of
    the study's datasets travel with it to every trial (tune.with_parameters), so a trial needs no
    file from the driver; procedural lines and rectangles need none at all."""

    classifiers: dict[tuple[str, int], tuple[metrics.FeatureClassifier | None, tuple[metrics.FeatureClassifier, ...]]]

    def __call__(self, data: ImageData) -> Callable[[InfoGAN], dict[str, float]] | None:
        quality, factors = self.classifiers.get((data.name, data.image_shape[1]), (None, ()))
        return generator_probe(data, quality, factors)
