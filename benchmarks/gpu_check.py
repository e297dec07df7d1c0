"""GPU check (issue 18): what one GPU does with this project, in one run of about 8 minutes.

Three parts, each printed with the GPU's name and written to one JSON file (`--out`):

1. `single`: the single training loop (`trainables.loop.Trainer`) at the paper's MNIST networks
   (`--space infogan-paper`, batch 128), steps/s and images/s in fp32 and in bf16 autocast
   (`precision`), after warm-up steps, with the peak GPU memory.
2. `packed`: K runs packed into one network (`trainables.packed.PackedTrainer`, seeds 0..K-1) at
   K = 1, 4, 16, 64: images/s over all members and peak GPU memory (torch.cuda.max_memory_allocated),
   against K separate runs. K separate runs in sequence reach the single run's images/s (only the
   wall time grows), so "separate" is part 1's rate at the same precision and ratio = packed /
   separate.
3. `seeds`: the paper's MNIST configuration over 16 seeds, packed into one trial, trained to 5,000
   steps and scored through the product's own commands: `infogan-study sweep SPACE --seeds 16
   --pack 16 --gpus-per-trial 1 ...` then `infogan-study analyze` (trials.parquet). Printed per
   seed: gen/cat_acc (the MNIST classifier's reading of G's digits per category),
   q/real_hungarian_acc and the label-free selection/* columns; then the report's own check of
   the label-free pick (`analysis.report.get_selection_info`): each selection/* column's Spearman
   correlation with gen/cat_acc over the candidates (final MI bound >= 0.5), the model it would
   pick and its regret, and the pick's regret (the best gen/cat_acc minus the pick's). The sweep
   and analyze wall times too. The experiment folder keeps every
   member's checkpoints, trials.parquet and selection.parquet for later study.

Every part has a budget: parts 1 and 2 time at most `--bench-steps` steps or `--bench-seconds`
per measurement (about a minute in all); part 3 trains `--steps` steps and is interrupted (Ctrl-C,
as a person would) after `--sweep-seconds` (300), its members then scored at their last
checkpoint. The MNIST classifier the sweep's probe needs (3,000 steps on one CPU thread, cached
for analyze too) trains in a background process during parts 1-2. Sizing part 3: one paper step
at batch 128 is 36.8 GFLOP, so 16 seeds x 5,000 steps are 2.9 PFLOP: 4 s at the H200's ~790
TFLOP/s bf16 peak, 40-190 s at the 2-10% of it small grouped convolutions may reach; Ray's start,
the probes and 5 checkpoints of 16 x 160 MB come on top. Not yet run on a GPU.
`--tiny` runs all three parts on the CPU with tiny networks, few steps, K = 1, 2 and 2 seeds on
procedural data (basicprop-line: no dataset files, nothing trained to read it), the sweep and
analyze included: tests/test_gpu_check.py runs it.

    uv run python benchmarks/gpu_check.py --data-root ../shared/datasets --out gpu_check.json
    uv run python benchmarks/gpu_check.py --tiny --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.*` when run as a script

from benchmarks.machine import describe_cpu
from benchmarks.packed_throughput import Timing, time_steps
from trainables.config import InfoGANConfig
from trainables.data import load_data
from trainables.errors import BadInputError
from trainables.loop import Trainer
from trainables.packed import PackedTrainer

if TYPE_CHECKING:
    from analysis.report import SelectionInfo

PARTS = ("single", "packed", "seeds")
PREPARE_PROBE = "--prepare-probe"  # first argument of the background job that trains part 3's classifier
PRECISIONS = ("fp32", "bf16")
# What --tiny changes (explicit options still win): CPU, tiny networks, procedural data, seconds.
TINY = {
    "device": "cpu", "dataset": "basicprop-line", "width": 0.125, "batch_size": 16, "bench_steps": 10,
    "warmup": 2, "bench_seconds": 1.0, "ks": "1,2", "seeds": 2, "pack": 2, "steps": 20, "report_every": 10,
    "sweep_seconds": 300.0, "workers": 0, "quick": True, "cpus_per_trial": 1.0,
}  # fmt: skip


def _o(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass
class Options:
    data_root: str = _o("../shared/datasets", "folder holding MNIST/raw/*-ubyte (torchvision layout); no download")
    out: str = _o("gpu_check.json", "write every figure to this JSON file")
    parts: str = _o(",".join(PARTS), "parts to run, comma-separated (packed runs single too: its separate rate)")
    tiny: bool = _o(
        False, "the CPU smoke run (tests/test_gpu_check.py): " + ", ".join(f"{k}={v}" for k, v in TINY.items())
    )
    device: str = _o("cuda", "cuda or cpu")
    space: str = _o("infogan-paper", "search space: its constant values configure parts 1-2; part 3 sweeps it")
    dataset: str = _o("mnist", "dataset of every part")
    width: float = _o(1.0, "network width multiplier (1: the paper's MNIST networks)")
    batch_size: int = _o(128, "batch size of every run (of every member of a pack)")
    bench_steps: int = _o(500, "parts 1-2: timed steps per measurement, at most")
    warmup: int = _o(10, "parts 1-2: untimed steps before timing (first calls, cuDNN's algorithm search)")
    bench_seconds: float = _o(8.0, "parts 1-2: time fewer steps where --bench-steps would take longer than this")
    ks: str = _o("1,4,16,64", "part 2: pack sizes K, comma-separated")
    precision: str = _o("bf16", "parts 2-3: fp32 or bf16 autocast (part 1 measures both)")
    seeds: int = _o(16, "part 3: seeds 0..N-1 of the configuration")
    pack: int = _o(16, "part 3: members per pack, one Tune trial each (sweep --pack)")
    steps: int = _o(5000, "part 3: training steps of every seed")
    report_every: int = _o(1000, "part 3: steps between reports: the gen/cat_acc probe and a checkpoint of "
                           "every member (the paper's networks: 160 MB with Adam's state)")  # fmt: skip
    sweep_seconds: float = _o(300.0, "part 3: interrupt the sweep after this long; analyze scores the last checkpoints")
    cpus_per_trial: float = _o(2.0, "part 3: CPUs of the pack's trial (its torch threads; the probe's classifier)")
    workers: int = _o(-1, "part 3: analyze --workers (-1: one per CPU, at most one per seed)")
    quick: bool = _o(False, "part 3: analyze --quick (a few hundred samples per score)")
    storage_path: str = _o("results/gpu-check", "part 3: the sweep's --storage-path")


def parse_options(argv: list[str] | None) -> Options:
    """Options from the command line; with --tiny, TINY replaces the defaults it names."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    for f in dataclasses.fields(Options):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            p.add_argument(flag, type=kind, default=f.default, help=f"{f.metadata['help']} (default {f.default})")
    if p.parse_known_args(argv)[0].tiny:
        p.set_defaults(**TINY)
    opts = Options(**vars(p.parse_args(argv)))
    unknown = set(opts.parts.split(",")) - set(PARTS)
    if unknown or opts.precision not in PRECISIONS:
        p.error(f"--parts takes {', '.join(PARTS)}; --precision fp32 or bf16")
    # absolute: the sweep's trials run in their own folders, the background job wherever
    opts.data_root = str(Path(opts.data_root).expanduser().resolve())
    opts.storage_path = str(Path(opts.storage_path).expanduser().resolve())
    return opts


