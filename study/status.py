"""The trial table of a study, read from Tune's experiment state on disk (no Ray needed).

One row per trial: its id, state, the parameters that vary across trials, the last report's key
metrics and objectives, how often it failed, and a note: the divergence reason, or the last line
of the error that ended it. A trial that diverged finishes normally (TERMINATED) and is shown as
DIVERGED so it is not mistaken for a good run.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import Any

from ray.tune import ExperimentAnalysis
from ray.tune.experiment import Trial

from trainables.errors import BadInputError
from trainables.tune_trainable import KEY_METRICS

HIDDEN_PARAMS = ("data_root",)


def load_trials(experiment_path: str) -> list[Trial]:
    """The trials in the newest experiment-state snapshot, by trial id."""
    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = log.level
    log.setLevel(logging.ERROR)  # it warns for every trial that has not reported yet
    try:
        return sorted(ExperimentAnalysis(experiment_path).trials, key=lambda t: t.trial_id)
    except Exception as err:  # noqa: BLE001 - missing or unreadable state: same message
        raise BadInputError(f"cannot read the trials of {experiment_path}: {err}") from None
    finally:
        log.setLevel(level)


def trial_state(trial: Trial) -> str:
    """Tune's status, with DIVERGED for a run that ended on a NaN/inf loss and UNFINISHED for one
    that has reported but not ended (Tune snapshots running trials as PENDING so that a restore
    reschedules them: running now, or interrupted and resumable from its checkpoint)."""
    if trial.last_result.get("status") == "diverged":
        return "DIVERGED"
    if trial.status in (Trial.PENDING, Trial.RUNNING, Trial.PAUSED) and trial.last_result:
        return "UNFINISHED"
    return trial.status


def _error_line(trial: Trial) -> str:
    try:
        error = trial.get_error()
    except Exception:  # noqa: BLE001 - error file not reachable (e.g. remote storage offline)
        return "error (see the trial's error.txt)"
    if error is None:
        return ""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", lines[-1]) if lines else ""  # drop the module path


def varying_params(trials: Sequence[Trial]) -> list[str]:
    """Config keys whose values differ between trials (all of them for a single trial's grid)."""
    keys: list[str] = []
    for trial in trials:
        keys += [k for k in trial.config if k not in keys and k not in HIDDEN_PARAMS]
    if len(trials) < 2:
        return [k for k in keys if k in ("variant", "seed")]
    return [k for k in keys if len({repr(t.config.get(k)) for t in trials}) > 1]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def table_rows(trials: Sequence[Trial], *, metrics: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    params = varying_params(trials)
    header = ["trial", "state", *params, "iter", "step", *metrics, "failures", "note"]
    rows = []
    for t in trials:
        result = t.last_result
        note = result.get("reason", "") if trial_state(t) == "DIVERGED" else _error_line(t)
        rows.append([
            t.trial_id, trial_state(t), *(_fmt(t.config.get(p)) for p in params),
            _fmt(result.get("training_iteration")), _fmt(int(result["step"]) if "step" in result else None),
            *(_fmt(result.get(m)) for m in metrics), str(t.num_failures), note,
        ])  # fmt: skip
    return header, rows


def format_table(trials: Sequence[Trial], *, objectives: Sequence[Any] = ()) -> str:
    """A plain-text table plus a one-line count of trials per state."""
    metrics = [m for m in KEY_METRICS if m != "diverged"]
    metrics += [o.metric for o in objectives if o.metric not in metrics]
    header, rows = table_rows(trials, metrics=metrics)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    counts: dict[str, int] = {}
    for t in trials:
        counts[trial_state(t)] = counts.get(trial_state(t), 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return "\n".join([*lines, f"{len(trials)} trials: {summary}"])
