"""ModelCentrality: unsupervised selection of the most disentangled of M trained models.

Based on Lin et al. 2020, "InfoGAN-CR and ModelCentrality: Self-supervised Model Training and
Selection for Disentangling GANs" (https://arxiv.org/abs/1906.06034), Sec. 5. Without ground
truth, each trained generator serves as ground truth for the others: its latent codes are the
factors and its images the observations. S[i, j] is the FactorVAE score of model j's encoder Q_j
on model i's generator data; a model whose codes agree with many others' is likely the
disentangled one (entangled models disagree with each other in different ways), so

    centrality_j = mean over i != j of S[i, j]

(the diagonal, a model scored on its own data, is computed but left out).

The matrix costs M^2 encoder passes over each generator's samples, so the FactorVAE votes are
drawn from a fixed design rendered once per generator (`sample_centrality_design`) instead of
from fresh batches: for every factor k and every value v of it, `images_per_value` images whose
factor k is v and whose other factors (and noise) are drawn afresh. The first half of each such
cell serves the training votes, the second half the evaluation votes; a vote takes `batch_size`
images of one cell (a random subset of its half) and, as in FactorVAE, the code with the least
variance over them (divided by its variance over the whole design, a stratified sample of the
factors) votes for factor k. Every encoder reads the same images, so a generator renders
`num_factor_values * images_per_value` images once (480 for MNIST's 10 + 2 x 10 values at the
default 16), and the votes cost numpy only. `centrality_score` is the vote core on the codes
one encoder gave for one design; `compute_model_centrality` composes the two with common random
numbers (every design from the same draws, every pair voting on the same batches), so identical
models tie exactly.

`mean_pairwise_nmi` is the cheap cousin for categorical codes: the NMI between two models' code
assignments of the same real images, in the same matrix/centrality form (UDR's agreement between
seeds, Duan et al. 2020, https://arxiv.org/abs/1905.12614).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from analysis.metrics._sampling import GroundTruthData, RepresentationFn, check_count, represent
from analysis.metrics.factor_vae import _vote_scores, _votes
from trainables.errors import BadInputError


@dataclass(frozen=True)
class CentralityResult:
    """Pairwise agreement of M models and each model's centrality."""

    scores: np.ndarray  # (M, M): scores[i, j] = agreement of model j with model i's codes
    centrality: np.ndarray  # (M,): mean over i != j of scores[i, j]

    @property
    def best(self) -> int:
        """Index of the most central model (the selected one)."""
        return int(np.argmax(self.centrality))

    @property
    def mean(self) -> float:
        """Mean off-diagonal agreement: how much the M models agree overall."""
        return float(np.mean(self.centrality))


@dataclass(frozen=True)
class CentralityDesign:
    """One generator's fixed sample for the votes, in cells of `per_cell` images sharing one factor value."""

    observations: np.ndarray  # (num_cells * per_cell, C, H, W), cell-major
    cell_factor: np.ndarray  # (num_cells,) int: the factor each cell fixes
    per_cell: int  # images per cell: the first half trains the vote classifier, the second evaluates it

    @property
    def num_factors(self) -> int:
        return int(self.cell_factor.max()) + 1


def sample_centrality_design(
    data: GroundTruthData, rng: np.random.Generator, *, images_per_value: int = 16
) -> CentralityDesign:
    """Render the design of one generator: for every factor k and value v, `images_per_value`
    images with factor k = v and every other factor (and the noise) drawn afresh."""
    check_count("images_per_value", images_per_value, minimum=4)
    cells = [(k, v) for k, n in enumerate(data.factors_num_values) for v in range(n)]
    factors = np.asarray(data.sample_factors(len(cells) * images_per_value, rng), dtype=np.int64)
    factors = factors.reshape(len(cells), images_per_value, data.num_factors)  # (cells, n, F)
    for c, (k, v) in enumerate(cells):
        factors[c, :, k] = v
    observations = data.sample_observations_from_factors(factors.reshape(-1, data.num_factors), rng)
    cell_factor = np.array([k for k, _ in cells], dtype=np.int64)
    return CentralityDesign(np.asarray(observations), cell_factor, images_per_value)