class Log:
    """Progress lines on stdout, each with the seconds since the start."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def __call__(self, message: str) -> None:
        print(f"[gpu-check {self.elapsed():6.1f}s] {message}", flush=True)


def device_info(device: torch.device) -> dict[str, Any]:
    cuda = device.type == "cuda"
    return {
        "type": device.type,
        "name": torch.cuda.get_device_name(device) if cuda else f"cpu: {describe_cpu()}",
        "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32, "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
    }  # fmt: skip


def base_config(opts: Options) -> InfoGANConfig:
    """The space's constant values (the paper's MNIST model for infogan-paper) at the options' batch and width."""
    from search_spaces import load_space

    _, space = load_space(opts.space)
    constants = {k: v for k, v in space.items() if isinstance(v, (bool, int, float, str))}
    return InfoGANConfig.from_dict({**constants, "dataset": opts.dataset, "data_root": opts.data_root,
                                    "batch_size": opts.batch_size, "width": opts.width})  # fmt: skip


# ---------------------------------------------------------------------------------- parts 1 and 2
def _measure(trainer: Trainer | PackedTrainer, opts: Options) -> dict[str, float | None]:
    """Images/s and steps/s of `trainer`, and the peak GPU memory since it was built (None on CPU)."""
    timing: Timing = time_steps(trainer, steps=opts.bench_steps, warmup=opts.warmup, max_seconds=opts.bench_seconds)
    peak = torch.cuda.max_memory_allocated() / 2**20 if trainer.device.type == "cuda" else None
    return {"images_per_s": timing.images_per_s, "steps_per_s": timing.steps_per_s, "steps_timed": timing.steps,
            "seconds": timing.seconds, "peak_mib": peak}  # fmt: skip


