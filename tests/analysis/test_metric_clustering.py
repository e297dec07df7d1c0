"""Known answers of the clustering scores (Hungarian, many-to-one, NMI, ARI)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.metrics import compute_clustering_scores
from trainables.errors import BadInputError

LABELS = np.repeat(np.arange(10), 50)  # (500,) ten balanced classes


def test_permuted_perfect_clustering_scores_one() -> None:
    permutation = np.random.default_rng(0).permutation(10) + 100  # arbitrary cluster ids
    scores = compute_clustering_scores(permutation[LABELS], LABELS)
    assert scores["hungarian_accuracy"] == 1.0
    assert scores["many_to_one_accuracy"] == 1.0
    assert scores["nmi"] == pytest.approx(1.0)
    assert scores["ari"] == pytest.approx(1.0)


def test_twenty_clusters_splitting_each_class() -> None:
    halves = np.tile(np.repeat([0, 1], 25), 10)  # each class split in two halves of 25
    predicted = 2 * LABELS + halves  # K = 20 clusters, each pure
    scores = compute_clustering_scores(predicted, LABELS)
    assert scores["many_to_one_accuracy"] == 1.0
    assert scores["hungarian_accuracy"] == pytest.approx(0.5)  # only one half per class is matched
    assert scores["num_clusters"] == 20.0 and scores["num_classes"] == 10.0


def test_fewer_clusters_than_classes() -> None:
    predicted = LABELS // 2  # K = 5: pairs of classes merged
    scores = compute_clustering_scores(predicted, LABELS)
    assert scores["hungarian_accuracy"] == pytest.approx(0.5)
    assert scores["many_to_one_accuracy"] == pytest.approx(0.5)


def test_hand_computed_small_case() -> None:
    # clusters a: {0, 0, 1}, b: {1, 1}, c: {2}: matching a-0, b-1, c-2 gets 2 + 2 + 1 = 5 of 6
    predicted = np.array([7, 7, 7, 8, 8, 9])
    labels = np.array([0, 0, 1, 1, 1, 2])
    scores = compute_clustering_scores(predicted, labels)
    assert scores["hungarian_accuracy"] == pytest.approx(5 / 6)
    assert scores["many_to_one_accuracy"] == pytest.approx(5 / 6)


def test_random_clusters_are_near_chance() -> None:
    predicted = np.random.default_rng(1).integers(0, 10, size=LABELS.size)
    scores = compute_clustering_scores(predicted, LABELS)
    assert abs(scores["ari"]) < 0.02
    assert scores["nmi"] < 0.1
    assert scores["hungarian_accuracy"] < 0.2


def test_mismatched_inputs_raise() -> None:
    with pytest.raises(BadInputError, match="same length"):
        compute_clustering_scores(np.zeros(3, dtype=int), np.zeros(4, dtype=int))
