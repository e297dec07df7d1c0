"""ModelCentrality picks the model whose codes agree with the others'.

Toy "models" share a world of three factors with six values each; an image is the world's factor
values as (n, 3, 1, 1). The disentangled model's generator renders its codes as the world and its
encoder reads the world back. Each entangled model has lost a different factor: its generator
ignores that code (the world factor is random) and its encoder outputs a constant for it. Models
that fail fail differently, so they agree with each other less than with the good one.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.metrics import (
    centrality_from_scores,
    centrality_score,
    compute_model_centrality,
    mean_pairwise_nmi,
    sample_centrality_design,
)
from trainables.errors import BadInputError

NUM_VALUES = 6


class ModelData:
    """A model's generator as ground truth: factors are its codes, images its rendered worlds."""

    num_factors = 3
    factors_num_values = [NUM_VALUES] * 3
    observation_shape = (3, 1, 1)

    def __init__(self, lost: int | None) -> None:
        self.lost = lost

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(NUM_VALUES, size=(num, 3))

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        world = np.array(factors, dtype=np.float32)
        if self.lost is not None:  # the generator ignores this code: its world factor is noise
            world[:, self.lost] = rng.integers(NUM_VALUES, size=len(world))
        return world.reshape(-1, 3, 1, 1)


def encoder(lost: int | None):
    def represent(images: np.ndarray) -> np.ndarray:
        codes = images.reshape(len(images), 3).astype(np.float64)
        if lost is not None:
            codes[:, lost] = 0.0  # the encoder cannot read this factor
        return codes

    return represent


def test_centrality_selects_the_disentangled_model() -> None:
    models = [0, None, 1, 2]  # the lost factor of each model; model 1 is disentangled
    result = compute_model_centrality(
        [ModelData(lost) for lost in models],
        [encoder(lost) for lost in models],
        np.random.default_rng(0),
        images_per_value=16,
        num_train=200,
        num_eval=200,
    )
    assert result.scores.shape == (4, 4)
    assert result.scores[1, 1] == 1.0  # the good model reads its own codes perfectly
    assert result.best == 1
    others = np.delete(result.centrality, 1)
    assert result.centrality[1] > others.max() + 0.1


def test_centrality_core_excludes_the_diagonal() -> None:
    scores = np.array([[9.0, 0.2, 0.4], [0.6, 9.0, 0.8], [1.0, 0.0, 9.0]])
    result = centrality_from_scores(scores)
    np.testing.assert_allclose(result.centrality, [0.8, 0.1, 0.6])
    assert result.best == 0
    assert result.mean == pytest.approx(0.5)


def test_mean_pairwise_nmi_flags_the_odd_model_out() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(10, size=1000)
    relabelled = rng.permutation(10)[truth]  # same partition, different code values
    assignments = np.stack([truth, relabelled, truth, rng.integers(10, size=1000)])
    result = mean_pairwise_nmi(assignments)
    assert result.scores[0, 1] == pytest.approx(1.0)
    np.testing.assert_allclose(result.scores, result.scores.T)
    assert result.centrality[3] < 0.1 < 0.6 < result.centrality[:3].min()


def test_mismatched_inputs_raise() -> None:
    with pytest.raises(BadInputError, match=">= 2 models"):
        compute_model_centrality([ModelData(None)], [encoder(None)], np.random.default_rng(0))
    with pytest.raises(BadInputError, match="M >= 2"):
        mean_pairwise_nmi(np.zeros((1, 5), dtype=int))


def test_the_design_fixes_one_factor_value_per_cell_and_draws_the_rest():
    design = sample_centrality_design(ModelData(None), np.random.default_rng(0), images_per_value=8)
    cells = 3 * NUM_VALUES
    assert design.observations.shape == (cells * 8, 3, 1, 1) and design.per_cell == 8
    assert design.cell_factor.tolist() == [k for k in range(3) for _ in range(NUM_VALUES)]
    world = design.observations.reshape(cells, 8, 3)  # (cells, images, factors)
    for c in range(cells):
        k, v = divmod(c, NUM_VALUES)
        assert (world[c, :, k] == v).all()  # the cell's factor is fixed at its value
        assert all(len(np.unique(world[c, :, f])) > 1 for f in range(3) if f != k)  # the others vary


def test_a_perfect_encoder_scores_one_and_a_constant_one_zero():
    design = sample_centrality_design(ModelData(None), np.random.default_rng(1), images_per_value=16)
    codes = design.observations.reshape(len(design.observations), 3).astype(np.float64)
    assert centrality_score(codes, design, np.random.default_rng(0)) == 1.0
    assert centrality_score(np.zeros_like(codes), design, np.random.default_rng(0)) == 0.0
    with pytest.raises(BadInputError, match="exceeds half a design cell"):
        centrality_score(codes, design, np.random.default_rng(0), batch_size=9)


def test_identical_models_tie_exactly():
    """Common random numbers: every generator renders from the same draws and every pair votes on
    the same batches, so copies of one model get the same centrality to the last digit."""
    result = compute_model_centrality([ModelData(0)] * 3, [encoder(0)] * 3, np.random.default_rng(0))
    assert result.centrality[0] == result.centrality[1] == result.centrality[2]
