"""ModelCentrality: unsupervised selection of the most disentangled of M trained models.

Based on Lin et al. 2020, "InfoGAN-CR and ModelCentrality: Self-supervised Model Training and
Selection for Disentangling GANs" (https://arxiv.org/abs/1906.06034), Sec. 5. Without ground
truth, each trained generator serves as ground truth for the others: its latent codes are the
factors and its images the observations. S[i, j] is the FactorVAE score of model j's encoder Q_j
on model i's generator data; a model whose codes agree with many others' is likely the
disentangled one (entangled models disagree with each other in different ways), so

    centrality_j = mean over i != j of S[i, j]

(the diagonal, a model scored on its own data, is computed but left out). The caller builds the
generator datasets (`GroundTruthData` whose factors are model i's discrete(-ised) codes and whose
observations are G_i's images, noise resampled per image) and the representation functions.
FactorVAE's samples of one generator are shared by all M encoders (`compute_factor_vae_many`).

Sample counts default below the FactorVAE protocol (2k + 1k votes, 5k points for the variances):
the matrix needs M^2 scores and only their ranking matters. `mean_pairwise_nmi` is the cheap
cousin for categorical codes: the NMI between two models' code assignments of the same real
images, in the same matrix/centrality form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from analysis.metrics._sampling import GroundTruthData, RepresentationFn
from analysis.metrics.factor_vae import compute_factor_vae_many
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


def compute_model_centrality(
    datasets: Sequence[GroundTruthData],
    represent_fns: Sequence[RepresentationFn],
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 2_000,
    num_eval: int = 1_000,
    num_variance_estimate: int = 5_000,
    prune_threshold: float = 0.05,
    observations_per_call: int = 4096,
) -> CentralityResult:
    """S[i, j] = FactorVAE eval accuracy of represent_fns[j] on datasets[i]; centrality per model."""
    if len(datasets) != len(represent_fns) or len(datasets) < 2:
        raise BadInputError(
            f"ModelCentrality needs one representation per generator dataset and >= 2 models; "
            f"got {len(datasets)} datasets and {len(represent_fns)} representations"
        )
    scores = np.zeros((len(datasets), len(represent_fns)))
    for i, data in enumerate(datasets):
        per_model = compute_factor_vae_many(
            data,
            represent_fns,
            rng,
            batch_size=batch_size,
            num_train=num_train,
            num_eval=num_eval,
            num_variance_estimate=num_variance_estimate,
            prune_threshold=prune_threshold,
            observations_per_call=observations_per_call,
        )
        scores[i] = [result["eval_accuracy"] for result in per_model]
    return _centrality(scores)


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
    return _centrality(scores)


def _centrality(scores: np.ndarray) -> CentralityResult:
    """scores (M, M) -> centrality (M,): column means without the diagonal."""
    assert scores.ndim == 2 and scores.shape[0] == scores.shape[1] and scores.shape[0] >= 2
    off_diagonal = ~np.eye(scores.shape[0], dtype=bool)
    centrality = np.sum(scores * off_diagonal, axis=0) / (scores.shape[0] - 1)
    return CentralityResult(scores=scores, centrality=centrality)
