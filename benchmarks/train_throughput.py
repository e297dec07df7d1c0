"""Training throughput of our loop vs. a straightforward reference loop, side by side in one run.

The reference is written the way common public InfoGAN code does it (e.g. the widely copied
PyTorch ports): torchvision dataset + DataLoader with per-image ToTensor/Normalize transforms,
D on real and on fake in separate passes, then a third D pass on the fakes for G with D's weight
gradients computed and thrown away. Both loops use the same networks (the paper's MNIST
architecture from trainables.models), batch size and optimisers, so the ratio measures the loop.

Each measurement runs in its own subprocess (its own peak RSS), alternating reference and ours,
`--reps` times; the median is reported.

    uv run python benchmarks/train_throughput.py --data-root ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.*` when run as a script


def _reference(batch_size: int, steps: int, warmup: int, device: str, data_root: str) -> float:
    """Images/s of the reference loop."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from trainables.config import InfoGANConfig
    from trainables.models import InfoGAN

    cfg = InfoGANConfig(batch_size=batch_size)
    torch.manual_seed(0)
    m = InfoGAN(cfg, (1, 28, 28)).to(device)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    loader = DataLoader(datasets.MNIST(data_root, train=True, download=False, transform=tf),
                        batch_size=batch_size, shuffle=True, drop_last=True)  # fmt: skip
    opt_d = torch.optim.Adam(m.d_parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(m.g_parameters(), lr=1e-3, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    it, done, t0 = iter(loader), 0, 0.0
    while done < warmup + steps:
        if done == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        try:
            real, _ = next(it)
        except StopIteration:
            it = iter(loader)
            real, _ = next(it)
        real = real.to(device)
        b = real.shape[0]
        ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)
        opt_d.zero_grad()
        loss_real = bce(m.d_head(m.trunk(real)).squeeze(1), ones)
        loss_real.backward()
        latent = m.sample_latent(b, torch.default_generator if device == "cpu" else torch.cuda.default_generators[0])
        fake = m.generate(latent)
        loss_fake = bce(m.d_head(m.trunk(fake.detach())).squeeze(1), zeros)
        loss_fake.backward()
        opt_d.step()
        opt_g.zero_grad()
        h = m.trunk(fake)
        codes = m.q_head(h)[0]
        info = (
            F.cross_entropy(codes.cat_logits.flatten(0, 1), latent.cat.flatten())
            + 0.5
            * ((latent.cont - codes.cont_mean) ** 2 * torch.exp(-2 * codes.cont_logstd) + 2 * codes.cont_logstd)
            .sum(1)
            .mean()
        )
        loss_g = bce(m.d_head(h).squeeze(1), ones) + info
        loss_g.backward()
        opt_g.step()
        done += 1
    loss_g.item()
    return steps * batch_size / (time.perf_counter() - t0)


def _ours(batch_size: int, steps: int, warmup: int, device: str, data_root: str, overrides: dict) -> float:
    from benchmarks.packed_throughput import time_steps
    from trainables.config import InfoGANConfig
    from trainables.data import load_data
    from trainables.loop import Trainer

    cfg = InfoGANConfig.from_dict({"dataset": "mnist", "data_root": data_root, "batch_size": batch_size, **overrides})
    trainer = Trainer(cfg, device=device, data=load_data(cfg, device=device))
    return time_steps(trainer, steps=steps, warmup=warmup).images_per_s


def _child(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.which == "reference":
        ips = _reference(args.batch_size, args.steps, args.warmup, args.device, args.data_root)
    else:
        ips = _ours(args.batch_size, args.steps, args.warmup, args.device, args.data_root, json.loads(args.overrides))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images_per_s": ips, "peak_rss_mib": peak_mib}))


def _measure(which: str, batch_size: int, args: argparse.Namespace, overrides: str = "{}") -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--batch-size", str(batch_size), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--device", args.device, "--data-root", args.data_root,
           "--overrides", overrides, "--threads", str(args.threads)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default="../shared/datasets")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--child", choices=["reference", "ours", "ours-bf16"], dest="which")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--overrides", default="{}")
    args = p.parse_args()
    if args.which:
        _child(args)
        return
    variants = [("reference", "{}"), ("ours", "{}"), ("ours-bf16", '{"precision": "bf16"}')]
    print(f"device={args.device} steps={args.steps} warmup={args.warmup} reps={args.reps} (median images/s)")
    print(f"{'batch':>5} {'loop':<10} {'images/s':>9} {'steps/s':>8} {'peak RSS MiB':>13} {'ratio':>6}")
    for bs in args.batch_sizes:
        runs: dict[str, list[dict]] = {name: [] for name, _ in variants}
        for _ in range(args.reps):
            for name, ov in variants:
                runs[name].append(_measure(name, bs, args, ov))
                print(f"  {name} batch {bs}: {runs[name][-1]['images_per_s']:.1f} images/s", file=sys.stderr)
        ref = statistics.median(r["images_per_s"] for r in runs["reference"])
        for name, _ in variants:
            ips = statistics.median(r["images_per_s"] for r in runs[name])
            rss = max(r["peak_rss_mib"] for r in runs[name])
            print(f"{bs:>5} {name:<10} {ips:>9.1f} {ips / bs:>8.2f} {rss:>13.0f} {ips / ref:>6.2f}")


if __name__ == "__main__":
    main()
