"""InfoGAN networks: generator G, discriminator trunk shared by D's and Q's heads, and the encoder
E of Bidirectional-InfoGAN.

Architectures follow the InfoGAN paper's appendix (Chen et al. 2016, Table 1,
https://arxiv.org/abs/1606.03657), sized by the image:
- `mnist28` (28x28): G = FC 1024-BN-ReLU, FC 7x7x128-BN-ReLU, 4x4 upconv 64-BN-ReLU, 4x4 upconv C;
  D/Q trunk = 4x4 conv 64-lReLU, 4x4 conv 128-BN-lReLU, FC 1024-BN-lReLU; D head FC 1;
  Q head FC 128-BN-lReLU, FC (codes).
- `dcgan32` (32x32xC, SVHN/art) and `dcgan64` (64x64xC, sprites/CelebA): the paper's DCGAN-style
  stacks: G = FC 4x4xF-BN-ReLU then 4x4 stride-2 upconvs halving channels; the trunk mirrors it
  with stride-2 convs (BN after the first) and flattens.
G ends in tanh: images live in [-1, 1]. `width` scales every channel/unit count.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from trainables.config import InfoGANConfig
from trainables.errors import BadInputError

LRELU = 0.1  # the paper's leaky-ReLU slope


class Latent(NamedTuple):
    z: torch.Tensor  # (n, noise_dim) ~ U(-1, 1) or N(0, 1) (config.noise_dist)
    cat: torch.Tensor  # (n, n_cat_codes) int64 in [0, cat_dim)
    cont: torch.Tensor  # (n, n_cont_codes) ~ U(-1, 1)


class Codes(NamedTuple):
    """What Q (or E) reads off an image."""

    cat_logits: torch.Tensor  # (n, n_cat_codes, cat_dim)
    cont_mean: torch.Tensor  # (n, n_cont_codes)
    cont_logstd: torch.Tensor  # (n, n_cont_codes); zeros when config.q_fixed_std


ARCHS = {28: "mnist28", 32: "dcgan32", 64: "dcgan64"}  # image side -> network family


def resolve_arch(image_shape: tuple[int, int, int]) -> str:
    """The network family for (C, H, W) images: it follows the side (set `image_size` to change it)."""
    arch = ARCHS.get(image_shape[1])
    if arch is None or image_shape[1] != image_shape[2]:
        raise BadInputError(
            f"no architecture for {image_shape[1]}x{image_shape[2]} images; set image_size to 28, 32 or 64"
        )
    return arch


def _ch(n: int, width: float) -> int:
    return max(1, round(n * width))


class ImageOut(nn.ConvTranspose2d):
    """G's last layer, a transposed convolution to the image's few channels. Drawing images on a
    CPU (no gradients: probes, traversals, analysis), it runs on torch's own kernel rather than
    oneDNN's, which is 3-8x slower at one output channel (`benchmarks/generate_speed.py`). Training
    keeps the default kernel, so a run's numbers do not change. Its weights and state-dict keys are
    a ConvTranspose2d's."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.device.type != "cpu" or torch.is_grad_enabled() or not torch.backends.mkldnn.enabled:
            return super().forward(x, output_size)
        torch.backends.mkldnn.enabled = False  # the documented switch; only this call runs without it
        try:
            return super().forward(x, output_size)
        finally:
            torch.backends.mkldnn.enabled = True


def _up(cin: int, cout: int, last: bool = False) -> list[nn.Module]:
    if last:
        return [ImageOut(cin, cout, 4, 2, 1)]
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


def _down(cin: int, cout: int, bn: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(LRELU, True))
    return layers


def build_generator(arch: str, latent_dim: int, channels: int, width: float) -> nn.Sequential:
    """G: (n, latent_dim) -> (n, C, H, W) in [-1, 1]."""
    if arch == "mnist28":
        c1, c2, c3 = _ch(1024, width), _ch(128, width), _ch(64, width)
        return nn.Sequential(
            nn.Linear(latent_dim, c1, bias=False), nn.BatchNorm1d(c1), nn.ReLU(True),
            nn.Linear(c1, c2 * 7 * 7, bias=False), nn.BatchNorm1d(c2 * 7 * 7), nn.ReLU(True),
            nn.Unflatten(1, (c2, 7, 7)),
            *_up(c2, c3), *_up(c3, channels, last=True), nn.Tanh(),
        )  # fmt: skip
    stages = {"dcgan32": [256, 128, 64], "dcgan64": [512, 256, 128, 64]}[arch]
    chans = [_ch(c, width) for c in stages]
    layers: list[nn.Module] = [
        nn.Linear(latent_dim, chans[0] * 16, bias=False), nn.BatchNorm1d(chans[0] * 16), nn.ReLU(True),
        nn.Unflatten(1, (chans[0], 4, 4)),
    ]  # fmt: skip
    for cin, cout in itertools.pairwise(chans):
        layers += _up(cin, cout)
    layers += [*_up(chans[-1], channels, last=True), nn.Tanh()]
    return nn.Sequential(*layers)


