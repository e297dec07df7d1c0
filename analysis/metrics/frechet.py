"""Fréchet distance between Gaussian fits of two feature sets.

Based on Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
Nash Equilibrium" (https://arxiv.org/abs/1706.08500): fit a Gaussian (mean, covariance) to the
features of real and of generated images; their squared 2-Wasserstein (Fréchet) distance is

    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}).

FID is this distance in Inception-v3 pool features; `quality.py` uses the same core in the feature
space of a small classifier the project trains itself. tr((S1 S2)^{1/2}) is computed as the sum of
square roots of the eigenvalues of S1^{1/2} S2 S1^{1/2}, a symmetric PSD matrix with the same
eigenvalues as S1 S2, so the result is real without `sqrtm`'s complex round-off.
"""

from __future__ import annotations

import numpy as np

from trainables.errors import BadInputError


def compute_frechet_distance(features_real: np.ndarray, features_fake: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of features_real (N, F) and features_fake (M, F)."""
    real = np.asarray(features_real, dtype=np.float64)
    fake = np.asarray(features_fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise BadInputError(f"feature sets {real.shape} and {fake.shape} must be (N, F) and (M, F) with the same F")
    if min(real.shape[0], fake.shape[0]) < 2:
        raise BadInputError(
            f"feature sets of {real.shape[0]} and {fake.shape[0]} rows: a covariance needs >= 2 samples each"
        )
    return _frechet_distance(
        real.mean(axis=0), np.cov(real, rowvar=False), fake.mean(axis=0), np.cov(fake, rowvar=False)
    )


def _frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet distance of N(mu1 (F,), sigma1 (F, F)) and N(mu2 (F,), sigma2 (F, F))."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    num_features = mu1.shape[0]
    assert mu1.shape == mu2.shape == (num_features,)
    assert sigma1.shape == sigma2.shape == (num_features, num_features)
    root1 = _psd_sqrt(sigma1)
    cross = np.linalg.eigvalsh(root1 @ sigma2 @ root1)  # eigenvalues of S1 S2, >= 0 up to round-off
    trace_sqrt = np.sum(np.sqrt(np.clip(cross, 0.0, None)))
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (F, F); negative round-off eigenvalues become 0."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
