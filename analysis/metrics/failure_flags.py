"""Failure flags of one trial, read from its reported curves.

A GAN study needs to say why a configuration failed, not only that its score is low. Four
failure modes are read off the trainer's reports (trainables/loop.py keys) and an optional class
coverage (quality.py):

- `diverged`: a loss (`loss/*`) became NaN/inf, or the trainer's `diverged` flag was set;
- `d_overconfident`: the discriminator "cliff": over the last `tail_fraction` (20%) of reports
  mean `d/real` > 0.95 and mean `d/fake` < 0.05 while `loss/g` rises (least-squares slope > 0),
  i.e. D separates real from fake perfectly and G's gradient no longer helps it;
- `mode_collapse`: the generated images cover fewer than half of the classes (`class_coverage`
  < 0.5), only when a coverage is given;
- `mi_stuck`: the normalised categorical MI bound `mi/cat` never exceeds 0.1, i.e. Q never read
  the code from G's images (only when `mi/cat` was reported).

Each flag comes with the step at which it first held (NaN when it did not): the first non-finite
loss; the first report with d/real > 0.95 and d/fake < 0.05 (the tail start if no single report
had both); for mode collapse and stuck MI, judged on the whole run, the last reported step.
`failure_reason` joins the raised flags into one line ("" for a healthy run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from trainables.errors import BadInputError

Curve = tuple[np.ndarray, np.ndarray]  # steps (T,), values (T,)
NAN = float("nan")


def compute_failure_flags(
    curves: Mapping[str, Curve],
    *,
    class_coverage: float | None = None,
    tail_fraction: float = 0.2,
    d_real_above: float = 0.95,
    d_fake_below: float = 0.05,
    min_coverage: float = 0.5,
    min_mi: float = 0.1,
) -> dict[str, bool | float | str]:
    """Flags `diverged`, `d_overconfident`, `mode_collapse`, `mi_stuck`, each with `<flag>_step`,
    and `failure_reason`, from curves {metric: (steps (T,), values (T,))}."""
    if not 0.0 < tail_fraction <= 1.0:
        raise BadInputError(f"tail_fraction={tail_fraction} is out of range; pass a fraction in (0, 1]")
    checked = {name: _checked(name, steps, values) for name, (steps, values) in curves.items()}
    last_step = max((float(s[-1]) for s, _ in checked.values() if s.size), default=NAN)
    found: dict[str, tuple[float, str]] = {}  # flag -> (step, reason)

    diverged = _first_divergence(checked)
    if diverged is not None:
        found["diverged"] = diverged
    if {"d/real", "d/fake", "loss/g"} <= checked.keys():
        cliff = _d_cliff(checked, tail_fraction=tail_fraction, real_above=d_real_above, fake_below=d_fake_below)
        if cliff is not None:
            found["d_overconfident"] = cliff
    if class_coverage is not None and class_coverage < min_coverage:
        found["mode_collapse"] = (last_step, f"mode collapse: class coverage {class_coverage:.2f} < {min_coverage}")
    if "mi/cat" in checked:
        mi = checked["mi/cat"][1]
        mi = mi[np.isfinite(mi)]
        if mi.size and mi.max() < min_mi:
            found["mi_stuck"] = (last_step, f"MI stuck: max mi/cat {mi.max():.3f} < {min_mi}")

    flags: dict[str, bool | float | str] = {}
    for name in ("diverged", "d_overconfident", "mode_collapse", "mi_stuck"):
        flags[name] = name in found
        flags[f"{name}_step"] = found[name][0] if name in found else NAN
    flags["failure_reason"] = "; ".join(reason for _, reason in found.values())
    return flags


def _checked(name: str, steps: np.ndarray, values: np.ndarray) -> Curve:
    """The curve as float arrays (T,) sorted by step; refuses mismatched shapes."""
    steps, values = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if steps.ndim != 1 or steps.shape != values.shape:
        raise BadInputError(f"curve {name!r}: steps {steps.shape} and values {values.shape} must be 1-D, same length")
    order = np.argsort(steps, kind="stable")
    return steps[order], values[order]


def _first_divergence(curves: Mapping[str, Curve]) -> tuple[float, str] | None:
    """(step, reason) of the earliest non-finite loss or set `diverged` flag, or None."""
    events = []
    for name, (steps, values) in curves.items():
        if name.startswith("loss/"):
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                events.append((float(steps[bad[0]]), f"{name} is {values[bad[0]]}"))
        elif name == "diverged":
            bad = np.flatnonzero(values >= 0.5)
            if bad.size:
                events.append((float(steps[bad[0]]), "the trainer's diverged flag"))
    if not events:
        return None
    step, cause = min(events, key=lambda event: event[0])
    return step, f"diverged at step {step:g} ({cause})"


def _tail(curve: Curve, fraction: float) -> Curve:
    """The last max(2, ceil(fraction T)) reports with finite values."""
    steps, values = curve
    count = max(2, math.ceil(fraction * steps.size))
    steps, values = steps[-count:], values[-count:]
    finite = np.isfinite(values)
    return steps[finite], values[finite]


def _d_cliff(
    curves: Mapping[str, Curve], *, tail_fraction: float, real_above: float, fake_below: float
) -> tuple[float, str] | None:
    """(onset step, reason) if D is overconfident over the tail while loss/g rises, else None."""
    (_, real), (_, fake) = _tail(curves["d/real"], tail_fraction), _tail(curves["d/fake"], tail_fraction)
    g_steps, g_loss = _tail(curves["loss/g"], tail_fraction)
    if real.size == 0 or fake.size == 0 or np.unique(g_steps).size < 2:
        return None
    slope = np.polyfit(g_steps, g_loss, 1)[0]
    if not (real.mean() > real_above and fake.mean() < fake_below and slope > 0):
        return None
    real_steps, real_values = curves["d/real"]
    fake_steps, fake_values = curves["d/fake"]
    common, in_real, in_fake = np.intersect1d(real_steps, fake_steps, return_indices=True)
    both = np.flatnonzero((real_values[in_real] > real_above) & (fake_values[in_fake] < fake_below))
    onset = float(common[both[0]]) if both.size else float(_tail(curves["d/real"], tail_fraction)[0][0])
    reason = (
        f"D overconfident from step {onset:g} (d/real {real.mean():.2f}, d/fake {fake.mean():.2f}, "
        f"loss/g rising {slope:.2g}/step)"
    )
    return onset, reason
