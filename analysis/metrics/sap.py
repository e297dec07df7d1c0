"""Separated Attribute Predictability (SAP) score.

Based on Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from Unlabeled
Observations" (https://arxiv.org/abs/1711.00848), Sec. 3, following disentanglement_lib's
definitions for discrete factors (google-research/disentanglement_lib,
evaluation/metrics/sap_score.py, continuous_factors=False): a score matrix S (num_codes,
num_factors) holds the test accuracy of a linear classifier (`LinearSVC(C=0.01,
class_weight="balanced")`) predicting factor j from the raw code i alone; SAP is the mean over
factors of the gap between the best and second-best code. A perfectly disentangled code scores
its factor at accuracy 1 while every other code is at chance, so the identity representation
scores about 1 - 1/K for factors with K balanced values, not 1 (a 1-D linear classifier also
cannot separate many ordered values: the score is a lower bound that drops for factors with many
values).

As in disentanglement_lib the codes are not standardised, so with C=0.01 the score depends on a
code's scale (a code in [0, 1] underfits where the same code in [-3, 3] does not); an earlier
version of this module standardised them and scored up to 0.054 higher than published SAP. On
fixed (codes, factors) arrays this module equals disentanglement_lib's `_compute_sap`
(tests/analysis/test_metric_reference.py). Only two guards differ, for inputs on which
disentanglement_lib fails: a factor with one value in the training sample scores the test
accuracy of predicting that value, and a single code has no runner-up (the gap is its accuracy).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from analysis.metrics._sampling import GroundTruthData, RepresentationFn, sample_train_test


def compute_sap(
    data: GroundTruthData,
    represent_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    batch_size: int = 256,
) -> dict[str, float]:
    """SAP score of a representation on i.i.d. train/test samples: {"sap"}."""
    (codes_train, factors_train), (codes_test, factors_test) = sample_train_test(
        data, represent_fn, rng, num_train=num_train, num_test=num_test, batch_size=batch_size
    )
    return _compute_sap(codes_train, factors_train, codes_test, factors_test)


def _compute_sap(
    codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray
) -> dict[str, float]:
    """codes (num_codes, N), factors (num_factors, N) -> {"sap"}."""
    return {"sap": _top_two_gap(_score_matrix(codes_train, factors_train, codes_test, factors_test))}


def _score_matrix(
    codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray
) -> np.ndarray:
    """codes (num_codes, N), factors (num_factors, N) -> test accuracies S (num_codes, num_factors)."""
    num_codes, num_factors = codes_train.shape[0], factors_train.shape[0]
    assert codes_train.shape[1] == factors_train.shape[1] and codes_test.shape[1] == factors_test.shape[1]
    assert codes_test.shape[0] == num_codes and factors_test.shape[0] == num_factors
    scores = np.zeros((num_codes, num_factors))
    for i in range(num_codes):
        for j in range(num_factors):
            if np.unique(factors_train[j]).size < 2:
                scores[i, j] = np.mean(factors_test[j] == factors_train[j, 0])
                continue
            with warnings.catch_warnings():
                # C=0.01 on one feature may stop at max_iter; the accuracy is still what we score.
                warnings.simplefilter("ignore", ConvergenceWarning)
                # random_state only matters where scikit-learn picks the dual solver (its default
                # before 1.5; "auto" picks the deterministic primal one for a single feature).
                classifier = LinearSVC(C=0.01, class_weight="balanced", random_state=0)
                classifier.fit(codes_train[i, :, None], factors_train[j])
            scores[i, j] = np.mean(classifier.predict(codes_test[i, :, None]) == factors_test[j])
    return scores


def _top_two_gap(scores: np.ndarray) -> float:
    """scores S (num_codes, num_factors) -> mean over factors of best minus second-best code.

    A single code has no runner-up: its gap is its accuracy (the runner-up counts as 0).
    """
    assert scores.ndim == 2
    if scores.shape[0] == 1:
        return float(np.mean(scores[0]))
    ordered = np.sort(scores, axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))
