"""Disentanglement, Completeness and Informativeness (DCI).

Based on Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
Representations" (https://openreview.net/forum?id=By-7dz-AZ), following disentanglement_lib's
definitions (google-research/disentanglement_lib, evaluation/metrics/dci.py): one scikit-learn
`GradientBoostingClassifier` per factor, with its default parameters (100 stages of depth-3
trees), predicts the factor from all codes; its `feature_importances_` (impurity importance) form
column j of an importance matrix R (num_codes, num_factors). Then

- disentanglement: each code's importance spread over factors, 1 - H_{num_factors}(R_i. / sum_j R_ij),
  averaged with weights sum_j R_ij / sum R (a code that predicts one factor scores 1);
- completeness: each factor's importance spread over codes, 1 - H_{num_codes}(R_.j / sum_i R_ij),
  averaged with weights sum_i R_ij / sum R (a factor captured by one code scores 1);
- informativeness_train / _test: mean classification accuracy over factors on the train / test
  points (disentanglement_lib's keys, although the numbers are accuracies, not errors).

On fixed (codes, factors) arrays these agree with disentanglement_lib's `_compute_dci` within
0.01 (tests/analysis/test_metric_reference.py); exact equality is not expected because the
boosters' random feature order (disentanglement_lib leaves `random_state` unset) decides ties,
e.g. which copy of a duplicated code a split uses. Only two guards differ, for inputs on which
disentanglement_lib fails: a single factor or code (entropy base 1) scores entropy 0, and a factor
with one value in the training sample is a one-line error instead of a scikit-learn exception.

Cost: the boosters fit one tree per class per stage, so the time grows with the factors' value
counts; dSprites-like factors (3, 6, 40, 32, 32 values) took ~95 CPU-seconds on 3,000 points and
~310 on 10,000, over a third of it for the 40-value factor. The factors are fitted in parallel
processes (`n_jobs`, default one per factor up to the CPU count), so with five free cores the wall
time is about that largest factor's: processes because the scorer runs metrics under a
one-thread `threadpoolctl` limit, and the booster itself is single-threaded. Each booster has a
fixed `random_state`, so the scores do not depend on `n_jobs`.
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

# scikit-learn's public wrappers of joblib (loky processes by default; joblib itself is not a
# declared dependency of this project).
from sklearn.utils.parallel import Parallel, delayed

from analysis.metrics._sampling import GroundTruthData, RepresentationFn, sample_train_test
from trainables.errors import BadInputError


def compute_dci(
    data: GroundTruthData,
    represent_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    batch_size: int = 256,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """DCI of a representation: `disentanglement`, `completeness`, `informativeness_train/test`.

    `n_jobs`: processes fitting the per-factor boosters (None: one per factor, at most the CPU
    count; 1: in this process). The scores do not depend on it.
    """
    (codes_train, factors_train), (codes_test, factors_test) = sample_train_test(
        data, represent_fn, rng, num_train=num_train, num_test=num_test, batch_size=batch_size
    )
    return _compute_dci(
        codes_train, factors_train, codes_test, factors_test, seed=int(rng.integers(2**31)), n_jobs=n_jobs
    )


def _compute_dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    seed: int,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """codes (num_codes, N), factors (num_factors, N) -> the four DCI scores."""
    importance, train_acc, test_acc = _importance_gbt(
        codes_train, factors_train, codes_test, factors_test, seed=seed, n_jobs=n_jobs
    )
    return {
        "disentanglement": _disentanglement(importance),
        "completeness": _completeness(importance),
        "informativeness_train": train_acc,
        "informativeness_test": test_acc,
    }


def _importance_gbt(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    seed: int,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, float, float]:
    """codes (num_codes, N), factors (num_factors, N) -> (R (num_codes, num_factors), train acc, test acc)."""
    num_codes, num_factors = codes_train.shape[0], factors_train.shape[0]
    assert codes_train.shape[1] == factors_train.shape[1] and codes_test.shape[1] == factors_test.shape[1]
    assert codes_test.shape[0] == num_codes and factors_test.shape[0] == num_factors
    for j in range(num_factors):
        if np.unique(factors_train[j]).size < 2:
            raise BadInputError(
                f"factor {j} takes a single value in the DCI training sample; raise num_train or drop the factor"
            )
    if n_jobs is None:
        n_jobs = min(num_factors, _available_cpus())
    x_train, x_test = codes_train.T, codes_test.T  # (N, num_codes): scikit-learn's layout
    # The slowest factors (most values) first, so they do not start last on a busy pool.
    order = sorted(range(num_factors), key=lambda j: -np.unique(factors_train[j]).size)
    fitted = Parallel(n_jobs=n_jobs)(
        delayed(_fit_factor)(x_train, factors_train[j], x_test, factors_test[j], seed=seed) for j in order
    )
    importance = np.zeros((num_codes, num_factors))
    train_acc, test_acc = np.zeros(num_factors), np.zeros(num_factors)
    for j, (importance_j, train_acc[j], test_acc[j]) in zip(order, fitted):
        importance[:, j] = importance_j
    return importance, float(np.mean(train_acc)), float(np.mean(test_acc))


def _available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _fit_factor(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *, seed: int
) -> tuple[np.ndarray, float, float]:
    """One factor's booster: x (N, num_codes), y (N,) -> (importances (num_codes,), train acc, test acc)."""
    model = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    importance = np.abs(model.feature_importances_)  # sums to 1, or all 0 if no tree split
    train_acc = float(np.mean(model.predict(x_train) == y_train))
    test_acc = float(np.mean(model.predict(x_test) == y_test))
    return importance, train_acc, test_acc


def _disentanglement(importance: np.ndarray) -> float:
    """importance R (num_codes, num_factors) >= 0 -> importance-weighted mean of per-code 1 - H."""
    assert importance.ndim == 2 and (importance >= 0).all()
    per_code = 1.0 - _normalised_entropy(importance, axis=1)  # (num_codes,)
    return float(np.sum(per_code * _weights(importance, axis=1)))


def _completeness(importance: np.ndarray) -> float:
    """importance R (num_codes, num_factors) >= 0 -> importance-weighted mean of per-factor 1 - H."""
    assert importance.ndim == 2 and (importance >= 0).all()
    per_factor = 1.0 - _normalised_entropy(importance, axis=0)  # (num_factors,)
    return float(np.sum(per_factor * _weights(importance, axis=0)))


def _normalised_entropy(importance: np.ndarray, *, axis: int) -> np.ndarray:
    """Entropy along `axis` of the normalised rows/columns, in base axis-length (so in [0, 1]).

    As disentanglement_lib's `scipy.stats.entropy(R + 1e-11, base=...)`: an all-zero row counts
    as uniform (entropy 1). With a single entry along the axis (where disentanglement_lib divides
    by log 1 = 0) there is nothing to spread over: entropy 0.
    """
    size = importance.shape[axis]
    if size == 1:
        return np.zeros(importance.shape[1 - axis])
    p = importance + 1e-11
    p = p / p.sum(axis=axis, keepdims=True)
    return -np.sum(p * np.log(p), axis=axis) / np.log(size)


def _weights(importance: np.ndarray, *, axis: int) -> np.ndarray:
    """Share of total importance per code (axis=1) or per factor (axis=0); uniform if R == 0."""
    if importance.sum() == 0:
        importance = np.ones_like(importance)
    return importance.sum(axis=axis) / importance.sum()