def _fresh(device: torch.device) -> None:
    """Free the last measurement's tensors and start counting peak memory again."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def single_part(opts: Options, base: InfoGANConfig, data: Any, log: Log) -> dict[str, Any]:
    out: dict[str, Any] = {"config": base.to_dict()}
    for precision in PRECISIONS:
        _fresh(data.device)
        out[precision] = _measure(Trainer(base.replace(precision=precision), device=data.device, data=data), opts)
        r = out[precision]
        log(f"single loop {precision}: {r['steps_per_s']:.1f} steps/s, {r['images_per_s']:.0f} images/s "
            f"({r['steps_timed']} steps)")  # fmt: skip
    return out


def packed_part(opts: Options, base: InfoGANConfig, data: Any, single: dict[str, Any], log: Log) -> dict[str, Any]:
    config = base.replace(precision=opts.precision)
    separate = single[opts.precision]["images_per_s"]
    rows = []
    for k in (int(x) for x in opts.ks.split(",")):
        _fresh(data.device)
        r = _measure(PackedTrainer([config.replace(seed=i) for i in range(k)], device=data.device, data=data), opts)
        rows.append({"k": k, **r, "separate_images_per_s": separate, "ratio": r["images_per_s"] / separate})
        peak = "" if r["peak_mib"] is None else f", peak {r['peak_mib']:.0f} MiB"
        log(
            f"packed K={k} {opts.precision}: {r['images_per_s']:.0f} images/s ({rows[-1]['ratio']:.2f}x separate){peak}"
        )
    return {"precision": opts.precision, "separate_images_per_s": separate,
            "separate_peak_mib": single[opts.precision]["peak_mib"], "rows": rows}  # fmt: skip


# ---------------------------------------------------------------------------------- part 3
def start_probe_classifier(opts: Options, argv: list[str]) -> subprocess.Popen | None:
    """Part 3's sweep first trains (or finds) the classifier its generator probe reads G's images
    with (`analysis.prepare_probe`: 3,000 steps on one CPU thread for MNIST, about a minute, cached
    in the storage folder's .cache, which `analyze` reads too). Where parts 1-2 run first and the
    machine has cores to spare, a background process trains it meanwhile (None: not worth it)."""
    parts = opts.parts.split(",")
    if "seeds" not in parts or not {"single", "packed"} & set(parts) or (os.cpu_count() or 1) < 4:
        return None
    return subprocess.Popen([sys.executable, __file__, PREPARE_PROBE, *argv])


def prepare_probe_classifier(opts: Options) -> None:
    """The background job: what the sweep's launcher does before its trials start."""
    from analysis import prepare_probe

    prepare_probe([base_config(opts)], Path(opts.storage_path) / ".cache")


def _run_cli(argv: list[str], *, timeout: float | None, log: Log) -> tuple[int, bool, float]:
    """`infogan-study ARGV` in its own process (its own Ray, its own GPU memory), its output
    streamed; Ctrl-C (SIGINT) after `timeout` seconds. Returns (exit status, interrupted, seconds)."""
    log("$ infogan-study " + " ".join(argv))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "study.cli", *argv])
    interrupted = False
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"interrupting after {timeout:.0f} s (--sweep-seconds)")
        interrupted = True
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    return code, interrupted, time.perf_counter() - start


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def summarise_seeds(rows: list[dict[str, Any]], info: SelectionInfo) -> dict[str, Any]:
    """Per seed (trials.parquet's `rows`): gen/cat_acc, q/real_hungarian_acc and selection/*; then
    the report's own check of the label-free pick (`info`, from `get_selection_info`: each signal's
    Spearman correlation with gen/cat_acc over the candidates, its pick and regret), so this script
    and the report give the same numbers."""
    from analysis import SCORE_COLUMNS

    signals = [c for c in SCORE_COLUMNS if c.startswith("selection/")]
    members = [{"seed": r["seed"], "trial_id": r["trial_id"], "status": r["status"], "step": r.get("last_step"),
                **{c: _finite(r.get(c)) for c in ("gen/cat_acc", "q/real_hungarian_acc", *signals)}}
               for r in sorted(rows, key=lambda r: r["seed"])]  # fmt: skip
    spearman = {c.column: {"rho": _finite(c.spearman), "n": c.n, "pick": c.pick or None, "regret": _finite(c.regret)}
                for c in info.checks}  # fmt: skip
    chosen = next((m for m in members if m["trial_id"] == info.pick), None)
    pick_acc, best = _finite(info.pick_score), _finite(info.best_score)
    return {"members": members, "spearman": spearman,
            "pick": {"signal": info.signal, "trial_id": info.pick or None, "tied": list(info.tied),
                     "seed": chosen["seed"] if chosen else None, "gen/cat_acc": pick_acc, "best_gen/cat_acc": best,
                     "regret": best - pick_acc if best is not None and pick_acc is not None else None}}  # fmt: skip


