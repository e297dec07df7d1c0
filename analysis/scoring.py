"""Score one trained model: its checkpoint in, a dict of `analysis.schema` score columns out.

The headline is generator-side (`gen/*`, `analysis.metrics.compute_generator_scores`): fix the
noise, sweep each code, and read the factors off G's images with an evaluator independent of the
model (`analysis.evaluators`: an exact read-off of procedural images, a classifier trained on a
labelled training split). `score/disentanglement` is `gen/cat_acc`: how well each categorical
code's value decides a factor of G's images. A model whose G ignores its code scores 1/K there,
however well its Q reads real images.

Q's side (`q/*`) is kept beside it, clearly named: what Q (or E for Bidirectional-InfoGAN, the
same `model.encode` call) reads off real images, as the argmax of each categorical code and the
mean of each continuous code, (n, n_cat_codes + n_cont_codes). On data with

- held-out labels (`data.heldout`): the first categorical code's argmax clusters the held-out
  real images; Hungarian accuracy (the InfoGAN paper's "5% error"), many-to-one accuracy, NMI,
  ARI against the labels;
- ground-truth factors (`data.ground_truth`): MIG, DCI, SAP, FactorVAE, BetaVAE of Q's
  representation, with disentanglement_lib's protocol sample counts (`FULL`) or small ones
  (`QUICK`, a few hundred images: noisy, for a first look, tests and benchmarks).

Sample quality (`quality/*`): Fréchet distance, class coverage and per-code purity of generated
images in the features of the dataset's classifier (trained once per dataset, `prepare_evaluators`).

A vanilla GAN (no codes) gets NaN for the code scores, not an error; a metric that fails leaves
NaN and a note. All randomness comes from the trial's seed, so a re-run gives the same values.
"""

from __future__ import annotations

import contextlib
import dataclasses
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

from analysis import evaluators, metrics
from trainables.checkpoint import LoadedModel, checkpoint_file, load_model
from trainables.config import InfoGANConfig
from trainables.data import ImageData, load_data
from trainables.errors import one_line
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
    gen_rows: int = 200  # generator-side scores: traversal rows (fixed noise) per code
    gen_cont_values: int = 10  # values of a continuous code's sweep over [-1, 1]
    reader_images: int = 2_000  # real images with known factors to measure the evaluator's own accuracy
    classifier_steps: int = 3_000  # the dataset classifiers' training steps (cached per dataset and steps)
    inception_fid: bool = True  # Inception FID via torchmetrics, when installed
    # ModelCentrality (analysis.metrics.model_centrality): images per code value in each generator's
    # fixed design (half train the vote classifier, half evaluate it), images per vote, votes per half
    centrality_images_per_value: int = 16
    centrality_batch: int = 6
    centrality_votes: int = 500


