"""The Tune driver's memory and per-trial overhead over a 1,000-trial sweep.

Ray issue 64231 reports the driver's RSS growing linearly with the number of finished trials. This
runs a sweep of many short trials through the study's own Tune set-up (`study.launcher.build_tuner`:
its TuneConfig, RunConfig, checkpoint keeping, failure handling, progress output and trial folder
names, on a local Ray with one slot per CPU) and prints the driver's RSS (psutil) every
`--every` finished trials, then the growth from trial 200 to the end and the overhead per trial.

The trials are a trivial function trainable, not the InfoGAN one: each reports `--reports` times
with a small checkpoint (a 4 KiB file and its description, as the real trainable writes beside
its weights) and sleeps `--sleep` seconds between reports, so a trial lasts well under a second
and what is measured is Tune's bookkeeping, not training or torch start-up. Tune is told to keep
every checkpoint (`num_to_keep=None`, the launcher's); the real trainable then prunes its own in
its worker (`RecordStore.prune`), which this trial leaves out: it costs the driver nothing.

    overhead per trial = (wall x slots - sum of the trials' own run time) / trials

where a trial's own run time is Tune's `time_total_s` (its function's time) and wall runs from
building the Tuner to `fit()` returning.

It also prints the wall per trial over the first `--window` trials (from the first trial's end,
so Ray's and the actors' start-up is left out) and over the last `--window`, and their ratio:
Tune's experiment snapshots cost in proportion to the trials so far, so the ratio shows how the
cost per trial grows with the study. `--baseline` runs the fit without the launcher's
`driver_settings` (Tune's automatic loggers back: CSV beside the JSON and TensorBoard ones), to
compare the two in one sitting. Ray runs as the CLI starts it (no worker output to the driver).

    uv run python benchmarks/driver_memory.py                      # 1,000 trials, 2 slots
    uv run python benchmarks/driver_memory.py --trials 300 --every 50 [--baseline]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import study  # noqa: F401  (sets RAY_ENABLE_UV_RUN_RUNTIME_ENV=0 before Ray is imported)
from benchmarks.machine import describe_cpu

# isort: split
from ray import tune

from study.launcher import build_tuner, driver_settings
from study.plan import Objective, StudySpec
from study.ray_runtime import init_local


def tiny_trial(config: dict[str, Any]) -> None:
    """Reports `reports` times, each with a small checkpoint, like the real trainable's shape."""
    for i in range(config["reports"]):
        time.sleep(config["sleep"])
        with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as tmp:
            Path(tmp, "checkpoint.pt").write_bytes(os.urandom(4096))
            metrics = {"step": (i + 1) * 10, "mi/cat": config["x"] * (i + 1) / config["reports"], "loss/d": 1.0}
            Path(tmp, "infogan-checkpoint.json").write_text(json.dumps({"step": metrics["step"], "metrics": metrics}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


class MemoryLog(tune.Callback):
    """The driver's RSS every `every` finished trials (this callback runs in the driver)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.done = 0
        self.start = time.perf_counter()
        self.rss: dict[int, float] = {}
        self.at: dict[int, float] = {}  # seconds since the Tuner was built, at each print
        self.ended: list[float] = []  # seconds since the Tuner was built, at each trial's end

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        self.ended.append(time.perf_counter() - self.start)
        if self.done % self.every == 0:
            mib = psutil.Process().memory_info().rss / 2**20  # (a Process is not picklable: Tune saves callbacks)
            elapsed = time.perf_counter() - self.start
            self.rss[self.done], self.at[self.done] = mib, elapsed
            print(f"[driver_memory] {self.done:5d} trials  RSS {mib:7.1f} MiB  {elapsed:7.1f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100, help="print the RSS every N finished trials")
    parser.add_argument("--reports", type=int, default=3, help="reports (each with a checkpoint) per trial")
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds before each report")
    parser.add_argument("--slots", type=int, default=os.cpu_count() or 1, help="concurrent trials (Ray CPUs)")
    parser.add_argument("--storage-path", help="where the experiment goes (default: a temporary folder)")
    parser.add_argument("--window", type=int, default=100, help="trials in the first and last windows")
    parser.add_argument("--baseline", action="store_true", help="Tune's defaults, not the launcher's driver_settings")
    args = parser.parse_args()

    init_local(num_cpus=args.slots, verbose=False)
    with tempfile.TemporaryDirectory(prefix="driver-memory-") as tmp:
        spec = StudySpec(kind="sweep", name="driver-memory", storage_path=args.storage_path or tmp,
                         space="benchmark", objectives=(Objective("mi/cat", "max"),), num_samples=args.trials,
                         trials=args.trials)  # fmt: skip
        param_space = {"x": tune.uniform(0, 1), "reports": args.reports, "sleep": args.sleep}
        log = MemoryLog(args.every)
        tuner = build_tuner(spec, param_space, callbacks=[log],
                            trainable=tune.with_resources(tiny_trial, {"cpu": 1}))  # fmt: skip
        start = time.perf_counter()
        with contextlib.nullcontext() if args.baseline else driver_settings():
            results = tuner.fit()
        wall = time.perf_counter() - start
    own = sum(float(r.metrics.get("time_total_s", 0.0)) for r in results)
    trials = len(results)
    settings = "baseline (Tune's defaults)" if args.baseline else "driver_settings"
    print(f"[driver_memory] CPU: {describe_cpu()}, {args.slots} slots, {settings}")
    print(f"[driver_memory] {trials} trials ({results.num_errors} errors), {args.reports} reports each, "
          f"wall {wall:.1f} s, {wall / trials:.3f} s/trial, trials' own time {own / trials:.3f} s each")  # fmt: skip
    print(
        f"[driver_memory] overhead per trial (wall x slots - own) / trials: {(wall * args.slots - own) / trials:.3f} s"
    )
    ended, window = log.ended, min(args.window, (len(log.ended) - 1) // 2)
    if window > 0:
        first = (ended[window] - ended[0]) / window  # trial 1's end to trial window+1's
        last = (ended[-1] - ended[-1 - window]) / window
        print(f"[driver_memory] wall per trial, first {window}: {first:.3f} s, last {window}: {last:.3f} s, "
              f"last / first: {last / first:.2f}")  # fmt: skip
    rss = log.rss
    first = min((n for n in rss if n >= 200), default=None)
    if first is not None and max(rss) > first:
        last = max(rss)
        steady = ((log.at[last] - log.at[first]) * args.slots - own / trials * (last - first)) / (last - first)
        print(f"[driver_memory] overhead per trial from trial {first} to {last} (actors started): {steady:.3f} s")
        growth = (rss[last] - rss[first]) / rss[first]
        per_trial = (rss[last] - rss[first]) * 1024 / (last - first)
        print(f"[driver_memory] RSS growth trial {first} -> {last}: {100 * growth:+.1f}% ({per_trial:.1f} KiB/trial)")
    return 0 if results.num_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
