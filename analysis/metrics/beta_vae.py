"""The BetaVAE disentanglement score.

Based on Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a Constrained
Variational Framework" (https://openreview.net/forum?id=Sy2fzU9gl), in disentanglement_lib's
scikit-learn form (evaluation/metrics/beta_vae.py). Each training point draws `batch_size` pairs
of observations whose factors agree on one random factor k and are otherwise independent; its
feature vector is the mean absolute difference of the pairs' codes (num_codes,) and its label is
k. A linear classifier (logistic regression) predicts k; the score is its accuracy on fresh
points. In a disentangled code the fixed factor's code differs by ~0 within pairs, which a linear
classifier reads off. A constant representation gives all-zero features and scores chance,
1 / num_factors (not 0).

Sampling is vectorised: `observations_per_call // (2 * batch_size)` points per call of the
representation function.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from analysis.metrics._sampling import GroundTruthData, RepresentationFn, check_count, represent


def compute_beta_vae(
    data: GroundTruthData,
    represent_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    observations_per_call: int = 4096,
) -> dict[str, float]:
    """BetaVAE score: `train_accuracy`, `eval_accuracy` (the score) of the linear classifier."""
    check_count("batch_size", batch_size)
    check_count("num_train", num_train, minimum=2)
    check_count("num_eval", num_eval)
    check_count("observations_per_call", observations_per_call)
    points_per_call = max(1, observations_per_call // (2 * batch_size))
    train_x, train_y = _sample_points(
        data, represent_fn, rng, num_points=num_train, batch_size=batch_size, points_per_call=points_per_call
    )
    eval_x, eval_y = _sample_points(
        data, represent_fn, rng, num_points=num_eval, batch_size=batch_size, points_per_call=points_per_call
    )
    return _compute_beta_vae(train_x, train_y, eval_x, eval_y, seed=int(rng.integers(2**31)))


def _sample_points(
    data: GroundTruthData,
    represent_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    num_points: int,
    batch_size: int,
    points_per_call: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (num_points, num_codes) and the fixed factor of each (num_points,)."""
    num_factors = data.num_factors
    features, labels = [], []
    for start in range(0, num_points, points_per_call):
        n = min(points_per_call, num_points - start)
        fixed = rng.integers(num_factors, size=n)  # (n,)
        first = np.array(data.sample_factors(n * batch_size, rng), dtype=np.int64).reshape(n, batch_size, -1)
        second = np.array(data.sample_factors(n * batch_size, rng), dtype=np.int64).reshape(n, batch_size, -1)
        rows = np.arange(n)
        second[rows, :, fixed] = first[rows, :, fixed]  # each pair agrees on its point's factor
        both = np.concatenate([first, second]).reshape(-1, num_factors)  # (2 n B, F)
        codes = represent(represent_fn, data.sample_observations_from_factors(both, rng))
        codes = codes.reshape(2, n, batch_size, -1)  # (pair side, point, pair, code)
        features.append(np.mean(np.abs(codes[0] - codes[1]), axis=1))  # (n, D)
        labels.append(fixed)
    return np.concatenate(features), np.concatenate(labels)


def _compute_beta_vae(
    train_x: np.ndarray, train_y: np.ndarray, eval_x: np.ndarray, eval_y: np.ndarray, *, seed: int
) -> dict[str, float]:
    """Features (N, D) with labels (N,) -> accuracies of a logistic regression fit on train."""
    assert train_x.ndim == eval_x.ndim == 2 and train_x.shape[1] == eval_x.shape[1]
    assert train_y.shape == (train_x.shape[0],) and eval_y.shape == (eval_x.shape[0],)
    if np.unique(train_y).size < 2:  # every point fixed the same factor (a single-factor dataset)
        return {"train_accuracy": 1.0, "eval_accuracy": float(np.mean(eval_y == train_y[0]))}
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(train_x, train_y)
    return {
        "train_accuracy": float(model.score(train_x, train_y)),
        "eval_accuracy": float(model.score(eval_x, eval_y)),
    }
