"""Generator-side disentanglement: known answers with hand-built generators on basicprop-line, read
off exactly by the template evaluator, and a model whose Q is perfect on real images but whose G
ignores its code (it must score chance, however well Q reads real lines)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from analysis.evaluators import TemplateReader, reader_accuracy
from analysis.metrics import compute_generator_scores, image_moments
from analysis.metrics.generator_codes import _compute_categorical_scores, _compute_continuous_scores, _row_spearman
from analysis.scoring import QUICK, score_model
from trainables.config import InfoGANConfig
from trainables.data import load_data
from trainables.models import Codes, InfoGAN
from trainables.procedural import BasicPropLine, BasicPropRects

K = 10
LINE = BasicPropLine(noise=True)


def line_images(positions: np.ndarray, *, brightness: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Line images (n, 1, 28, 28) in [0, 1] at `positions` (n,): the noise trick's, or clean lines of
    the given `brightness` (n,) on black."""
    if brightness is None:
        return LINE.sample_observations_from_factors(positions[:, None], np.random.default_rng(seed))
    mask = LINE.render(torch.from_numpy(positions[:, None])).numpy()
    return (mask * brightness[:, None, None, None]).astype(np.float32)


def traverse_with(render):
    """A TraverseFn from render(code, value (V,), row latents (R,)) -> images (R, V, 1, 28, 28)."""

    def traverse(code, values, rows, rng):
        row_latents = rng.integers(0, K, size=rows)  # stands in for the noise z and the other codes
        return render(code, np.asarray(values), row_latents)

    return traverse


def scores_of(render, *, n_cont: int = 2, rows: int = 60) -> dict[str, float]:
    reader = TemplateReader(LINE)
    return compute_generator_scores(traverse_with(render), reader, np.random.default_rng(0), n_cat_codes=1,
                                    cat_dim=K, n_cont_codes=n_cont, num_rows=rows)  # fmt: skip


def faithful(code, values, row_latents):
    """cat0 decides the line's position; cont0 its brightness; cont1 nothing; noise z nothing."""
    rows, v = len(row_latents), len(values)
    if code == "cat0":
        positions = np.tile(values, rows)
        return line_images(positions).reshape(rows, v, 1, 28, 28)
    positions = np.repeat(row_latents, v)  # the row's (fixed) categorical code
    brightness = np.tile(0.8 + 0.2 * values if code == "cont0" else np.ones(v), rows)  # in [0.6, 1]
    return line_images(positions, brightness=brightness).reshape(rows, v, 1, 28, 28)


def ignores_code(code, values, row_latents):
    """The line's position comes from the noise only: every image of a row is the same."""
    once = line_images(row_latents)[:, None]  # (R, 1, 1, 28, 28): one image per row
    return np.repeat(once, len(values), axis=1)


def noise(code, values, row_latents):
    rng = np.random.default_rng(len(values))
    return rng.uniform(0, 1, size=(len(row_latents), len(values), 1, 28, 28)).astype(np.float32)


def test_a_generator_that_renders_the_factor_from_the_code_scores_one():
    scores = scores_of(faithful)
    assert scores["cat_acc"] == 1.0 and scores["cat_nmi"] == pytest.approx(1.0)
    assert scores["valid"] == 1.0
    # cont0 moves the ink monotonically in every row (|rho| = 1); cont1 moves nothing (0)
    assert scores["cont_effect"] == pytest.approx(0.5) and scores["cont_gap"] == pytest.approx(0.5)


def test_a_generator_that_ignores_its_code_scores_exactly_one_over_k():
    scores = scores_of(ignores_code)
    assert scores["cat_acc"] == pytest.approx(1 / K) and scores["cat_nmi"] == pytest.approx(0.0, abs=1e-9)
    assert scores["valid"] == 1.0 and scores["cont_effect"] == 0.0 and scores["cont_gap"] == 0.0


def test_a_generator_of_noise_scores_at_most_chance():
    scores = scores_of(noise)
    assert scores["valid"] == 0.0
    assert scores["cat_acc"] <= 1 / K  # unreadable images are never a match: here exactly 0
    assert scores["cat_nmi"] == pytest.approx(0.0, abs=1e-9)


def test_categorical_core_takes_the_best_factor_and_counts_unreadable_images_as_wrong():
    codes = np.tile(np.arange(4), (5, 1))  # (R=5, K=4)
    decided = codes.copy()  # factor 0 follows the code
    constant = np.zeros_like(codes)  # factor 1 never changes
    readings = np.stack([decided, constant], axis=-1)  # (5, 4, 2)
    assert _compute_categorical_scores(codes, readings)["accuracy"] == 1.0
    readings[0, :, 0] = -1  # one row unreadable: 16 of 20 images can match
    assert _compute_categorical_scores(codes, readings)["accuracy"] == pytest.approx(16 / 20)


