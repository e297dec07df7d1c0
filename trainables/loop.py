"""The InfoGAN training loop. It knows nothing of Ray: it takes a config, a device and a report
callback, and returns how the run ended.

One step = one D update then one G update (Chen et al. 2016, https://arxiv.org/abs/1606.03657); the
kind of step is chosen once per run (`Trainer`, `info_terms`):
- D update: D's loss on real and (detached) fake images; with lambda_info > 0 the trunk also
  minimises lambda * L_I on the fakes, as the official code does (its Q layers live in D's scope:
  with q_update=d, the default, Q's head learns here).
- G update: the non-saturating G loss + lambda * L_I (with q_update=g, Q's head learns here). D's
  parameters are frozen for it (no wasted weight gradients). With lambda_info = 0 G ignores the
  codes, and Q's head still learns on detached trunk features, so the MI bound is still measured
  (the paper's GAN MI curve).
- Bidirectional-InfoGAN: D judges (x, E(x)) against (G(z, c), (z, c)); G and E fool it, and
  L_I uses E on generated images.
A batch whose step cannot fit in the device's free memory is refused before the first step
(`trainables/memory.py`), and running out of memory later is a one-line `BadInputError` too.

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
from trainables.losses import InfoTerms, d_loss, g_loss, info_loss, instance_noise_std, mi_bounds
from trainables.memory import check_memory, out_of_memory
from trainables.models import Codes, InfoGAN, Latent

# report(metrics, save_checkpoint) -> None, or a reason to stop the run early (e.g. "by Tune's scheduler").
ReportFn = Callable[[dict[str, float], Callable[[str | Path], Path]], str | None]

# What every report holds (`Trainer.collect_metrics`), and which way is better where one is: the
# direction a study objective on the metric takes when none is given (None: say max or min). The
# one list of the loop's metrics: the launcher refuses objectives outside it and the probe's
# (`analysis.evaluators.PROBE_METRICS`) before Ray starts.
METRICS: dict[str, str | None] = {
    "step": None,
    "loss/d": "min", "loss/g": "min", "loss/info": "min",  # means over the steps since the last report
    "d/real": None, "d/fake": None,  # D's mean output (probability) on real and generated images
    "mi/cat_nats": "max", "mi/cat": "max", "mi/cont": "max",  # MI lower bounds (trainables/losses.py)
    "instance_noise": None, "perf/images_per_s": "max",
    "diverged": None,  # 1.0 on the report that ended the run as diverged (`report_status`)
}  # fmt: skip
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


@dataclass(frozen=True)
class InfoTerm:
    """How L_I enters one update: `weight` times L_I (0: not at all), with the code reader on
    detached features when `detached` (then L_I trains only the reader's head, not the trunk or G)."""

    weight: float
    detached: bool


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
    none = InfoTerm(0.0, detached=False)
    if not config.has_codes:
        return none, none
    if config.bidirectional:
        return none, InfoTerm(lam, detached=False) if lam > 0 else InfoTerm(1.0, detached=True)
    if lam > 0:
        return InfoTerm(lam, detached=False), InfoTerm(lam, detached=False)
    if q_with_d:
        return InfoTerm(1.0, detached=True), InfoTerm(0.0, detached=True)
    return none, InfoTerm(1.0, detached=True)


class Trainer:
    """Networks, optimisers, RNG and step counter of one run; `train_step` advances it by one.

    The kind of step is chosen once, here: `_infogan_step` (InfoGAN and every model without an
    encoder: D and Q share D's trunk) or `_bidirectional_step` (Bidirectional-InfoGAN), with L_I's
    place in each update from `info_terms`. Each reads top to bottom: draw the batch, D update,
    G update, add up the losses."""

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
        check_memory(self.model, config.batch_size, self.device)
        self.d_params, self.g_params = self.model.d_parameters(), self.model.g_parameters()
        betas = (config.beta1, config.beta2)
        # fused: one kernel per parameter instead of a chain of foreach ops (about 8x faster on CPU)
        if config.d_optimizer == "adam":
            self.opt_d: torch.optim.Optimizer = torch.optim.Adam(self.d_params, lr=config.lr_d, betas=betas, fused=True)
        else:
            self.opt_d = torch.optim.SGD(self.d_params, lr=config.lr_d, momentum=config.sgd_momentum, fused=True)
        self.opt_g = torch.optim.Adam(self.g_params, lr=config.lr_g, betas=betas, fused=True)
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
        self.rng = torch.Generator(self.device).manual_seed(config.seed)
        self.step = 0
        self.sums = torch.zeros(len(_SUMS), device=self.device)
        self.sum_steps = 0
        self.d_info, self.g_info = info_terms(config, q_with_d=self.model.q_with_d)
        self._model_step = self._bidirectional_step if config.bidirectional else self._infogan_step
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        """One D update then one G (+Q or E) update."""
        self._model_step()
        self.sum_steps += 1
        self.step += 1

    def _batch(self) -> tuple[torch.Tensor, Latent, torch.Tensor, torch.Tensor | float]:
        """The step's random draws, in this order: real images (B, C, H, W) in [-1, 1], the latent,
        D's input noise on the real images and on the fakes (0.0 without instance noise)."""
        cfg = self.config
        std = instance_noise_std(cfg.instance_noise, cfg.instance_noise_steps, self.step)
        real = self.data.sample(cfg.batch_size, self.rng)
        latent = self.model.sample_latent(cfg.batch_size, self.rng)
        real_in = self._noisy(real, std)
        fake_noise = self._noisy(torch.zeros_like(real), std) if std else 0.0
        return real, latent, real_in, fake_noise

    def _noisy(self, x: torch.Tensor, std: float) -> torch.Tensor:
        if std == 0.0:
            return x
        return x + std * torch.randn(x.shape, generator=self.rng, device=x.device)

    def _info(self, codes: Codes, latent: Latent) -> InfoTerms:
        return info_loss(_float_codes(codes), latent, cont_weight=self.config.cont_weight)

    def _update(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def _add_up(self, loss_d: torch.Tensor, loss_adv: torch.Tensor, info: InfoTerms | None,
                real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:  # fmt: skip
        """Add the step's numbers to the running sums (`_SUMS` order), on the device."""
        with torch.no_grad():
            info_vals = (info.loss, info.ce_per_code, info.nll_per_code) if info else (loss_adv.new_zeros(()),) * 3
            self.sums += torch.stack([
                loss_d.detach(), loss_adv.detach(), *(v.detach() for v in info_vals),
                torch.sigmoid(real_logits.detach()).mean(), torch.sigmoid(fake_logits.detach()).mean(),
            ])  # fmt: skip

    def _infogan_step(self) -> None:
        """InfoGAN, GAN + codes and the vanilla GAN: D's trunk feeds D's head and Q's head."""
        m, d_info, g_info = self.model, self.d_info, self.g_info
        real, latent, real_in, fake_noise = self._batch()

        # --- D update (network outputs cast to fp32 before the losses, for bf16 autocast) ---
        with self.autocast:
            latent_vec = m.latent_vector(latent)  # (B, latent_dim)
            fake = m.generator(latent_vec)  # (B, C, H, W)
            h_fake = m.trunk(fake.detach() + fake_noise)  # (B, features)
            real_logits = m.d_head(m.trunk(real_in)).squeeze(1).float()  # (B,)
            fake_logits = m.d_head(h_fake).squeeze(1).float()
            loss_d = d_loss(real_logits, fake_logits)
            loss_d_total = loss_d
            if d_info.weight:
                codes = m.q_head(h_fake.detach() if d_info.detached else h_fake)[0]
                loss_d_total = loss_d + d_info.weight * self._info(codes, latent).loss
        self._update(self.opt_d, loss_d_total)

        # --- G (+ Q's head) update, D frozen ---
        _set_requires_grad(self.d_params, False)
        with self.autocast:
            h = m.trunk(fake + fake_noise)
            loss_adv = g_loss(m.d_head(h).squeeze(1).float())
            loss_g, info = loss_adv, None
            if m.q_head is not None:  # L_I is always measured; it enters the loss when weighted
                info = self._info(m.q_head(h.detach() if g_info.detached else h)[0], latent)
                if g_info.weight:
                    loss_g = loss_adv + g_info.weight * info.loss
        self._update(self.opt_g, loss_g)
        _set_requires_grad(self.d_params, True)

        self._add_up(loss_d, loss_adv, info, real_logits, fake_logits)

    def _bidirectional_step(self) -> None:
        """Bidirectional-InfoGAN: D judges (x, E(x)) against (G(z, c), (z, c)); G and E fool it, and
        L_I reads E's codes of the generated images."""
        m, g_info = self.model, self.g_info
        real, latent, real_in, fake_noise = self._batch()

        # --- D update ---
        with self.autocast:
            latent_vec = m.latent_vector(latent)  # (B, latent_dim)
            fake = m.generator(latent_vec)  # (B, C, H, W)
            enc_real = m.encode_latent(real)  # E(x): (B, latent_dim), with grad for the G/E update
            real_logits = m.discriminate(real_in, enc_real.detach()).float()  # (B,)
            fake_logits = m.discriminate(fake.detach() + fake_noise, latent_vec).float()
            loss_d = d_loss(real_logits, fake_logits)
        self._update(self.opt_d, loss_d)

        # --- G + E update, D frozen ---
        _set_requires_grad(self.d_params, False)
        with self.autocast:
            g_logits = m.discriminate(fake + fake_noise, latent_vec).float()
            e_logits = m.discriminate(real_in, enc_real).float()
            loss_adv = g_loss(g_logits) + g_loss(-e_logits)  # E wants real pairs judged fake
            info = self._info(m.encode(fake.detach() if g_info.detached else fake), latent)
            loss_g = loss_adv + g_info.weight * info.loss
        self._update(self.opt_g, loss_g)
        _set_requires_grad(self.d_params, True)

        self._add_up(loss_d, loss_adv, info, real_logits, fake_logits)

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
        assert metrics.keys() == METRICS.keys(), "a report holds exactly METRICS: list a new metric there"
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
    on_start: Callable[[], None] | None = None,
) -> TrainResult:
    """Train `config.steps` steps (continuing from `resume_from`), calling `report(metrics,
    save_checkpoint)` every `config.report_every` steps and at the end. A diverged loss (see
    `report_status`) ends the run with status 'diverged' and a reason; it is reported (diverged=1.0),
    not raised. A report that returns a reason stops the run there (status 'stopped').
    `evaluate(model)`: extra metrics for every report that did not diverge (e.g. the analysis's
    generator-side probe); it must leave the model's training state and the run's RNG alone.
    `on_start()`: called once the run is set up (networks built and checked against the memory,
    checkpoint loaded), before its first step."""
    trainer = Trainer(config, device=device, data=data)
    metrics: dict[str, float] = {}
    if resume_from is not None:
        metrics = trainer.load(resume_from)
    if on_start is not None:
        on_start()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=trainer.step, desc=config.model_kind, unit="step", dynamic_ncols=True)
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
    except (RuntimeError, MemoryError) as err:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if not out_of_memory(err):
            raise
        raise BadInputError(
            f"out of memory on {trainer.device.type} at step {trainer.step + 1} with batch_size={config.batch_size}; "
            "use a smaller batch_size (or width)"
        ) from None
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(status, reason, trainer.step, metrics)
