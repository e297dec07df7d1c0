"""K networks of one architecture as one network: each layer runs once for all K members.

Layouts of a packed activation (B = the batch size every member shares, K = members):
- vector: (B, K, F), member k's features at [:, k];
- image: (B, K * C, H, W), member k's channels at [k*C:(k+1)*C] (channel-major per member, so
  `to_image` / `to_vector` between the two are views, like nn.Unflatten / nn.Flatten of one net).

Layers, each exactly its single-network counterpart per member:
- Conv2d / ConvTranspose2d: one grouped convolution with groups = K (member k sees only its own
  channels), the weights of the K members stacked along the grouped dimension;
- Linear: a batched matmul against weights (K, out, in);
- BatchNorm1d/2d: one BatchNorm over K * F (K * C) channels: statistics per channel over the
  batch (and pixels) are per member, and so are the running statistics;
- elementwise activations as they are.

Why grouped convolutions rather than `torch.func.functional_call` + `vmap`: vmap cannot update
BatchNorm's running statistics in place (functorch asks to drop them), and the checkpoints of
every member need them (eval-mode traversals, scoring); grouped convolutions and batched matmuls
are ordinary kernels with ordinary autograd, on CPU and CUDA alike, and a packed model's state is
a few big tensors that slice back into each member's state dict (`member_state_dict`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PackedBatchNorm",
    "PackedConv",
    "PackedLinear",
    "keep_member_stats",
    "load_member_state",
    "member_state_dict",
    "pack_module",
    "to_image",
    "to_vector",
]

ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Identity)


def to_image(x: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """vector (B, K, C*H*W) -> image (B, K*C, H, W); shape = one member's (C, H, W)."""
    c, h, w = shape
    return x.reshape(x.shape[0], x.shape[1] * c, h, w)


def to_vector(x: Tensor, k: int) -> Tensor:
    """image (B, K*C, H, W) -> vector (B, K, C*H*W)."""
    return x.reshape(x.shape[0], k, -1)


class PackedLinear(nn.Module):
    """K Linear layers: (B, K, in) -> (B, K, out); weight (K, out, in), bias (K, out) or None."""

    def __init__(self, layers: list[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]).clone())
        has_bias = layers[0].bias is not None
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]).clone()) if has_bias else None

    def forward(self, x: Tensor) -> Tensor:
        # weight (K, out, in) @ x as (K, in, B): the weight's gradient comes out contiguous, in
        # the parameter's own layout, so autograd hands it over without a copy
        out = torch.bmm(self.weight, x.permute(1, 2, 0)).permute(2, 0, 1)
        return out if self.bias is None else out + self.bias

    def member_state(self, k: int) -> dict[str, Tensor]:
        state = {"weight": self.weight[k]}
        if self.bias is not None:
            state["bias"] = self.bias[k]
        return state


class PackedConv(nn.Module):
    """K Conv2d or ConvTranspose2d layers as one grouped convolution on the image layout."""

    def __init__(self, layers: list[nn.Conv2d | nn.ConvTranspose2d]) -> None:
        super().__init__()
        first, k = layers[0], len(layers)
        self.transposed = isinstance(first, nn.ConvTranspose2d)
        self.stride, self.padding = first.stride, first.padding
        self.output_padding = getattr(first, "output_padding", 0)
        self.groups = k
        # Conv2d weight (out, in, kh, kw) and ConvTranspose2d weight (in, out, kh, kw) both stack on dim 0,
        # the dimension grouped convolutions split into K groups.
        self.weight = nn.Parameter(torch.cat([layer.weight.detach() for layer in layers]).clone())
        self.bias = (
            nn.Parameter(torch.cat([layer.bias.detach() for layer in layers]).clone())
            if first.bias is not None else None
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        if self.transposed:
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                      self.groups)  # fmt: skip
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)

    def member_state(self, k: int) -> dict[str, Tensor]:
        state = {"weight": self.weight.chunk(self.groups)[k]}  # member k's rows of dim 0, as stacked
        if self.bias is not None:
            state["bias"] = self.bias.chunk(self.groups)[k]
        return state


