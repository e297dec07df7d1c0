"""Self-describing checkpoints: everything needed to resume or rebuild a run from the file alone.

A checkpoint is a directory holding `checkpoint.pt`, a dict with `format_version`, `config`
(InfoGANConfig as a dict), `step`, `image_shape`, the model and optimiser state dicts, the
training RNG state and the last reported metrics. Writes are atomic (temp file + rename), so a
killed process never leaves a half-written checkpoint behind.

Formats: 2 (written now). 1 is read and upgraded on load: its config had an `arch` field (always
the network family of the image side, now implied by it) and a Bidirectional-InfoGAN's encoder
head was saved as `q_head.*` (now `enc_head.*`, beside `enc_trunk.*`). The optimiser states are
unchanged (they are indexed by position, and the parameter order is the same).

What a run saves (`run_state`) and what resuming it asks (`check_resumable`, `restore_rng`) are
written here once, for a single run (`trainables/loop.py`) and a pack's members alike
(`trainables/packed/`: each member's checkpoint is a single run's).
"""

from __future__ import annotations

import collections
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import torch

from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.files import CHECKPOINT_FILENAME
from trainables.models import InfoGAN

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
FILENAME = CHECKPOINT_FILENAME
# Fields that may differ between a checkpoint and the config resuming it.
RESUMABLE_CHANGES = ("steps", "report_every", "data_root")


def checkpoint_file(path: str | Path) -> Path:
    """The .pt file for a checkpoint directory or file path."""
    path = Path(path)
    return path / FILENAME if path.is_dir() else path


def write_checkpoint(state: dict[str, Any], directory: str | Path) -> Path:
    """Atomically write `state` to `directory/checkpoint.pt`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, **state}, f)
        os.replace(tmp, directory / FILENAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return directory / FILENAME


def read_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict, with one-line errors for missing or foreign files."""
    file = checkpoint_file(path)
    if not file.is_file():
        raise BadInputError(f"no checkpoint at {file}; pass a run's output folder or its checkpoint.pt")
    try:
        state = torch.load(file, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise BadInputError(f"cannot read checkpoint {file}: {type(err).__name__}: {err}") from None
    if not isinstance(state, dict) or state.get("format_version") not in READABLE_VERSIONS:
        found = state.get("format_version") if isinstance(state, dict) else None
        raise BadInputError(
            f"{file} is not an infogan-study checkpoint this version reads (format {found}; reads "
            f"{', '.join(map(str, READABLE_VERSIONS))})"
        )
    return _upgrade(state)


def _upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """A format-1 checkpoint as format 2 (see the module docstring); a format-2 one unchanged."""
    if state["format_version"] == FORMAT_VERSION:
        return state
    config = {k: v for k, v in state["config"].items() if k != "arch"}
    model = state["model"]
    if config.get("bidirectional"):
        renamed = collections.OrderedDict((_enc_head(k), v) for k, v in model.items())
        metadata = getattr(model, "_metadata", None)  # per-module versions, keyed by module prefix
        if metadata is not None:
            renamed._metadata = collections.OrderedDict((_enc_head(k), v) for k, v in metadata.items())
        model = renamed
    return {**state, "format_version": FORMAT_VERSION, "config": config, "model": model}


def _enc_head(key: str) -> str:
    """A format-1 Bidirectional-InfoGAN key with E's head under its format-2 name."""
    return "enc_head" + key.removeprefix("q_head") if key == "q_head" or key.startswith("q_head.") else key


def run_state(
    config: InfoGANConfig, step: int, image_shape: tuple[int, ...], model: dict[str, Any], opt_d: dict[str, Any],
    opt_g: dict[str, Any], rng: torch.Generator, device: torch.device,
) -> dict[str, Any]:  # fmt: skip
    """A run's checkpoint state from its parts' state dicts (`write_checkpoint` adds the format)."""
    return {
        "config": config.to_dict(), "step": step, "image_shape": tuple(image_shape), "model": model,
        "opt_d": opt_d, "opt_g": opt_g, "rng": rng.get_state(), "rng_device": device.type,
    }  # fmt: skip


def check_resumable(state: dict[str, Any], config: InfoGANConfig, *, what: str = "checkpoint") -> None:
    """A one-line BadInputError unless `config` may resume the checkpoint `state` (the same config
    but for RESUMABLE_CHANGES); `what` names the checkpoint in the message."""
    saved = InfoGANConfig.from_dict(state["config"])
    diff = [
        k for k in InfoGANConfig.field_names() if k not in RESUMABLE_CHANGES and getattr(saved, k) != getattr(config, k)
    ]
    if diff:
        k = diff[0]
        raise BadInputError(
            f"{what} was trained with {k}={getattr(saved, k)!r}, not {getattr(config, k)!r}; "
            f"resume with the same config (only {', '.join(RESUMABLE_CHANGES)} may change)"
        )


def restore_rng(rng: torch.Generator, state: dict[str, Any], seed: int) -> None:
    """The run's training RNG as the checkpoint `state` left it. On another kind of device its
    state does not transfer: the run then continues deterministically from seed + step."""
    if state.get("rng_device") == rng.device.type:
        rng.set_state(state["rng"].cpu())  # generator states are CPU byte tensors on every device
    else:
        rng.manual_seed(seed + int(state["step"]))


class LoadedModel(NamedTuple):
    config: InfoGANConfig
    model: InfoGAN  # in eval mode
    step: int
    metrics: dict[str, float]


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the trained networks of a checkpoint (directory or .pt file) for scoring or sampling."""
    state = read_checkpoint(path, map_location=device)
    config = InfoGANConfig.from_dict(state["config"])
    model = InfoGAN(config, tuple(state["image_shape"]))
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return LoadedModel(config, model, int(state["step"]), dict(state.get("metrics", {})))
