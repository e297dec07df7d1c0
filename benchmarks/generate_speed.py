"""Drawing images with G on a CPU: the generator's last layer on torch's kernel vs oneDNN's.

Probes during training, traversal grids and `analyze` draw hundreds of images at a time with no
gradients. G's last layer is a 4x4 stride-2 transposed convolution to the image's 1-3 channels;
`trainables.models.ImageOut` runs it on torch's own kernel there instead of oneDNN's. This times
`InfoGAN.generate` both ways in one process, alternating, and prints images/s and the ratio, with
the images' largest difference (the two kernels sum in different orders).

    uv run python benchmarks/generate_speed.py                    # widths 0.125, 0.25, 1; 500 images
    uv run python benchmarks/generate_speed.py --threads 2 --images 100,1000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.*` when run as a script

from benchmarks.machine import describe_cpu


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def measure(width: float, images: int, *, reps: int, dataset: str) -> dict[str, float]:
    """Seconds per `generate` of `images` images with ImageOut's choice and with oneDNN forced."""
    import torch

    from trainables.config import InfoGANConfig
    from trainables.models import InfoGAN

    model = InfoGAN(InfoGANConfig(dataset=dataset, width=width), (1, 28, 28)).eval()
    latent = model.sample_latent(images, torch.Generator().manual_seed(0))

    def onednn() -> torch.Tensor:  # G with its last layer as a plain ConvTranspose2d (oneDNN is on by default)
        *body, last, squash = model.generator
        x = torch.nn.Sequential(*body)(model.latent_vector(latent))
        return squash(torch.nn.ConvTranspose2d.forward(last, x))

    times: dict[str, list[float]] = {"torch kernel": [], "oneDNN": []}
    with torch.no_grad():
        ours, theirs = model.generate(latent), onednn()
        for _ in range(reps):
            for name, fn in (("torch kernel", lambda: model.generate(latent)), ("oneDNN", onednn)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    out = {name: statistics.median(ts) for name, ts in times.items()}
    out["max_abs_diff"] = float((ours - theirs).abs().max())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=_floats, default=[0.125, 0.25, 1.0], help="default 0.125,0.25,1")
    p.add_argument("--images", type=_ints, default=[500], help="images per call (default 500: a probe's 10 x 50)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a trial or worker)")
    p.add_argument("--reps", type=int, default=15, help="timed calls of each, alternating (default %(default)s)")
    p.add_argument("--dataset", default="basicprop-line", help="a 1x28x28 dataset (default %(default)s)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    print(f"{describe_cpu()}; torch {torch.__version__}, {args.threads} thread(s); median of {args.reps}")
    print(f"{'width':>6} {'images':>6} {'torch kernel img/s':>19} {'oneDNN img/s':>13} {'ratio':>6} {'max |diff|':>11}")
    for width in args.widths:
        for n in args.images:
            m = measure(width, n, reps=args.reps, dataset=args.dataset)
            ours, theirs = n / m["torch kernel"], n / m["oneDNN"]
            print(f"{width:>6} {n:>6} {ours:>19.0f} {theirs:>13.0f} {ours / theirs:>6.2f} {m['max_abs_diff']:>11.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
