"""Score one trained model: its checkpoint in, a dict of `analysis.schema` score columns out.

The representation of an image is what Q (or E for Bidirectional-InfoGAN, the same
`model.encode` call) reads off it: the argmax of each categorical code and the mean of each
continuous code, (n, n_cat_codes + n_cont_codes). On data with

- held-out labels (`data.heldout`): the first categorical code's argmax clusters the held-out
  real images; Hungarian accuracy, many-to-one accuracy, NMI, ARI against the labels;
- ground-truth factors (`data.ground_truth`): MIG, DCI, SAP, FactorVAE, BetaVAE of the
  representation, with disentanglement_lib's protocol sample counts (`FULL`) or small ones
  (`QUICK`, a few hundred images: noisy, for a first look, tests and benchmarks);
- a classifier (trained once per dataset on the held-out split, `prepare_classifiers`):
  Fréchet distance, class coverage and per-code purity of generated images in its features.

A vanilla GAN (no codes) gets NaN for the code scores, not an error; a metric that fails leaves
NaN and a note. All randomness comes from the trial's seed, so a re-run gives the same values.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from analysis import metrics
from trainables.checkpoint import LoadedModel, checkpoint_file, load_model
from trainables.config import InfoGANConfig
from trainables.data import ImageData, load_data
from trainables.models import InfoGAN

NAN = math.nan
ENCODE_BATCH = 1024
CLASSIFIER_BATCH = 64


@dataclass(frozen=True)
class ScoringCounts:
    """Sample counts of every score. The defaults are the published protocols."""

    heldout: int = 10_000  # held-out images clustered by the categorical code (and compared across models)
    quality_images: int = 10_000  # real and generated images for FD, coverage, purity
    nmi_images: int = 2_000  # unlabelled data: real images whose code assignments are compared across models
    mig_train: int = 10_000
    dci: bool = True  # DCI's boosted trees cost ~0.5 s per factor even on 100 points
    dci_train: int = 10_000
    dci_test: int = 5_000
    sap_train: int = 10_000
    sap_test: int = 5_000
    factor_vae_batch: int = 64
    factor_vae_train: int = 10_000
    factor_vae_eval: int = 5_000
    factor_vae_variance: int = 10_000
    beta_vae_batch: int = 64
    beta_vae_train: int = 10_000
    beta_vae_eval: int = 5_000
    classifier_steps: int = 300  # the quality classifier's training steps (cached per dataset and steps)
    inception_fid: bool = True  # Inception FID via torchmetrics, when installed
    centrality_batch: int = 64  # ModelCentrality: FactorVAE counts per generator dataset
    centrality_train: int = 2_000
    centrality_eval: int = 1_000
    centrality_variance: int = 5_000


FULL = ScoringCounts()
QUICK = ScoringCounts(
    heldout=300, quality_images=100, nmi_images=300, mig_train=100, dci=False, sap_train=100, sap_test=50,
    factor_vae_batch=8, factor_vae_train=30, factor_vae_eval=30, factor_vae_variance=100,
    beta_vae_batch=4, beta_vae_train=30, beta_vae_eval=30, classifier_steps=100, inception_fid=False,
    centrality_batch=4, centrality_train=10, centrality_eval=10, centrality_variance=50,
)  # fmt: skip


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs to score one trial (picklable, for processes and Ray)."""

    trial_id: str
    checkpoint: str
    seed: int
    counts: ScoringCounts
    classifier: str | None  # the cached quality classifier of this dataset (None: unlabelled data)
    data_root: str | None = None  # overrides the checkpoint's data_root
    device: str = "cpu"


@dataclass
class TrialScores:
    trial_id: str
    checkpoint: str  # the scored checkpoint directory
    scores: dict[str, float] = field(default_factory=dict)  # analysis.schema.SCORE_COLUMNS names
    class_coverage: float | None = None
    inception_note: str = ""
    notes: list[str] = field(default_factory=list)  # metrics that failed, one line each
    assignments: np.ndarray | None = None  # (n,) first categorical code of `_reference_images`
    error: str = ""  # why nothing was scored ('' when the model loaded)
    seconds: float = 0.0


