"""Generator-side disentanglement: what G does with each of its codes, read off G's own images.

InfoGAN (Chen et al. 2016, https://arxiv.org/abs/1606.03657) shows disentanglement by latent
traversals: keep the noise fixed, vary one code, and look at the images (Fig. 2). Scoring Q's
code on real images instead (Sec. 7.1) measures the auxiliary network, not the generator: with
lambda = 0 the generator ignores its code, yet Q on D's trunk can still split real images. This
module scores the traversals themselves, with an evaluator independent of the model's D, Q and E
(`analysis.evaluators`: an exact read-off for procedural data, a classifier for labelled data).

Protocol: `num_rows` latents (noise and the other codes) are drawn; in each row one code takes
every value of a sweep (a categorical code its K values, a continuous code an even grid on
[-1, 1], the training range), so each row is a traversal with everything else fixed.

- categorical code: Hungarian accuracy (the paper's "5% error" protocol, applied to the generated
  images) and NMI between the code value and each factor the evaluator reads; a code scores its
  best factor, and the model the mean over its codes. An unreadable image (reading -1) counts as
  wrong and is its own cluster for NMI, so a generator of noise scores at most chance. A generator
  that ignores its code draws the same image across a row: accuracy exactly 1/K, NMI 0.
- continuous code: along every row, Spearman's rank correlation of the code value with each
  attribute of the images (the factors read off, and image moments: ink, centroid, spread, slant);
  |mean over rows| (a code must move the attribute the same way everywhere). `cont_effect`: each
  code's strongest attribute, averaged over codes; `cont_gap` (MIG-style, Chen et al. 2018,
  https://arxiv.org/abs/1802.04942): that attribute's correlation minus the largest other code's
  on the same attribute, averaged over codes.

Layers, as disentanglement_lib's: `compute_generator_scores` samples the traversals and reads them;
the pure-numpy cores `_compute_categorical_scores(codes, readings)` and
`_compute_continuous_scores(grid, attributes)` (shapes stated and asserted) do the arithmetic and
are what the known-answer tests check, importing them directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import normalized_mutual_info_score

from analysis.metrics.clustering import contingency_table, hungarian_accuracy
from trainables.errors import BadInputError

UNREADABLE = -1
MOMENT_NAMES = ("ink", "centre_x", "centre_y", "width", "height", "slant")

# traverse(code, values (V,), num_rows, rng) -> images (num_rows, V, C, H, W) float in [0, 1];
# code is 'cat<i>' or 'cont<i>'; every row keeps its noise and other codes across the V values.
TraverseFn = Callable[[str, np.ndarray, int, np.random.Generator], np.ndarray]


class FactorReader(Protocol):
    """An evaluator that reads factors of variation off images, independent of the model scored."""

    factor_names: list[str]
    factors_num_values: list[int]

    def read(self, images: np.ndarray) -> np.ndarray:
        """images (n, C, H, W) float in [0, 1] -> factor values (n, num_factors) int64, -1 = unreadable."""
        ...


def compute_generator_scores(
    traverse: TraverseFn,
    reader: FactorReader,
    random_state: np.random.Generator,
    *,
    n_cat_codes: int,
    cat_dim: int,
    n_cont_codes: int,
    num_rows: int = 100,
    num_cont_values: int = 10,
) -> dict[str, float]:
    """Generator-side scores of one model (see the module docstring). Returns `cat_acc`, `cat_nmi`
    (NaN without categorical codes), `cont_effect`, `cont_gap` (NaN without continuous codes) and
    `valid` (the fraction of traversal images the reader could read)."""
    if num_rows < 2 or num_cont_values < 3:
        raise BadInputError(f"num_rows={num_rows}, num_cont_values={num_cont_values}: need >= 2 rows and >= 3 values")
    readable: list[float] = []
    cat_acc, cat_nmi = [], []
    for i in range(n_cat_codes):
        values = np.arange(cat_dim)
        readings = _read_rows(reader, traverse(f"cat{i}", values, num_rows, random_state))  # (R, K, F)
        readable.append(float(np.mean(readings >= 0)))
        scores = _compute_categorical_scores(np.broadcast_to(values, readings.shape[:2]), readings)
        cat_acc.append(scores["accuracy"])
        cat_nmi.append(scores["nmi"])
    attributes = []
    grid = np.linspace(-1.0, 1.0, num_cont_values)
    for i in range(n_cont_codes):
        images = traverse(f"cont{i}", grid, num_rows, random_state)  # (R, V, C, H, W)
        readings = _read_rows(reader, images)  # (R, V, F)
        readable.append(float(np.mean(readings >= 0)))
        factors = np.where(readings >= 0, readings, np.nan)
        attributes.append(np.concatenate([factors, image_moments(images)], axis=-1))  # (R, V, F + 6)
    out = {
        "cat_acc": float(np.mean(cat_acc)) if cat_acc else np.nan,
        "cat_nmi": float(np.mean(cat_nmi)) if cat_nmi else np.nan,
        "cont_effect": np.nan,
        "cont_gap": np.nan,
        "valid": float(np.mean(readable)) if readable else np.nan,
    }
    if attributes:
        out.update(_compute_continuous_scores(grid, np.stack(attributes)))
    return out


def _read_rows(reader: FactorReader, images: np.ndarray) -> np.ndarray:
    """images (R, V, C, H, W) -> readings (R, V, F)."""
    rows, values = images.shape[:2]
    return reader.read(images.reshape(rows * values, *images.shape[2:])).reshape(rows, values, -1)


def _compute_categorical_scores(codes: np.ndarray, readings: np.ndarray) -> dict[str, float]:
    """codes (R, K) the code value of each image, readings (R, K, F) the factors read off it (-1:
    unreadable) -> the best factor's Hungarian accuracy and NMI (each maximised over factors)."""
    assert codes.ndim == 2 and readings.ndim == 3 and readings.shape[:2] == codes.shape
    code = codes.reshape(-1)
    accuracy, nmi = 0.0, 0.0
    for f in range(readings.shape[2]):
        read = readings[:, :, f].reshape(-1)
        contingency = contingency_table(code, read)  # (K, classes read, -1 first if present)
        if (read == UNREADABLE).any():
            contingency = contingency[:, 1:]  # an unreadable image is never a match
        matched = hungarian_accuracy(contingency) * contingency.sum() / code.size if contingency.size else 0.0
        accuracy = max(accuracy, matched)
        nmi = max(nmi, float(normalized_mutual_info_score(code, read)))
    return {"accuracy": float(accuracy), "nmi": nmi}


