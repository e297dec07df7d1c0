"""Clustering scores of a categorical code against true class labels.

InfoGAN (Chen et al. 2016, https://arxiv.org/abs/1606.03657, Sec. 7.1) reports that its
10-way categorical code classifies MNIST digits with 5% error: each code value is matched to one
digit and the error is counted under the best one-to-one matching. This module computes that
Hungarian accuracy (1 - error) by a rectangular assignment (scipy's `linear_sum_assignment`), so
it is defined when the number of clusters K differs from the number of classes: only min(K, C)
pairs are matched and every point of an unmatched cluster counts as an error. Next to it, three
scores that do not require a one-to-one matching:

- many-to-one accuracy: each cluster predicts its majority class (so K > C clusters that split
  classes still score 1; it rewards over-clustering, which the Hungarian accuracy penalises);
- NMI (sklearn's `normalized_mutual_info_score`, arithmetic normalisation) and ARI
  (`adjusted_rand_score`, 0 for random labels), both invariant to relabelling.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from trainables.errors import BadInputError


def compute_clustering_scores(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Score predicted cluster ids (N,) against true labels (N,); any integer ids are allowed.

    Returns `hungarian_accuracy` (InfoGAN's 1 - error), `many_to_one_accuracy`, `nmi`, `ari`,
    all in [0, 1] except ARI (in [-0.5, 1], ~0 for chance), and `num_clusters`/`num_classes`.
    """
    predicted = np.asarray(predicted)
    labels = np.asarray(labels)
    if predicted.ndim != 1 or predicted.shape != labels.shape or predicted.size == 0:
        raise BadInputError(
            f"cluster ids {predicted.shape} and labels {labels.shape} must be non-empty 1-D arrays of the same length"
        )
    contingency = contingency_table(predicted, labels)
    return {
        "hungarian_accuracy": hungarian_accuracy(contingency),
        "many_to_one_accuracy": _many_to_one_accuracy(contingency),
        "nmi": float(normalized_mutual_info_score(labels, predicted)),
        "ari": float(adjusted_rand_score(labels, predicted)),
        "num_clusters": float(contingency.shape[0]),
        "num_classes": float(contingency.shape[1]),
    }


def contingency_table(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Counts (K, C): points of cluster k (in sorted-id order) that carry class c (sorted too)."""
    _, cluster = np.unique(predicted, return_inverse=True)
    _, klass = np.unique(labels, return_inverse=True)
    counts = np.zeros((cluster.max() + 1, klass.max() + 1), dtype=np.int64)
    np.add.at(counts, (cluster, klass), 1)
    return counts


def hungarian_accuracy(contingency: np.ndarray) -> float:
    """Fraction of points on the best one-to-one cluster -> class matching; contingency (K, C)."""
    assert contingency.ndim == 2
    rows, cols = linear_sum_assignment(contingency, maximize=True)  # min(K, C) pairs
    return float(contingency[rows, cols].sum() / contingency.sum())


def _many_to_one_accuracy(contingency: np.ndarray) -> float:
    """Fraction of points whose cluster's majority class is their class; contingency (K, C)."""
    assert contingency.ndim == 2
    return float(contingency.max(axis=1).sum() / contingency.sum())
