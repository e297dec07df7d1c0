"""The InfoGAN training loop. It knows nothing of Ray: it takes a config, a device and a report
callback, and returns how the run ended.

One step = one D update then one G+Q update (Chen et al. 2016, https://arxiv.org/abs/1606.03657):
- D step: D's loss on real and (detached) fake images; with lambda_info > 0 the trunk also
  minimises lambda * L_I on the fakes, as the official code does (its Q layers share D's scope).
- G step: the non-saturating G loss + lambda * L_I, into G and Q's head. D's parameters are frozen
  for it (no wasted weight gradients). With lambda_info = 0, Q's head trains on detached trunk
  features: G ignores the codes, but the MI bound is still measured (the paper's GAN MI curve).
- Bidirectional-InfoGAN: D judges (x, E(x)) against (G(z, c), (z, c)); G and E fool it, and
  L_I uses E on generated images.

GPU first: data, latents and noise live on the device; losses are summed on the device and read
back once per report, so the step has no host synchronisation. Every random draw comes from one
`torch.Generator` whose state is checkpointed: resuming reproduces straight training exactly on CPU.

How a run ends is decided here and only here (`report_status`, `TrainResult`): completed, diverged
(a NaN/inf loss, or a loss beyond `LOSS_LIMIT`) with a reason, or stopped early by its caller.
The CLI, the Tune trainable, its trial record, `status` and `analyze` all show these words.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from trainables.checkpoint import read_checkpoint, write_checkpoint
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.losses import d_loss, g_loss, info_loss, instance_noise_std, mi_bounds
from trainables.models import Codes, InfoGAN

# report(metrics, save_checkpoint) -> None, or a reason to stop the run early (e.g. "by Tune's scheduler").
ReportFn = Callable[[dict[str, float], Callable[[str | Path], Path]], str | None]

# Running sums kept on the device between reports, in this order.
_SUMS = ("loss/d", "loss/g", "loss/info", "ce", "nll", "d/real", "d/fake")
# Fields that may differ between a checkpoint and the config resuming it.
RESUMABLE_CHANGES = ("steps", "report_every", "data_root")
# The losses a divergence is judged on, and the bound on their size. All three are cross-entropies
# (BCE with logits for D and G, CE + Gaussian NLL for Q): about ln 2 (G), 2 ln 2 (D) and ln K (Q)
# at equilibrium, tens when one network wins outright. BCE with logits grows like |logit| for a
# confidently wrong output, so a mean loss of 1e4 over a report means logits of order 1e4: the
# weights have blown up (sigmoids saturated, gradients gone) and the run will not come back, even
# while every number is still finite (lr 1e6 reaches loss/d ~ 1e14 without a NaN).
LOSSES = ("loss/d", "loss/g", "loss/info")
LOSS_LIMIT = 1e4


@dataclass
class TrainResult:
    status: str  # "completed" | "diverged" | "stopped" (by the caller, see ReportFn)
    reason: str  # "" or one line: why the run ended before its last step
    step: int
    metrics: dict[str, float] = field(default_factory=dict)  # the last report


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a one-line error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda: no CUDA GPU is visible; use --device cpu or auto")
    return dev


def _float_codes(codes: Codes) -> Codes:
    return Codes(*(t.float() for t in codes))


def _set_requires_grad(params: list[torch.nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


class Trainer:
    """Networks, optimisers, RNG and step counter of one run; `train_step` advances it by one."""

    def __init__(self, config: InfoGANConfig, *, device: str | torch.device = "auto", data: Any = None):
        self.config = config
        self.device = resolve_device(device)
        if data is None:
            from trainables.data import load_data

            data = load_data(config, device=self.device)
        self.data = data
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.model = InfoGAN(config, data.image_shape)
        self.model.to(self.device).train()
        self.d_params, self.g_params = self.model.d_parameters(), self.model.g_parameters()
        betas = (config.beta1, config.beta2)
        # fused: one kernel per parameter instead of a chain of foreach ops (about 8x faster on CPU)
        if config.d_optimizer == "adam":
            self.opt_d: torch.optim.Optimizer = torch.optim.Adam(self.d_params, lr=config.lr_d, betas=betas, fused=True)
        else:
            self.opt_d = torch.optim.SGD(self.d_params, lr=config.lr_d, momentum=0.9, fused=True)
        self.opt_g = torch.optim.Adam(self.g_params, lr=config.lr_g, betas=betas, fused=True)
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
        self.rng = torch.Generator(self.device).manual_seed(config.seed)
        self.step = 0
        self.sums = torch.zeros(len(_SUMS), device=self.device)
        self.sum_steps = 0
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    # ------------------------------------------------------------------ one step
    def _noisy(self, x: torch.Tensor, std: float) -> torch.Tensor:
        if std == 0.0:
            return x
        return x + std * torch.randn(x.shape, generator=self.rng, device=x.device)

    def train_step(self) -> None:
        cfg, m = self.config, self.model
        std = instance_noise_std(cfg.instance_noise, cfg.instance_noise_steps, self.step)
        lam = cfg.lambda_info
        real = self.data.sample(cfg.batch_size, self.rng)  # (B, C, H, W) in [-1, 1]
        latent = m.sample_latent(cfg.batch_size, self.rng)
        real_in = self._noisy(real, std)
        fake_noise = self._noisy(torch.zeros_like(real), std) if std else 0.0

        # --- D step --- (network outputs cast to fp32 before the losses, for bf16 autocast)
        with self.autocast:
            latent_vec = m.latent_vector(latent)  # (B, latent_dim)
            fake = m.generator(latent_vec)  # (B, C, H, W)
            if cfg.bidirectional:
                enc_real = m.encode_latent(real)  # E(x): (B, latent_dim), with grad for the G/E step
                real_logits = m.discriminate(real_in, enc_real.detach()).float()
                fake_logits = m.discriminate(fake.detach() + fake_noise, latent_vec).float()
            else:
                h_fake = m.trunk(fake.detach() + fake_noise)
                real_logits = m.d_head(m.trunk(real_in)).squeeze(1).float()
                fake_logits = m.d_head(h_fake).squeeze(1).float()
            loss_d = d_loss(real_logits, fake_logits)
            loss_d_total = loss_d
            if m.q_with_d:  # Q's head learns here (on detached trunk features when lambda = 0)
                codes_d = _float_codes(m.q_head(h_fake if lam > 0 else h_fake.detach())[0])
                loss_d_total = loss_d + (lam if lam > 0 else 1.0) * info_loss(codes_d, latent, cont_weight=cfg.cont_weight).loss
            elif lam > 0 and not cfg.bidirectional and m.q_head is not None:
                # the shared trunk learns to keep the codes readable (official code: D's loss - lambda * MI)
                codes_d = _float_codes(m.q_head(h_fake)[0])
                loss_d_total = loss_d + lam * info_loss(codes_d, latent, cont_weight=cfg.cont_weight).loss
        self.opt_d.zero_grad(set_to_none=True)
        loss_d_total.backward()
        self.opt_d.step()

        # --- G (+Q/E) step, D frozen ---
        _set_requires_grad(self.d_params, False)
        with self.autocast:
            if cfg.bidirectional:
                g_logits = m.discriminate(fake + fake_noise, latent_vec).float()
                e_logits = m.discriminate(real_in, enc_real).float()
                loss_adv = g_loss(g_logits) + g_loss(-e_logits)  # E wants real pairs judged fake
                codes = m.encode(fake if lam > 0 else fake.detach())
            else:
                h = m.trunk(fake + fake_noise)
                loss_adv = g_loss(m.d_head(h).squeeze(1).float())
                codes = m.q_head(h if lam > 0 else h.detach())[0] if m.q_head is not None else None
            if codes is not None:
                info = info_loss(_float_codes(codes), latent, cont_weight=cfg.cont_weight)
                if lam > 0:
                    loss_g = loss_adv + lam * info.loss
                elif m.q_with_d:  # Q's head learned in the D step; `info` still measures the bound
                    loss_g = loss_adv
                else:  # lambda = 0: Q's head still learns (on detached inputs) so the bound can be measured
                    loss_g = loss_adv + info.loss
                info_vals = (info.loss.detach(), info.ce_per_code.detach(), info.nll_per_code.detach())
            else:
                loss_g = loss_adv
                info_vals = (loss_adv.new_zeros(()),) * 3
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        _set_requires_grad(self.d_params, True)

        with torch.no_grad():
            self.sums += torch.stack([
                loss_d.detach(), loss_adv.detach(), *info_vals,
                torch.sigmoid(real_logits.detach()).mean(), torch.sigmoid(fake_logits.detach()).mean(),
            ])  # fmt: skip
        self.sum_steps += 1
        self.step += 1

    # ------------------------------------------------------------------ reporting
    def collect_metrics(self, elapsed_s: float) -> dict[str, float]:
        """Means over the steps since the last report (one host sync); resets the sums."""
        cfg = self.config
        means = dict(zip(_SUMS, (self.sums / max(self.sum_steps, 1)).tolist()))
        metrics: dict[str, float] = {"step": float(self.step)}
        metrics.update({k: means[k] for k in ("loss/d", "loss/g", "loss/info", "d/real", "d/fake")})
        metrics.update(
            mi_bounds(
                means["ce"], means["nll"], cat_dim=cfg.cat_dim,
                has_cat=cfg.n_cat_codes > 0, has_cont=cfg.n_cont_codes > 0,
            )
        )  # fmt: skip
        metrics["instance_noise"] = instance_noise_std(cfg.instance_noise, cfg.instance_noise_steps, self.step)
        metrics["perf/images_per_s"] = self.sum_steps * cfg.batch_size / max(elapsed_s, 1e-9)
        metrics["diverged"] = 0.0
        self.sums.zero_()
        self.sum_steps = 0
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "step": self.step,
            "image_shape": tuple(self.data.image_shape),
            "model": self.model.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "rng": self.rng.get_state(),
            "rng_device": self.device.type,
        }

    def save(self, directory: str | Path, metrics: dict[str, float] | None = None) -> Path:
        return write_checkpoint({**self.state_dict(), "metrics": metrics or {}}, directory)

    def load(self, path: str | Path) -> dict[str, float]:
        """Restore a checkpoint saved by `save`; returns its last metrics."""
        state = read_checkpoint(path, map_location=self.device)
        saved = InfoGANConfig.from_dict(state["config"])
        diff = [
            k for k in InfoGANConfig.field_names()
            if k not in RESUMABLE_CHANGES and getattr(saved, k) != getattr(self.config, k)
        ]  # fmt: skip
        if diff:
            k = diff[0]
            raise BadInputError(
                f"checkpoint was trained with {k}={getattr(saved, k)!r}, not {getattr(self.config, k)!r}; "
                f"resume with the same config (only {', '.join(RESUMABLE_CHANGES)} may change)"
            )
        self.model.load_state_dict(state["model"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        if state.get("rng_device") == self.device.type:
            self.rng.set_state(state["rng"].cpu())  # generator states are CPU byte tensors on every device
        else:  # another device kind: its RNG state does not transfer; continue deterministically
            self.rng.manual_seed(self.config.seed + int(state["step"]))
        self.step = int(state["step"])
        return dict(state.get("metrics", {}))


def report_status(metrics: dict[str, float], config: InfoGANConfig) -> tuple[str, str]:
    """How the run stands at a report: ("running", ""), ("completed", "") at its last step, or
    ("diverged", reason) when a loss is NaN, inf or beyond LOSS_LIMIT (a mean over the report's
    steps, so the reason says "by step N")."""
    for key in LOSSES:
        value = metrics[key]
        if value != value or value in (float("inf"), float("-inf")):
            return "diverged", f"diverged by step {int(metrics['step'])}: {key} is {value}"
        if abs(value) > LOSS_LIMIT:
            return "diverged", f"diverged by step {int(metrics['step'])}: {key} = {value:.3g}, beyond {LOSS_LIMIT:.0e}"
    return ("completed" if metrics["step"] >= config.steps else "running"), ""


def train(
    config: InfoGANConfig,
    *,
    device: str | torch.device = "auto",
    report: ReportFn | None = None,
    resume_from: str | Path | None = None,
    data: Any = None,
    progress: bool = False,
    evaluate: Callable[[InfoGAN], dict[str, float]] | None = None,
) -> TrainResult:
    """Train `config.steps` steps (continuing from `resume_from`), calling `report(metrics,
    save_checkpoint)` every `config.report_every` steps and at the end. A diverged loss (see
    `report_status`) ends the run with status 'diverged' and a reason; it is reported (diverged=1.0),
    not raised. A report that returns a reason stops the run there (status 'stopped').
    `evaluate(model)`: extra metrics for every report that did not diverge (e.g. the analysis's
    generator-side probe); it must leave the model's training state and the run's RNG alone."""
    trainer = Trainer(config, device=device, data=data)
    metrics: dict[str, float] = {}
    if resume_from is not None:
        metrics = trainer.load(resume_from)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=trainer.step, desc=config.variant, unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    status, reason = ("completed" if trainer.step >= config.steps else "running"), ""
    try:
        while status == "running":
            trainer.train_step()
            if bar is not None:
                bar.update(1)
            if trainer.step % config.report_every == 0 or trainer.step == config.steps:
                metrics = trainer.collect_metrics(time.perf_counter() - t0)
                status, reason = report_status(metrics, config)
                if status == "diverged":
                    metrics["diverged"] = 1.0
                elif evaluate is not None:
                    metrics.update(evaluate(trainer.model))
                if bar is not None:
                    bar.set_postfix({k: f"{metrics[k]:.3g}" for k in ("loss/d", "loss/g", "mi/cat")})
                stop = report(metrics, lambda d, m=metrics: trainer.save(d, m)) if report is not None else None
                if stop and status == "running":
                    status, reason = "stopped", f"stopped at step {trainer.step} of {config.steps} {stop}"
                t0 = time.perf_counter()
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(status, reason, trainer.step, metrics)
