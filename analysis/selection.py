"""Label-free model selection over a population of trained models.

Which of the models I trained is the disentangled one, without labels? Five signals, each a
`selection/*` column of trials.parquet (their one-sentence definitions: `analysis.schema`):

- per model, from Q's first categorical code on the same real images (`analysis.scoring`):
  `selection/q_balance` (how evenly Q spreads them over its K categories), `selection/q_confidence`
  (how sure Q is of each) and `selection/q_info` (both at once: the mutual information between the
  image and Q's category, Krause et al. 2010's RIM criterion);
- per population (`select_models`): `selection/centrality`, ModelCentrality (Lin et al. 2020,
  InfoGAN-CR, https://arxiv.org/abs/1906.06034, Sec. 5; `analysis.metrics.compute_model_centrality`),
  and `selection/mean_pairwise_nmi`, the agreement of a model's assignment of the real images with
  the other models' (UDR's idea, Duan et al. 2020, https://arxiv.org/abs/1905.12614).

The population ("pool") is every model of one image kind whose code carries information by its own
account (final mi/cat >= MIN_CANDIDATE_MI: a model whose Q cannot read its code back from G's
images is no candidate for "the disentangled model", whatever its Q does elsewhere), at most
`max_models` of them (the most balanced first, `CAP_SIGNAL`): ModelCentrality costs M^2 encoder
passes. Models are only comparable on images of one kind, so trials of several datasets get one
`all:<dataset>` pool each. `selection/score` is the signal the label-free pick uses (`PICK_SIGNAL`)
on the candidates, NaN elsewhere; the pick is the candidate with the highest score (the report
makes it from trials.parquet: `analysis.report.get_selection_info`).

ModelCentrality runs in two phases through the caller's `Mapper` (in-process, processes or Ray
tasks): each model renders its generator's fixed design once (`render_design`; `GeneratorData`
adapts a generator to the ground-truth interface: its factors are its codes, each continuous code
in CONT_BINS bins), then each model's Q reads every design of its pool (`encode_designs`); the
FactorVAE votes on those codes are numpy in this process. Every model of a pool renders from the
same draws and every pair votes on the same batches (common random numbers), so identical models
tie exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from analysis import metrics
from analysis.scoring import ENCODE_BATCH, ScoringCounts, cached_model, represent_fn, seed_from, single_threaded
from trainables.errors import one_line
from trainables.models import InfoGAN, Latent

CONT_BINS = 10  # values per continuous code when it serves as a factor
MIN_CANDIDATE_MI = 0.5  # a candidate's bar: final mi/cat (label-free, from training)
PICK_SIGNAL = "selection/q_balance"  # what the label-free pick maximises (docs/results.md: the validation)
CAP_SIGNAL = "selection/q_balance"  # which candidates enter a pool capped at max_models
POOL_SIGNALS = ("selection/centrality", "selection/mean_pairwise_nmi")  # measured within a pool

Mapper = Callable[[Callable[[Any], Any], Sequence[Any], str], list[Any]]  # (fn, items, progress label) -> results


class GeneratorData:
    """A trained generator as disentanglement_lib ground truth: factors = its codes, observations = G's images."""

    def __init__(self, model: InfoGAN, *, bins: int = CONT_BINS) -> None:
        cfg = model.config
        self.model = model
        self.n_cat, self.n_cont, self.noise_dim = cfg.n_cat_codes, cfg.n_cont_codes, cfg.noise_dim
        self.factors_num_values = [cfg.cat_dim] * self.n_cat + [bins] * self.n_cont
        self.factor_names = [f"cat{i}" for i in range(self.n_cat)] + [f"cont{i}" for i in range(self.n_cont)]
        self.centres = (-1.0 + (2 * np.arange(bins) + 1) / bins).astype(np.float32)  # (bins,) bin centres in (-1, 1)

    @property
    def num_factors(self) -> int:
        return len(self.factors_num_values)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return tuple(self.model.image_shape)

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        """(num, num_factors) int64, each code value uniform."""
        return np.stack([rng.integers(k, size=num) for k in self.factors_num_values], axis=1).astype(np.int64)

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """factors (num, num_factors) -> G's images (num, C, H, W) float32 in [0, 1], with noise z
        drawn afresh per image from the model's own prior (config.noise_dist)."""
        factors = np.asarray(factors, dtype=np.int64)
        device = next(self.model.parameters()).device
        noise = torch.Generator().manual_seed(int(rng.integers(2**62)))
        z = self.model.sample_latent(factors.shape[0], noise).z  # (num, noise_dim)
        cat = torch.from_numpy(factors[:, : self.n_cat].copy())  # (num, n_cat)
        cont = torch.from_numpy(self.centres[factors[:, self.n_cat :]])  # (num, n_cont)
        images = []
        with torch.inference_mode():
            for start in range(0, factors.shape[0], ENCODE_BATCH):
                part = slice(start, start + ENCODE_BATCH)
                latent = Latent(z[part].to(device), cat[part].to(device), cont[part].to(device))
                images.append(self.model.generate(latent).cpu())
        if not images:
            return np.zeros((0, *self.observation_shape), dtype=np.float32)
        return ((torch.cat(images) + 1) / 2).clamp(0, 1).numpy()


