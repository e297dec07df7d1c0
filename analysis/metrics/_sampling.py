"""The ground-truth interface the metrics sample from, and the shared sampling helpers.

The interface is disentanglement_lib's (google-research/disentanglement_lib,
data/ground_truth/ground_truth_data.py), reduced to what the metrics call: a dataset knows its
discrete factors of variation and renders observations for any factor values; a representation is
any callable from observations to codes. All randomness goes through an explicit
`np.random.Generator`, so a metric is a pure function of its seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from trainables.errors import BadInputError

# observations (num, C, H, W) float32 -> codes (num, num_codes)
RepresentationFn = Callable[[np.ndarray], np.ndarray]


class GroundTruthData(Protocol):
    """A dataset with known discrete factors of variation (trainables.data.GroundTruthData)."""

    @property
    def num_factors(self) -> int: ...

    @property
    def factors_num_values(self) -> list[int]: ...

    @property
    def observation_shape(self) -> tuple[int, int, int]: ...

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        """(num, num_factors) int64 factor values, factor j in [0, factors_num_values[j])."""
        ...

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """factors (num, num_factors) -> observations (num, C, H, W) float32."""
        ...


def check_count(name: str, value: int, *, minimum: int = 1) -> None:
    """Refuse a sample count the metric cannot work with, naming the option and the fix."""
    if value < minimum:
        raise BadInputError(f"{name}={value} is too small; pass {name} >= {minimum}")


def represent(represent_fn: RepresentationFn, observations: np.ndarray) -> np.ndarray:
    """Codes of observations (num, C, H, W) as float64 (num, num_codes), checking shape and values."""
    codes = np.asarray(represent_fn(observations), dtype=np.float64)
    num = observations.shape[0]
    if codes.ndim != 2 or codes.shape[0] != num:
        raise BadInputError(
            f"the representation function returned shape {codes.shape} for {num} observations; "
            f"it must return ({num}, num_codes)"
        )
    if not np.isfinite(codes).all():
        raise BadInputError("the representation function returned NaN/inf codes; score a model that did not diverge")
    return codes


def sample_codes_and_factors(
    data: GroundTruthData,
    represent_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    num_points: int,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """i.i.d. points: codes (num_codes, num_points) and their factors (num_factors, num_points).

    Codes and factors are transposed (one row per code/factor), the layout of disentanglement_lib's
    `generate_batch_factor_code`, so the cores index one code or factor as a contiguous row.
    Observations are rendered `batch_size` at a time to bound memory.
    """
    check_count("num_points", num_points)
    check_count("batch_size", batch_size)
    codes, factors = [], []
    for start in range(0, num_points, batch_size):
        num = min(batch_size, num_points - start)
        batch_factors = data.sample_factors(num, rng)  # (num, num_factors)
        observations = data.sample_observations_from_factors(batch_factors, rng)  # (num, C, H, W)
        codes.append(represent(represent_fn, observations))
        factors.append(np.asarray(batch_factors, dtype=np.int64))
    return np.concatenate(codes).T, np.concatenate(factors).T


def sample_train_test(
    data: GroundTruthData,
    represent_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    num_train: int,
    num_test: int,
    batch_size: int,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Independent train and test draws of `sample_codes_and_factors` (for the classifier-based
    metrics, DCI and SAP): ((codes, factors) train, (codes, factors) test)."""
    check_count("num_train", num_train, minimum=2)
    check_count("num_test", num_test)
    train = sample_codes_and_factors(data, represent_fn, rng, num_points=num_train, batch_size=batch_size)
    test = sample_codes_and_factors(data, represent_fn, rng, num_points=num_test, batch_size=batch_size)
    return train, test