def seeds_part(opts: Options, device: torch.device, classifier: subprocess.Popen | None, log: Log) -> dict[str, Any]:
    from study.cli import main as cli

    if classifier is not None:
        log("waiting for the probe's classifier (trained in the background since the start)")
        classifier.wait()
    storage = Path(opts.storage_path)
    name = f"gpu-check-{opts.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    gpus = "1" if device.type == "cuda" else "0"
    sweep = ["sweep", opts.space, "--dataset", opts.dataset, "--data-root", opts.data_root,
             "--seeds", str(opts.seeds), "--pack", str(opts.pack), "--steps", str(opts.steps),
             "--batch-size", str(opts.batch_size), "--gpus-per-trial", gpus,
             "--cpus-per-trial", f"{opts.cpus_per_trial:g}", "--set", f"precision={opts.precision}",
             "--set", f"report_every={opts.report_every}", "--set", f"width={opts.width:g}",
             "--name", name, "--storage-path", str(storage)]  # fmt: skip
    workers = opts.workers if opts.workers >= 0 else min(opts.seeds, os.cpu_count() or 1)
    analyze = ["analyze", str(storage / name), "--workers", str(workers), "--data-root", opts.data_root, "--quiet",
               *(["--quick"] if opts.quick else [])]  # fmt: skip
    code, interrupted, sweep_s = _run_cli(sweep, timeout=opts.sweep_seconds, log=log)
    out: dict[str, Any] = {"sweep_command": sweep, "analyze_command": analyze, "experiment": str(storage / name),
                           "sweep_exit": code, "interrupted": interrupted, "sweep_wall_s": sweep_s}  # fmt: skip
    log(f"sweep ended with exit status {code} after {sweep_s:.0f} s; $ infogan-study {' '.join(analyze)}")
    start = time.perf_counter()
    out["analyze_exit"] = cli(analyze)
    out["analyze_wall_s"] = time.perf_counter() - start
    trials = storage / name / "trials.parquet"
    if out["analyze_exit"] == 0 and trials.is_file():
        from analysis.report import get_selection_info, load_tables
        from analysis.schema import read_table

        info = get_selection_info(load_tables(storage / name))
        out.update(summarise_seeds(read_table("trials", trials).to_pylist(), info))
    log(f"analyze ended with exit status {out['analyze_exit']} after {out['analyze_wall_s']:.0f} s")
    return out