# ---------------------------------------------------------------------------------- ModelCentrality's phases
@dataclass(frozen=True)
class DesignTask:
    """Render one model's generator design (picklable, for processes and Ray)."""

    trial_id: str
    checkpoint: str
    seed: int
    images_per_value: int
    device: str = "cpu"


@dataclass
class DesignResult:
    trial_id: str
    design: metrics.CentralityDesign | None  # None if the model did not load
    error: str = ""


def render_design(task: DesignTask) -> DesignResult:
    """The model's generator rendered on ModelCentrality's fixed design, on one thread (as
    `score_trial`); never raises."""
    try:
        model = cached_model(task.checkpoint, task.device).model
        with single_threaded(), torch.inference_mode():
            design = metrics.sample_centrality_design(
                GeneratorData(model), np.random.default_rng(task.seed), images_per_value=task.images_per_value
            )
        return DesignResult(task.trial_id, design)
    except Exception as err:  # noqa: BLE001 - one model's failure leaves it out of its pool, not the analysis
        return DesignResult(task.trial_id, None, f"{task.trial_id}: {one_line(err)}")


@dataclass(frozen=True)
class EncodeTask:
    """One model's Q reads the designs of its pool (observations (n, C, H, W) in [0, 1] per data trial)."""

    trial_id: str
    checkpoint: str
    designs: tuple[tuple[str, np.ndarray], ...]
    device: str = "cpu"


@dataclass
class EncodeResult:
    trial_id: str
    codes: dict[str, np.ndarray] | None  # data trial id -> (n, D) codes; None if the model did not load
    error: str = ""


def encode_designs(task: EncodeTask) -> EncodeResult:
    """Q's codes (categorical argmaxes, continuous means) of every design, on one thread; never raises."""
    try:
        represent = represent_fn(cached_model(task.checkpoint, task.device).model)
        with single_threaded():
            codes = {data_trial: metrics.represent_codes(represent, images) for data_trial, images in task.designs}
        return EncodeResult(task.trial_id, codes)
    except Exception as err:  # noqa: BLE001 - one model's failure leaves it out of its pool, not the analysis
        return EncodeResult(task.trial_id, None, f"{task.trial_id}: {one_line(err)}")


@dataclass(frozen=True)
class PoolTask:
    """One pool of models to compare."""

    name: str  # 'all' or 'all:<dataset>'
    trial_ids: tuple[str, ...]
    checkpoints: tuple[str, ...]
    seed: int
    counts: ScoringCounts
    device: str = "cpu"


