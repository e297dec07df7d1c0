"""The Ray Tune function trainable: a thin adapter from a trial's config to `trainables.loop.train`.

The loop knows nothing of Ray. This module builds the `InfoGANConfig` from the trial's config
(an unknown key or a bad value makes the trial error at once with the config's one-line message),
resumes from `tune.get_checkpoint()` (set after a node loss or `infogan-study resume`), and turns
each report into `tune.report(metrics, checkpoint=...)`. A diverged run returns normally: its last
report has `diverged=1.0`, `status="diverged"` and a `reason`, so the trial ends TERMINATED with a
readable status instead of an error and a burst of retries.

Data: each trial loads its dataset itself from `config.data_root` (a shared path on a cluster;
the launcher makes it absolute). We do not use `tune.with_parameters`, which would put the arrays
in Ray's object store once and hand every trial a zero-copy view: the procedural datasets are
generated from the seed in well under a second, the torchvision ones are a few tens of MB read
from disk, and a trial trains for minutes, so loading costs little. Loading in the trial also keeps
the trainable independent of which dataset a space varies (`dataset` can be a grid key), keeps
tuner.pkl small and restorable without the driver holding every dataset in memory, and lets a GPU
trial put the data straight on its device.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from ray import tune

from search_spaces import VARIANT_KEY
from trainables.config import InfoGANConfig
from trainables.loop import train

# Shown first (Tune's progress table shows the first four reported metrics) and by `status`.
KEY_METRICS = ("mi/cat", "loss/d", "loss/g", "diverged")


def build_config(trial_config: dict[str, Any]) -> InfoGANConfig:
    """The run's config from a trial config: field names plus the optional `variant` label."""
    return InfoGANConfig.from_dict({k: v for k, v in trial_config.items() if k != VARIANT_KEY})


def cpu_share() -> int:
    """Whole CPUs this trial was given by Ray (at least one thread)."""
    resources = tune.get_context().get_trial_resources().required_resources
    return max(1, int(resources.get("CPU", 1)))


def _reason(metrics: dict[str, float]) -> str:
    """E.g. 'diverged at step 500: loss/d=nan (+6 more non-finite)'; losses are named first."""
    bad = sorted((k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)),
                 key=lambda k: not k.startswith("loss/"))  # fmt: skip
    text = f"diverged at step {int(metrics.get('step', 0))}"
    if bad:
        text += f": {bad[0]}={metrics[bad[0]]}" + (f" (+{len(bad) - 1} more non-finite)" if len(bad) > 1 else "")
    return text


def _tune_report(config: InfoGANConfig) -> Callable[[dict[str, float], Callable[[str | Path], Any]], None]:
    def report(metrics: dict[str, float], save_checkpoint: Callable[[str | Path], Any]) -> None:
        diverged = metrics.get("diverged", 0.0) == 1.0
        status = "diverged" if diverged else "completed" if metrics.get("step", 0) >= config.steps else "running"
        ordered: dict[str, Any] = {k: metrics[k] for k in KEY_METRICS if k in metrics}
        ordered.update(metrics)
        ordered.update(status=status, reason=_reason(metrics) if diverged else "", variant=config.variant)
        with tempfile.TemporaryDirectory(prefix="infogan-ckpt-") as tmp:
            save_checkpoint(tmp)
            tune.report(ordered, checkpoint=tune.Checkpoint.from_directory(tmp))  # copied to storage here

    return report


def infogan_trainable(trial_config: dict[str, Any]) -> None:
    """Tune function trainable: one InfoGAN run, resumable from the trial's last checkpoint."""
    config = build_config(trial_config)
    torch.set_num_threads(cpu_share())
    device = "cuda" if torch.cuda.is_available() else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES per trial
    checkpoint = tune.get_checkpoint()
    with checkpoint.as_directory() if checkpoint is not None else nullcontext(None) as resume_dir:
        result = train(config, device=device, report=_tune_report(config), resume_from=resume_dir)
    if result.status == "diverged":
        print(f"infogan-study: trial {tune.get_context().get_trial_name()} {result.reason}", file=sys.stderr)


def with_trial_resources(*, cpus: float, gpus: float) -> Callable[[dict[str, Any]], None]:
    """The trainable with its per-trial resource request (fractional GPUs pack trials on a GPU).
    `tune.with_resources` sets an attribute on the function it is given, so it gets a fresh
    wrapper (same name, so trial names and `Tuner.restore` see `infogan_trainable`)."""

    def trainable(trial_config: dict[str, Any]) -> None:
        infogan_trainable(trial_config)

    trainable.__name__ = infogan_trainable.__name__
    return tune.with_resources(trainable, {"cpu": cpus, "gpu": gpus})
