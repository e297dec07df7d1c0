"""InfoGAN's losses as pure functions of network outputs.

min_{G,Q} max_D V(D, G) - lambda * L_I(G, Q)  (Chen et al. 2016, eq. 6, https://arxiv.org/abs/1606.03657)

- V(D, G): the standard GAN value with the non-saturating generator loss, on logits.
- L_I(G, Q) = E[log Q(c|x)] + H(c) is a lower bound on I(c; G(z, c)). We minimise its negative
  part, `info = CE_cat + cont_weight * NLL_cont` (sums over codes, means over the batch); the
  bound in nats is then H(c) - CE for a uniform categorical code (H = ln K) and ln 2 - NLL for a
  U(-1, 1) continuous code.

Every loss takes one run's outputs (batch first: logits (n,), codes (n, ...)) or a pack's, with
a member dimension after the batch (logits (n, K), codes (n, K, ...)); it is then a scalar, or
(K,): each member's own loss (`trainables.packed`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from trainables.models import Codes, Latent

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """BCE with logits against a constant target, mean over the batch: (n,) -> (), (n, K) -> (K,)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none").mean(0)


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-V(D, G) for D: real_logits and fake_logits (n,) or (n, K)."""
    return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)


def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z, c)) (Goodfellow et al. 2014): fake_logits (n,) or (n, K)."""
    return _bce(fake_logits, 1.0)


class InfoTerms(NamedTuple):
    """Each a scalar, or (K,) for a pack's members."""

    loss: torch.Tensor  # CE summed over cat codes + cont_weight * NLL summed over cont codes
    ce_per_code: torch.Tensor  # mean categorical cross-entropy per code (nats)
    nll_per_code: torch.Tensor  # mean Gaussian NLL per continuous code (nats)


def info_loss(codes: Codes, latent: Latent, *, cont_weight: float | torch.Tensor) -> InfoTerms:
    """-L_I without H(c): codes from Q(G(z, c)); latent holds the c that made the images. Latent
    parts (n, ..., n_codes) and codes (n, ..., n_codes[, cat_dim]), with `...` empty or a member
    dimension K (then `cont_weight` may be (K,) too)."""
    n, n_cat, n_cont = latent.cat.shape[0], latent.cat.shape[-1], latent.cont.shape[-1]
    zero = codes.cont_mean.new_zeros(latent.cat.shape[1:-1])  # () or (K,)
    if n_cat:
        logits = codes.cat_logits  # (n, ..., n_cat, cat_dim)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), latent.cat.reshape(-1), reduction="none")
        ce = ce.reshape(latent.cat.shape).sum((0, -1)) / n  # summed over codes, mean over the batch
        ce_per_code = ce / n_cat
    else:
        ce = ce_per_code = zero
    if n_cont:
        # Gaussian NLL of c under N(mean, exp(logstd)^2), summed over codes: (n, ..., n_cont) -> () or (K,)
        err = (latent.cont - codes.cont_mean) * torch.exp(-codes.cont_logstd)
        nll = (HALF_LOG_2PI + codes.cont_logstd + 0.5 * err.square()).sum((0, -1)) / n
        nll_per_code = nll / n_cont
    else:
        nll = nll_per_code = zero
    return InfoTerms(ce + cont_weight * nll, ce_per_code, nll_per_code)


def mi_bounds(
    ce_per_code: float, nll_per_code: float, *, cat_dim: int, has_cat: bool, has_cont: bool
) -> dict[str, float]:
    """The MI lower bounds: categorical in nats and normalised by H(c) = ln K, continuous in nats.

    I(c; G) >= H(c) - CE. A model without a code of a kind carries no information through it: 0.
    The normalised bound is clipped to [0, 1] (MI is non-negative and at most H(c)); the nats
    value is left as estimated.
    """
    h_cat = math.log(cat_dim)
    cat_nats = h_cat - ce_per_code if has_cat else 0.0
    return {
        "mi/cat_nats": cat_nats,
        "mi/cat": min(max(cat_nats / h_cat, 0.0), 1.0) if has_cat else 0.0,
        "mi/cont": math.log(2.0) - nll_per_code if has_cont else 0.0,
    }


def instance_noise_std(start: float, anneal_steps: int, step: int) -> float:
    """Std of the Gaussian noise on D's inputs at `step`: linear from `start` to 0 over `anneal_steps`
    (Sønderby et al. 2016, https://arxiv.org/abs/1610.04490); constant when anneal_steps == 0."""
    if anneal_steps == 0:
        return start
    return start * max(0.0, 1.0 - step / anneal_steps)
