"""One training step of InfoGAN (Chen et al. 2016, https://arxiv.org/abs/1606.03657): one D
update then one G (+Q or E) update, written once for one run (`trainables/loop.py`) and for a pack
of runs trained as one network (`trainables/packed/`).

A pack's tensors carry a member dimension K after the batch (logits (B, K), codes (B, K, ...),
losses (K,)); the networks (`models.Networks`), the losses (`losses`) and everything here read
the same either way, so each member's update is its single run's. What differs is handed in
(`StepParts`): how an update is made (a pack masks its frozen members), L_I's weight and
detachment (floats, or (K,) tensors), and a pack's guard on Q's batch-norm statistics.

The pieces, in the order a step uses them:
- `info_terms`: where L_I enters each update, chosen once per run;
- `draw_after_real`: the step's random draws after the real batch, in their order;
- `infogan_step` / `bidirectional_step`: the step, top to bottom;
- `SUMS`, `step_sums`: what is summed on the device between reports;
- `Stepper`: a trainer's step counter and sums, and `train_step` (the two trainers' common base).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from trainables.config import InfoGANConfig
from trainables.losses import InfoTerms, d_loss, g_loss, info_loss, instance_noise_std
from trainables.models import Codes, Latent, Networks, draw_latent

# Running sums kept on the device between reports, in this order (`step_sums`).
SUMS = ("loss/d", "loss/g", "loss/info", "ce", "nll", "d/real", "d/fake")


@dataclass(frozen=True)
class InfoTerm:
    """How L_I enters one update: `weight` times L_I, with the code reader on detached features
    where `detached` (L_I then trains only the reader's head, not the trunk or G). A pack's are
    (K,) tensors, one entry per member. `on`: L_I enters the update at all (a weight is not 0)."""

    weight: float | torch.Tensor
    detached: bool | torch.Tensor
    on: bool

    @classmethod
    def of(cls, weight: float, *, detached: bool) -> InfoTerm:
        return cls(weight, detached, weight != 0)

    @classmethod
    def of_members(cls, terms: list[InfoTerm], device: torch.device) -> InfoTerm:
        """The members' terms of a pack as one, its weight and detachment (K,) tensors."""
        weight = torch.tensor([t.weight for t in terms], device=device)
        detached = torch.tensor([t.detached for t in terms], device=device)
        return cls(weight, detached, any(t.on for t in terms))


def info_terms(config: InfoGANConfig, *, q_with_d: bool) -> tuple[InfoTerm, InfoTerm]:
    """L_I in the D update and in the G update, chosen once per run (lambda = `lambda_info`):

    | model                                   | D update              | G update               |
    | InfoGAN, Q's head in D's optimiser      | lambda, on D's trunk  | lambda                 |
    | InfoGAN, Q's head in G's optimiser      | lambda, on D's trunk  | lambda                 |
    | lambda = 0, Q's head in D's optimiser   | 1, detached (Q only)  | 0 (L_I measured only)  |
    | lambda = 0, Q's head in G's optimiser   | 0                     | 1, detached (Q only)   |
    | Bidirectional-InfoGAN (E in G's)        | 0                     | lambda (1, detached, at lambda = 0) |
    | vanilla GAN (no codes)                  | 0                     | 0                      |

    In the D update the trunk minimises lambda * L_I as well (the official code: D's loss - lambda
    * MI, its Q layers in D's scope); at lambda = 0 G ignores its codes and Q's head still learns on
    detached features, so the MI bound is measured (the paper's GAN curve)."""
    lam = config.lambda_info
    none = InfoTerm.of(0.0, detached=False)
    if not config.has_codes:
        return none, none
    if config.bidirectional:
        return none, InfoTerm.of(lam, detached=False) if lam > 0 else InfoTerm.of(1.0, detached=True)
    if lam > 0:
        return InfoTerm.of(lam, detached=False), InfoTerm.of(lam, detached=False)
    if q_with_d:
        return InfoTerm.of(1.0, detached=True), InfoTerm.of(0.0, detached=True)
    return none, InfoTerm.of(1.0, detached=True)


def detach_where(x: torch.Tensor, detached: bool | torch.Tensor) -> torch.Tensor:
    """x detached (a pack: member k's part where detached[k]): x (B, ...) or (B, K, ...), or
    images (B, K*C, H, W)."""
    if isinstance(detached, bool):
        return x.detach() if detached else x
    if not detached.any():
        return x
    if detached.all():
        return x.detach()
    mask = detached.reshape(1, -1, *([1] * (x.dim() - 2)))
    if x.dim() == 4:  # images: the member's channels
        mask = detached.repeat_interleave(x.shape[1] // len(detached)).reshape(1, -1, 1, 1)
    return torch.where(mask, x.detach(), x)


@contextmanager
def frozen(params: list[torch.nn.Parameter]) -> Iterator[None]:
    """D frozen for G's update: no wasted weight gradients."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Draws(NamedTuple):
    """A step's random draws: real images (B, C, H, W) in [-1, 1] (a pack's (B, K*C, H, W)), D's
    input of them (with instance noise), the latent, and the noise on the fakes (0.0 without)."""

    real: torch.Tensor
    real_in: torch.Tensor
    latent: Latent
    fake_noise: torch.Tensor | float


def draw_after_real(
    config: InfoGANConfig, step: int, rng: torch.Generator, shape: torch.Size
) -> tuple[Latent, torch.Tensor | None, torch.Tensor | None]:
    """A run's draws after its real batch of `shape` (B, C, H, W), in this order: the latent (raw:
    `models.scale_latent` maps it to G's ranges), D's input noise on the real images, then on the
    fakes (None, None without instance noise)."""
    std = instance_noise_std(config.instance_noise, config.instance_noise_steps, step)
    latent = draw_latent(config, shape[0], rng)
    if not std:
        return latent, None, None
    real_noise = std * torch.randn(shape, generator=rng, device=rng.device)
    return latent, real_noise, std * torch.randn(shape, generator=rng, device=rng.device)


@dataclass
class StepParts:
    """What a run's (or a pack's) step works with, fixed for the run."""

    model: Networks
    opt_d: Any  # a torch.optim.Optimizer, or a pack's PackedOptimizer
    opt_g: Any
    d_info: InfoTerm
    g_info: InfoTerm
    cont_weight: float | torch.Tensor  # a float, or (K,)
    autocast: torch.autocast
    update: Callable[[Any, torch.Tensor], None]  # (optimizer, loss): zero the gradients, backward, step
    # around Q's head in the D update: a pack's members whose single run reads no codes there keep
    # Q's batch-norm statistics (`trainables.packed`); one run's needs nothing
    reading_codes_in_d: Callable[[], AbstractContextManager[Any]] = nullcontext
    d_params: list[torch.nn.Parameter] = field(init=False)

    def __post_init__(self) -> None:
        self.d_params = self.model.d_parameters()

    def info(self, codes: Codes, latent: Latent) -> InfoTerms:
        """L_I of Q's (or E's) codes, the network outputs cast to fp32 first (bf16 autocast)."""
        return info_loss(Codes(*(t.float() for t in codes)), latent, cont_weight=self.cont_weight)


class StepLosses(NamedTuple):
    """What a step adds up: D's loss, G's adversarial loss, L_I's terms (None: not measured), D's
    logits on real and fake images (B,) or (B, K)."""

    loss_d: torch.Tensor
    loss_adv: torch.Tensor
    info: InfoTerms | None
    real_logits: torch.Tensor
    fake_logits: torch.Tensor


def infogan_step(s: StepParts, draws: Draws) -> StepLosses:
    """InfoGAN, GAN + codes and the vanilla GAN: D's trunk feeds D's head and Q's head."""
    m, latent, fake_noise = s.model, draws.latent, draws.fake_noise

    # --- D update (network outputs cast to fp32 before the losses, for bf16 autocast) ---
    with s.autocast:
        fake = m.generator(m.latent_vector(latent))  # (B, C, H, W)
        h_fake = m.trunk(fake.detach() + fake_noise)  # (B, features)
        real_logits = m.d_head(m.trunk(draws.real_in)).squeeze(-1).float()  # (B,)
        fake_logits = m.d_head(h_fake).squeeze(-1).float()
        loss_d = loss_d_total = d_loss(real_logits, fake_logits)
        if s.d_info.on:
            with s.reading_codes_in_d():
                codes = m.q_head(detach_where(h_fake, s.d_info.detached))[0]
            loss_d_total = loss_d + s.d_info.weight * s.info(codes, latent).loss
    s.update(s.opt_d, loss_d_total)

    # --- G (+ Q's head) update, D frozen ---
    with frozen(s.d_params):
        with s.autocast:
            h = m.trunk(fake + fake_noise)
            loss_adv = g_loss(m.d_head(h).squeeze(-1).float())
            loss_g, info = loss_adv, None
            if m.q_head is not None:  # L_I is always measured; it enters the loss when weighted
                info = s.info(m.q_head(detach_where(h, s.g_info.detached))[0], latent)
                if s.g_info.on:
                    loss_g = loss_adv + s.g_info.weight * info.loss
        s.update(s.opt_g, loss_g)
    return StepLosses(loss_d, loss_adv, info, real_logits, fake_logits)


