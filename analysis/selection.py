"""Label-free model selection over pools of trained models: ModelCentrality and pairwise NMI.

ModelCentrality (Lin et al. 2020, InfoGAN-CR, https://arxiv.org/abs/1906.06034, Sec. 5) treats
each trained generator as a ground-truth dataset for the others. `GeneratorData` is that adapter:
its factors are the model's codes, each categorical code's values as they are and each continuous
code discretised into `bins` (10) equal bins on [-1, 1] whose centres are fed to G; the noise z is
drawn afresh per image. S[i, j] is the FactorVAE score of model j's Q on model i's generator
(`analysis.metrics.compute_model_centrality`).

Pools (`select_models`):
- a configuration group (its seeds): which seed represents the group, without labels;
- `all`: the representatives of the groups whose code carries information by the model's own
  account (final mi/cat >= MIN_CANDIDATE_MI: a model whose Q cannot read its code back from G's
  images is no candidate for "the disentangled model", whatever its Q does on other generators),
  at most `max_models` (those with the highest final mi/cat); with a single group, its seeds. This is the pool of one label-free pick, and the per-trial `selection/centrality` and
  `selection/mean_pairwise_nmi` are measured in it (NaN outside it; NMI among the models trained
  on the same data, which label the same reference images). Models are only comparable on
  images of one kind, so trials of several datasets get one `all:<dataset>` pool each.
`mean_pairwise_nmi` compares the models' first categorical code on the same real images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from analysis import metrics
from analysis.scoring import (
    ENCODE_BATCH,
    ScoringCounts,
    cached_model,
    one_line,
    represent_fn,
    seed_from,
    single_threaded,
)
from trainables.models import InfoGAN, Latent

CONT_BINS = 10  # values per continuous code when it serves as a factor
MIN_CANDIDATE_MI = 0.5  # the `all` pool's entry bar: final mi/cat (label-free, from training)


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
        """factors (num, num_factors) -> G's images (num, C, H, W) float32 in [0, 1], fresh noise per image."""
        factors = np.asarray(factors, dtype=np.int64)
        device = next(self.model.parameters()).device
        z = rng.standard_normal((factors.shape[0], self.noise_dim), dtype=np.float32)  # (num, noise_dim)
        cat = torch.from_numpy(factors[:, : self.n_cat].copy())  # (num, n_cat)
        cont = torch.from_numpy(self.centres[factors[:, self.n_cat :]])  # (num, n_cont)
        images = []
        with torch.inference_mode():
            for start in range(0, factors.shape[0], ENCODE_BATCH):
                part = slice(start, start + ENCODE_BATCH)
                latent = Latent(torch.from_numpy(z[part]).to(device), cat[part].to(device), cont[part].to(device))
                images.append(self.model.generate(latent).cpu())
        if not images:
            return np.zeros((0, *self.observation_shape), dtype=np.float32)
        return ((torch.cat(images) + 1) / 2).clamp(0, 1).numpy()


@dataclass(frozen=True)
class PoolTask:
    """One pool of models to compare (picklable, for processes and Ray)."""

    name: str  # a group id, 'all' or 'all:<dataset>'
    trial_ids: tuple[str, ...]
    checkpoints: tuple[str, ...]
    seed: int
    counts: ScoringCounts
    device: str = "cpu"


@dataclass
class PoolResult:
    name: str
    trial_ids: tuple[str, ...]
    scores: np.ndarray | None  # (M, M) S[i, j]: model j's Q on model i's generator; None if it failed
    error: str = ""

    @property
    def centrality(self) -> dict[str, float]:
        """trial id -> mean over the other models' data of its score (NaN if the pool failed)."""
        if self.scores is None:
            return dict.fromkeys(self.trial_ids, math.nan)
        off = ~np.eye(len(self.trial_ids), dtype=bool)
        values = (self.scores * off).sum(axis=0) / (len(self.trial_ids) - 1)
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


def score_pool(task: PoolTask) -> PoolResult:
    """ModelCentrality's S matrix of the pool's models, on one thread; never raises (a failure leaves
    NaN and a reason)."""
    with single_threaded():
        return _score_pool(task)


def _score_pool(task: PoolTask) -> PoolResult:
    try:
        models = [cached_model(path, task.device).model for path in task.checkpoints]
        c = task.counts
        with torch.inference_mode():
            result = metrics.compute_model_centrality(
                [GeneratorData(m) for m in models], [represent_fn(m) for m in models],
                np.random.default_rng(task.seed), batch_size=c.centrality_batch, num_train=c.centrality_train,
                num_eval=c.centrality_eval, num_variance_estimate=c.centrality_variance,
            )  # fmt: skip
        return PoolResult(task.name, task.trial_ids, result.scores)
    except Exception as err:  # noqa: BLE001 - one pool's failure must not lose the others
        return PoolResult(
            task.name, task.trial_ids, None, f"ModelCentrality of pool {task.name} failed: {one_line(err)}"
        )


