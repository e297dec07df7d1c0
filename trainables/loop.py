"""The InfoGAN training loop. It knows nothing of Ray: it takes a config, a device and a report
callback, and returns how the run ended.

One step = one D update then one G update (Chen et al. 2016, https://arxiv.org/abs/1606.03657); the
kind of step is chosen once per run (`Trainer`, `trainables.step.info_terms`), and the step itself
is `trainables/step.py`, which the packed trainer (`trainables/packed/`) shares:
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

How a run ends is decided here and only here (`report_status`, `judge_report`, `TrainResult`):
completed, diverged (a NaN/inf loss, or a loss beyond `LOSS_LIMIT`) with a reason, or stopped early
by its caller. The CLI, the Tune trainable, its trial record, `status` and `analyze` all show these
words. What a report holds is `metrics_row`'s, and a run's optimisers are `build_optimizers`':
public, because a pack's members are judged, reported and checkpointed as single runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainables.checkpoint import check_resumable, read_checkpoint, restore_rng, run_state, write_checkpoint
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.losses import instance_noise_std, mi_bounds
from trainables.memory import check_memory, out_of_memory, out_of_memory_error
from trainables.models import InfoGAN, scale_latent
from trainables.step import SUMS, Draws, StepParts, Stepper, draw_after_real, info_terms

# report(metrics, save_checkpoint) -> None, or a reason to stop the run early (e.g. "by Tune's scheduler").
ReportFn = Callable[[dict[str, float], Callable[[str | Path], Path]], str | None]

# What every report holds (`metrics_row`), and which way is better where one is: the
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


def build_optimizers(config: InfoGANConfig, model: InfoGAN) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """D's and G's optimisers of a run, over `model`'s parameter groups."""
    betas = (config.beta1, config.beta2)
    # fused: one kernel per parameter instead of a chain of foreach ops (about 8x faster on CPU)
    if config.d_optimizer == "adam":
        opt_d: torch.optim.Optimizer = torch.optim.Adam(model.d_parameters(), lr=config.lr_d, betas=betas, fused=True)
    else:
        opt_d = torch.optim.SGD(model.d_parameters(), lr=config.lr_d, momentum=config.sgd_momentum, fused=True)
    return opt_d, torch.optim.Adam(model.g_parameters(), lr=config.lr_g, betas=betas, fused=True)


def metrics_row(
    config: InfoGANConfig, step: int, means: dict[str, float], images: int, elapsed_s: float
) -> dict[str, float]:
    """A report: `means` of the `SUMS` since the last one, over `images` generated in `elapsed_s`."""
    metrics: dict[str, float] = {"step": float(step)}
    metrics.update({k: means[k] for k in ("loss/d", "loss/g", "loss/info", "d/real", "d/fake")})
    metrics.update(
        mi_bounds(
            means["ce"], means["nll"], cat_dim=config.cat_dim,
            has_cat=config.n_cat_codes > 0, has_cont=config.n_cont_codes > 0,
        )
    )  # fmt: skip
    metrics["instance_noise"] = instance_noise_std(config.instance_noise, config.instance_noise_steps, step)
    metrics["perf/images_per_s"] = images / max(elapsed_s, 1e-9)
    metrics["diverged"] = 0.0
    assert metrics.keys() == METRICS.keys(), "a report holds exactly METRICS: list a new metric there"
    return metrics


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


def judge_report(
    metrics: dict[str, float], config: InfoGANConfig, evaluate: Callable[[], dict[str, float]] | None
) -> tuple[str, str]:
    """`report_status` of a report, which it completes: a diverged one is flagged (diverged=1.0),
    any other gets the evaluation's metrics (`evaluate()`, if any)."""
    status, reason = report_status(metrics, config)
    if status == "diverged":
        metrics["diverged"] = 1.0
    elif evaluate is not None:
        metrics.update(evaluate())
    return status, reason