def bidirectional_step(s: StepParts, draws: Draws) -> StepLosses:
    """Bidirectional-InfoGAN: D judges (x, E(x)) against (G(z, c), (z, c)); G and E fool it, and
    L_I reads E's codes of the generated images."""
    m, latent, fake_noise = s.model, draws.latent, draws.fake_noise

    # --- D update ---
    with s.autocast:
        latent_vec = m.latent_vector(latent)  # (B, latent_dim)
        fake = m.generator(latent_vec)  # (B, C, H, W)
        enc_real = m.encode_latent(draws.real)  # E(x) of the clean images: (B, latent_dim), with grad for G/E
        real_logits = m.discriminate(draws.real_in, enc_real.detach()).float()  # (B,)
        fake_logits = m.discriminate(fake.detach() + fake_noise, latent_vec).float()
        loss_d = d_loss(real_logits, fake_logits)
    s.update(s.opt_d, loss_d)

    # --- G + E update, D frozen ---
    with frozen(s.d_params):
        with s.autocast:
            g_logits = m.discriminate(fake + fake_noise, latent_vec).float()
            e_logits = m.discriminate(draws.real_in, enc_real).float()
            loss_adv = g_loss(g_logits) + g_loss(-e_logits)  # E wants real pairs judged fake
            info = s.info(m.encode(detach_where(fake, s.g_info.detached)), latent)
            loss_g = loss_adv + s.g_info.weight * info.loss
        s.update(s.opt_g, loss_g)
    return StepLosses(loss_d, loss_adv, info, real_logits, fake_logits)