@dataclass
class PoolResult:
    name: str
    trial_ids: tuple[str, ...]  # the models scored (all of the pool's, or those left when the pool failed)
    scores: np.ndarray | None  # (M, M) S[i, j]: model j's Q on model i's generator; None if it failed
    error: str = ""  # why the pool failed, or why some models were left out of it
    left_out: tuple[str, ...] = ()  # models that did not load or render: NaN, with `error` as their note

    @property
    def centrality(self) -> dict[str, float]:
        """trial id -> mean over the other models' data of its score (NaN if the pool failed)."""
        if self.scores is None:
            return dict.fromkeys(self.trial_ids, math.nan)
        values = metrics.centrality_from_scores(self.scores).centrality
        return dict(zip(self.trial_ids, values.tolist()))

    def rows(self) -> list[dict[str, object]]:
        """selection.parquet rows: one per (data model, representation model) pair."""
        if self.scores is None:
            return []
        return [
            {"pool": self.name, "data_trial": a, "rep_trial": b, "factor_vae": float(self.scores[i, j])}
            for i, a in enumerate(self.trial_ids)
            for j, b in enumerate(self.trial_ids)
        ]


def score_pools(tasks: Sequence[PoolTask], mapper: Mapper) -> list[PoolResult]:
    """ModelCentrality's S matrix of each pool: designs rendered once per model, every Q of the pool
    reading every design of it, the votes here. A model that fails to load or render is left out of
    its pool (NaN and a reason); a pool left with fewer than two models fails (NaN for all)."""
    keys = [(pool.name, tid) for pool in tasks for tid in pool.trial_ids]  # one per model of each pool
    paths = [path for pool in tasks for path in pool.checkpoints]
    by_key = {pool.name: pool for pool in tasks}
    design_tasks = [
        DesignTask(tid, path, seed_from(f"{name}|design"), by_key[name].counts.centrality_images_per_value,
                   by_key[name].device)
        for (name, tid), path in zip(keys, paths)
    ]  # fmt: skip
    designs = dict(zip(keys, mapper(render_design, design_tasks, "centrality: designs")))
    encode_tasks = [
        EncodeTask(tid, path, tuple((d, designs[(name, d)].design.observations) for d in by_key[name].trial_ids
                                    if designs[(name, d)].design is not None), by_key[name].device)
        for (name, tid), path in zip(keys, paths)
    ]  # fmt: skip
    encoded = dict(zip(keys, mapper(encode_designs, encode_tasks, "centrality: encoders")))
    results = []
    for pool in tasks:
        ok = tuple(tid for tid in pool.trial_ids if not designs[(pool.name, tid)].error
                   and not encoded[(pool.name, tid)].error)  # fmt: skip
        errors = [r.error for tid in pool.trial_ids for r in (designs[(pool.name, tid)], encoded[(pool.name, tid)])
                  if r.error]  # fmt: skip
        if len(ok) < 2:
            results.append(PoolResult(pool.name, pool.trial_ids, None,
                                      f"ModelCentrality of pool {pool.name} failed: {errors[0]}"))  # fmt: skip
            continue
        c = pool.counts
        scores = np.zeros((len(ok), len(ok)))
        for i, data_trial in enumerate(ok):
            design = designs[(pool.name, data_trial)].design
            for j, rep_trial in enumerate(ok):
                rng = np.random.default_rng(seed_from(f"{pool.name}|votes"))  # the same batches for every pair
                scores[i, j] = metrics.centrality_score(
                    encoded[(pool.name, rep_trial)].codes[data_trial], design, rng, batch_size=c.centrality_batch,
                    num_train=c.centrality_votes, num_eval=c.centrality_votes,
                )  # fmt: skip
        note = f"left out of ModelCentrality's pool {pool.name}: {'; '.join(errors)}" if errors else ""
        results.append(
            PoolResult(pool.name, ok, scores, note, left_out=tuple(t for t in pool.trial_ids if t not in ok))
        )
    return results


def score_pool(task: PoolTask) -> PoolResult:
    """One pool's ModelCentrality in this process."""
    return score_pools([task], lambda fn, items, desc: [fn(item) for item in items])[0]


