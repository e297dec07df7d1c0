"""`infogan-study train`: one InfoGAN run, no Ray. Writes checkpoint.pt, metrics.jsonl and latent
traversal grids (traversal_<code>.png) to --out.

Exit status: 0 when the run completed; 2 for bad input (one line on stderr, nothing written);
3 when the run diverged (a NaN, inf or exploding loss; the reason is on stderr, and checkpoint.pt
holds the last healthy checkpoint, if one was written before the divergence).

Every argument is checked before torch is imported (a config error appears at once, also on a
loaded machine), and --out is created at the first report: a run refused before it (unreadable
data, a batch that does not fit in memory) leaves no folder behind.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import IO, Any

from trainables.config import InfoGANConfig, describe_fields, parse_set_options
from trainables.errors import BadInputError
from trainables.files import CHECKPOINT_FILENAME, check_writable

NAME = "train"
HELP = "train one InfoGAN configuration (no Ray): checkpoint, metrics.jsonl and traversal grids in --out"
EPILOG = (
    "exit status: 0 completed, 3 diverged (the reason on stderr), 2 bad input (one line on stderr, nothing "
    "written), 130 interrupted (Ctrl-C; --resume continues from the last checkpoint)"
)
DEVICES = re.compile(r"auto|cpu|cuda(:\d+)?")
EXIT_DIVERGED = 3


class _HelpConfig(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print("config fields (use --set field=value):\n" + describe_fields())
        parser.exit(0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="dataset name (config field `dataset`; default mnist, e.g. basicprop-line)")
    p.add_argument("--data-root", help="folder with the dataset files (torchvision layout), or the image folder/.npz")
    p.add_argument("--steps", type=int, help="training steps (default 5000)")
    p.add_argument("--batch-size", type=int, help="batch size (default 64)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument(
        "--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N (default %(default)s)"
    )
    p.add_argument("--out", help="output folder (default runs/<dataset>-<model kind>-s<seed>-<time>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="set any config field by name, repeatable (see --help-config)")  # fmt: skip
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                   help="also write the checkpoint every N steps (default 1000; always at the end)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--help-config", nargs=0, action=_HelpConfig, help="list every config field and exit")


def build_config(args: argparse.Namespace) -> InfoGANConfig:
    values = parse_set_options(args.overrides)
    for flag, name in (("dataset", "dataset"), ("data_root", "data_root"), ("steps", "steps"),
                       ("batch_size", "batch_size"), ("seed", "seed")):  # fmt: skip
        if getattr(args, flag) is not None:
            values[name] = getattr(args, flag)
    return InfoGANConfig.from_dict(values)


def _check_out(out: Path, *, resume: bool) -> None:
    """--out, before anything is written: resumable or fresh, and writable (nothing is created)."""
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} is a file; choose a folder")
    has_ckpt = (out / CHECKPOINT_FILENAME).is_file()
    if resume and not has_ckpt:
        raise BadInputError(f"--resume: no {CHECKPOINT_FILENAME} in {out}; drop --resume to start a new run there")
    if not resume and out.exists() and any(out.iterdir()):
        raise BadInputError(f"--out {out} already exists and is not empty; choose a new folder or pass --resume")
    check_writable(out, what=f"--out {out}", fix="choose another folder")


class _Writer:
    """metrics.jsonl and checkpoints in --out; the folder is made at the first report."""

    def __init__(self, out: Path, *, checkpoint_every: int, last_step: int) -> None:
        self.out, self.every, self.last_step = out, checkpoint_every, last_step
        self.file: IO[str] | None = None
        self.last_ckpt_step = -1

    def report(self, metrics: dict[str, float], save_checkpoint: Any) -> None:
        if self.file is None:
            self.out.mkdir(parents=True, exist_ok=True)
            self.file = (self.out / "metrics.jsonl").open("a")
        self.file.write(json.dumps(metrics) + "\n")
        self.file.flush()
        step = int(metrics["step"])
        if metrics.get("diverged") == 1.0:
            return  # keep the last healthy checkpoint, not blown-up weights
        if step // self.every > self.last_ckpt_step // self.every or step == self.last_step:
            save_checkpoint(self.out)
            self.last_ckpt_step = step

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def run(args: argparse.Namespace) -> int:
    if args.checkpoint_every < 1:
        raise BadInputError(f"--checkpoint-every {args.checkpoint_every}: must be >= 1")
    if not DEVICES.fullmatch(args.device):
        raise BadInputError(f"--device {args.device}: use auto, cpu, cuda or cuda:N")
    config = build_config(args)
    out = Path(args.out or f"runs/{config.dataset}-{config.model_kind}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    _check_out(out, resume=args.resume)

    from trainables.checkpoint import load_model  # the heavy imports (torch), once the arguments are fine
    from trainables.data import load_data
    from trainables.loop import resolve_device, train
    from trainables.visualize import save_traversals

    device = resolve_device(args.device)
    data = load_data(config, device=device)  # fails here, before anything is written, on bad data
    writer = _Writer(out, checkpoint_every=args.checkpoint_every, last_step=config.steps)

    def announce() -> None:
        print(f"training {config.model_kind} on {config.dataset} ({config.steps} steps, batch {config.batch_size}, "
              f"{device}) -> {out}", file=sys.stderr)  # fmt: skip

    try:
        result = train(config, device=device, report=writer.report, data=data, progress=not args.quiet,
                       resume_from=out if args.resume else None, on_start=announce)  # fmt: skip
    finally:
        writer.close()
    grids = save_traversals(load_model(out, device=device).model, out) if (out / CHECKPOINT_FILENAME).is_file() else []
    m = result.metrics
    print(f"{result.status} at step {result.step}: loss/d {m.get('loss/d', float('nan')):.3f} "
          f"loss/g {m.get('loss/g', float('nan')):.3f} mi/cat {m.get('mi/cat', float('nan')):.3f} "
          f"({m.get('perf/images_per_s', 0):.0f} images/s)")  # fmt: skip
    written = [out / CHECKPOINT_FILENAME, *grids]
    print(f"wrote to {out}: metrics.jsonl" + "".join(f", {p.name}" for p in written if p.exists()))
    if result.status != "completed":
        print(f"infogan-study: {result.reason}", file=sys.stderr)
        return EXIT_DIVERGED
    return 0