# ---------------------------------------------------------------------------------- printing
def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def print_results(results: dict[str, Any]) -> None:
    """The figures as markdown tables, each headed with the device's name."""
    gpu = results["device"]["name"]
    if "single" in results:
        s, c = results["single"], results["single"]["config"]
        print(f"\n## 1. Single loop on {gpu}: {c['dataset']}, batch {c['batch_size']}, width {c['width']:g}\n")
        rows = [[p, f"{s[p]['steps_per_s']:.1f}", f"{s[p]['images_per_s']:.0f}", _f(s[p]["peak_mib"], 0)]
                for p in PRECISIONS]  # fmt: skip
        print(_table(["precision", "steps/s", "images/s", "peak MiB"], rows))
    if "packed" in results:
        p = results["packed"]
        print(
            f"\n## 2. K packed runs vs K separate runs on {gpu} ({p['precision']}; separate: the single loop's "
            f"{p['separate_images_per_s']:.0f} images/s, peak {_f(p['separate_peak_mib'], 0)} MiB)\n"
        )
        rows = [[str(r["k"]), f"{r['images_per_s']:.0f}", f"{r['separate_images_per_s']:.0f}", f"{r['ratio']:.2f}",
                 _f(r["peak_mib"], 0)] for r in p["rows"]]  # fmt: skip
        print(_table(["K", "packed images/s", "separate images/s", "packed/separate", "peak MiB"], rows))
    if "seeds" in results:
        s = results["seeds"]
        print(f"\n## 3. Seeds packed on {gpu}: sweep {s['sweep_wall_s']:.0f} s (exit {s['sweep_exit']}"
              f"{', interrupted' if s['interrupted'] else ''}), analyze {s['analyze_wall_s']:.0f} s "
              f"(exit {s['analyze_exit']}); {s['experiment']}\n")  # fmt: skip
        if "members" in s:
            signals = [c for c in s["members"][0] if c.startswith("selection/")] if s["members"] else []
            head = ["seed", "status", "step", "gen/cat_acc", "q/real_hungarian_acc", *signals]
            rows = [[str(m["seed"]), m["status"], str(m["step"]), *(_f(m[c]) for c in head[3:])] for m in s["members"]]
            print(_table(head, rows))
            rhos = (
                ", ".join(
                    f"{c} {_f(v['rho'], 2)} (n={v['n']}, regret {_f(v['regret'])})" for c, v in s["spearman"].items()
                )
                or "none (no labelled candidate)"
            )
            k = s["pick"]
            print(
                f"\nSpearman with gen/cat_acc: {rhos}\nLabel-free pick ({k['signal']}): seed {k['seed']}, "
                f"gen/cat_acc {_f(k['gen/cat_acc'])}, best {_f(k['best_gen/cat_acc'])}, regret {_f(k['regret'])}"
            )
    print(f"\nwall time {results['wall_s']:.0f} s")


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: the file is standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def run(opts: Options, argv: list[str]) -> dict[str, Any]:
    log = Log()
    device = torch.device(opts.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda: no CUDA GPU is visible (use --tiny or --device cpu)")
    classifier = start_probe_classifier(opts, argv)
    results: dict[str, Any] = {"device": device_info(device), "options": dataclasses.asdict(opts)}
    log(f"device: {results['device']['name']}; parts: {opts.parts}")
    parts = opts.parts.split(",")
    if "single" in parts or "packed" in parts:
        base = base_config(opts)
        data = load_data(base, device=device)
        results["single"] = single_part(opts, base, data, log)
        if "packed" in parts:
            results["packed"] = packed_part(opts, base, data, results["single"], log)
        del data
        _fresh(device)
    if "seeds" in parts:
        results["seeds"] = seeds_part(opts, device, classifier, log)
    results["wall_s"] = log.elapsed()
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [PREPARE_PROBE]:
        prepare_probe_classifier(parse_options(argv[1:]))
        return 0
    opts = parse_options(argv)
    try:
        results = run(opts, argv)
    except BadInputError as err:
        print(f"gpu_check: error: {err}", file=sys.stderr)
        return 2
    print_results(results)
    Path(opts.out).write_text(json.dumps(_json_safe(results), indent=1))
    print(f"figures written to {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
