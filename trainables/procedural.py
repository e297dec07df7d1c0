"""Procedural ground-truth datasets: images rendered on the fly from known factors of variation.

Disentanglement metrics need the true factors behind each image, so these sets are drawn, not
loaded. One torch renderer per dataset serves both uses:
- training: `sample_images(n, generator)` draws factors and renders on the generator's device;
- scoring: the numpy `GroundTruthData` interface of disentanglement_lib
  (https://github.com/google-research/disentanglement_lib), with an explicit `np.random.Generator`.

Datasets (all 1-channel, values in [0, 1]):
- `basicprop-line`: one full-height vertical line, 2 px wide at 28x28, at 10 evenly spaced columns.
- `basicprop-rects`: two bottom-aligned vertical bars (left and right half), 10 heights each.
  Both basicprop sets support the seed study's noise trick: foreground U(150, 240) and background
  U(0, 60) on a 0..255 scale, so the images are not exactly binary.
- `sprites`: the dSprites factor grid (Matthey et al. 2017, https://github.com/deepmind/dsprites-dataset):
  shape (square, ellipse, heart), 6 scales in [0.5, 1], 40 orientations in [0, 2pi), 32 x 32
  positions. Binary images; centres span [0.2, 0.8] of the canvas so every sprite stays inside.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor

PROCEDURAL = ("basicprop-line", "basicprop-rects", "sprites")
_NUMPY_CHUNK = 2048  # images rendered at once by the numpy interface (bounds the (n, S, S) temporaries)


class GroundTruthData(Protocol):
    """disentanglement_lib's ground-truth interface: factors <-> observations, numpy, explicit rng."""

    factor_names: list[str]
    factors_num_values: list[int]

    @property
    def num_factors(self) -> int: ...

    @property
    def observation_shape(self) -> tuple[int, int, int]: ...

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray: ...

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    def sample(self, num: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]: ...


class ProceduralData(ABC):
    """A factor grid and its renderer; implements `GroundTruthData` and the torch sampling path."""

    name: str
    factor_names: list[str]
    factors_num_values: list[int]

    def __init__(self, *, size: int, noise: bool = False) -> None:
        self.size = size
        self.noise = noise

    @property
    def num_factors(self) -> int:
        return len(self.factors_num_values)

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (1, self.size, self.size)

    @abstractmethod
    def render(self, factors: Tensor) -> Tensor:
        """Clean masks of (n, num_factors) int64 factor indices -> (n, 1, S, S) bool, on factors' device."""

    # ------------------------------------------------------------------ torch path (training)
    def observe(self, factors: Tensor, generator: torch.Generator) -> Tensor:
        """Render factors (n, F) to float32 images (n, 1, S, S) in [0, 1], adding the noise trick if on."""
        mask = self.render(factors)
        if not self.noise:
            return mask.float()
        return _noise_trick(mask, torch.rand(mask.shape, generator=generator, device=mask.device))

    def sample_images(self, n: int, generator: torch.Generator) -> Tensor:
        """n images (n, 1, S, S) in [0, 1] from uniformly drawn factors, on the generator's device."""
        columns = [
            torch.randint(0, k, (n,), generator=generator, device=generator.device) for k in self.factors_num_values
        ]
        return self.observe(torch.stack(columns, dim=1), generator)

    def sample_images_many(self, n: int, generators: Sequence[torch.Generator]) -> Tensor:
        """`sample_images(n, g)` for each of K generators, as one batch (n, K, 1, S, S): each generator
        makes the same draws in the same order (factors, then the noise trick's uniforms); the
        rendering runs once for all of them."""
        k, f, shape = len(generators), self.num_factors, (n, *self.observation_shape)
        columns, uniforms = [], []
        for g in generators:
            columns += [torch.randint(0, v, (n,), generator=g, device=g.device) for v in self.factors_num_values]
            if self.noise:
                uniforms.append(torch.rand(shape, generator=g, device=g.device))
        factors = torch.stack(columns).view(k, f, n).transpose(1, 2).reshape(k * n, f)  # member-major
        mask = self.render(factors)  # (K*n, 1, S, S)
        images = _noise_trick(mask, torch.cat(uniforms)) if self.noise else mask.float()
        return images.view(k, *shape).transpose(0, 1)

    # ------------------------------------------------------------------ numpy path (scoring)
    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        """(num, num_factors) int64, each factor uniform over its values."""
        return np.stack([rng.integers(0, k, size=num) for k in self.factors_num_values], axis=1).astype(np.int64)

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(num, num_factors) int factors -> (num, 1, S, S) float32 in [0, 1] (CPU)."""
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != self.num_factors:
            raise ValueError(f"factors must have shape (num, {self.num_factors}), got {factors.shape}")
        if (factors < 0).any() or (factors >= np.array(self.factors_num_values)).any():
            raise ValueError(f"factor indices out of range for {self.factors_num_values}")
        generator = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        f = torch.from_numpy(factors.astype(np.int64))
        parts = [self.observe(f[i : i + _NUMPY_CHUNK], generator) for i in range(0, len(f), _NUMPY_CHUNK)]
        if not parts:
            return np.zeros((0, *self.observation_shape), dtype=np.float32)
        return torch.cat(parts).numpy()

    def sample(self, num: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(factors (num, F) int64, observations (num, 1, S, S) float32 in [0, 1])."""
        factors = self.sample_factors(num, rng)
        return factors, self.sample_observations_from_factors(factors, rng)

    def labelled_sample(self, num: int, *, seed: int) -> tuple[Tensor, Tensor]:
        """A fixed sample labelled by the first factor: (images (num, 1, S, S) in [0, 1], labels (num,) int64)."""
        factors, images = self.sample(num, np.random.default_rng(seed))
        return torch.from_numpy(images), torch.from_numpy(factors[:, 0].copy())


