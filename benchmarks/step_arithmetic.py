"""One training step against the arithmetic limit: FLOPs, rate and the fraction of a matmul's rate.

For the paper's MNIST networks (1x28x28 images, width 1) at batch 128, this counts one training
step's floating-point operations with torch's `FlopCounterMode` (forward and backward of D, G and
Q, all three updates), times `--steps` steps after `--warmup` (`benchmarks.packed_throughput.
time_steps`) in each precision, and divides the step's rate by what a square fp32 or bf16 matmul
(`--matmul-size`, 2048) reaches on the same threads in the same process: the fraction says how
near the step is to the arithmetic this CPU (or GPU) can do, not how it compares with another
machine. A CPU without native bf16 (no AVX512-BF16 or AMX) emulates it: both its bf16 rates are
then low, and the fraction still says how well the step uses what there is.

The default dataset is the procedural `basicprop-line` (1x28x28, as MNIST: the same networks and
FLOPs, and no files needed); `--dataset mnist --data-root DIR` reads MNIST instead.

    uv run python benchmarks/step_arithmetic.py                       # fp32 and bf16, 2 threads
    uv run python benchmarks/step_arithmetic.py --precisions fp32 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.*` when run as a script

from benchmarks.machine import cpu_name

DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def matmul_gflops(precision: str, *, size: int, device: str, seconds: float = 2.0) -> float:
    """GFLOP/s of `size` x `size` matmuls in `precision`, after one warm-up, over ~`seconds`."""
    import torch

    dtype = getattr(torch, DTYPES[precision])
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    (a @ b).sum().item()  # warm-up, and waits for the device
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or reps < 2:
        c = a @ b
        reps += 1
    c.sum().item()
    return 2 * size**3 * reps / (time.perf_counter() - t0) / 1e9


def step_flops(trainer) -> int:
    """Floating-point operations of one `trainer.train_step()` (torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    return counter.get_total_flops()


def measure(args: argparse.Namespace) -> list[dict]:
    import torch

    from benchmarks.packed_throughput import time_steps
    from trainables.config import InfoGANConfig
    from trainables.loop import Trainer

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    rows = []
    for precision in args.precisions:
        config = InfoGANConfig(
            dataset=args.dataset, data_root=args.data_root, batch_size=args.batch_size, precision=precision, steps=10**6
        )
        trainer = Trainer(config, device=args.device)
        flops = step_flops(trainer)
        timing = time_steps(trainer, steps=args.steps, warmup=args.warmup)
        per_step = timing.seconds / timing.steps
        step_rate = flops / per_step / 1e9
        matmul = matmul_gflops(precision, size=args.matmul_size, device=args.device)
        rows.append({
            "precision": precision, "gflop_per_step": flops / 1e9, "s_per_step": per_step,
            "step_gflops": step_rate, "matmul_gflops": matmul, "fraction": step_rate / matmul,
            "steps_timed": timing.steps,
        })  # fmt: skip
        print(
            f"{precision:>5}  {flops / 1e9:7.1f} GFLOP/step  {per_step:7.3f} s/step  {step_rate:7.1f} GFLOP/s  "
            f"matmul {matmul:7.1f} GFLOP/s  fraction {step_rate / matmul:5.2f}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precisions", type=lambda s: s.split(","), default=["fp32", "bf16"], help="default fp32,bf16")
    p.add_argument("--dataset", default="basicprop-line", help="a 1x28x28 dataset (default %(default)s)")
    p.add_argument("--data-root", default="", help="for --dataset mnist (default ./data)")
    p.add_argument("--batch-size", type=int, default=128, help="default %(default)s (the paper's)")
    p.add_argument("--steps", type=int, default=20, help="timed steps (default %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch threads on a CPU (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default %(default)s)")
    p.add_argument("--matmul-size", type=int, default=2048, help="side of the reference matmul (default %(default)s)")
    p.add_argument("--out", help="also write the figures as JSON here")
    args = p.parse_args(argv)
    bad = [x for x in args.precisions if x not in DTYPES]
    if bad:
        p.error(f"--precisions {','.join(bad)}: choose from {', '.join(DTYPES)}")
    import torch

    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    print(f"{name}, {args.device}, {args.threads if args.device == 'cpu' else '-'} thread(s), batch {args.batch_size}")
    rows = measure(args)
    if args.out:
        Path(args.out).write_text(json.dumps({"device": name, "threads": args.threads, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
