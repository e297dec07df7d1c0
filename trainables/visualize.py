"""Latent traversal grids, as in the InfoGAN paper's figures: each row keeps its noise (and the
other codes) fixed, each column sets one code to a value; categorical codes sweep their K
categories, continuous codes sweep [-2, 2] (the paper goes beyond the training range [-1, 1]).

torchvision draws the grids (`make_grid`, `save_image`); it is imported only where a grid is
drawn, because its import pulls in torch's compiler stack (several seconds) and `analyze`, its
workers and `report` import this module without always drawing."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import torch

from trainables.models import InfoGAN, Latent


@contextlib.contextmanager
def _eval_mode(model: InfoGAN) -> Iterator[None]:
    """BatchNorm on running statistics while drawing; the caller's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def code_names(model: InfoGAN) -> list[str]:
    cfg = model.config
    return [f"cat{i}" for i in range(cfg.n_cat_codes)] + [f"cont{i}" for i in range(cfg.n_cont_codes)]


GENERATE_BATCH = 1024  # images per forward pass of G (bounds memory for long traversals)


@torch.no_grad()
def traversal_images(
    model: InfoGAN, code: str, *, rows: int = 8, cols: int = 10, seed: int = 0, values: torch.Tensor | None = None
) -> torch.Tensor:
    """(rows * n_values, C, H, W) images in [0, 1], row-major; `code` is 'cat<i>' or 'cont<i>' (see
    code_names). The code takes `values` (default: the K categories, or `cols` values on [-2, 2])."""
    device = next(model.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    base = model.sample_latent(rows, gen)
    kind = code.rstrip("0123456789")
    idx = int(code[len(kind) :])
    if values is None:
        values = torch.arange(model.config.cat_dim) if kind == "cat" else torch.linspace(-2.0, 2.0, cols)
    values = values.to(device)
    n = len(values)
    rep = lambda t: t.repeat_interleave(n, dim=0)  # noqa: E731 - (rows, d) -> (rows * n, d)
    latent = Latent(rep(base.z), rep(base.cat).clone(), rep(base.cont).clone())
    if kind == "cat":
        latent.cat[:, idx] = values.long().repeat(rows)
    else:
        latent.cont[:, idx] = values.float().repeat(rows)
    with _eval_mode(model):
        parts = [
            model.generate(Latent(*(t[i : i + GENERATE_BATCH] for t in latent)))
            for i in range(0, rows * n, GENERATE_BATCH)
        ]
    return (torch.cat(parts).clamp(-1, 1) + 1) / 2


@torch.no_grad()
def sample_images(model: InfoGAN, *, n: int = 64, seed: int = 0) -> torch.Tensor:
    """(n, C, H, W) random samples in [0, 1] (for models without codes)."""
    device = next(model.parameters()).device
    with _eval_mode(model):
        images = model.generate(model.sample_latent(n, torch.Generator(device).manual_seed(seed)))
    return (images.clamp(-1, 1) + 1) / 2


def image_grid(images: torch.Tensor, *, nrow: int, padding: int = 1, pad_value: float = 0.5) -> torch.Tensor:
    """Images (N, C, H, W) -> one grid (3 or C, H', W'), `nrow` images per row, `padding` pixels of
    `pad_value` around each (torchvision's `make_grid`)."""
    from torchvision.utils import make_grid

    return make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)


def png_bytes(grid: torch.Tensor) -> bytes:
    """A grid (C, H, W) in [0, 1] as PNG bytes (torchvision's `save_image`)."""
    from torchvision.utils import save_image

    buffer = io.BytesIO()
    save_image(grid, buffer, format="png")
    return buffer.getvalue()


def save_traversals(model: InfoGAN, out_dir: str | Path, *, rows: int = 8, seed: int = 0) -> list[Path]:
    """Write `traversal_<code>.png` per code (or `samples.png` without codes); returns the paths."""
    out_dir = Path(out_dir)
    paths = []
    for code in code_names(model):
        images = traversal_images(model, code, rows=rows, seed=seed)
        path = out_dir / f"traversal_{code}.png"
        path.write_bytes(png_bytes(image_grid(images, nrow=len(images) // rows)))
        paths.append(path)
    if not paths:
        path = out_dir / "samples.png"
        path.write_bytes(png_bytes(image_grid(sample_images(model, n=64, seed=seed), nrow=8)))
        paths.append(path)
    return paths
