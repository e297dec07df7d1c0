"""Known answers of the Fréchet distance between Gaussian fits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm

from analysis.metrics import compute_frechet_distance
from analysis.metrics.frechet import _frechet_distance
from trainables.errors import BadInputError


def test_identical_gaussians_are_at_zero() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    sigma = a @ a.T + np.eye(6)
    mu = rng.normal(size=6)
    assert _frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_shifted_gaussians_are_at_the_squared_mean_difference() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 5))
    sigma = a @ a.T
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    assert _frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-6)


def test_diagonal_covariances_match_the_closed_form() -> None:
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)  # (1-2)^2 + (2-1)^2 + 0 = 2
    assert _frechet_distance(np.zeros(3), np.diag(var1), np.zeros(3), np.diag(var2)) == pytest.approx(expected)


def test_general_covariances_match_scipy_sqrtm() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(sqrtm(s1 @ s2)))
    assert _frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-6)


def test_sample_estimate_of_a_shift() -> None:
    rng = np.random.default_rng(3)
    shift = np.array([3.0, 0.0, -4.0])
    real = rng.normal(size=(20_000, 3))
    fake = rng.normal(size=(20_000, 3)) + shift
    assert compute_frechet_distance(real, fake) == pytest.approx(25.0, rel=0.02)


def test_mismatched_features_raise() -> None:
    with pytest.raises(BadInputError, match="same F"):
        compute_frechet_distance(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(BadInputError, match=">= 2 samples"):
        compute_frechet_distance(np.zeros((1, 3)), np.zeros((10, 3)))
