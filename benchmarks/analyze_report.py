"""Time `infogan-study analyze` on a synthetic Tune experiment that needs no training.

`make_synthetic_experiment` writes the per-trial files Ray Tune 2.x leaves on disk (params.json /
result.json / progress.csv / checkpoint_NNNNNN/checkpoint.pt, error.txt; no trial records, as in
a folder written before they existed), with untrained but real tiny InfoGAN checkpoints
(basicprop-line, width 0.125, weights only) and made-up curves. Groups of 4 seeds; group 0 is a
vanilla GAN. With 10 or more trials, trials 5 and 50 errored (no checkpoint), 6 and 77 diverged
(a healthy checkpoint before the divergence) and the last one is still pending: Tune has not
started it, so it has no folder.

    uv run python benchmarks/analyze_report.py                 # 100 trials x 200 reports, --quick
    uv run python benchmarks/analyze_report.py --trials 1000 --workers 2  # scoring in 2 processes
    uv run python benchmarks/analyze_report.py --full-trials 2  # + per-trial time of the full protocol

Phases, each printed when done (wall and CPU seconds; CPU is the steadier figure on a shared
machine): building the folder; a cold `analyze` of a small experiment beside it, which trains the
dataset classifier into the storage folder's cache (`--cold-trials`); `analyze --quick` of the big
one with the classifier cached; `report`. The total is analyze + report. Each command is a fresh
`infogan-study` process, so the times include Python's imports.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEEDS_PER_GROUP = 4
REPORT_EVERY = 10
DATE = "2026-01-01_00-00-00"
BASE = {"dataset": "basicprop-line", "width": 0.125, "batch_size": 8, "report_every": REPORT_EVERY}
LAMBDAS = (0.0, 0.5, 1.0, 2.0, 4.0)
NOISES = (0.0, 0.05, 0.1, 0.2, 0.3)


def _group_config(group: int) -> dict:
    """Group 0: vanilla GAN; the others: a (lambda_info, instance_noise) grid, then learning rates."""
    if group == 0:
        return {"n_cat_codes": 0, "n_cont_codes": 0}
    return {
        "lambda_info": LAMBDAS[group % 5],
        "instance_noise": NOISES[group // 5 % 5],
        "lr_d": 2e-4 * (1 + group // 25),
    }


def _report(step: int, total: int, final_mi: float, rng: np.random.Generator, *, broken: bool) -> dict:
    """The loop's metric keys, with an MI curve rising to final_mi and slowly drifting losses."""
    t = step / total
    mi = float(np.clip(final_mi * (1 - math.exp(-6 * t)) + rng.normal(0, 0.01), 0, 1))
    return {
        "mi/cat": mi, "loss/d": math.nan if broken else 1.3 - 0.3 * t + rng.normal(0, 0.02),
        "loss/g": 0.8 + 0.4 * t + rng.normal(0, 0.02), "diverged": 1.0 if broken else 0.0, "step": float(step),
        "loss/info": 2.3 * (1 - mi), "mi/cat_nats": mi * math.log(10), "mi/cont": 0.3 * t,
        "d/real": 0.6 + 0.2 * t, "d/fake": 0.4 - 0.2 * t, "instance_noise": 0.0, "perf/images_per_s": 900.0,
    }  # fmt: skip