def centrality_score(
    codes: np.ndarray,
    design: CentralityDesign,
    rng: np.random.Generator,
    *,
    batch_size: int = 6,
    num_train: int = 500,
    num_eval: int = 500,
    prune_threshold: float = 0.05,
) -> float:
    """FactorVAE eval accuracy of one encoder's codes (num_cells * per_cell, D) of a design."""
    half = design.per_cell // 2
    check_count("batch_size", batch_size, minimum=2)
    if batch_size > half:
        raise BadInputError(f"batch_size={batch_size} exceeds half a design cell ({half} images); lower batch_size")
    num_cells = design.cell_factor.shape[0]
    assert codes.ndim == 2 and codes.shape[0] == num_cells * design.per_cell, (codes.shape, num_cells)
    variances = np.var(codes, axis=0, ddof=1)  # (D,) over the whole design
    active = np.sqrt(variances) >= prune_threshold  # disentanglement_lib prunes on the std
    if not active.any():
        return 0.0
    votes = [
        _design_votes(codes, design, rng, variances, active, first=split * half, size=half, batch_size=batch_size,
                      num_votes=num)
        for split, num in ((0, num_train), (1, num_eval))
    ]  # fmt: skip
    return _vote_scores(votes[0], votes[1], active)["eval_accuracy"]


def _design_votes(
    codes: np.ndarray,
    design: CentralityDesign,
    rng: np.random.Generator,
    variances: np.ndarray,
    active: np.ndarray,
    *,
    first: int,
    size: int,
    batch_size: int,
    num_votes: int,
) -> np.ndarray:
    """Votes (F, D) of `num_votes` batches, each `batch_size` images of one random cell, taken from
    the cell's images first .. first + size."""
    cells = rng.integers(design.cell_factor.shape[0], size=num_votes)  # (G,)
    subset = np.argsort(rng.random((num_votes, size)), axis=1)[:, :batch_size]  # (G, B) without replacement
    index = cells[:, None] * design.per_cell + first + subset  # (G, B) rows of `codes`
    return _votes(codes[index], design.cell_factor[cells], variances, active, num_factors=design.num_factors)


def compute_model_centrality(
    datasets: Sequence[GroundTruthData],
    represent_fns: Sequence[RepresentationFn],
    rng: np.random.Generator,
    *,
    images_per_value: int = 16,
    batch_size: int = 6,
    num_train: int = 500,
    num_eval: int = 500,
    prune_threshold: float = 0.05,
) -> CentralityResult:
    """S[i, j] = FactorVAE eval accuracy of represent_fns[j] on datasets[i]'s design; centrality per model."""
    if len(datasets) != len(represent_fns) or len(datasets) < 2:
        raise BadInputError(
            f"ModelCentrality needs one representation per generator dataset and >= 2 models; "
            f"got {len(datasets)} datasets and {len(represent_fns)} representations"
        )
    # Common random numbers: every generator renders its design from the same draws and every pair
    # votes on the same batches, so identical models score identically and differences between
    # models are not sampling noise.
    design_seed, vote_seed = rng.integers(2**63, size=2)
    scores = np.zeros((len(datasets), len(represent_fns)))
    for i, data in enumerate(datasets):
        design = sample_centrality_design(data, np.random.default_rng(design_seed), images_per_value=images_per_value)
        for j, fn in enumerate(represent_fns):
            scores[i, j] = centrality_score(
                represent(fn, design.observations), design, np.random.default_rng(vote_seed), batch_size=batch_size,
                num_train=num_train, num_eval=num_eval, prune_threshold=prune_threshold,
            )  # fmt: skip
    return centrality_from_scores(scores)


def mean_pairwise_nmi(assignments: np.ndarray) -> CentralityResult:
    """NMI between every pair of M models' categorical assignments (M, N) of the same N images.

    scores[i, j] = NMI(assignments[i], assignments[j]) (symmetric, diagonal 1); centrality and
    `.mean` as for ModelCentrality.
    """
    assignments = np.asarray(assignments)
    if assignments.ndim != 2 or assignments.shape[0] < 2 or assignments.shape[1] == 0:
        raise BadInputError(f"assignments {assignments.shape} must be (M, N): one row of code values per model, M >= 2")
    num_models = assignments.shape[0]
    scores = np.eye(num_models)
    for i in range(num_models):
        for j in range(i + 1, num_models):
            scores[i, j] = scores[j, i] = normalized_mutual_info_score(assignments[i], assignments[j])
    return centrality_from_scores(scores)


def centrality_from_scores(scores: np.ndarray) -> CentralityResult:
    """scores (M, M) -> centrality (M,): column means without the diagonal."""
    assert scores.ndim == 2 and scores.shape[0] == scores.shape[1] and scores.shape[0] >= 2
    off_diagonal = ~np.eye(scores.shape[0], dtype=bool)
    centrality = np.sum(scores * off_diagonal, axis=0) / (scores.shape[0] - 1)
    return CentralityResult(scores=scores, centrality=centrality)