FULL = ScoringCounts()
QUICK = ScoringCounts(
    heldout=300, quality_images=100, nmi_images=300, mig_train=100, dci=False, sap_train=100, sap_test=50,
    factor_vae_batch=8, factor_vae_train=30, factor_vae_eval=30, factor_vae_variance=100,
    beta_vae_batch=4, beta_vae_train=30, beta_vae_eval=30, gen_rows=50, reader_images=500, classifier_steps=300,
    inception_fid=False,
    centrality_images_per_value=6, centrality_batch=3, centrality_votes=100,
)  # fmt: skip


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs to score one trial (picklable, for processes and Ray)."""

    trial_id: str
    checkpoint: str
    seed: int
    counts: ScoringCounts
    evaluator: evaluators.EvaluatorFiles  # the dataset's cached classifiers
    data_root: str | None = None  # overrides the checkpoint's data_root
    device: str = "cpu"
    labels: bool = True  # False: score without the dataset's labels (no evaluator, no q/real_*, no FD)


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


def one_thread_worker() -> None:
    """Initialiser of a scoring worker process: one torch and one BLAS/OpenMP thread for the whole
    process (the parallelism comes from the processes; `score_trial` does the same per task)."""
    torch.set_num_threads(1)
    threadpool_limits(limits=1)


def _score_trial(task: TrialTask) -> TrialScores:
    start = time.perf_counter()
    try:
        loaded = cached_model(task.checkpoint, task.device)
        data = dataset_for(loaded.config, task.data_root)
        classifier = reader = None
        if task.labels:
            classifier = _classifier(task.evaluator.quality)
            reader = evaluators.make_reader(data, classifier, [_classifier(p) for p in task.evaluator.factors])
    except Exception as err:  # noqa: BLE001 - a broken checkpoint or missing data ends this trial only
        return TrialScores(task.trial_id, task.checkpoint, error=one_line(err), seconds=time.perf_counter() - start)
    out = score_model(
        loaded.model, data, task.counts, classifier=classifier, reader=reader, seed=task.seed, labels=task.labels
    )
    return dataclasses.replace(
        out, trial_id=task.trial_id, checkpoint=task.checkpoint, seconds=time.perf_counter() - start
    )


def score_model(
    model: InfoGAN,
    data: ImageData,
    counts: ScoringCounts,
    *,
    classifier: metrics.FeatureClassifier | None,
    reader: metrics.FactorReader | None,
    seed: int,
    labels: bool = True,
) -> TrialScores:
    """Every score that applies to `model` (trained on `data`), each metric on its own: one that
    fails leaves NaN and a note. `classifier`: the dataset's quality classifier (None: no FD);
    `reader`: its evaluator (None: no generator-side scores); `labels=False`: nothing that reads
    the dataset's labels or ground-truth factors (only the label-free selection/q_* signals)."""
    out = TrialScores("", "")
    cfg = model.config
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)

    def attempt(name: str, fn: Callable[[], None]) -> None:
        try:
            with torch.inference_mode():
                fn()
        except Exception as err:  # noqa: BLE001 - one failed metric leaves NaN and a note, not a lost trial
            out.notes.append(f"{name} not computed: {one_line(err)}")

    if reader is not None and cfg.has_codes:
        attempt("generator-side", lambda: out.scores.update(_generator_side(model, data, reader, counts, rng)))
    if cfg.n_cat_codes > 0:
        attempt("clustering", lambda: _clustering(model, data, counts, out, labels=labels))
    if labels and data.ground_truth is not None and cfg.has_codes:
        attempt("disentanglement", lambda: out.scores.update(_disentanglement(model, data, counts, rng)))
    if labels and data.heldout is not None and classifier is not None:
        attempt("quality", lambda: _quality(model, data, counts, classifier, generator, out))
    out.scores["score/disentanglement"] = out.scores.get("gen/cat_acc", NAN)
    return out


def _generator_side(
    model: InfoGAN, data: ImageData, reader: metrics.FactorReader, counts: ScoringCounts, rng: np.random.Generator
) -> dict[str, float]:
    """gen/* columns: G's traversals read by the dataset's evaluator, and the evaluator's own accuracy."""
    cfg = model.config
    scores = metrics.compute_generator_scores(
        evaluators.model_traversals(model), reader, rng, n_cat_codes=cfg.n_cat_codes, cat_dim=cfg.cat_dim,
        n_cont_codes=cfg.n_cont_codes, num_rows=counts.gen_rows, num_cont_values=counts.gen_cont_values,
    )  # fmt: skip
    out = {f"gen/{name}": value for name, value in scores.items()}
    real = evaluators.heldout_factors(data, num=counts.reader_images, seed=evaluators.FACTOR_SAMPLE_SEED + 1)
    out["gen/reader_acc"] = NAN if real is None else evaluators.reader_accuracy(reader, *real)
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
    """Q's distribution over the first categorical code's values (n, K) for real images (n, C, H, W) in [-1, 1]."""
    device = next(model.parameters()).device
    parts = [model.encode(b.to(device)).cat_logits[:, 0].float().softmax(-1).cpu() for b in images.split(ENCODE_BATCH)]
    return torch.cat(parts).double().numpy()


def _clustering(model: InfoGAN, data: ImageData, counts: ScoringCounts, out: TrialScores, *, labels: bool) -> None:
    """The first categorical code of the reference images: how Q uses it (selection/q_*, label-free),
    its argmaxes kept for NMI, scored against the labels if any (and `labels`)."""
    probabilities = _first_code(model, _reference_images(data, counts))  # (n, K)
    out.assignments = probabilities.argmax(axis=1)
    usage = metrics.compute_code_usage(probabilities)
    out.scores |= {f"selection/q_{name}": value for name, value in usage.items()}
    if labels and data.heldout is not None:
        result = metrics.compute_clustering_scores(out.assignments, data.heldout.labels[: counts.heldout].numpy())
        out.scores["q/real_hungarian_acc"] = result["hungarian_accuracy"]
        out.scores["q/real_many_to_one_acc"] = result["many_to_one_accuracy"]
        out.scores["q/real_nmi"] = result["nmi"]
        out.scores["q/real_ari"] = result["ari"]