def build_trunk(arch: str, channels: int, width: float) -> tuple[nn.Sequential, int]:
    """The convolutional trunk D and Q share: (n, C, H, W) -> (n, features). Returns (trunk, features)."""
    if arch == "mnist28":
        c1, c2, f = _ch(64, width), _ch(128, width), _ch(1024, width)
        trunk = nn.Sequential(
            *_down(channels, c1, bn=False), *_down(c1, c2, bn=True), nn.Flatten(),
            nn.Linear(c2 * 7 * 7, f, bias=False), nn.BatchNorm1d(f), nn.LeakyReLU(LRELU, True),
        )  # fmt: skip
        return trunk, f
    stages = {"dcgan32": [64, 128, 256], "dcgan64": [64, 128, 256, 512]}[arch]
    chans = [_ch(c, width) for c in stages]
    layers = _down(channels, chans[0], bn=False)
    for cin, cout in itertools.pairwise(chans):
        layers += _down(cin, cout, bn=True)
    return nn.Sequential(*layers, nn.Flatten()), chans[-1] * 16


def draw_latent(config: InfoGANConfig, n: int, generator: torch.Generator) -> Latent:
    """n raw draws of the latent from `generator`, in this order: z (U(0, 1) or N(0, 1)), the
    categorical codes, the continuous codes (U(0, 1)); `scale_latent` maps them to their ranges.
    (A pack draws each member's from the member's own generator and scales them all at once.)"""
    dev = generator.device
    normal = config.noise_dist != "uniform"
    z = (torch.randn if normal else torch.rand)(n, config.noise_dim, generator=generator, device=dev)
    cat = torch.randint(config.cat_dim, (n, config.n_cat_codes), generator=generator, device=dev)
    cont = torch.rand(n, config.n_cont_codes, generator=generator, device=dev)
    return Latent(z, cat, cont)


def scale_latent(config: InfoGANConfig, raw: Latent) -> Latent:
    """Raw draws (`draw_latent`, any leading dimensions) in their ranges: uniform z and the
    continuous codes in U(-1, 1)."""
    z = raw.z * 2 - 1 if config.noise_dist == "uniform" else raw.z
    return Latent(z, raw.cat, raw.cont * 2 - 1)


def sample_latent(config: InfoGANConfig, n: int, generator: torch.Generator) -> Latent:
    """n draws of the latent from `generator` (`draw_latent`, scaled)."""
    return scale_latent(config, draw_latent(config, n, generator))


class CodeHead(nn.Module):
    """Q's head (paper: FC 128-BN-lReLU, FC): features -> Codes; with `noise_dim`, also z (for E)."""

    def __init__(self, features: int, config: InfoGANConfig, *, hidden: int, noise_dim: int = 0):
        super().__init__()
        self.n_cat, self.k, self.n_cont = config.n_cat_codes, config.cat_dim, config.n_cont_codes
        self.fixed_std, self.noise_dim = config.q_fixed_std, noise_dim
        out = noise_dim + self.n_cat * self.k + self.n_cont * (1 if self.fixed_std else 2)
        self.net = nn.Sequential(
            nn.Linear(features, hidden, bias=False), nn.BatchNorm1d(hidden), nn.LeakyReLU(LRELU, True),
            nn.Linear(hidden, out),
        )  # fmt: skip

    def forward(self, h: torch.Tensor) -> tuple[Codes, torch.Tensor]:
        return self.split(self.net(h))

    def split(self, out: torch.Tensor) -> tuple[Codes, torch.Tensor]:
        """The head's output (..., noise_dim + n_cat*K + n_cont*(1|2)) as Codes and z, whatever the
        leading dimensions ((n,) for one run, (B, K) for a pack's members)."""
        z, out = out[..., : self.noise_dim], out[..., self.noise_dim :]
        n_logits = self.n_cat * self.k
        cat_logits = out[..., :n_logits].unflatten(-1, (self.n_cat, self.k))  # (..., n_cat, K)
        mean = out[..., n_logits : n_logits + self.n_cont]  # (..., n_cont)
        # a learned log-std is clamped: exp() stays finite early on
        logstd = torch.zeros_like(mean) if self.fixed_std else out[..., n_logits + self.n_cont :].clamp(-5.0, 5.0)
        return Codes(cat_logits, mean, logstd), z


