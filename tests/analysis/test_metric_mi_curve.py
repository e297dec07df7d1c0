"""Known answers of the categorical-MI curve summary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.metrics import compute_mi_curve_summary
from trainables.errors import BadInputError


def test_hand_made_series() -> None:
    steps = np.array([0, 100, 200, 300, 400])
    values = np.array([0.0, 0.5, 0.95, 0.9, 1.0])
    summary = compute_mi_curve_summary(steps, values)
    assert summary["final"] == 1.0
    assert summary["max"] == 1.0
    assert summary["step_to_threshold"] == 200.0
    # trapezoids: 25 + 72.5 + 92.5 + 95 = 285 over a span of 400
    assert summary["auc"] == pytest.approx(285 / 400)


def test_never_reaching_the_threshold_gives_nan() -> None:
    summary = compute_mi_curve_summary(np.arange(5) * 10, np.full(5, 0.3))
    assert math.isnan(summary["step_to_threshold"])
    assert summary["auc"] == pytest.approx(0.3)


def test_negative_bounds_are_clipped_and_nan_reports_dropped() -> None:
    steps = np.array([0, 10, 20, 30])
    values = np.array([-0.4, 0.2, np.nan, 0.2])
    summary = compute_mi_curve_summary(steps, values, threshold=0.5)
    assert summary["final"] == pytest.approx(0.2)
    # points (0, 0), (10, 0.2), (30, 0.2): (1 + 4) / 30
    assert summary["auc"] == pytest.approx(5 / 30)


def test_single_and_empty_series() -> None:
    assert compute_mi_curve_summary([50], [0.95])["auc"] == pytest.approx(0.95)
    assert compute_mi_curve_summary([50], [0.95])["step_to_threshold"] == 50.0
    empty = compute_mi_curve_summary([10, 20], [np.nan, np.nan])
    assert all(math.isnan(v) for v in empty.values())


def test_bad_series_raise() -> None:
    with pytest.raises(BadInputError, match="strictly increasing"):
        compute_mi_curve_summary([0, 20, 10], [0.1, 0.2, 0.3])
    with pytest.raises(BadInputError, match="same length"):
        compute_mi_curve_summary([0, 10], [0.1])