class PackedBatchNorm(nn.Module):
    """K BatchNorm1d (on the vector layout) or BatchNorm2d (image layout) as one over K * channels."""

    def __init__(self, layers: list[nn.BatchNorm1d | nn.BatchNorm2d]) -> None:
        super().__init__()
        first, k = layers[0], len(layers)
        self.image = isinstance(first, nn.BatchNorm2d)
        cls = nn.BatchNorm2d if self.image else nn.BatchNorm1d
        self.bn = cls(k * first.num_features, eps=first.eps, momentum=first.momentum, affine=first.affine)
        self.features, self.k = first.num_features, k
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(self.bn, name).copy_(torch.cat([getattr(layer, name) for layer in layers]))
            self.bn.num_batches_tracked.copy_(first.num_batches_tracked)
        # each member's own count of batches (the single layer's num_batches_tracked), so a member
        # whose statistics a step leaves alone (`keep_member_stats`) keeps its count too
        self.register_buffer("batches", torch.stack([layer.num_batches_tracked for layer in layers]).clone())

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            self.batches += 1
        if self.image:
            return self.bn(x)
        b = x.shape[0]
        return self.bn(x.reshape(b, -1)).reshape(b, self.k, self.features)

    def member_state(self, k: int) -> dict[str, Tensor]:
        part = slice(k * self.features, (k + 1) * self.features)
        state = {name: getattr(self.bn, name)[part] for name in ("weight", "bias", "running_mean", "running_var")}
        state["num_batches_tracked"] = self.batches[k]
        return state

    def stats(self) -> tuple[Tensor, Tensor, Tensor]:
        """Copies of the running statistics and counts, for `restore_stats`."""
        return self.bn.running_mean.clone(), self.bn.running_var.clone(), self.batches.clone()

    @torch.no_grad()
    def restore_stats(self, saved: tuple[Tensor, Tensor, Tensor], members: Tensor) -> None:
        """Put back the saved statistics of the members where `members` (K,) bool is True."""
        mean, var, batches = saved
        channels = members.repeat_interleave(self.features)
        # new tensors, not in-place: the step's backward pass still holds the updated ones
        self.bn.running_mean = torch.where(channels, mean, self.bn.running_mean)
        self.bn.running_var = torch.where(channels, var, self.bn.running_var)
        self.batches = torch.where(members, batches, self.batches)


class ToImage(nn.Module):
    """nn.Unflatten(1, (C, H, W)) of one network, on the packed vector layout."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return to_image(x, self.shape)


class ToVector(nn.Module):
    """nn.Flatten() of one network, on the packed image layout."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        return to_vector(x, self.k)


def pack_module(modules: list[nn.Module]) -> nn.Module:
    """The packed counterpart of K structurally identical modules (a Sequential of Linear, Conv2d,
    ConvTranspose2d, BatchNorm, Flatten, Unflatten and elementwise activations), holding their weights."""
    first, k = modules[0], len(modules)
    if isinstance(first, nn.Sequential):
        return nn.Sequential(*(pack_module([m[i] for m in modules]) for i in range(len(first))))
    if isinstance(first, nn.Linear):
        return PackedLinear(modules)
    if isinstance(first, (nn.Conv2d, nn.ConvTranspose2d)):
        return PackedConv(modules)
    if isinstance(first, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return PackedBatchNorm(modules)
    if isinstance(first, nn.Unflatten):
        return ToImage(first.unflattened_size)
    if isinstance(first, nn.Flatten):
        return ToVector(k)
    if isinstance(first, ELEMENTWISE):
        return first
    raise TypeError(f"cannot pack {type(first).__name__}")


class keep_member_stats:  # a context manager, named as one
    """Within the block, forward passes through `module`'s packed batch norms leave the running
    statistics of the members where `members` (K,) bool is True as they were: those members'
    single runs make no such pass (e.g. Q's head in the D update at lambda = 0)."""

    def __init__(self, module: nn.Module, members: Tensor) -> None:
        self.layers = [m for m in module.modules() if isinstance(m, PackedBatchNorm)]
        self.members = members

    def __enter__(self) -> None:
        self.saved = [layer.stats() for layer in self.layers]

    def __exit__(self, *exc: object) -> None:
        for layer, saved in zip(self.layers, self.saved):
            layer.restore_stats(saved, self.members)


def member_state_dict(packed: nn.Module, k: int, prefix: str = "") -> dict[str, Tensor]:
    """Member k's state dict of a module built from packed layers (by `pack_module`, or a module
    holding such), keyed as the single module's; the tensors are copies."""
    if hasattr(packed, "member_state"):
        return {f"{prefix}{name}": t.detach().clone() for name, t in packed.member_state(k).items()}
    out: dict[str, Tensor] = {}
    for name, child in packed.named_children():
        out.update(member_state_dict(child, k, f"{prefix}{name}."))
    return out


def load_member_state(packed: nn.Module, k: int, state: dict[str, Tensor], prefix: str = "") -> set[str]:
    """Copy a single module's state dict (keyed as `member_state_dict` keys it) into member k's
    slices of `packed`; returns the keys it used (a resume checks that every key was)."""
    used: set[str] = set()
    if hasattr(packed, "member_state"):
        with torch.no_grad():
            for name, target in packed.member_state(k).items():
                target.copy_(state[f"{prefix}{name}"])  # a view into the packed tensor: writes member k's part
                used.add(f"{prefix}{name}")
        return used
    for name, child in packed.named_children():
        used |= load_member_state(child, k, state, f"{prefix}{name}.")
    return used