class Networks:
    """What InfoGAN's networks do together, written once for one run's (`InfoGAN`: inputs (n, ...))
    and a pack's (`trainables.packed`: inputs (B, K, ...), the member dimension before the
    features; images (B, K*C, H, W)). Last dimensions are features, so each method reads the same
    for both.

    Modules: `generator`; `trunk` and `d_head` (D); `q_head` (Q's head on D's trunk; None for a
    vanilla GAN and for Bidirectional-InfoGAN); Bidirectional-InfoGAN only: `latent_embed` (D's view
    of the latent), `enc_trunk`, `enc_head`."""

    generator: nn.Module
    trunk: nn.Module
    d_head: nn.Module
    q_head: CodeHead | None
    latent_embed: nn.Module
    enc_trunk: nn.Module
    enc_head: CodeHead
    bidirectional: bool
    cat_dim: int
    q_with_d: bool  # Q's head is trained by D's optimiser (q_update == 'd'; never E's head, which fools D)

    # ----------------------------------------------------------------- latent codes
    def latent_vector(self, latent: Latent) -> torch.Tensor:
        """(..., latent_dim): [z, one-hot cat codes, cont codes], G's input."""
        onehot = F.one_hot(latent.cat, self.cat_dim).flatten(-2).to(latent.z.dtype)
        return torch.cat([latent.z, onehot, latent.cont], dim=-1)

    def generate(self, latent: Latent) -> torch.Tensor:
        return self.generator(self.latent_vector(latent))  # (n, C, H, W)

    # ----------------------------------------------------------------- reading codes
    def encode(self, x: torch.Tensor) -> Codes:
        """Q(c | x) (or E(x) for Bidirectional-InfoGAN): x (n, C, H, W) in [-1, 1]."""
        if self.bidirectional:
            return self.enc_head(self.enc_trunk(x))[0]
        if self.q_head is None:
            raise BadInputError("this model has no codes (vanilla GAN): there is nothing to encode")
        return self.q_head(self.trunk(x))[0]

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Bidirectional-InfoGAN: E(x) as a latent vector (..., latent_dim) [z, softmax(cat), cont mean]."""
        codes, z = self.enc_head(self.enc_trunk(x))
        probs = codes.cat_logits.softmax(-1).flatten(-2)
        return torch.cat([z, probs, codes.cont_mean], dim=-1)

    def discriminate(self, x: torch.Tensor, latent_vec: torch.Tensor | None = None) -> torch.Tensor:
        """D's logit (n,) (a pack's: (B, K)); for Bidirectional-InfoGAN on the (x, latent) pair."""
        h = self.trunk(x)
        if self.bidirectional:
            h = torch.cat([h, self.latent_embed(latent_vec)], dim=-1)
        return self.d_head(h).squeeze(-1)

    # ----------------------------------------------------------------- parameter groups
    def d_parameters(self) -> list[nn.Parameter]:
        """What D's optimiser updates: the trunk and D's head (and the latent embedding, or Q's head)."""
        mods = [self.trunk, self.d_head] + ([self.latent_embed] if self.bidirectional else [])
        if self.q_with_d:
            mods.append(self.q_head)
        return [p for m in mods for p in m.parameters()]

    def g_parameters(self) -> list[nn.Parameter]:
        """What G's optimiser updates: G and Q's head unless D's optimiser trains it (E for
        Bidirectional-InfoGAN: its head, then its trunk; the order the optimiser state keeps)."""
        mods: list[nn.Module] = [self.generator]
        if self.q_head is not None and not self.q_with_d:
            mods.append(self.q_head)
        if self.bidirectional:
            mods += [self.enc_head, self.enc_trunk]
        return [p for m in mods for p in m.parameters()]


class InfoGAN(Networks, nn.Module):
    """All networks of one run (`Networks`). `encode` is Q (D's trunk + `q_head`) or, when
    bidirectional, the encoder E (its own `enc_trunk` + `enc_head`, which also reads z)."""

    def __init__(self, config: InfoGANConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        self.config, self.image_shape = config, tuple(image_shape)
        self.arch = resolve_arch(self.image_shape)
        self.bidirectional, self.cat_dim = config.bidirectional, config.cat_dim
        c, w = image_shape[0], config.width
        self.generator = build_generator(self.arch, config.latent_dim, c, w)
        self.trunk, feats = build_trunk(self.arch, c, w)
        hidden = _ch(128, w)
        if config.bidirectional:
            # D judges (x, latent) pairs: image features joined with an embedding of the latent.
            emb = _ch(512, w)
            self.latent_embed = nn.Sequential(nn.Linear(config.latent_dim, emb), nn.LeakyReLU(LRELU, True))
            self.d_head = nn.Sequential(
                nn.Linear(feats + emb, _ch(1024, w)), nn.LeakyReLU(LRELU, True), nn.Linear(_ch(1024, w), 1)
            )
            self.enc_trunk, enc_feats = build_trunk(self.arch, c, w)
            self.enc_head = CodeHead(enc_feats, config, hidden=hidden, noise_dim=config.noise_dim)
            self.q_head = None
        else:
            self.d_head = nn.Linear(feats, 1)
            self.q_head = CodeHead(feats, config, hidden=hidden) if config.has_codes else None
        self.q_with_d = config.q_update == "d" and self.q_head is not None

    def sample_latent(self, n: int, generator: torch.Generator) -> Latent:
        return sample_latent(self.config, n, generator)