def _disentanglement(
    model: InfoGAN, data: ImageData, counts: ScoringCounts, rng: np.random.Generator
) -> dict[str, float]:
    gt, represent, c = data.ground_truth, represent_fn(model), counts
    out = {"q/mig": metrics.compute_mig(gt, represent, rng, num_train=c.mig_train)["mig"]}
    if c.dci:
        dci = metrics.compute_dci(gt, represent, rng, num_train=c.dci_train, num_test=c.dci_test)
        out["q/dci_disentanglement"] = dci["disentanglement"]
        out["q/dci_completeness"] = dci["completeness"]
        out["q/dci_informativeness"] = dci["informativeness_test"]
    out["q/sap"] = metrics.compute_sap(gt, represent, rng, num_train=c.sap_train, num_test=c.sap_test)["sap"]
    out["q/factor_vae"] = metrics.compute_factor_vae(
        gt, represent, rng, batch_size=c.factor_vae_batch, num_train=c.factor_vae_train,
        num_eval=c.factor_vae_eval, num_variance_estimate=c.factor_vae_variance,
    )["eval_accuracy"]  # fmt: skip
    out["q/beta_vae"] = metrics.compute_beta_vae(
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
    classifier: metrics.FeatureClassifier,
    generator: torch.Generator,
    out: TrialScores,
) -> None:
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
# (checkpoint, device, mtime) -> (model, bytes of its weights), least recently used first
_MODELS: OrderedDict[tuple[str, str, int], tuple[LoadedModel, int]] = OrderedDict()


def cached_model(checkpoint: str, device: str) -> LoadedModel:
    """`load_model`, remembering the most recently used models (up to MODEL_CACHE_BYTES of weights)
    in this process: in-process analysis loads each model again for ModelCentrality. Each model's
    size is measured once, when loaded (summing every cached model's state_dict at each load made
    scoring N trials in one process cost O(N^2): minutes for a thousand)."""
    file = checkpoint_file(checkpoint)
    key = (checkpoint, device, file.stat().st_mtime_ns if file.is_file() else -1)
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key][0]
    loaded = load_model(checkpoint, device=device)
    _MODELS[key] = (loaded, _weight_bytes(loaded.model))
    total = sum(size for _, size in _MODELS.values())
    while len(_MODELS) > 1 and total > MODEL_CACHE_BYTES:
        total -= _MODELS.popitem(last=False)[1][1]
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


def prepare_evaluators(
    configs: list[InfoGANConfig],
    cache_dir: Path,
    counts: ScoringCounts,
    data_root: str | None = None,
    *,
    readers_only: bool = False,
) -> dict[tuple[str, int, bool], evaluators.EvaluatorFiles]:
    """Train (or find) each dataset's classifiers among `configs`, here and once, so the workers
    only load them. data_key -> their cache files, named
    <cache_dir>/classifier-<dataset>-<side>px[-noise]-<train|heldout>-<steps>steps[-<factor>].pt.
    `readers_only`: only the classifiers that read factors (what the training probe needs)."""
    files: dict[tuple[str, int, bool], evaluators.EvaluatorFiles] = {}
    for config in configs:  # (trained on one thread: the same weights wherever the analysis runs)
        key = data_key(config)
        if key in files:
            continue
        data = dataset_for(config, data_root)
        noise = "-noise" if config.basicprop_noise else ""
        source = "train" if data.labels is not None else "heldout"
        stem = (
            cache_dir
            / f"classifier-{config.dataset}-{data.image_shape[1]}px{noise}-{source}-{counts.classifier_steps}steps"
        )
        with single_threaded():
            files[key] = evaluators.prepare_evaluator(
                data, stem, steps=counts.classifier_steps, batch_size=CLASSIFIER_BATCH, readers_only=readers_only
            )
    return files


def prepare_probe(
    configs: list[InfoGANConfig], cache_dir: Path, counts: ScoringCounts = FULL
) -> evaluators.ProbeFactory:
    """The generator probe of a study's trials (reported as gen/cat_acc during training), with the
    classifiers its datasets need trained or found in `cache_dir`: the same files `analyze` uses."""
    files = prepare_evaluators(configs, cache_dir, counts, readers_only=True)
    classifiers = {}
    for config in configs:
        data, found = dataset_for(config), files[data_key(config)]
        classifiers[(data.name, data.image_shape[1])] = (
            _classifier(found.quality),
            tuple(_classifier(path) for path in found.factors),
        )
    return evaluators.ProbeFactory(classifiers)


@functools.lru_cache(maxsize=16)
def _classifier(path: str | None) -> metrics.FeatureClassifier | None:
    """A cached classifier, loaded once per process (None: none for this dataset)."""
    return None if path is None else metrics.load_classifier(path)


def seed_from(name: str) -> int:
    """A 63-bit seed derived from a trial id or pool name: the same name always scores the same way."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1
