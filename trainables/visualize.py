"""Latent traversal grids, as in the InfoGAN paper's figures: each row keeps its noise (and the
other codes) fixed, each column sets one code to a value; categorical codes sweep their K
categories, continuous codes sweep [-2, 2] (the paper goes beyond the training range [-1, 1]).

torchvision draws the grids (`save_image`); it is imported only where a grid is drawn, because
its import pulls in torch's compiler stack (several seconds) and `analyze`, its workers and
`report` import this module without always drawing."""

from __future__ import annotations

import contextlib
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


def save_traversals(model: InfoGAN, out_dir: str | Path, *, rows: int = 8, seed: int = 0) -> list[Path]:
    """Write `traversal_<code>.png` per code (or `samples.png` without codes); returns the paths."""
    from torchvision.utils import save_image

    out_dir = Path(out_dir)
    paths = []
    for code in code_names(model):
        images = traversal_images(model, code, rows=rows, seed=seed)
        path = out_dir / f"traversal_{code}.png"
        save_image(images, path, nrow=len(images) // rows, padding=1, pad_value=0.5)
        paths.append(path)
    if not paths:
        path = out_dir / "samples.png"
        save_image(sample_images(model, n=64, seed=seed), path, nrow=8, padding=1, pad_value=0.5)
        paths.append(path)
    return paths
