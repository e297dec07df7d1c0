"""Mutual Information Gap (MIG).

Based on Chen et al. 2018, "Isolating Sources of Disentanglement in Variational Autoencoders"
(https://arxiv.org/abs/1802.04942), in disentanglement_lib's discrete form
(evaluation/metrics/mig.py): each code is discretised into a 20-bin histogram, the mutual
information I(code_i; factor_j) is estimated from counts (sklearn's `mutual_info_score`, nats),
and for each factor the gap between its most and second most informative codes is divided by the
factor's entropy H(factor_j). MIG is the mean over factors: 1 when every factor is captured by
exactly one code, 0 when no code knows it or when two codes know it equally (duplicated latents).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import mutual_info_score

from analysis.metrics._sampling import GroundTruthData, RepresentationFn, check_count, sample_codes_and_factors


def compute_mig(
    data: GroundTruthData,
    represent_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_bins: int = 20,
    batch_size: int = 256,
) -> dict[str, float]:
    """MIG of a representation on `num_train` i.i.d. samples of a ground-truth dataset.

    Returns `mig` (mean over factors with nonzero entropy; NaN if every factor is constant in
    the sample).
    """
    check_count("num_train", num_train, minimum=2)
    check_count("num_bins", num_bins, minimum=2)
    codes, factors = sample_codes_and_factors(data, represent_fn, rng, num_points=num_train, batch_size=batch_size)
    return _compute_mig(codes, factors, num_bins=num_bins)


def _compute_mig(codes: np.ndarray, factors: np.ndarray, *, num_bins: int) -> dict[str, float]:
    """codes (num_codes, N) float, factors (num_factors, N) int -> {"mig"}."""
    assert codes.ndim == 2 and factors.ndim == 2 and codes.shape[1] == factors.shape[1]
    mutual_info = _discrete_mutual_info(_histogram_discretize(codes, num_bins=num_bins), factors)
    entropy = np.array([mutual_info_score(f, f) for f in factors])  # (num_factors,) nats
    # With a single code the runner-up knows nothing: pad a zero row so the gap is its full MI.
    padded = np.vstack([mutual_info, np.zeros((1, mutual_info.shape[1]))])
    top_two = -np.sort(-padded, axis=0)[:2]  # (2, num_factors), descending
    informative = entropy > 0
    if not informative.any():
        return {"mig": float("nan")}
    gaps = (top_two[0] - top_two[1])[informative] / entropy[informative]
    return {"mig": float(np.mean(gaps))}


def _histogram_discretize(codes: np.ndarray, *, num_bins: int) -> np.ndarray:
    """codes (num_codes, N) float -> bin ids (num_codes, N) int in [1, num_bins], per-code bins."""
    assert codes.ndim == 2
    binned = np.empty(codes.shape, dtype=np.int64)
    for i, code in enumerate(codes):
        edges = np.histogram_bin_edges(code, bins=num_bins)
        binned[i] = np.digitize(code, edges[:-1])
    return binned


def _discrete_mutual_info(binned: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """binned (num_codes, N), factors (num_factors, N) -> I(code_i; factor_j) (num_codes, num_factors), nats."""
    assert binned.shape[1] == factors.shape[1]
    return np.array([[mutual_info_score(factor, code) for factor in factors] for code in binned])