def _compute_continuous_scores(grid: np.ndarray, attributes: np.ndarray) -> dict[str, float]:
    """grid (V,) code values; attributes (n_cont, R, V, A) of the images of each code's traversals
    (NaN: not measurable) -> `cont_effect` and `cont_gap`."""
    assert attributes.ndim == 4 and attributes.shape[2] == grid.shape[0]
    rho = _row_spearman(grid, attributes)  # (n_cont, R, A)
    measured = np.isfinite(rho).sum(axis=1)  # (n_cont, A) rows where the attribute could be correlated
    rho = np.abs(np.nansum(rho, axis=1) / np.maximum(measured, 1))  # |mean over rows|; 0 where never measured
    best = rho.argmax(axis=1)  # (n_cont,) each code's strongest attribute
    effect = rho[np.arange(len(rho)), best]
    # each code's strongest effect on any other attribute (none to compare with: 0)
    others = np.array([np.delete(rho[:, a], c).max() for c, a in enumerate(best)]) if len(rho) > 1 else np.zeros(1)
    gap = np.maximum(effect - others, 0.0)  # a code that moves nothing has no gap, not a negative one
    return {"cont_effect": float(effect.mean()), "cont_gap": float(gap.mean())}


def _row_spearman(grid: np.ndarray, attributes: np.ndarray) -> np.ndarray:
    """Spearman's rho of grid (V,) with attributes (..., V, A) along V -> (..., A); NaN where an
    attribute is constant or has fewer than 3 measurable values in a row."""
    values = np.moveaxis(attributes, -1, -2)  # (..., A, V)
    out = np.full(values.shape[:-1], np.nan)
    flat, rho = values.reshape(-1, values.shape[-1]), out.reshape(-1)  # (N, V), (N,): views
    keep = np.isfinite(flat)  # (N, V)
    # Rows with the same measurable values share one pass: each row's arithmetic is that of a row on
    # its own (the same values in the same order), only done for many rows at once.
    patterns, which = np.unique(keep, axis=0, return_inverse=True)
    for p, pattern in enumerate(patterns):
        if pattern.sum() < 3:
            continue
        rows = np.flatnonzero(which.reshape(-1) == p)
        ry, rx = rankdata(flat[np.ix_(rows, pattern)], axis=-1), rankdata(grid[pattern])  # (n, k), (k,)
        ry, rx = ry - ry.mean(axis=-1, keepdims=True), rx - rx.mean()
        denom = np.sqrt((ry**2).sum(axis=-1) * (rx**2).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            rho[rows] = np.where(denom > 0, (ry * rx).sum(axis=-1) / denom, np.nan)
    return out


def image_moments(images: np.ndarray) -> np.ndarray:
    """Attributes of images (..., C, H, W) in [0, 1] -> (..., 6): mean ink, ink centroid x and y
    (fractions of the side), horizontal and vertical spread (std of the ink, fractions of the side)
    and slant (the ink's x-y covariance over its y variance: the shear of a stroke). NaN for an
    image without ink."""
    grey = images.mean(axis=-3)  # (..., H, W)
    h, w = grey.shape[-2:]
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    mass = grey.sum(axis=(-2, -1))  # (...,)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (grey * xs).sum(axis=(-2, -1)) / mass
        cy = (grey * ys[:, None]).sum(axis=(-2, -1)) / mass
        dx = xs - cx[..., None, None]
        dy = ys[:, None] - cy[..., None, None]
        var_x = (grey * dx**2).sum(axis=(-2, -1)) / mass
        var_y = (grey * dy**2).sum(axis=(-2, -1)) / mass
        cov = (grey * dx * dy).sum(axis=(-2, -1)) / mass
        slant = cov / var_y
    moments = np.stack([grey.mean(axis=(-2, -1)), cx, cy, np.sqrt(var_x), np.sqrt(var_y), slant], axis=-1)
    return np.where((mass > 0)[..., None], moments, np.nan)
