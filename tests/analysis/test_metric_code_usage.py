"""How Q uses its categorical code on real images: known answers for balance, confidence and their
mutual information (analysis/metrics/code_usage.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.metrics import compute_code_usage
from trainables.errors import BadInputError

K = 10


def one_hot(categories: np.ndarray, k: int = K) -> np.ndarray:
    return np.eye(k)[categories]


def test_an_even_sure_assignment_scores_one_everywhere():
    usage = compute_code_usage(one_hot(np.arange(1000) % K))
    assert usage == pytest.approx({"balance": 1.0, "confidence": 1.0, "info": 1.0})


def test_everything_in_one_category_has_no_balance_and_no_information():
    usage = compute_code_usage(one_hot(np.zeros(500, dtype=int)))
    assert usage == pytest.approx({"balance": 0.0, "confidence": 1.0, "info": 0.0})


def test_a_q_that_cannot_tell_the_categories_apart_is_not_confident_and_carries_no_information():
    usage = compute_code_usage(np.full((300, K), 1 / K))
    assert usage["confidence"] == pytest.approx(1 / K) and usage["info"] == pytest.approx(0.0)


def test_a_category_shared_by_two_values_holds_twice_its_share():
    """Ten equally frequent digits; 4 and 9 share category 4, and digit 1 is split over categories
    1 and 9 by style: shares 0.2 once, 0.05 twice, 0.1 seven times."""
    digits = np.arange(2000) % K
    style = (np.arange(2000) // K) % 2
    category = np.where(digits == 9, 4, digits)
    category = np.where((digits == 1) & (style == 1), 9, category)
    usage = compute_code_usage(one_hot(category))
    shares = np.array([0.2, 0.05, 0.05] + [0.1] * 7)
    assert usage["balance"] == pytest.approx(-(shares * np.log(shares)).sum() / math.log(K))
    assert usage["balance"] < 0.98 < compute_code_usage(one_hot(digits))["balance"]


def test_soft_probabilities_lower_confidence_and_information_but_not_balance():
    categories = np.arange(1000) % K
    soft = 0.5 * one_hot(categories) + 0.5 / K  # right category at 0.55, the others at 0.05
    usage = compute_code_usage(soft)
    assert usage["balance"] == pytest.approx(1.0) and usage["confidence"] == pytest.approx(0.55)
    entropy = -(0.55 * math.log(0.55) + 9 * 0.05 * math.log(0.05))
    assert usage["info"] == pytest.approx((math.log(K) - entropy) / math.log(K))


@pytest.mark.parametrize("shape", [(0, K), (10, 1), (10,)])
def test_bad_shapes_are_refused(shape):
    with pytest.raises(BadInputError, match=r"must be \(n, K\)"):
        compute_code_usage(np.ones(shape))
