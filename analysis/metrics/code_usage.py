"""How Q uses a categorical code on real images: balance, confidence, and both as mutual information.

Label-free signals for choosing among trained InfoGANs (`analysis.selection`). InfoGAN's prior on
a categorical code is uniform over its K values (Chen et al. 2016,
https://arxiv.org/abs/1606.03657), so G draws every category equally often. When each category
has found one value of a factor whose values are about equally frequent in the data (MNIST's ten
digits hold 9-11% of the images each), Q assigns real images evenly too; when two values share a
category, that category holds twice its share and another value is split between two categories.

- `balance` = H(p) / ln K, where p (K,) is the share of the images whose most likely category is
  each category: 1 when Q spreads the images evenly, 0 when it puts them all in one category.
- `confidence` = the mean over images of max_k q(k | x): 1 when Q is sure of every image, 1/K
  when it cannot tell the categories apart.
- `info` = [H(mean_x q(. | x)) - mean_x H(q(. | x))] / ln K: the mutual information between the
  image and Q's category, over ln K, which is high only when Q is both balanced and confident
  (the RIM clustering criterion: Krause, Perona and Gomes 2010, "Discriminative Clustering by
  Regularized Information Maximization", https://papers.nips.cc/paper/4154; Hu et al. 2017, IMSAT,
  https://arxiv.org/abs/1702.08720).
"""

from __future__ import annotations

import math

import numpy as np

from trainables.errors import BadInputError


def compute_code_usage(probabilities: np.ndarray) -> dict[str, float]:
    """`balance`, `confidence` and `info` of Q's distributions over one code's K values,
    probabilities (n, K) (rows sum to 1), for n real images."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0 or probabilities.shape[1] < 2:
        raise BadInputError(
            f"probabilities {probabilities.shape} must be (n, K) with n >= 1 images and K >= 2 categories"
        )
    return _compute_code_usage(probabilities)


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats along the last axis (0 log 0 = 0)."""
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def _compute_code_usage(probabilities: np.ndarray) -> dict[str, float]:
    """probabilities (n, K) -> the three scores, each in [0, 1]."""
    n, k = probabilities.shape
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4), "each row must be a distribution"
    shares = np.bincount(probabilities.argmax(axis=1), minlength=k) / n  # (K,)
    log_k = math.log(k)
    info = (_entropy(probabilities.mean(axis=0)) - _entropy(probabilities).mean()) / log_k
    return {
        "balance": float(_entropy(shares) / log_k),
        "confidence": float(probabilities.max(axis=1).mean()),
        "info": float(np.clip(info, 0.0, 1.0)),
    }
