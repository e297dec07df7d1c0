"""K InfoGANs of one architecture as one network (`_layers.py`'s packed layers).

`PackedInfoGAN(models)` packs K `trainables.models.InfoGAN` of the same architecture (the
members of a pack: same image shape, latent sizes, width, heads) into one module whose submodules
have the single model's names (`generator`, `trunk`, `d_head`, `q_head`; Bidirectional-InfoGAN:
`latent_embed`, `enc_trunk`, `enc_head`), so `member_state_dict(packed, k)` is member k's
`InfoGAN.state_dict()` key for key. What the networks do together (latent vectors, D's logits,
E's codes, the optimisers' parameter groups in the single model's order) is the single model's
own code (`trainables.models.Networks`), which reads the member dimension as it reads the batch.

Shapes: latent vectors (B, K, latent_dim); images (B, K*C, H, W) (member k's channels at
[k*C:(k+1)*C]); features (B, K, F); D's logits (B, K).
"""

from __future__ import annotations

from torch import nn

from trainables.models import CodeHead, InfoGAN, Networks
from trainables.packed._layers import pack_module


class PackedCodeHead(CodeHead):
    """K `CodeHead`s: features (B, K, F) -> Codes with a member dimension, and z (B, K, noise_dim)."""

    def __init__(self, heads: list[CodeHead]) -> None:
        nn.Module.__init__(self)  # the layers are the members', packed; not a fresh head's
        first = heads[0]
        self.n_cat, self.k, self.n_cont = first.n_cat, first.k, first.n_cont
        self.fixed_std, self.noise_dim = first.fixed_std, first.noise_dim
        self.net = pack_module([h.net for h in heads])


class PackedInfoGAN(Networks, nn.Module):
    """The networks of K members (`Networks` with a member dimension)."""

    def __init__(self, models: list[InfoGAN]) -> None:
        super().__init__()
        first = models[0]
        self.k, self.image_shape = len(models), first.image_shape
        self.bidirectional, self.cat_dim, self.q_with_d = first.bidirectional, first.cat_dim, first.q_with_d
        self.generator = pack_module([m.generator for m in models])
        self.trunk = pack_module([m.trunk for m in models])
        self.d_head = pack_module([m.d_head for m in models])
        self.q_head = PackedCodeHead([m.q_head for m in models]) if first.q_head is not None else None
        if self.bidirectional:
            self.latent_embed = pack_module([m.latent_embed for m in models])
            self.enc_trunk = pack_module([m.enc_trunk for m in models])
            self.enc_head = PackedCodeHead([m.enc_head for m in models])