@torch.no_grad()
def step_sums(losses: StepLosses) -> torch.Tensor:
    """The step's numbers in `SUMS` order: (7,), or (7, K) for a pack."""
    loss_d, loss_adv, info, real_logits, fake_logits = losses
    info_vals = (info.loss, info.ce_per_code, info.nll_per_code) if info else (torch.zeros_like(loss_d),) * 3
    return torch.stack([
        loss_d.detach(), loss_adv.detach(), *(v.detach() for v in info_vals),
        torch.sigmoid(real_logits.detach()).mean(0), torch.sigmoid(fake_logits.detach()).mean(0),
    ])  # fmt: skip


class Stepper:
    """What a trainer of one run (`trainables.loop.Trainer`) and of a pack
    (`trainables.packed.PackedTrainer`) share: the step, chosen once per run, counted, and its
    numbers summed on the device between reports. A trainer sets its step up with `start_steps`
    and draws each step's batch in `_batch`."""

    parts: StepParts
    step: int  # steps taken
    sums: torch.Tensor  # `SUMS` since the last report: (7,) or (7, K), on the device
    sum_steps: int  # the steps they are summed over

    def start_steps(
        self, parts: StepParts, *, device: torch.device, bidirectional: bool, members: tuple[int, ...] = ()
    ) -> None:
        """Step 0 of a run on `device` (of a pack of K: `members` = (K,)) whose step works with `parts`."""
        self.parts = parts
        self._model_step = bidirectional_step if bidirectional else infogan_step
        self.step = 0
        self.sums = torch.zeros(len(SUMS), *members, device=device)
        self.sum_steps = 0
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def train_step(self) -> None:
        """One D update then one G (+Q or E) update (of every member of a pack)."""
        self.sums += step_sums(self._model_step(self.parts, self._batch()))
        self.sum_steps += 1
        self.step += 1

    def _batch(self) -> Draws:
        """The step's random draws (each trainer's own)."""
        raise NotImplementedError

    def take_means(self) -> tuple[list[Any], int]:
        """The sums' means since the last report, as a list ((7,) or (7, K): one host sync), and over
        how many steps; the sums start again."""
        means = (self.sums / max(self.sum_steps, 1)).tolist()
        steps = self.sum_steps
        self.sums.zero_()
        self.sum_steps = 0
        return means, steps