def _evenly_spaced(size: int, first: float, last: float, count: int) -> Tensor:
    """`count` integer pixel values from first to last (given at 28 px, scaled to `size`), (count,) int64."""
    return torch.round(torch.linspace(first, last, count) * size / 28).long()


def _noise_trick(mask: Tensor, u: Tensor) -> Tensor:
    """The seed's noise trick: foreground U(150, 240), background U(0, 60), from uniforms u of mask's shape."""
    return torch.where(mask, 150.0 + 90.0 * u, 60.0 * u) / 255.0


class BasicPropLine(ProceduralData):
    """One vertical line; factor `position` (10 columns)."""

    name = "basicprop-line"
    factor_names: ClassVar[list[str]] = ["position"]
    factors_num_values: ClassVar[list[int]] = [10]

    def __init__(self, *, size: int = 28, noise: bool = False) -> None:
        super().__init__(size=size, noise=noise)
        self.width = max(2, round(2 * size / 28))
        # (10,) left edges, a 1 px margin (at 28 px) on both sides: 1, 4, 6, ..., 25 at 28 px
        self.left = torch.round(torch.linspace(size / 28, size - size / 28 - self.width, 10)).long()

    def render(self, factors: Tensor) -> Tensor:
        x0 = self.left.to(factors.device)[factors[:, 0]][:, None]  # (n, 1)
        cols = torch.arange(self.size, device=factors.device)[None, :]  # (1, S)
        on = (cols >= x0) & (cols < x0 + self.width)  # (n, S)
        return on[:, None, None, :].expand(-1, 1, self.size, -1)