def stopped_reason(step: int, config: InfoGANConfig, stop: str) -> str:
    """Why a run its caller stopped at `step` ended there (`stop`: the caller's reason)."""
    return f"stopped at step {step} of {config.steps} {stop}"


class Trainer(Stepper):
    """Networks, optimisers, RNG and step counter of one run; `train_step` advances it by one.

    The kind of step is chosen once, here: `infogan_step` (InfoGAN and every model without an
    encoder: D and Q share D's trunk) or `bidirectional_step` (Bidirectional-InfoGAN), with L_I's
    place in each update from `info_terms` (`trainables/step.py`)."""

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
        self.opt_d, self.opt_g = build_optimizers(config, self.model)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
        d_info, g_info = info_terms(config, q_with_d=self.model.q_with_d)
        parts = StepParts(
            self.model, self.opt_d, self.opt_g, d_info, g_info, config.cont_weight, autocast, self._update
        )
        self.start_steps(parts, device=self.device, bidirectional=config.bidirectional)
        self.rng = torch.Generator(self.device).manual_seed(config.seed)

    # ------------------------------------------------------------------ one step
    def _batch(self) -> Draws:
        """The step's random draws, in this order: real images (B, C, H, W) in [-1, 1], then
        `draw_after_real`'s (the latent, D's input noise on the real images and on the fakes)."""
        real = self.data.sample(self.config.batch_size, self.rng)
        raw, real_noise, fake_noise = draw_after_real(self.config, self.step, self.rng, real.shape)
        real_in = real if real_noise is None else real + real_noise
        return Draws(real, real_in, scale_latent(self.config, raw), 0.0 if fake_noise is None else fake_noise)

    def _update(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # ------------------------------------------------------------------ reporting
    def collect_metrics(self, elapsed_s: float) -> dict[str, float]:
        """Means over the steps since the last report (one host sync); resets the sums."""
        means, steps = self.take_means()  # (7,)
        return metrics_row(self.config, self.step, dict(zip(SUMS, means)), steps * self.config.batch_size, elapsed_s)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return run_state(self.config, self.step, self.data.image_shape, self.model.state_dict(),
                         self.opt_d.state_dict(), self.opt_g.state_dict(), self.rng, self.device)  # fmt: skip

    def save(self, directory: str | Path, metrics: dict[str, float] | None = None) -> Path:
        return write_checkpoint({**self.state_dict(), "metrics": metrics or {}}, directory)

    def load(self, path: str | Path) -> dict[str, float]:
        """Restore a checkpoint saved by `save`; returns its last metrics."""
        state = read_checkpoint(path, map_location=self.device)
        check_resumable(state, self.config)
        self.model.load_state_dict(state["model"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        restore_rng(self.rng, state, self.config.seed)
        self.step = int(state["step"])
        return dict(state.get("metrics", {}))


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
    probe = (lambda: evaluate(trainer.model)) if evaluate is not None else None
    t0 = time.perf_counter()
    status, reason = ("completed" if trainer.step >= config.steps else "running"), ""
    try:
        while status == "running":
            trainer.train_step()
            if bar is not None:
                bar.update(1)
            if trainer.step % config.report_every == 0 or trainer.step == config.steps:
                metrics = trainer.collect_metrics(time.perf_counter() - t0)
                status, reason = judge_report(metrics, config, probe)
                if bar is not None:
                    bar.set_postfix({k: f"{metrics[k]:.3g}" for k in ("loss/d", "loss/g", "mi/cat")})
                stop = report(metrics, lambda d, m=metrics: trainer.save(d, m)) if report is not None else None
                if stop and status == "running":
                    status, reason = "stopped", stopped_reason(trainer.step, config, stop)
                t0 = time.perf_counter()
    except (RuntimeError, MemoryError) as err:  # torch.cuda.OutOfMemoryError is a RuntimeError
        if not out_of_memory(err):
            raise
        raise out_of_memory_error(trainer.device, trainer.step + 1, config.batch_size) from None
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(status, reason, trainer.step, metrics)
