"""InfoGAN's losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.losses import d_loss, g_loss, info_loss, instance_noise_std, mi_bounds
from trainables.models import Codes, Latent


def _latent(cat, cont):
    cat = torch.tensor(cat, dtype=torch.long)
    cont = torch.tensor(cont, dtype=torch.float)
    return Latent(torch.zeros(len(cat), 3), cat, cont)


def test_gan_losses_at_an_undecided_discriminator():
    zeros = torch.zeros(5)
    assert d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert g_loss(zeros).item() == pytest.approx(math.log(2))
    # a confident, correct D: real logits high, fake low -> D's loss near 0, G's loss large
    assert d_loss(torch.full((5,), 20.0), torch.full((5,), -20.0)).item() < 1e-6
    assert g_loss(torch.full((5,), -20.0)).item() == pytest.approx(20.0, rel=1e-3)


def test_info_loss_matches_closed_forms():
    k = 4
    latent = _latent([[0], [3]], [[0.5], [-0.5]])
    uniform = Codes(torch.zeros(2, 1, k), torch.zeros(2, 1), torch.zeros(2, 1))
    terms = info_loss(uniform, latent, cont_weight=0.4)
    # uniform Q: CE = ln K; N(0, 1) NLL of +-0.5 = 0.5 ln 2pi + 0.125
    nll = 0.5 * math.log(2 * math.pi) + 0.125
    assert terms.ce_per_code.item() == pytest.approx(math.log(k))
    assert terms.nll_per_code.item() == pytest.approx(nll)
    assert terms.loss.item() == pytest.approx(math.log(k) + 0.4 * nll)
    # a perfect categorical guess and a sharp correct Gaussian: bound approaches H(c)
    logits = torch.full((2, 1, k), -30.0)
    logits[0, 0, 0] = logits[1, 0, 3] = 30.0
    sharp = Codes(logits, latent.cont.clone(), torch.full((2, 1), -3.0))
    t = info_loss(sharp, latent, cont_weight=1.0)
    assert t.ce_per_code.item() < 1e-6
    assert t.nll_per_code.item() == pytest.approx(0.5 * math.log(2 * math.pi) - 3.0)


def test_info_loss_sums_over_codes():
    latent = _latent([[0, 1, 2]], [[0.0, 0.0]])
    codes = Codes(torch.zeros(1, 3, 5), torch.zeros(1, 2), torch.zeros(1, 2))
    t = info_loss(codes, latent, cont_weight=1.0)
    assert t.loss.item() == pytest.approx(3 * math.log(5) + 2 * 0.5 * math.log(2 * math.pi))
    assert t.ce_per_code.item() == pytest.approx(math.log(5))


def test_mi_bounds_normalise_by_entropy_and_clip():
    b = mi_bounds(math.log(10) / 2, 0.0, cat_dim=10, has_cat=True, has_cont=True)
    assert b["mi/cat"] == pytest.approx(0.5)
    assert b["mi/cat_nats"] == pytest.approx(math.log(10) / 2)
    assert b["mi/cont"] == pytest.approx(math.log(2))
    assert mi_bounds(5.0, 0.0, cat_dim=10, has_cat=True, has_cont=False)["mi/cat"] == 0.0
    assert mi_bounds(0.0, 0.0, cat_dim=10, has_cat=False, has_cont=False) == {
        "mi/cat_nats": 0.0, "mi/cat": 0.0, "mi/cont": 0.0
    }  # fmt: skip


def test_instance_noise_anneals_linearly_to_zero():
    assert instance_noise_std(0.5, 0, 10_000) == 0.5
    assert instance_noise_std(0.5, 100, 0) == 0.5
    assert instance_noise_std(0.5, 100, 50) == pytest.approx(0.25)
    assert instance_noise_std(0.5, 100, 100) == 0.0
    assert instance_noise_std(0.5, 100, 1000) == 0.0


def test_with_a_member_dimension_each_loss_is_each_members_own():
    """A pack's outputs (n, K, ...) give (K,) losses: member k's is the loss of its own slice."""
    g = torch.Generator().manual_seed(0)
    n, k, n_cat, cat_dim, n_cont = 6, 3, 2, 5, 2
    real, fake = torch.randn(n, k, generator=g), torch.randn(n, k, generator=g)
    cat = torch.randint(cat_dim, (n, k, n_cat), generator=g)
    latent = Latent(torch.zeros(n, k, 1), cat, torch.rand(n, k, n_cont, generator=g) * 2 - 1)
    codes = Codes(torch.randn(n, k, n_cat, cat_dim, generator=g), torch.randn(n, k, n_cont, generator=g),
                  0.3 * torch.randn(n, k, n_cont, generator=g))  # fmt: skip
    weights = torch.tensor([0.5, 1.0, 2.0])
    packed = info_loss(codes, latent, cont_weight=weights)
    assert [t.shape for t in packed] == [(k,)] * 3 and d_loss(real, fake).shape == g_loss(fake).shape == (k,)
    for j in range(k):
        own = info_loss(Codes(*(c[:, j] for c in codes)), Latent(*(x[:, j] for x in latent)), cont_weight=weights[j])
        assert [t[j].item() for t in packed] == pytest.approx([t.item() for t in own], rel=1e-6)
        assert d_loss(real, fake)[j].item() == pytest.approx(d_loss(real[:, j], fake[:, j]).item(), rel=1e-6)
        assert g_loss(fake)[j].item() == pytest.approx(g_loss(fake[:, j]).item(), rel=1e-6)