def score_trial(task: TrialTask) -> TrialScores:
    """Load the checkpoint and compute every score that applies, on one thread; never raises."""
    with single_threaded():
        return _score_trial(task)


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """One torch and one BLAS/OpenMP thread: tiny models and sklearn fits lose more to thread
    contention than they gain (5x slower on a busy 2-core machine), parallelism comes from
    scoring several trials at once (--workers, Ray), and results do not depend on the mode."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


def _score_trial(task: TrialTask) -> TrialScores:
    start = time.perf_counter()
    out = TrialScores(task.trial_id, task.checkpoint)
    try:
        loaded = cached_model(task.checkpoint, task.device)
        data = dataset_for(loaded.config, task.data_root)
    except Exception as err:  # noqa: BLE001 - a broken checkpoint or missing data ends this trial only
        out.error = one_line(err)
        out.seconds = time.perf_counter() - start
        return out
    model, cfg, counts = loaded.model, loaded.config, task.counts
    rng = np.random.default_rng(task.seed)
    generator = torch.Generator().manual_seed(task.seed)

    def attempt(name: str, fn: Callable[[], None]) -> None:
        try:
            with torch.inference_mode():
                fn()
        except Exception as err:  # noqa: BLE001 - one failed metric leaves NaN and a note, not a lost trial
            out.notes.append(f"{name} not computed: {one_line(err)}")

    if cfg.n_cat_codes > 0:
        attempt("clustering", lambda: _clustering(model, data, counts, out))
    if data.ground_truth is not None and cfg.has_codes:
        attempt("disentanglement", lambda: out.scores.update(_disentanglement(model, data, counts, rng)))
    if data.heldout is not None and task.classifier is not None:
        attempt("quality", lambda: _quality(model, data, counts, task, generator, out))
    labelled = data.heldout is not None
    out.scores["score/disentanglement"] = out.scores.get("score/hungarian_acc" if labelled else "score/factor_vae", NAN)
    out.seconds = time.perf_counter() - start
    return out


def represent_fn(model: InfoGAN) -> metrics.RepresentationFn:
    """observations (n, C, H, W) float in [0, 1] -> codes (n, n_cat + n_cont): cat argmaxes, cont means."""
    device = next(model.parameters()).device

    def represent(observations: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            images = torch.as_tensor(observations, dtype=torch.float32)
            return np.concatenate([_codes(model, batch.to(device) * 2 - 1) for batch in images.split(ENCODE_BATCH)])

    return represent


def _codes(model: InfoGAN, images: torch.Tensor) -> np.ndarray:
    codes = model.encode(images)  # images (n, C, H, W) in [-1, 1]
    cat = codes.cat_logits.argmax(-1).double()  # (n, n_cat)
    return torch.cat([cat, codes.cont_mean.double()], dim=1).cpu().numpy()


def _first_code(model: InfoGAN, images: torch.Tensor) -> np.ndarray:
    """The first categorical code's argmax (n,) of real images (n, C, H, W) in [-1, 1]."""
    device = next(model.parameters()).device
    parts = [model.encode(b.to(device)).cat_logits[:, 0].argmax(-1).cpu() for b in images.split(ENCODE_BATCH)]
    return torch.cat(parts).numpy()


def _clustering(model: InfoGAN, data: ImageData, counts: ScoringCounts, out: TrialScores) -> None:
    """The first categorical code of the reference images: kept for NMI, scored against labels if any."""
    out.assignments = _first_code(model, _reference_images(data, counts))
    if data.heldout is not None:
        result = metrics.compute_clustering_scores(out.assignments, data.heldout.labels[: counts.heldout].numpy())
        out.scores["score/hungarian_acc"] = result["hungarian_accuracy"]
        out.scores["score/many_to_one_acc"] = result["many_to_one_accuracy"]
        out.scores["score/nmi"] = result["nmi"]
        out.scores["score/ari"] = result["ari"]


def _disentanglement(
    model: InfoGAN, data: ImageData, counts: ScoringCounts, rng: np.random.Generator
) -> dict[str, float]:
    gt, represent, c = data.ground_truth, represent_fn(model), counts
    out = {"score/mig": metrics.compute_mig(gt, represent, rng, num_train=c.mig_train)["mig"]}
    if c.dci:
        dci = metrics.compute_dci(gt, represent, rng, num_train=c.dci_train, num_test=c.dci_test)
        out["score/dci_disentanglement"] = dci["disentanglement"]
        out["score/dci_completeness"] = dci["completeness"]
        out["score/dci_informativeness"] = dci["informativeness_test"]
    out["score/sap"] = metrics.compute_sap(gt, represent, rng, num_train=c.sap_train, num_test=c.sap_test)["sap"]
    out["score/factor_vae"] = metrics.compute_factor_vae(
        gt, represent, rng, batch_size=c.factor_vae_batch, num_train=c.factor_vae_train,
        num_eval=c.factor_vae_eval, num_variance_estimate=c.factor_vae_variance,
    )["eval_accuracy"]  # fmt: skip
    out["score/beta_vae"] = metrics.compute_beta_vae(
        gt, represent, rng, batch_size=c.beta_vae_batch, num_train=c.beta_vae_train, num_eval=c.beta_vae_eval
    )["eval_accuracy"]
    return out


