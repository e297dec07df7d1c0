"""One live progress line for a running study: a Ray Tune `Callback` (Tune's public API).

With Tune's own output off (`RunConfig(verbose=0)`), the launcher shows this line instead:

    [3:41 elapsed, ~2:05 left] 4/6 trials done (1 errored), 2 running, 0 pending; best gen/cat_acc 0.94 (a1b2c_00003)

Counts are Tune's trial states (TERMINATED is done, ERROR errored, RUNNING running, the rest
pending); the best is the best last-reported value of the study's first objective over the
trials (for a pack, over its members' `m<k>/` metrics); the estimate extrapolates this session's
progress, counted in training steps (each trial's reported `step` of its `steps`), to what is
left. On a terminal the line is redrawn in place at most once a second; in a log file (not a
terminal) a line is written when a trial ends and otherwise once a minute. It goes to stderr;
the final table goes to stdout.

Tune saves the callback with the study (`resume` gets it back), so it holds no stream or clock
from before `setup`.
"""

from __future__ import annotations

import math
import re
import sys
import time
from typing import Any

from ray import tune

TERMINAL_EVERY_S = 1.0
LOG_EVERY_S = 60.0
_MEMBER = re.compile(r"m\d+/(.+)")  # a pack's member metric: m<k>/<metric>


def format_duration(seconds: float) -> str:
    """h:mm:ss or m:ss."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _trial_steps(trial: Any) -> int | None:
    """The steps a trial trains (its config's, or a pack's first member's), None when unknown."""
    config = trial.config or {}
    members = config.get("members")
    if isinstance(members, list) and members:
        config = members[0]
    steps = config.get("steps")
    return steps if isinstance(steps, int) and steps > 0 else None


def _objective_values(result: dict[str, Any], metric: str, *, pack: bool) -> list[float]:
    """The values of `metric` in a trial's result: its own, or each pack member's (only a pack's
    result is searched for member metrics)."""
    values = [result.get(metric)]
    if pack:
        values += [v for k, v in result.items() if (m := _MEMBER.fullmatch(k)) and m.group(1) == metric]
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


class StudyProgress(tune.Callback):
    """The live progress line (see the module docstring). `objective`: the study's first
    `plan.Objective` (or None: no best shown)."""

    def __init__(self, *, objective: Any = None) -> None:
        self.metric = objective.metric if objective is not None else None
        self.mode = objective.mode if objective is not None else "max"
        self.total = 0
        self.start = 0.0
        self.start_fraction: float | None = None
        self.last_draw = 0.0
        self.ended = True  # a trial ended since the last line (the first line is drawn at once)
        self.width = 0
        self.values: dict[str, float | None] = {}  # trial id -> the best of its last result's objective values

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:  # fmt: skip
        self.total = int(total_num_samples or 0)
        self.start = time.monotonic()
        self.start_fraction = None
        self.last_draw, self.ended, self.width = 0.0, True, 0
        self.values = {}

    # ------------------------------------------------------------------ what the line says
    def line(self, trials: list[Any]) -> str:
        states = [t.status for t in trials]
        done, errored, running = states.count("TERMINATED"), states.count("ERROR"), states.count("RUNNING")
        total = max(self.total, len(trials))
        pending = total - done - errored - running
        fraction = self._fraction(trials, total)
        if self.start_fraction is None:
            self.start_fraction = fraction  # a resumed study starts part-way
        elapsed = time.monotonic() - self.start
        gained = fraction - self.start_fraction
        left = "~?" if gained <= 0 else f"~{format_duration(elapsed * (1 - fraction) / gained)}"
        if done + errored == total:
            left = "0:00"
        text = (f"[{format_duration(elapsed)} elapsed, {left} left] {done + errored}/{total} trials done"
                f"{f' ({errored} errored)' if errored else ''}, {running} running, {pending} pending")  # fmt: skip
        best = self._best(trials)
        if best is not None:
            text += f"; best {self.metric} {best[0]:.4g} ({best[1]})"
        return text

    def _fraction(self, trials: list[Any], total: int) -> float:
        """Share of the study's training done: ended trials count whole, running ones by step."""
        if total == 0:
            return 0.0
        work = 0.0
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR"):
                work += 1.0
                continue
            steps, step = _trial_steps(trial), (trial.last_result or {}).get("step")
            if steps and isinstance(step, (int, float)):
                work += min(1.0, float(step) / steps)
        return work / total

    def _best(self, trials: list[Any]) -> tuple[float, str] | None:
        """The best of the trials' last-reported objective values. Each trial's values are read from
        its result once, when it comes (`on_trial_result`), not from every trial at each line: the
        line is drawn at each trial's end, so a pass over every result was quadratic in the study."""
        if self.metric is None:
            return None
        for trial in trials:  # trials not heard from in this session (a resumed study's ended ones)
            if trial.trial_id not in self.values:
                self._note(trial, trial.last_result or {})
        sign = 1.0 if self.mode == "max" else -1.0
        found = [(value, trial_id) for trial_id, value in self.values.items() if value is not None]
        return max(found, key=lambda item: sign * item[0]) if found else None

    def _note(self, trial: Any, result: dict[str, Any]) -> None:
        """Keep the best of `trial`'s values of the objective in `result` (its own, or its members')."""
        pack = isinstance((trial.config or {}).get("members"), list)
        values = _objective_values(result, self.metric, pack=pack)
        sign = 1.0 if self.mode == "max" else -1.0
        self.values[trial.trial_id] = max(values, key=lambda v: sign * v) if values else None

    # ------------------------------------------------------------------ drawing
    def _draw(self, trials: list[Any], *, force: bool = False) -> None:
        stream = sys.stderr
        terminal = stream.isatty()
        now = time.monotonic()
        due = now - self.last_draw >= (TERMINAL_EVERY_S if terminal else LOG_EVERY_S)
        if not (force or due or self.ended):  # (no pass over the trials here: Tune steps many times a second)
            return
        self.last_draw, self.ended = now, False
        text = self.line(trials)
        if terminal:  # redraw in place, padding over a longer previous line
            stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            stream.write(text + "\n")
        stream.flush()

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._draw(trials)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any) -> None:
        if self.metric is not None:
            self._note(trial, result)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.ended = True

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.ended = True

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        terminal = sys.stderr.isatty()
        self._draw(trials, force=terminal)  # (a log file has the line already, unless something changed)
        if terminal:
            sys.stderr.write("\n")
            sys.stderr.flush()
