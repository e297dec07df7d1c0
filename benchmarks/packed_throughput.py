"""Throughput of K packed members vs K sequential single runs vs K single runs in separate processes.

For each width and K: images/s over all K runs (after warm-up steps), peak memory, and operators
per member-step (torch.profiler's top-level CPU events over a few steps, divided by steps x K).
Every measurement runs in its own process, so peak RSS (CPU) or peak allocated memory (CUDA) is
its own. "sequential" is one single run timed once per width: K runs one after another reach the
same images/s and memory at every K (only the wall time grows). "processes" starts K single runs
at once, each with torch threads = max(1, threads // K), and counts the images of all of them over
the span from the first timed step to the last.

    uv run python benchmarks/packed_throughput.py --ks 1,4,16,64 --widths 1,0.25 --device cpu
    uv run python benchmarks/packed_throughput.py --device cuda --batch-size 64

Targets (issue 10): packed >= 1.0x sequential images/s at every K on CPU; >= 10x fewer operators
per member-step than a single run at K = 16.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from trainables.loop import Trainer
    from trainables.packed import PackedTrainer


def _configs(args: argparse.Namespace, k: int) -> list:
    from trainables.config import InfoGANConfig

    base = InfoGANConfig(dataset=args.dataset, width=args.width, batch_size=args.batch_size, steps=10**6)
    return [base.replace(seed=i) for i in range(k)]


def _peak_mib(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ops_per_step(trainer, steps: int) -> float:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step()
    return sum(1 for e in prof.events() if e.cpu_parent is None) / steps


@dataclass(frozen=True)
class Timing:
    """Timed training steps of one trainer (a single run or a pack of K runs)."""

    steps: int  # steps timed (after the warm-up)
    seconds: float
    images_per_s: float  # over all of the trainer's runs: steps x batch x K / seconds
    start: float  # time.time() at the first timed step (to line up runs in several processes)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds


def _sync(trainer: Trainer | PackedTrainer) -> None:
    """Wait for the device: the running sums depend on every step queued so far."""
    trainer.sums.tolist()


def time_steps(
    trainer: Trainer | PackedTrainer, *, steps: int, warmup: int, max_seconds: float = math.inf, probe: int = 5
) -> Timing:
    """Time `steps` training steps of a `Trainer` or `PackedTrainer` after `warmup` untimed ones
    (first calls, cuDNN's algorithm search), or fewer: as many as fit in `max_seconds` at the rate
    of `probe` steps timed first. Waits for the device before and after, so a GPU's queue is counted."""
    for _ in range(warmup):
        trainer.train_step()
    _sync(trainer)
    if max_seconds < math.inf and steps > probe:
        t0 = time.perf_counter()
        for _ in range(probe):
            trainer.train_step()
        _sync(trainer)
        per_step = (time.perf_counter() - t0) / probe
        steps = max(probe, min(steps, int(max_seconds / per_step)))
    start, t0 = time.time(), time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    _sync(trainer)
    seconds = time.perf_counter() - t0
    members = getattr(trainer, "k", 1)
    return Timing(steps, seconds, steps * trainer.config.batch_size * members / seconds, start)


def worker(args: argparse.Namespace) -> None:
    """One measurement: `--mode packed` (K members) or `single` (one run); prints one JSON line."""
    import torch

    from trainables.loop import Trainer
    from trainables.packed import PackedTrainer

    torch.set_num_threads(args.threads)
    configs = _configs(args, args.k if args.mode == "packed" else 1)
    trainer = (
        PackedTrainer(configs, device=args.device) if args.mode == "packed" else Trainer(configs[0], device=args.device)
    )
    timing = time_steps(trainer, steps=args.steps, warmup=args.warmup)
    ops = _ops_per_step(trainer, args.profile_steps) / len(configs) if args.profile_steps else float("nan")
    images = args.steps * args.batch_size * len(configs)
    print(json.dumps({"images_per_s": timing.images_per_s, "images": images, "start": timing.start,
                      "end": timing.start + timing.seconds, "peak_mib": _peak_mib(args.device),
                      "ops_per_member_step": ops}))  # fmt: skip


def _run(args: argparse.Namespace, mode: str, k: int, threads: int, profile: bool = True) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--worker", "--mode", mode, "--k", str(k), "--width", str(args.width),
           "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(threads), "--device", args.device, "--dataset", args.dataset,
           "--profile-steps", str(args.profile_steps if profile else 0)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"worker failed ({proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", default="1,4,16,64")
    p.add_argument("--widths", default="1,0.25")
    p.add_argument("--modes", default="packed,sequential,processes")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--dataset", default="basicprop-line")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--profile-steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="packed", help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--width", type=float, default=1.0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    modes = args.modes.split(",")
    print(f"device {args.device}, {args.threads} threads, batch {args.batch_size}, {args.steps} timed steps after "
          f"{args.warmup} warm-up, dataset {args.dataset}")  # fmt: skip
    print("| width | K | mode | images/s | vs sequential | peak memory (MiB) | ops per member-step |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for width in (float(w) for w in args.widths.split(",")):
        args.width = width
        single = _result(_run(args, "single", 1, args.threads))
        for k in (int(x) for x in args.ks.split(",")):
            rows = []
            if "packed" in modes:
                rows.append(("packed", _result(_run(args, "packed", k, args.threads))))
            if "sequential" in modes:
                rows.append(("sequential", single))
            if "processes" in modes:
                procs = [_run(args, "single", 1, max(1, args.threads // k), profile=False) for _ in range(k)]
                results = [_result(proc) for proc in procs]
                span = max(r["end"] for r in results) - min(r["start"] for r in results)
                rows.append(("processes", {"images_per_s": sum(r["images"] for r in results) / span,
                                           "peak_mib": sum(r["peak_mib"] for r in results),
                                           "ops_per_member_step": single["ops_per_member_step"]}))  # fmt: skip
            for mode, r in rows:
                print(f"| {width:g} | {k} | {mode} | {r['images_per_s']:.0f} | "
                      f"{r['images_per_s'] / single['images_per_s']:.2f} | {r['peak_mib']:.0f} | "
                      f"{r['ops_per_member_step']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