def _write_checkpoint(folder: Path, config: dict, step: int, seed: int, metrics: dict) -> None:
    import torch

    from trainables.checkpoint import write_checkpoint
    from trainables.config import InfoGANConfig
    from trainables.models import InfoGAN

    cfg = InfoGANConfig.from_dict(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = InfoGAN(cfg, (1, 28, 28))
    state = {
        "config": cfg.to_dict(),
        "step": step,
        "image_shape": (1, 28, 28),
        "model": model.state_dict(),
        "metrics": metrics,
    }
    write_checkpoint(state, folder)


def _write_trial(root: Path, index: int, trial_id: str, config: dict, status: str, reports: int) -> str:
    """One trial folder; returns its name (Tune's `relative_logdir`)."""
    name = f"infogan_trainable_{trial_id}_{index}_seed={config['seed']}_{DATE}"
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    rng = np.random.default_rng(index)
    final_mi = 0.0 if config.get("n_cat_codes") == 0 else float(np.clip(0.55 + 0.4 * rng.random(), 0, 1))
    last = {"error": reports // 20 + 1, "diverged": reports * 3 // 4}.get(status, reports)
    checkpoints = {last} if status != "error" else set()
    if status == "diverged" or index % 10 == 0:
        checkpoints.add(reports // 2)
    lines, rows, elapsed = [], [], 0.0
    for k in range(1, last + 1):
        step = k * REPORT_EVERY
        metrics = _report(step, reports * REPORT_EVERY, final_mi, rng, broken=status == "diverged" and k == last)
        metrics |= {"status": "diverged" if metrics["diverged"] else "completed" if k == reports else "running",
                    "reason": f"diverged at step {step}: loss/d=nan" if metrics["diverged"] else ""}  # fmt: skip
        elapsed += 0.5
        done = k == last and status != "error"
        tune = {"timestamp": 1767225600 + k, "should_checkpoint": k in checkpoints, "done": done,
                "training_iteration": k, "trial_id": trial_id, "date": DATE, "time_this_iter_s": 0.5,
                "time_total_s": elapsed, "pid": 1000 + index, "hostname": "synthetic", "node_ip": "127.0.0.1",
                "time_since_restore": elapsed, "iterations_since_restore": k}  # fmt: skip
        if k in checkpoints:
            tune["checkpoint_dir_name"] = f"checkpoint_{k - 1:06d}"
            _write_checkpoint(folder / tune["checkpoint_dir_name"], config, step, index, metrics)
        lines.append(json.dumps(metrics | tune | {"config": config}))
        rows.append(metrics | tune)
    (folder / "result.json").write_text("".join(line + "\n" for line in lines))
    header = list(rows[0])
    csv = [",".join(header)] + [",".join(str(row.get(key, "")) for key in header) for row in rows]
    (folder / "progress.csv").write_text("\n".join(csv) + "\n")
    if status == "error":
        (folder / "error.txt").write_text(
            f"Failure # 1 (occurred at {DATE})\nTraceback (most recent call last):\n  File \"tune_trainable.py\", "
            "line 1, in infogan_trainable\nRuntimeError: CUDA error: an illegal memory access was encountered\n"
        )  # fmt: skip
        (folder / "error.pkl").write_bytes(b"")
    return name


def make_synthetic_experiment(path: str | Path, *, trials: int = 100, reports: int = 200) -> Path:
    """Write a Tune-like experiment folder of `trials` trials x `reports` reports at `path`; returns it."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=False)
    special = {5: "error", 6: "diverged", 50: "error", 77: "diverged", trials - 1: "pending"} if trials >= 10 else {}
    for index in range(trials):
        trial_id = f"5ynth_{index:05d}"
        config = (
            BASE
            | {"steps": reports * REPORT_EVERY}
            | _group_config(index // SEEDS_PER_GROUP)
            | {"seed": index % SEEDS_PER_GROUP}
        )
        status = special.get(index, "completed")
        if status != "pending":
            _write_trial(root, index, trial_id, config, status, reports)
    return root


def _time_command(*argv: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `infogan-study ...` process (its workers included)."""
    start, cpu = time.perf_counter(), _children_cpu_s()
    command = [sys.executable, "-c", "import sys; from study.cli import main; sys.exit(main())", *argv]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return round(time.perf_counter() - start, 2), round(_children_cpu_s() - cpu, 2)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _phase(results: dict, name: str, seconds: tuple[float, float]) -> None:
    results[name] = {"wall_s": seconds[0], "cpu_s": seconds[1]}
    print(f"{name:<28} {seconds[0]:8.2f} s wall {seconds[1]:8.2f} s CPU", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="trials of the timed experiment (default 100)")
    parser.add_argument("--reports", type=int, default=200, help="reports per trial (default 200)")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="analyze --workers N: score in N local processes (default 0: in the analyze process)",
    )
    parser.add_argument(
        "--cold-trials",
        type=int,
        default=8,
        metavar="N",
        help="trials of the small experiment whose cold analyze trains the classifier (default 8)",
    )
    parser.add_argument("--full-trials", type=int, default=0, metavar="N",
                        help="also time the full protocol on N InfoGAN trials (about a minute each)")  # fmt: skip
    args = parser.parse_args(argv)
    import pyarrow.parquet as pq

    workers = ("--workers", str(args.workers)) if args.workers else ()
    with tempfile.TemporaryDirectory(prefix="analyze-bench-") as tmp:
        results: dict = {"trials": args.trials, "reports": args.reports, "workers": args.workers}
        start, cpu = time.perf_counter(), time.process_time()
        experiment = make_synthetic_experiment(Path(tmp) / "synthetic", trials=args.trials, reports=args.reports)
        _phase(results, "build", (round(time.perf_counter() - start, 2), round(time.process_time() - cpu, 2)))
        cold = make_synthetic_experiment(Path(tmp) / "cold", trials=args.cold_trials, reports=args.reports)
        _phase(
            results,
            f"analyze cold ({args.cold_trials} trials)",
            _time_command("analyze", str(cold), "--quiet", "--quick"),
        )
        analyze = _time_command("analyze", str(experiment), "--quiet", "--quick", *workers)
        _phase(results, "analyze --quick", analyze)
        scoring = pq.read_table(experiment / "trials.parquet", columns=["scoring_s"]).column(0).to_numpy()
        results["quick_scoring_s_per_trial_median"] = round(float(np.nanmedian(scoring)), 3)
        report = _time_command("report", str(experiment), "-o", str(Path(tmp) / "r.html"))
        _phase(results, "report", report)
        _phase(results, "total (analyze + report)", tuple(round(a + r, 2) for a, r in zip(analyze, report)))
        if args.full_trials:  # the first 4 trials are vanilla GANs (no codes): N InfoGAN trials after them
            full = make_synthetic_experiment(Path(tmp) / "full", trials=SEEDS_PER_GROUP + args.full_trials, reports=20)
            _phase(results, "analyze (full protocol)", _time_command("analyze", str(full), "--quiet", *workers))
            trials = pq.read_table(full / "trials.parquet", columns=["model_kind", "scoring_s"]).to_pandas()
            for kind, rows in trials.groupby("model_kind"):
                results[f"full_scoring_s_per_trial_median_{kind}"] = round(float(rows["scoring_s"].median()), 1)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