def nmi_centrality(assignments: dict[str, np.ndarray]) -> dict[str, float]:
    """trial id -> mean NMI of its categorical assignments (N,) with the other models' (same N images)."""
    ids = sorted(assignments)
    if len(ids) < 2:
        return dict.fromkeys(ids, math.nan)
    result = metrics.mean_pairwise_nmi(np.stack([assignments[i] for i in ids]))
    return dict(zip(ids, result.centrality.tolist()))


Mapper = Callable[[Callable[[Any], Any], Sequence[Any], str], list[Any]]  # (fn, items, progress label) -> results


@dataclass(frozen=True)
class Member:
    """A scored model with codes, as selection sees it."""

    trial_id: str
    group: str  # its configuration group
    images: str  # dataset and image size: models are only compared on images of one kind
    checkpoint: str
    reference: str  # which reference images `assignments` label (models of the same data share them)
    assignments: np.ndarray | None  # (n,) first categorical code of the reference images
    rank: float  # higher is kept first when the `all` pool is capped (NaN last): mi/final


@dataclass
class Selection:
    centrality: dict[str, float]  # trial id -> ModelCentrality in its `all` pool
    nmi: dict[str, float]  # trial id -> mean pairwise NMI in its `all` pool
    rows: list[dict[str, Any]]  # selection.parquet rows of every pool
    notes: dict[str, list[str]]  # trial id -> pools that failed


def select_models(
    members: list[Member], *, counts: ScoringCounts, max_models: int, device: str, mapper: Mapper
) -> Selection:
    """Per image kind: ModelCentrality within each group (its seeds) picks the group's most central
    seed; the `all` pool compares those representatives (with a single group: its seeds). The
    per-trial centrality and NMI are those of the `all` pool, the candidates of one label-free pick."""
    by_kind: dict[str, dict[str, list[Member]]] = {}
    for member in sorted(members, key=lambda m: m.trial_id):
        by_kind.setdefault(member.images, {}).setdefault(member.group, []).append(member)
    group_tasks = [
        _task(name, ms, counts, device)
        for groups in by_kind.values() if len(groups) > 1
        for name, ms in sorted(groups.items()) if len(ms) >= 2
    ]  # fmt: skip
    group_results = mapper(score_pool, group_tasks, "centrality: groups")
    within = {tid: value for result in group_results for tid, value in result.centrality.items()}

    def most_central(ms: list[Member]) -> Member:
        return min(ms, key=lambda m: (_descending(within.get(m.trial_id, math.nan)), m.trial_id))

    pools: dict[str, list[Member]] = {}
    for kind, groups in sorted(by_kind.items()):
        candidates = (
            [most_central(ms) for _, ms in sorted(groups.items())] if len(groups) > 1 else next(iter(groups.values()))
        )
        informative = [m for m in candidates if m.rank >= MIN_CANDIDATE_MI]  # (NaN fails the bar)
        ranked = sorted(informative, key=lambda m: (_descending(m.rank), m.group, m.trial_id))
        if len(ranked) >= 2:
            pools["all" if len(by_kind) == 1 else f"all:{kind}"] = sorted(ranked[:max_models], key=lambda m: m.trial_id)
    all_results = mapper(score_pool, [_task(name, ms, counts, device) for name, ms in pools.items()], "centrality: all")
    centrality = {tid: value for result in all_results for tid, value in result.centrality.items()}
    nmi: dict[str, float] = {}
    for ms in pools.values():
        for reference in sorted({m.reference for m in ms}):
            assignments = {
                m.trial_id: m.assignments for m in ms if m.reference == reference and m.assignments is not None
            }
            if len(assignments) >= 2:
                nmi.update(nmi_centrality(assignments))
    results = [*group_results, *all_results]
    notes: dict[str, list[str]] = {}
    for result in results:
        for tid in result.trial_ids if result.error else ():
            notes.setdefault(tid, []).append(result.error)
    return Selection(centrality, nmi, [row for result in results for row in result.rows()], notes)


def _task(name: str, members: Sequence[Member], counts: ScoringCounts, device: str) -> PoolTask:
    ids = tuple(m.trial_id for m in members)
    return PoolTask(
        name, ids, tuple(m.checkpoint for m in members), seed_from(name + "|" + "|".join(ids)), counts, device
    )


def _descending(value: float) -> float:
    """Sort key: larger values first, NaN last."""
    return -value if math.isfinite(value) else math.inf