def nmi_centrality(assignments: dict[str, np.ndarray]) -> dict[str, float]:
    """trial id -> mean NMI of its categorical assignments (N,) with the other models' (same N images)."""
    ids = sorted(assignments)
    if len(ids) < 2:
        return dict.fromkeys(ids, math.nan)
    result = metrics.mean_pairwise_nmi(np.stack([assignments[i] for i in ids]))
    return dict(zip(ids, result.centrality.tolist()))


# ---------------------------------------------------------------------------------- the pools and the pick
@dataclass(frozen=True)
class Member:
    """A scored model with codes, as selection sees it."""

    trial_id: str
    group: str  # its configuration group
    images: str  # dataset and image size: models are only compared on images of one kind
    checkpoint: str
    reference: str  # which reference images `assignments` label (models of the same data share them)
    assignments: np.ndarray | None  # (n,) first categorical code of the reference images
    mi: float  # final mi/cat (NaN: none): the candidates' bar
    signals: dict[str, float]  # the model's own selection/q_* values (NaN where not measured)


@dataclass
class Selection:
    candidates: set[str]  # trial ids that passed the bar, in a pool or not (the pick chooses among these)
    centrality: dict[str, float]  # trial id -> ModelCentrality in its pool
    nmi: dict[str, float]  # trial id -> mean pairwise NMI in its pool
    rows: list[dict[str, Any]]  # selection.parquet rows of every pool
    notes: dict[str, list[str]]  # trial id -> pools that failed


def select_models(
    members: list[Member], *, counts: ScoringCounts, max_models: int, device: str, mapper: Mapper
) -> Selection:
    """Per image kind, one pool of the candidates (final MI >= MIN_CANDIDATE_MI), capped at
    `max_models` by CAP_SIGNAL (then final MI): ModelCentrality and the pairwise NMI within it."""
    by_kind: dict[str, list[Member]] = {}
    for member in sorted(members, key=lambda m: m.trial_id):
        by_kind.setdefault(member.images, []).append(member)
    candidates = {m.trial_id for m in members if m.mi >= MIN_CANDIDATE_MI}  # (NaN fails the bar)
    pools: dict[str, list[Member]] = {}
    for kind, kind_members in sorted(by_kind.items()):
        ranked = sorted(
            (m for m in kind_members if m.trial_id in candidates),
            key=lambda m: (_descending(m.signals.get(CAP_SIGNAL, math.nan)), _descending(m.mi), m.trial_id),
        )
        if len(ranked) >= 2:
            pools["all" if len(by_kind) == 1 else f"all:{kind}"] = sorted(ranked[:max_models], key=lambda m: m.trial_id)
    tasks = [
        PoolTask(name, tuple(m.trial_id for m in ms), tuple(m.checkpoint for m in ms),
                 seed_from(name + "|" + "|".join(m.trial_id for m in ms)), counts, device)
        for name, ms in pools.items()
    ]  # fmt: skip
    results = score_pools(tasks, mapper) if tasks else []
    centrality = {tid: value for result in results for tid, value in result.centrality.items()}
    nmi: dict[str, float] = {}
    for ms in pools.values():
        for reference in sorted({m.reference for m in ms}):
            assignments = {
                m.trial_id: m.assignments for m in ms if m.reference == reference and m.assignments is not None
            }
            if len(assignments) >= 2:
                nmi.update(nmi_centrality(assignments))
    notes: dict[str, list[str]] = {}
    for result in results:
        for tid in result.trial_ids if result.scores is None else result.left_out:
            notes.setdefault(tid, []).append(result.error)
            centrality.setdefault(tid, math.nan)
    return Selection(candidates, centrality, nmi, [row for result in results for row in result.rows()], notes)


def pick_score(trial_id: str, values: dict[str, float], selection: Selection) -> float:
    """`selection/score` of a trial from its selection/* values: PICK_SIGNAL for a candidate, NaN
    for the others."""
    return values.get(PICK_SIGNAL, math.nan) if trial_id in selection.candidates else math.nan


def _descending(value: float) -> float:
    """Sort key: larger values first, NaN last."""
    return -value if math.isfinite(value) else math.inf