def test_continuous_core_gap_separates_two_codes_from_one_shared_attribute():
    grid = np.linspace(-1, 1, 7)
    rows = np.ones((30, 1))
    own = np.stack([grid * rows, np.full((30, 7), 0.3)], axis=-1)  # (R, V, A=2): attribute 0 moves, 1 stays
    separate = np.stack([own, -own[..., ::-1]])  # (n_cont=2, R, V, A): code 1 moves attribute 1 (down)
    assert _compute_continuous_scores(grid, separate) == pytest.approx({"cont_effect": 1.0, "cont_gap": 1.0})
    shared = np.stack([own, own])  # both codes move attribute 0 the same way
    assert _compute_continuous_scores(grid, shared) == pytest.approx({"cont_effect": 1.0, "cont_gap": 0.0})
    flips = np.concatenate([own[:15], -own[15:]])  # half the rows go up, half down: no consistent effect
    assert _compute_continuous_scores(grid, np.stack([flips, flips]))["cont_effect"] == pytest.approx(0.0)


def test_row_spearman_is_scipys_spearman_row_by_row_with_missing_values_left_out():
    """The vectorised core against scipy's spearmanr on each row's measurable values: ties, NaNs
    (a row with fewer than 3 values, or a constant one, is NaN), a grid in any order."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    grid = rng.permutation(np.linspace(-1, 1, 9))
    attributes = np.round(rng.normal(size=(2, 40, 9, 4)), 1)  # (n_cont, R, V, A) with ties
    attributes[..., 3] = 0.5  # a constant attribute
    attributes[rng.random(attributes.shape) < 0.3] = np.nan
    attributes[0, 0, 2:, 0] = np.nan  # two values left: not measurable
    rho = _row_spearman(grid, attributes)  # (n_cont, R, A)
    assert rho.shape == (2, 40, 4) and np.isnan(rho[0, 0, 0]) and np.isnan(rho[..., 3]).all()
    for index in np.ndindex(rho.shape):
        y = attributes[index[0], index[1], :, index[2]]
        keep = np.isfinite(y)
        if keep.sum() >= 3 and np.ptp(y[keep]) > 0:
            assert rho[index] == pytest.approx(spearmanr(grid[keep], y[keep]).statistic, abs=1e-12)


def test_image_moments_of_a_line_and_of_an_empty_image():
    images = line_images(np.array([0, 9]), brightness=np.ones(2))
    moments = image_moments(images)  # (2, 6)
    assert moments[0, 1] < 0.15 and moments[1, 1] > 0.85  # ink centroid x follows the position
    assert moments[0, 2] == pytest.approx(0.5, abs=0.05)  # a full-height line is centred vertically
    assert np.isnan(image_moments(np.zeros((1, 1, 28, 28)))).all()


@pytest.mark.parametrize("data", [BasicPropLine(noise=True), BasicPropLine(), BasicPropRects(noise=True)])
def test_template_reader_reads_real_procedural_images_exactly(data):
    factors, images = data.sample(500, np.random.default_rng(3))
    assert reader_accuracy(TemplateReader(data), images, factors) == 1.0
    assert (TemplateReader(data).read(np.zeros((3, 1, 28, 28))) == -1).all()  # a blank image shows no line


# ---------------------------------------------------------------------------------- through score_model
class LineFromNoise(nn.Module):
    """G whose line position is a function of z only: it ignores the code entirely."""

    def __init__(self, noise_dim: int) -> None:
        super().__init__()
        self.noise_dim = noise_dim

    def forward(self, latent_vec: torch.Tensor) -> torch.Tensor:
        z = latent_vec[:, : self.noise_dim]
        positions = (torch.sigmoid(z[:, 0]) * K).long().clamp(0, K - 1)
        return LINE.render(positions[:, None]).float() * 2 - 1  # (n, 1, 28, 28) in [-1, 1]


class OracleQ(InfoGAN):
    """Q reads the position of a real line perfectly (from the image's brightest column band)."""

    def encode(self, x: torch.Tensor) -> Codes:
        columns = x.mean(dim=(1, 2))  # (n, 28)
        bands = torch.stack([columns[:, left : left + LINE.width].mean(1) for left in LINE.left.tolist()], dim=1)
        n = x.shape[0]
        logits = (bands * 100).reshape(n, 1, K)
        return Codes(logits, torch.zeros(n, self.config.n_cont_codes), torch.zeros(n, self.config.n_cont_codes))


def test_a_perfect_q_on_real_images_does_not_rescue_a_generator_that_ignores_its_code():
    config = InfoGANConfig(dataset="basicprop-line", basicprop_noise=True, width=0.125)
    data = load_data(config)
    model = OracleQ(config, data.image_shape).eval()
    model.generator = LineFromNoise(config.noise_dim)
    out = score_model(model, data, QUICK, classifier=None, reader=TemplateReader(data.ground_truth), seed=0)
    assert out.notes == []
    assert out.scores["q/real_hungarian_acc"] == 1.0  # Q clusters the real held-out lines perfectly
    assert out.scores["gen/valid"] == 1.0 and out.scores["gen/reader_acc"] == 1.0
    assert out.scores["gen/cat_acc"] == pytest.approx(1 / K)  # yet the code decides nothing in G's images
    assert out.scores["score/disentanglement"] == out.scores["gen/cat_acc"]