def _generate(model: InfoGAN, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n generated images (n, C, H, W) in [-1, 1] on CPU and their first categorical code (n,) (-1 if none)."""
    device = next(model.parameters()).device
    images, codes = [], []
    for start in range(0, n, ENCODE_BATCH):
        latent = model.sample_latent(min(ENCODE_BATCH, n - start), generator)
        images.append(model.generate(type(latent)(*(t.to(device) for t in latent))).cpu())
        codes.append(latent.cat[:, 0] if latent.cat.shape[1] else torch.full((len(latent.z),), -1))
    return torch.cat(images), torch.cat(codes)


def _quality(
    model: InfoGAN,
    data: ImageData,
    counts: ScoringCounts,
    task: TrialTask,
    generator: torch.Generator,
    out: TrialScores,
) -> None:
    classifier = _classifier_from_cache(task.classifier, data, counts)
    real = data.heldout.images[: counts.quality_images]
    fake, codes = _generate(model, real.shape[0], generator)
    quality = metrics.compute_sample_quality(classifier, real, fake)
    out.scores["quality/fd"] = quality["fd"]
    out.scores["quality/class_coverage"] = out.class_coverage = quality["class_coverage"]
    if model.config.n_cat_codes > 0:
        out.scores["quality/purity"] = metrics.purity_per_category(classifier, fake, codes.numpy())
    if counts.inception_fid:
        fid, note = metrics.inception_fid(real, fake)
        out.scores["quality/inception_fid"] = NAN if fid is None else fid
        out.inception_note = note
    else:
        out.inception_note = "not computed with --quick"


def _reference_images(data: ImageData, counts: ScoringCounts) -> torch.Tensor:
    """The same real images (n, C, H, W) for every model of a dataset: held-out ones, else a fixed sample."""
    if data.heldout is not None:
        return data.heldout.images[: counts.heldout]
    return data.sample(counts.nmi_images, torch.Generator(data.device).manual_seed(0)).cpu()


MODEL_CACHE_BYTES = 256 * 2**20
_MODELS: OrderedDict[tuple[str, str, int], LoadedModel] = OrderedDict()  # (checkpoint, device, mtime) -> model


def cached_model(checkpoint: str, device: str) -> LoadedModel:
    """`load_model`, remembering the most recently used models (up to MODEL_CACHE_BYTES of weights)
    in this process: in-process analysis loads each model again for ModelCentrality."""
    file = checkpoint_file(checkpoint)
    key = (checkpoint, device, file.stat().st_mtime_ns if file.is_file() else -1)
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    _MODELS[key] = loaded = load_model(checkpoint, device=device)
    while len(_MODELS) > 1 and sum(_weight_bytes(m.model) for m in _MODELS.values()) > MODEL_CACHE_BYTES:
        _MODELS.popitem(last=False)
    return loaded


def _weight_bytes(model: InfoGAN) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


@functools.lru_cache(maxsize=8)
def _dataset(dataset: str, data_root: str, image_size: int, basicprop_noise: bool) -> ImageData:
    config = InfoGANConfig(dataset=dataset, data_root=data_root, image_size=image_size, basicprop_noise=basicprop_noise)
    return load_data(config, device="cpu")


def dataset_for(config: InfoGANConfig, data_root: str | None = None) -> ImageData:
    """The data a model was trained on (loaded once per process), optionally from another data_root."""
    root = config.data_root if data_root is None else data_root
    return _dataset(config.dataset, root, config.image_size, config.basicprop_noise)


def data_key(config: InfoGANConfig) -> tuple[str, int, bool]:
    """What decides a model's data (and its quality classifier), apart from where the files are."""
    return config.dataset, config.image_size, config.basicprop_noise


def prepare_classifiers(
    configs: list[InfoGANConfig], cache_dir: Path, counts: ScoringCounts, data_root: str | None = None
) -> dict[tuple[str, int, bool], str | None]:
    """Train (or find) the quality classifier of each dataset among `configs`, here and once, so the
    workers only load it. data_key -> cache path (None for unlabelled data), cached as
    <cache_dir>/classifier-<dataset>-<side>px[-noise]-<steps>steps.pt."""
    paths: dict[tuple[str, int, bool], str | None] = {}
    for config in configs:  # (trained on one thread: the same weights wherever the analysis runs)
        key = data_key(config)
        if key in paths:
            continue
        data = dataset_for(config, data_root)
        if data.heldout is None or data.num_classes is None:
            paths[key] = None
            continue
        noise = "-noise" if config.basicprop_noise else ""
        path = (
            cache_dir / f"classifier-{config.dataset}-{data.image_shape[1]}px{noise}-{counts.classifier_steps}steps.pt"
        )
        with single_threaded():
            _classifier_from_cache(str(path), data, counts)
        paths[key] = str(path)
    return paths


_CLASSIFIERS: dict[str, metrics.FeatureClassifier] = {}  # cache path -> classifier, per process


def _classifier_from_cache(path: str, data: ImageData, counts: ScoringCounts) -> metrics.FeatureClassifier:
    """The dataset's quality classifier: loaded from (or trained into) `path` once per process."""
    if path not in _CLASSIFIERS:
        heldout = data.heldout
        _CLASSIFIERS[path] = metrics.load_or_train_classifier(
            heldout.images, heldout.labels, cache_path=path, num_classes=data.num_classes,
            steps=counts.classifier_steps, batch_size=CLASSIFIER_BATCH,
        )  # fmt: skip
    return _CLASSIFIERS[path]


def seed_from(name: str) -> int:
    """A 63-bit seed derived from a trial id or pool name: the same name always scores the same way."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1


def one_line(err: BaseException) -> str:
    """'Type: first line of the message', at most 200 characters."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= 200 else text[:197] + "..."
