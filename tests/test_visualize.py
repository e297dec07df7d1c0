"""The traversal grids are drawn without torchvision (its import pulls in torch's compiler stack),
byte for byte as torchvision's `make_grid` + `save_image` draw them."""

from __future__ import annotations

import io

import pytest
import torch

from trainables.visualize import image_grid, png_bytes


@pytest.mark.parametrize(("n", "channels", "nrow"), [(60, 1, 10), (7, 3, 3), (1, 1, 8), (5, 1, 8)])
def test_grid_png_is_torchvisions_byte_for_byte(n, channels, nrow):
    from torchvision.utils import make_grid, save_image

    images = torch.rand(n, channels, 28, 28, generator=torch.Generator().manual_seed(n))  # (N, C, H, W)
    images[0, :, :4] = 0.0  # exact black and white pixels too
    images[-1, :, -4:] = 1.0
    grid = image_grid(images, nrow=nrow)
    assert torch.equal(grid, make_grid(images, nrow=nrow, padding=1, pad_value=0.5))
    expected = io.BytesIO()
    save_image(make_grid(images, nrow=nrow, padding=1, pad_value=0.5), expected, format="png")
    assert png_bytes(grid) == expected.getvalue()
