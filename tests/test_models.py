"""G's last layer (`models.ImageOut`): the same images on either kernel, the switch put back."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from trainables.config import InfoGANConfig
from trainables.models import ImageOut, InfoGAN


def _pair(channels: int) -> tuple[ImageOut, nn.ConvTranspose2d]:
    torch.manual_seed(0)
    ours = ImageOut(16, channels, 4, 2, 1)
    plain = nn.ConvTranspose2d(16, channels, 4, 2, 1)
    plain.load_state_dict(ours.state_dict())
    return ours, plain


def _ops(fn) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key for e in prof.key_averages()}


@pytest.mark.parametrize("channels", [1, 3])
def test_drawing_without_gradients_gives_the_plain_layers_images_on_torchs_kernel(channels: int) -> None:
    ours, plain = _pair(channels)
    x = torch.randn(64, 16, 14, 14)
    with torch.no_grad():
        expected = plain(x)
        assert torch.allclose(ours(x), expected, atol=1e-5)
        assert "aten::slow_conv_transpose2d" in _ops(lambda: ours(x))
    assert torch.backends.mkldnn.enabled  # switched back on


def test_training_keeps_the_default_kernel_and_the_gradients() -> None:
    ours, plain = _pair(1)
    x = torch.randn(8, 16, 14, 14, requires_grad=True)
    assert "aten::slow_conv_transpose2d" not in _ops(lambda: ours(x))
    ours(x).square().sum().backward()
    grad, x.grad = x.grad.clone(), None
    plain(x).square().sum().backward()
    assert torch.equal(grad, x.grad)


def test_the_switch_is_put_back_when_the_layer_fails() -> None:
    ours, _ = _pair(1)
    with torch.no_grad(), pytest.raises(RuntimeError):
        ours(torch.randn(2, 5, 14, 14))  # 5 channels in, the layer takes 16
    assert torch.backends.mkldnn.enabled


def test_a_generator_keeps_its_state_dict_keys() -> None:
    """Checkpoints written before ImageOut load: G's last layer is still a ConvTranspose2d's keys."""
    model = InfoGAN(InfoGANConfig(dataset="basicprop-line", width=0.125), (1, 28, 28))
    last = [name for name, module in model.generator.named_children() if isinstance(module, ImageOut)]
    assert len(last) == 1
    assert {k for k in model.generator.state_dict() if k.startswith(f"{last[0]}.")} == {
        f"{last[0]}.weight",
        f"{last[0]}.bias",
    }
