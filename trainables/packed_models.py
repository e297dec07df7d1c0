"""K InfoGANs of one architecture as one network (`trainables/packed_nn.py` layers).

`PackedInfoGAN(models)` packs K `trainables.models.InfoGAN` of the same architecture (the
members of a pack: same image shape, latent sizes, width, heads) into one module whose submodules
have the single model's names (`generator`, `trunk`, `d_head`, `q_head`; Bidirectional-InfoGAN:
`latent_embed`, `enc_trunk`, `enc_head`), so `member_state_dict(packed, k)` is member k's
`InfoGAN.state_dict()` key for key, and its parameter groups come in the single model's order
(the optimiser states of a member line up with a single run's).

Shapes: latent vectors (B, K, latent_dim); images (B, K*C, H, W) (member k's channels at
[k*C:(k+1)*C]); features (B, K, F); D's logits (B, K).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainables.models import CodeHead, Codes, InfoGAN
from trainables.packed_nn import pack_module


class PackedCodeHead(nn.Module):
    """K `CodeHead`s: features (B, K, F) -> Codes with a member dimension, and z (B, K, noise_dim)."""

    def __init__(self, heads: list[CodeHead]) -> None:
        super().__init__()
        first = heads[0]
        self.n_cat, self.k, self.n_cont = first.n_cat, first.k, first.n_cont
        self.fixed_std, self.noise_dim = first.fixed_std, first.noise_dim
        self.net = pack_module([h.net for h in heads])

    def forward(self, h: Tensor) -> tuple[Codes, Tensor]:
        out = self.net(h)  # (B, K, noise_dim + n_cat*cat_dim + n_cont*(1|2))
        b, k = out.shape[:2]
        z, out = out[..., : self.noise_dim], out[..., self.noise_dim :]
        n_logits = self.n_cat * self.k
        cat_logits = out[..., :n_logits].reshape(b, k, self.n_cat, self.k)  # (B, K, n_cat, cat_dim)
        mean = out[..., n_logits : n_logits + self.n_cont]  # (B, K, n_cont)
        if self.fixed_std:
            logstd = torch.zeros_like(mean)
        else:
            logstd = out[..., n_logits + self.n_cont :].clamp(-5.0, 5.0)  # as CodeHead
        return Codes(cat_logits, mean, logstd), z


class PackedInfoGAN(nn.Module):
    """The networks of K members; forward methods mirror `InfoGAN`'s with a member dimension."""

    def __init__(self, models: list[InfoGAN]) -> None:
        super().__init__()
        first = models[0]
        self.k, self.image_shape, self.bidirectional = len(models), first.image_shape, first.config.bidirectional
        self.cat_dim = first.config.cat_dim
        self.q_with_d = first.q_with_d
        self.generator = pack_module([m.generator for m in models])
        self.trunk = pack_module([m.trunk for m in models])
        self.d_head = pack_module([m.d_head for m in models])
        self.q_head = PackedCodeHead([m.q_head for m in models]) if first.q_head is not None else None
        if self.bidirectional:
            self.latent_embed = pack_module([m.latent_embed for m in models])
            self.enc_trunk = pack_module([m.enc_trunk for m in models])
            self.enc_head = PackedCodeHead([m.enc_head for m in models])

    def latent_vector(self, z: Tensor, cat: Tensor, cont: Tensor) -> Tensor:
        """(B, K, latent_dim): [z, one-hot cat codes, cont codes] per member (`InfoGAN.latent_vector`)."""
        onehot = nn.functional.one_hot(cat, self.cat_dim).flatten(2).to(z.dtype)
        return torch.cat([z, onehot, cont], dim=2)

    def discriminate(self, x: Tensor, latent_vec: Tensor | None = None) -> Tensor:
        """D's logits (B, K); for Bidirectional-InfoGAN on the (x, latent) pairs."""
        h = self.trunk(x)  # (B, K, F)
        if self.bidirectional:
            h = torch.cat([h, self.latent_embed(latent_vec)], dim=2)
        return self.d_head(h).squeeze(2)

    def encode(self, x: Tensor) -> Codes:
        """E(x) of Bidirectional-InfoGAN (Q is `q_head(trunk(x))`, read in the loop)."""
        return self.enc_head(self.enc_trunk(x))[0]

    def encode_latent(self, x: Tensor) -> Tensor:
        """E(x) as latent vectors (B, K, latent_dim): [z, softmax(cat), cont mean]."""
        codes, z = self.enc_head(self.enc_trunk(x))
        probs = codes.cat_logits.softmax(-1).flatten(2)
        return torch.cat([z, probs, codes.cont_mean], dim=2)

    def d_parameters(self) -> list[nn.Parameter]:
        """As `InfoGAN.d_parameters`, in the same order."""
        mods = [self.trunk, self.d_head] + ([self.latent_embed] if self.bidirectional else [])
        if self.q_with_d:
            mods.append(self.q_head)
        return [p for m in mods for p in m.parameters()]

    def g_parameters(self) -> list[nn.Parameter]:
        """As `InfoGAN.g_parameters`, in the same order."""
        mods: list[nn.Module] = [self.generator]
        if self.q_head is not None and not self.q_with_d:
            mods.append(self.q_head)
        if self.bidirectional:
            mods += [self.enc_head, self.enc_trunk]
        return [p for m in mods for p in m.parameters()]
