"""How long the label-free selection step takes for M models at the paper's MNIST architecture.

The selection step is what `analyze` adds on top of scoring each model: ModelCentrality over the
population (each generator renders its fixed design once, every model's Q reads every design,
FactorVAE votes in numpy; `analysis.selection.score_pools`) and the pairwise NMI of the models'
assignments of real images. The per-model signals (selection/q_*) come with scoring at no extra
cost. Models are untrained networks of the paper's MNIST architecture (28x28, width 1) with
different seeds, or the final checkpoints of a real experiment with `--experiment`; the time does
not depend on what the models learnt.

Printed: the model count, the wall time in this process (torch's threads) and in N worker
processes (`analyze --workers N`), and, for comparison, the protocol this replaced (fresh FactorVAE
batches of 64 per vote: 2,000 + 1,000 votes and 5,000 variance points per generator, every encoder
on every batch), timed on one generator with a tenth of its counts and scaled up linearly.

    uv run python benchmarks/selection_centrality.py --models 16 --workers 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.*` when run as a script

from analysis import metrics
from analysis.scoring import FULL, cached_model, one_thread_worker, represent_fn
from analysis.selection import GeneratorData, Member, select_models
from benchmarks.machine import describe_cpu
from trainables.checkpoint import write_checkpoint
from trainables.config import InfoGANConfig
from trainables.models import InfoGAN


def make_models(folder: Path, num: int) -> list[str]:
    """`num` untrained checkpoints of the paper's MNIST model (digits-found's codes), seeds 0..num-1."""
    paths = []
    for seed in range(num):
        config = InfoGANConfig(dataset="mnist", noise_dim=39, seed=seed)
        torch.manual_seed(seed)
        model = InfoGAN(config, (1, 28, 28))
        with torch.no_grad():  # an untrained Q's codes barely vary: FactorVAE would prune them all
            model.q_head.net[-1].weight.mul_(50.0)
        path = folder / f"model_{seed:02d}"
        write_checkpoint({"config": config.to_dict(), "step": 5000, "image_shape": (1, 28, 28),
                          "model": model.state_dict()}, path)  # fmt: skip
        paths.append(str(path))
    return paths


def experiment_models(experiment: str, num: int) -> list[str]:
    from analysis.tune_folder import read_experiment

    chosen = [t.choose_checkpoint("final") for t in read_experiment(experiment).trials if t.config is not None]
    return [str(c.path) for c in chosen if c is not None][:num]


def members(paths: list[str]) -> list[Member]:
    rng = np.random.default_rng(0)
    return [
        Member(f"m{i:02d}", f"g{i % 2}", "mnist", path, "ref", rng.integers(10, size=10_000), 0.99, {})
        for i, path in enumerate(paths)
    ]


def serial(fn, items, desc):
    return [fn(item) for item in items]


def time_selection(paths: list[str], workers: int) -> float:
    start = time.perf_counter()
    if workers:
        pool_options = {"mp_context": get_context("spawn"), "initializer": one_thread_worker}  # as analyze --workers
        with ProcessPoolExecutor(max_workers=workers, **pool_options) as pool:
            select_models(members(paths), counts=FULL, max_models=len(paths), device="cpu",
                          mapper=lambda fn, items, desc: list(pool.map(fn, items)))  # fmt: skip
    else:
        select_models(members(paths), counts=FULL, max_models=len(paths), device="cpu", mapper=serial)
    return time.perf_counter() - start


def time_old_protocol(paths: list[str], fraction: float = 0.1) -> float:
    """The replaced protocol for the whole pool, extrapolated from one generator at `fraction` of its counts."""
    models = [cached_model(p, "cpu").model for p in paths]
    start = time.perf_counter()
    with torch.inference_mode():
        metrics.compute_factor_vae_many(
            GeneratorData(models[0]), [represent_fn(m) for m in models], np.random.default_rng(0), batch_size=64,
            num_train=int(2000 * fraction), num_eval=int(1000 * fraction),
            num_variance_estimate=int(5000 * fraction),
        )  # fmt: skip
    return (time.perf_counter() - start) / fraction * len(paths)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="also time N worker processes (0: skip)")
    parser.add_argument("--experiment", help="use the final checkpoints of this analysed experiment's trials")
    parser.add_argument("--old", action="store_true", help="also time the replaced protocol (minutes)")
    args = parser.parse_args()
    print(f"# selection step, {args.models} models at the paper's MNIST architecture; {describe_cpu()}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; python {sys.version.split()[0]}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        paths = (
            experiment_models(args.experiment, args.models) if args.experiment else make_models(Path(tmp), args.models)
        )
        print(f"models: {len(paths)} ({'from ' + args.experiment if args.experiment else 'untrained, seeds 0..'})")
        time_selection(paths[:2], 0)  # warm-up: imports, the first model loads
        serial_s = time_selection(paths, 0)
        print(f"in-process: {serial_s:.1f} s")
        if args.workers:
            parallel_s = time_selection(paths, args.workers)
            print(f"{args.workers} worker processes: {parallel_s:.1f} s")
        if args.old:
            print(f"replaced protocol (extrapolated from one generator at 1/10 of its counts): "
                  f"{time_old_protocol(paths):.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
