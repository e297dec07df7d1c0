"""Will a run's step fit in memory? A check before the first step, and the allocators' errors.

A batch far too large for the device used to fail in the allocator with a traceback, on a CPU
after a minute or more of paging. `check_memory` refuses it before the first step with one line:
it counts the elements of every layer's output for one image (forward hooks on a batch of two)
and compares batch x that x 4 bytes with the device's free memory. That is a lower bound of a
step's need, so a batch that passes can still run out of memory; `out_of_memory` tells such an
error apart, and the loop reports it in one line too.
"""

from __future__ import annotations

import os

import torch

from trainables.errors import BadInputError
from trainables.models import InfoGAN, Latent


def _free_bytes(device: torch.device) -> int | None:
    """Memory free for a new allocation on `device` (None: unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:  # Linux: what can be allocated without swapping
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _activations_per_image(model: InfoGAN) -> int:
    """Elements of every layer's output for one image through G, D and Q (or E), by forward hooks
    on a batch of two (eval mode, no gradients: the model's state and the run's RNG are untouched)."""
    counts: list[int] = []
    views = (torch.nn.Flatten, torch.nn.Unflatten)  # and in-place activations: no new memory
    leaves = [mod for mod in model.modules() if not any(mod.children()) and not isinstance(mod, views)
              and not getattr(mod, "inplace", False)]  # fmt: skip
    hooks = [mod.register_forward_hook(lambda mod, args, out: counts.append(out.numel())) for mod in leaves]
    cfg, device, training = model.config, next(model.parameters()).device, model.training
    latent = Latent(torch.zeros(2, cfg.noise_dim, device=device), torch.zeros(2, cfg.n_cat_codes, dtype=torch.long,
                    device=device), torch.zeros(2, cfg.n_cont_codes, device=device))  # fmt: skip
    model.eval()
    try:
        with torch.no_grad():
            fake = model.generate(latent)
            model.discriminate(fake, model.latent_vector(latent))
            if cfg.has_codes:
                model.encode(fake)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(training)
    return sum(counts) // 2


# A step needs more than one float32 forward pass through every network (it keeps D's activations
# of real and fake images and G's for the backward passes, and their gradients): on a CPU the peak
# grew by 1.2-2.9x that per step (28x28 and 64x64 nets, batch 512-1024), so 1x is a lower bound.
STEP_MEMORY_FACTOR = 1


def check_memory(model: InfoGAN, batch_size: int, device: torch.device) -> None:
    """Refuse, before the first step, a batch whose step cannot fit in the device's free memory
    (it would fail in the allocator; on a CPU after minutes of paging). The estimate is a lower
    bound: a batch that passes can still run out of memory (`train` then says so in one line)."""
    need = STEP_MEMORY_FACTOR * 4 * batch_size * _activations_per_image(model)
    free = _free_bytes(device)
    if free is not None and need > free:
        raise BadInputError(
            f"batch_size={batch_size}: one step needs at least {need / 2**30:.1f} GiB on {device.type} and "
            f"{free / 2**30:.1f} GiB are free; use a smaller batch_size (or width)"
        )


def out_of_memory_error(device: torch.device, step: int, batch_size: int, *, members: int = 0) -> BadInputError:
    """The one line for running out of memory at `step` (a pack of `members` runs: pack fewer)."""
    if members:
        what, fix = f"{members} packed members of batch_size={batch_size}", "pack fewer (--pack) or use"
    else:
        what, fix = f"batch_size={batch_size}", "use"
    return BadInputError(
        f"out of memory on {device.type} at step {step} with {what}; {fix} a smaller batch_size (or width)"
    )


def out_of_memory(err: BaseException) -> bool:
    """An allocation failure: CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    text = str(err)
    return (isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)) or "can't allocate memory" in text
            or "out of memory" in text.lower())  # fmt: skip
