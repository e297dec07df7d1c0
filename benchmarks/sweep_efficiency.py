"""Sweep efficiency of the study layer on this machine, and where the rest of the time goes.

    efficiency = sum of the trials' training time / (sweep wall time x concurrent slots)

A sweep of equal trials (basicprop-line, seeds 0..N-1, width 0.25, batch 32, ten reports per
trial) runs through the production path: `infogan-study sweep`'s parsing and checks, then
`study.launcher.build_tuner` (the thin function trainable, a checkpoint per report, two kept) on a
local Ray with one slot per CPU (`--cpus-per-trial 1`). Steps are calibrated so each trial trains
for about the target (10 s and 60 s by default) while all slots train at once. Training time is
the time inside training steps, from every report's `perf/images_per_s` (the loop times the steps
between reports and nothing else). Wall time runs from parsing the command line to `fit()`
returning.

The rest of the slots' time (wall x slots - training) is split, from the trials' results and a
driver-side Tune callback that timestamps every trial's start (its actor is up) and end:
- driver start: parsing, checks, writing the spec, building the Tuner (all slots idle),
- actor start: `fit()` until each slot's first trial starts: placement, a new actor process, Ray's
  worker start-up and the imports (torch, the trainable); with reused actors, once per slot,
- setup: trainable start to first step (data generation, model and optimiser build),
- reports: checkpoint write + `tune.report` (copy into the trial folder, result logging),
- hand-over: a trial's end to the next trial's start on its slot (actor reset or a new actor),
  plus the trainable's own start inside a started trial,
- tail: slots idle at the end, from their last trial's end to `fit()` returning.
Ray's own start (`ray.init`) comes before the sweep and is printed separately.

    uv run python benchmarks/sweep_efficiency.py                                   # 10 s and 60 s
    uv run python benchmarks/sweep_efficiency.py --lengths 10 --no-reuse-actors    # for comparison
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from study.cli import build_parser
from study.launcher import build_tuner
from study.options import plan_from_args
from study.plan import write_spec
from study.ray_runtime import init_local
from trainables.config import InfoGANConfig
from trainables.loop import Trainer

BASE = {"dataset": "basicprop-line", "width": 0.25, "batch_size": 32}
REPORTS_PER_TRIAL = 10


class Timeline(tune.Callback):
    """Driver-side times (perf_counter) of `fit()` and of each trial's start and end."""

    def __init__(self) -> None:
        self.fit_start = self.fit_end = 0.0
        self.start: dict[str, float] = {}
        self.end: dict[str, float] = {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.start[trial.trial_id] = time.perf_counter()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.end[trial.trial_id] = time.perf_counter()


def _seconds_per_step(_: int) -> float:
    torch.set_num_threads(1)
    trainer = Trainer(InfoGANConfig.from_dict(BASE), device="cpu")
    for _ in range(5):  # warm-up
        trainer.train_step()
    n, start = 40, time.perf_counter()
    for _ in range(n):
        trainer.train_step()
    return (time.perf_counter() - start) / n


def calibrate_steps(target_s: float, *, slots: int) -> int:
    """Steps whose training takes about `target_s` when `slots` trials train at once (one thread
    each, as in the sweep: they share memory bandwidth and caches)."""
    with multiprocessing.get_context("spawn").Pool(slots) as pool:
        per_step = sum(pool.map(_seconds_per_step, range(slots))) / slots
    return max(REPORTS_PER_TRIAL, round(target_s / per_step / REPORTS_PER_TRIAL) * REPORTS_PER_TRIAL)


def run_sweep(storage: Path, name: str, *, steps: int, trials: int, reuse_actors: bool) -> tuple[float, Timeline]:
    space = storage / "seeds.py"
    space.write_text(
        "from ray import tune\nDESCRIPTION = 'seeds'\n"
        f"def space():\n    return {{'seed': tune.grid_search(list(range({trials})))}}\n"
    )
    every = steps // REPORTS_PER_TRIAL
    argv = ["sweep", str(space), "--dataset", BASE["dataset"], "--batch-size", str(BASE["batch_size"]),
            "--set", f"width={BASE['width']}", "--steps", str(steps), "--set", f"report_every={every}",
            "--name", name, "--storage-path", str(storage)]  # fmt: skip
    timeline = Timeline()
    start = time.perf_counter()
    spec, param_space = plan_from_args(build_parser().parse_args(argv), kind="sweep", space=str(space), seeds=None,
                                       objectives=["mi/cat:max"])  # fmt: skip
    write_spec(spec)
    tuner = build_tuner(spec, param_space, reuse_actors=reuse_actors, callbacks=[timeline])
    timeline.fit_start = time.perf_counter()
    results = tuner.fit()
    timeline.fit_end = time.perf_counter()
    wall = timeline.fit_end - start
    assert results.num_errors == 0, [r.error for r in results]
    return wall, timeline


def breakdown(experiment: Path, timeline: Timeline, *, batch: int, every: int, slots: int,
              wall: float) -> dict[str, float]:  # fmt: skip
    """Slot-seconds per category (they add up to wall x slots)."""
    out = dict.fromkeys(("train", "driver start", "actor start", "setup", "reports", "hand-over", "tail"), 0.0)
    for trial_dir in experiment.glob("trial_*"):
        rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]
        step_times = [every * batch / r["perf/images_per_s"] for r in rows]
        # iteration i > 0 = its steps + the previous report; the last report's own cost is not in
        # time_total_s, so it is counted as the mean of the others
        overheads = [r["time_this_iter_s"] - s for r, s in zip(rows[1:], step_times[1:], strict=True)]
        out["train"] += sum(step_times)
        out["setup"] += rows[0]["time_this_iter_s"] - step_times[0]
        out["reports"] += sum(overheads) + (sum(overheads) / len(overheads) if overheads else 0.0)
    starts, ends = sorted(timeline.start.values()), sorted(timeline.end.values())
    out["driver start"] = (timeline.fit_start - (timeline.fit_end - wall)) * slots
    out["actor start"] = sum(t - timeline.fit_start for t in starts[:slots])
    out["tail"] = sum(timeline.fit_end - t for t in ends[-slots:])
    out["hand-over"] = wall * slots - sum(out.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[10.0, 60.0], help="target trial lengths (s)")
    parser.add_argument("--waves", type=int, default=3, help="trials per slot (default 3)")
    parser.add_argument("--no-reuse-actors", action="store_true", help="a new actor process per trial")
    args = parser.parse_args()
    slots = os.cpu_count() or 1
    t0 = time.perf_counter()
    init_local(num_cpus=slots)
    print(f"ray.init (local, {slots} CPUs): {time.perf_counter() - t0:.1f} s; {slots} slots of 1 CPU; "
          f"reuse_actors={not args.no_reuse_actors}")  # fmt: skip
    columns = ("train", "driver start", "actor start", "setup", "reports", "hand-over", "tail")
    rows = []
    with tempfile.TemporaryDirectory(prefix="sweep-efficiency-") as tmp:
        for length in args.lengths:
            steps = calibrate_steps(length, slots=slots)
            trials, name = slots * args.waves, f"len{int(length)}"
            wall, timeline = run_sweep(Path(tmp), name, steps=steps, trials=trials,
                                       reuse_actors=not args.no_reuse_actors)  # fmt: skip
            parts = breakdown(Path(tmp) / name, timeline, batch=BASE["batch_size"], every=steps // REPORTS_PER_TRIAL,
                              slots=slots, wall=wall)  # fmt: skip
            fractions = {k: v / (wall * slots) for k, v in parts.items()}
            rows.append((length, steps, trials, parts["train"] / trials, wall, fractions))
    ray.shutdown()
    header = f"\n{'target':>6} {'steps':>6} {'trials':>6} {'train/trial':>11} {'wall':>7}  "
    print(header + "  ".join(f"{c:>12}" for c in columns))
    for length, steps, trials, per_trial, wall, fractions in rows:
        print(f"{length:>5.0f}s {steps:>6} {trials:>6} {per_trial:>10.1f}s {wall:>6.1f}s  "
              + "  ".join(f"{fractions[c]:>12.2f}" for c in columns))  # fmt: skip
    print("fractions of wall x slots; the 'train' column is the sweep efficiency")


if __name__ == "__main__":
    main()