class BasicPropRects(ProceduralData):
    """Two bottom-aligned vertical bars; factors `left_height`, `right_height` (10 each)."""

    name = "basicprop-rects"
    factor_names: ClassVar[list[str]] = ["left_height", "right_height"]
    factors_num_values: ClassVar[list[int]] = [10, 10]

    def __init__(self, *, size: int = 28, noise: bool = False) -> None:
        super().__init__(size=size, noise=noise)
        self.heights = _evenly_spaced(size, 2.0, 26.0, 10)  # (10,) rows, 2..26 at 28 px
        cols = torch.arange(size)
        left_cols, right_cols = _evenly_spaced(size, 3.0, 11.0, 2), _evenly_spaced(size, 17.0, 25.0, 2)
        self.left_cols = (cols >= left_cols[0]) & (cols < left_cols[1])  # (S,) bool
        self.right_cols = (cols >= right_cols[0]) & (cols < right_cols[1])

    def render(self, factors: Tensor) -> Tensor:
        dev = factors.device
        heights = self.heights.to(dev)
        rows = torch.arange(self.size, device=dev)[None, :]  # (1, S)
        left_on = rows >= self.size - heights[factors[:, 0]][:, None]  # (n, S) rows lit in the left bar
        right_on = rows >= self.size - heights[factors[:, 1]][:, None]
        mask = (left_on[:, :, None] & self.left_cols.to(dev)) | (right_on[:, :, None] & self.right_cols.to(dev))
        return mask[:, None]  # (n, 1, S, S)


class Sprites(ProceduralData):
    """dSprites: factors shape, scale, orientation, posX, posY; rendered by inverse-transforming pixels."""

    name = "sprites"
    factor_names: ClassVar[list[str]] = ["shape", "scale", "orientation", "posX", "posY"]
    factors_num_values: ClassVar[list[int]] = [3, 6, 40, 32, 32]
    _RADIUS = 0.16  # sprite radius at scale 1 as a fraction of the canvas; the biggest stays in [0, 1]

    def __init__(self, *, size: int = 64) -> None:
        super().__init__(size=size, noise=False)
        self.scales = torch.linspace(0.5, 1.0, 6)
        self.angles = torch.arange(40) * (2 * math.pi / 40)
        self.centres = 0.2 + 0.6 * torch.linspace(0.0, 1.0, 32)  # canvas fraction

    def render(self, factors: Tensor) -> Tensor:
        dev = factors.device
        shape = factors[:, 0][:, None, None]  # (n, 1, 1)
        radius = (self._RADIUS * self.scales.to(dev)[factors[:, 1]])[:, None, None]
        angle = self.angles.to(dev)[factors[:, 2]][:, None, None]
        cx = self.centres.to(dev)[factors[:, 3]][:, None, None]
        cy = self.centres.to(dev)[factors[:, 4]][:, None, None]  # posY grows downwards (image rows)
        pix = (torch.arange(self.size, device=dev, dtype=torch.float32) + 0.5) / self.size  # pixel centres
        dx = (pix[None, None, :] - cx) / radius  # (n, 1, S)
        dy = (pix[None, :, None] - cy) / radius  # (n, S, 1)
        cos, sin = torch.cos(angle), torch.sin(angle)
        x = cos * dx + sin * dy  # (n, S, S) sprite frame: rotate pixels by -angle
        y = cos * dy - sin * dx
        square = torch.maximum(x.abs(), y.abs()) <= 0.8
        ellipse = x**2 + (2 * y) ** 2 <= 1.0
        hx, hy = 1.3 * x, 0.29 - 1.3 * y  # heart curve (x^2+y^2-1)^3 <= x^2 y^3, upright, centred, radius 1
        heart = (hx**2 + hy**2 - 1) ** 3 <= hx**2 * hy**3
        mask = torch.where(shape == 0, square, torch.where(shape == 1, ellipse, heart))
        return mask[:, None]  # (n, 1, S, S)


def make_procedural(name: str, *, size: int, noise: bool) -> ProceduralData:
    """The procedural dataset `name` at side `size` (0 = native: 28 for basicprop, 64 for sprites)."""
    if name == "basicprop-line":
        return BasicPropLine(size=size or 28, noise=noise)
    if name == "basicprop-rects":
        return BasicPropRects(size=size or 28, noise=noise)
    if name == "sprites":
        return Sprites(size=size or 64)
    raise ValueError(f"no procedural dataset named {name!r}")
