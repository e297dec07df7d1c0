"""Summaries of a run's categorical mutual-information curve.

InfoGAN's headline training curve (Chen et al. 2016, https://arxiv.org/abs/1606.03657, Fig. 1)
is the lower bound L_I on I(c; G(z, c)) for a uniform categorical code: it reaches H(c) = ln K
quickly when the code is used and stays near 0 for a GAN that ignores it. The trainer reports it
normalised by H(c) as `mi/cat` (1 = the bound is tight at H(c)). This module turns one reported
series into four scalars that compare runs of different lengths:

- `final`, `max`: the last and the largest value;
- `step_to_threshold`: the first reported step at which the value reaches `threshold` (0.9, i.e.
  0.9 H(c) nats), NaN if it never does: how fast the code was picked up;
- `auc`: trapezoid area under the curve divided by the step span (the time-averaged bound, in
  [0, 1]); a single report gives its value.

The bound H(c) - CE can be negative early in training (Q worse than chance) and is clipped to
[0, 1] first: below 0 means "no information", the same as 0. Non-finite reports (a diverged run)
are dropped; a series with none left summarises to NaN everywhere.
"""

from __future__ import annotations

import numpy as np

from trainables.errors import BadInputError


def compute_mi_curve_summary(steps: np.ndarray, values: np.ndarray, *, threshold: float = 0.9) -> dict[str, float]:
    """Summarise steps (T,) and normalised MI values (T,): `final`, `max`, `step_to_threshold`, `auc`."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if steps.ndim != 1 or steps.shape != values.shape:
        raise BadInputError(f"MI curve steps {steps.shape} and values {values.shape} must be 1-D of the same length")
    if not 0.0 < threshold <= 1.0:
        raise BadInputError(f"threshold={threshold} is out of range; pass a fraction of H(c) in (0, 1]")
    keep = np.isfinite(steps) & np.isfinite(values)
    steps, values = steps[keep], values[keep]
    if np.any(np.diff(steps) <= 0):
        raise BadInputError("MI curve steps must be strictly increasing; sort the reports by step")
    return _summarise(steps, np.clip(values, 0.0, 1.0), threshold=threshold)


def _summarise(steps: np.ndarray, values: np.ndarray, *, threshold: float) -> dict[str, float]:
    """steps (T,) increasing, values (T,) in [0, 1] -> the four summaries (NaN if T == 0)."""
    assert steps.shape == values.shape and steps.ndim == 1
    if steps.size == 0:
        return {"final": float("nan"), "max": float("nan"), "step_to_threshold": float("nan"), "auc": float("nan")}
    reached = np.flatnonzero(values >= threshold)
    span = steps[-1] - steps[0]
    # trapezoidal mean over the steps; a single report is its own mean
    auc = float(np.sum(np.diff(steps) * (values[1:] + values[:-1]) / 2) / span) if span > 0 else float(values[0])
    return {
        "final": float(values[-1]),
        "max": float(values.max()),
        "step_to_threshold": float(steps[reached[0]]) if reached.size else float("nan"),
        "auc": auc,
    }
