"""Failure flags on synthetic report curves, and none on a healthy run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.metrics import compute_failure_flags
from trainables.errors import BadInputError

STEPS = np.arange(1, 51) * 100  # 50 reports, steps 100..5000


def healthy_curves() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    noise = np.random.default_rng(0).normal(scale=0.02, size=STEPS.size)
    return {
        "loss/d": (STEPS, 1.2 + noise),
        "loss/g": (STEPS, 0.9 - 0.001 * np.arange(STEPS.size) + noise),
        "d/real": (STEPS, 0.6 + noise),
        "d/fake": (STEPS, 0.4 + noise),
        "mi/cat": (STEPS, np.minimum(1.0, STEPS / 1000)),
        "diverged": (STEPS, np.zeros(STEPS.size)),
    }


def test_healthy_run_raises_no_flag() -> None:
    flags = compute_failure_flags(healthy_curves(), class_coverage=1.0)
    for name in ("diverged", "d_overconfident", "mode_collapse", "mi_stuck"):
        assert flags[name] is False
        assert math.isnan(flags[f"{name}_step"])
    assert flags["failure_reason"] == ""


def test_nan_loss_is_divergence_at_its_first_step() -> None:
    curves = healthy_curves()
    loss_d = curves["loss/d"][1].copy()
    loss_d[[20, 30]] = [np.nan, np.inf]  # steps 2100 and 3100
    curves["loss/d"] = (STEPS, loss_d)
    flags = compute_failure_flags(curves)
    assert flags["diverged"] is True
    assert flags["diverged_step"] == 2100.0
    assert flags["failure_reason"] == "diverged at step 2100 (loss/d is nan)"


def test_trainer_diverged_flag_alone_is_divergence() -> None:
    curves = healthy_curves()
    curves["diverged"] = (STEPS, (STEPS >= 4000).astype(float))
    flags = compute_failure_flags(curves)
    assert flags["diverged"] is True and flags["diverged_step"] == 4000.0


def cliff_curves(g_slope: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """D saturates from step 3500 on (the last 30% of reports); loss/g then moves with g_slope."""
    curves = healthy_curves()
    late = STEPS >= 3500
    curves["d/real"] = (STEPS, np.where(late, 0.99, 0.6))
    curves["d/fake"] = (STEPS, np.where(late, 0.01, 0.4))
    curves["loss/g"] = (STEPS, np.where(late, 3.0 + g_slope * (STEPS - 3500), 0.9))
    return curves


def test_discriminator_cliff_is_flagged_from_its_onset() -> None:
    flags = compute_failure_flags(cliff_curves(g_slope=0.002))
    assert flags["d_overconfident"] is True
    assert flags["d_overconfident_step"] == 3500.0
    assert flags["failure_reason"].startswith("D overconfident from step 3500")
    assert flags["diverged"] is False and flags["mi_stuck"] is False


def test_saturated_discriminator_with_falling_generator_loss_is_not_a_cliff() -> None:
    flags = compute_failure_flags(cliff_curves(g_slope=-0.002))
    assert flags["d_overconfident"] is False


def test_low_class_coverage_is_mode_collapse() -> None:
    flags = compute_failure_flags(healthy_curves(), class_coverage=0.3)
    assert flags["mode_collapse"] is True
    assert flags["mode_collapse_step"] == 5000.0  # judged on the final model
    assert "class coverage 0.30" in flags["failure_reason"]
    assert compute_failure_flags(healthy_curves(), class_coverage=None)["mode_collapse"] is False


def test_flat_mutual_information_is_stuck() -> None:
    curves = healthy_curves()
    curves["mi/cat"] = (STEPS, np.full(STEPS.size, 0.05))
    flags = compute_failure_flags(curves, class_coverage=0.2)
    assert flags["mi_stuck"] is True and flags["mode_collapse"] is True
    assert flags["failure_reason"].count(";") == 1  # both reasons on one line
    del curves["mi/cat"]  # a GAN without categorical codes cannot be stuck
    assert compute_failure_flags(curves)["mi_stuck"] is False


def test_mismatched_curve_raises() -> None:
    with pytest.raises(BadInputError, match="loss/d"):
        compute_failure_flags({"loss/d": (STEPS, np.zeros(3))})
