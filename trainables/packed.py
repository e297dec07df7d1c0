"""Packed training: K InfoGAN configurations trained as one network, each still an ordinary run.

Small networks leave a device mostly idle: a GAN step on the paper's MNIST nets at width 0.25 is
hundreds of tiny kernels. Packing K runs of one architecture into one network
(`trainables/packed_models.py`: grouped convolutions, batched matmuls, batch norm over K x
channels) runs each layer once for all of them.

Which configurations pack together is decided here and only here: `MEMBER_FIELDS` may differ
between members (they enter as (K,) tensors: loss weights, noise stds, optimiser
hyperparameters); every other config field (architecture, data, batch, steps, precision,
optimiser kind, ...) is the pack's key (`pack_key`), and `check_pack` refuses a mixed pack with a
`BadInputError`.

Each member is the run `trainables.loop.train` would make of its config, up to float rounding:
- its own `torch.Generator`, seeded as the single run's, drawing the single run's draws in its
  order (real batch, latent, instance noise on real then fake images), and its networks
  initialised from its seed as a single run's;
- L_I in each update exactly as `info_terms` places it for its config: weight (K,) and, where a
  member's term is on detached features, `torch.where` picks the detached copy for that member
  only (members are independent in the graph, so the summed loss gives each member the gradient
  of its own loss);
- its own metrics (`trainables.loop.METRICS`, judged by `report_status`), and checkpoints in the
  single run's format (`trainables/checkpoint.py`), so `analyze`, `report` and `train --resume`
  take a member as they take any run;
- a member that diverges stops alone: it is frozen (`PackedOptimizer.freeze`, its losses masked
  out) and no longer reported, while the others go on.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from trainables.checkpoint import read_checkpoint, write_checkpoint
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.loop import (
    _SUMS,
    METRICS,
    _set_requires_grad,
    RESUMABLE_CHANGES,
    TrainResult,
    info_terms,
    report_status,
    resolve_device,
)
from trainables.losses import HALF_LOG_2PI, InfoTerms, instance_noise_std, mi_bounds
from trainables.memory import check_memory, out_of_memory
from trainables.models import Codes, InfoGAN
from trainables.packed_models import PackedInfoGAN
from trainables.packed_nn import keep_member_stats, load_member_state, member_state_dict
from trainables.packed_optim import PackedOptimizer

# Config fields members of one pack may differ in; every other field is the pack's key.
MEMBER_FIELDS = ("seed", "lambda_info", "cont_weight", "instance_noise", "instance_noise_steps",
                 "lr_d", "lr_g", "beta1", "beta2", "sgd_momentum")  # fmt: skip
PACK_FILE = "pack.json"  # in a pack checkpoint: each member's status, beside its member_<k> folder

# report(metrics of the members reporting now, by index; save_checkpoint(dir) of the running members)
PackReportFn = Callable[[dict[int, dict[str, float]], Callable[[str | Path], Path]], str | None]


def pack_key(config: InfoGANConfig) -> tuple[tuple[str, Any], ...]:
    """What members of one pack share: every config field but `MEMBER_FIELDS`."""
    return tuple((name, getattr(config, name)) for name in InfoGANConfig.field_names() if name not in MEMBER_FIELDS)


def check_pack(configs: list[InfoGANConfig]) -> None:
    """A one-line BadInputError unless `configs` (at least one) can train as one pack."""
    if not configs:
        raise BadInputError("a pack needs at least one configuration")
    key = dict(pack_key(configs[0]))
    for index, config in enumerate(configs[1:], start=1):
        for name, value in pack_key(config):
            if value != key[name]:
                raise BadInputError(
                    f"member {index} of the pack has {name}={value!r}, member 0 {name}={key[name]!r}; only "
                    f"{', '.join(MEMBER_FIELDS)} may differ within a pack"
                )


def member_folder(k: int) -> str:
    """Member k's checkpoint folder inside a pack checkpoint."""
    return f"member_{k:02d}"


def _bce_mean(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Per member BCE with logits, mean over the batch: (B, K) -> (K,)."""
    full = torch.full_like(logits, target)
    return F.binary_cross_entropy_with_logits(logits, full, reduction="none").mean(0)


@dataclass
class _Member:
    config: InfoGANConfig
    rng: torch.Generator
    status: str = "running"
    reason: str = ""
    metrics: dict[str, float] | None = None


class PackedTrainer:
    """Networks, optimisers, RNGs and step of K runs; `train_step` advances all of them by one."""

    def __init__(self, configs: list[InfoGANConfig], *, device: str | torch.device = "auto", data: Any = None):
        check_pack(configs)
        self.configs, self.k, cfg = configs, len(configs), configs[0]
        self.config = cfg  # the shared fields
        self.device = resolve_device(device)
        if data is None:
            from trainables.data import load_data

            data = load_data(cfg, device=self.device)
        self.data = data
        singles = []
        for config in configs:
            with torch.random.fork_rng(devices=[]):  # seeded init, as the single run's
                torch.manual_seed(config.seed)
                singles.append(InfoGAN(config, data.image_shape))
        self.template = singles[0].to(self.device)  # a single model: shapes, state-dict layout, latent sampling
        check_memory(self.template, cfg.batch_size * self.k, self.device)
        self.model = PackedInfoGAN(singles).to(self.device).train()
        del singles
        self.d_params, self.g_params = self.model.d_parameters(), self.model.g_parameters()
        per = {name: [getattr(c, name) for c in configs] for name in MEMBER_FIELDS}
        adam = dict(kind="adam", beta1=per["beta1"], beta2=per["beta2"])
        d_opt = adam if cfg.d_optimizer == "adam" else dict(kind="sgd", momentum=per["sgd_momentum"])
        self.opt_d = PackedOptimizer(self.d_params, k=self.k, lr=per["lr_d"], **d_opt)
        self.opt_g = PackedOptimizer(self.g_params, k=self.k, lr=per["lr_g"], **adam)
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        self.members = [_Member(c, torch.Generator(self.device).manual_seed(c.seed)) for c in configs]
        self.step = 0
        self.sums = torch.zeros(len(_SUMS), self.k, device=self.device)
        self.sum_steps = 0
        self.active = torch.ones(self.k, dtype=torch.bool, device=self.device)
        self.all_active = True
        # L_I's weight and detachment per member and update (`info_terms`), as (K,) tensors
        terms = [info_terms(c, q_with_d=self.model.q_with_d) for c in configs]
        dev = dict(device=self.device)
        self.d_weight = torch.tensor([d.weight for d, _ in terms], **dev)
        self.g_weight = torch.tensor([g.weight for _, g in terms], **dev)
        self.d_detached = torch.tensor([d.detached for d, _ in terms], **dev)
        self.g_detached = torch.tensor([g.detached for _, g in terms], **dev)
        self.use_d_info = any(d.weight for d, _ in terms)
        self.use_g_info = any(g.weight for _, g in terms)
        self.d_info_mixed = self.use_d_info and not all(d.weight for d, _ in terms)
        self.cont_weight = torch.tensor([c.cont_weight for c in configs], **dev)
        self._model_step = self._bidirectional_step if cfg.bidirectional else self._infogan_step
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    # ------------------------------------------------------------------ one step
    def train_step(self) -> None:
        self._model_step()
        self.sum_steps += 1
        self.step += 1

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor | float]:
        """Each member's draws from its own generator in the single run's order (`Trainer._batch`):
        real images, latent (z, cat, cont), noise on real then on fake images. Returns the real
        images and D's input of them (B, K*C, H, W), the latent parts (B, K, ...) and the noise on
        fakes (or 0.0)."""
        cfg, n = self.config, self.config.batch_size
        real = self.data.sample_many(n, [m.rng for m in self.members])  # (B, K, C, H, W)
        zs, cats, conts, real_noises, fake_noises = [], [], [], [], []
        for k, m in enumerate(self.members):
            g, c = m.rng, m.config
            std = instance_noise_std(c.instance_noise, c.instance_noise_steps, self.step)
            if cfg.noise_dist == "uniform":  # `InfoGAN.sample_latent`'s draws; scaling after stacking
                zs.append(torch.rand(n, cfg.noise_dim, generator=g, device=g.device))
            else:
                zs.append(torch.randn(n, cfg.noise_dim, generator=g, device=g.device))
            cats.append(torch.randint(cfg.cat_dim, (n, cfg.n_cat_codes), generator=g, device=g.device))
            conts.append(torch.rand(n, cfg.n_cont_codes, generator=g, device=g.device))
            if std:
                shape = real[:, k].shape
                real_noises.append(std * torch.randn(shape, generator=g, device=g.device))
                fake_noises.append(std * torch.randn(shape, generator=g, device=g.device))
            else:
                real_noises.append(None)
                fake_noises.append(None)
        z = torch.stack(zs, 1)  # (B, K, noise_dim)
        z = z * 2 - 1 if cfg.noise_dist == "uniform" else z
        latent = (z, torch.stack(cats, 1), torch.stack(conts, 1) * 2 - 1)
        real = real.flatten(1, 2)  # (B, K*C, H, W): member k's channels k*C..(k+1)*C
        if all(x is None for x in fake_noises):
            return real, real, latent, 0.0
        zero = torch.zeros_like(real[:, : real.shape[1] // self.k])
        noise = [torch.cat([x if x is not None else zero for x in xs], 1) for xs in (real_noises, fake_noises)]
        return real, real + noise[0], latent, noise[1]

    def _info(self, codes: Codes, latent: tuple[torch.Tensor, ...]) -> InfoTerms:
        """`losses.info_loss` per member: (K,) loss, CE per code and NLL per code."""
        _, cat, cont = latent
        b = cat.shape[0]
        zero = torch.zeros(self.k, device=self.device)
        ce = ce_per_code = nll = nll_per_code = zero
        if cat.shape[2]:
            logits = codes.cat_logits.float()  # (B, K, n_cat, cat_dim)
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), cat.reshape(-1), reduction="none")
            ce = ce.reshape(cat.shape).sum((0, 2)) / b
            ce_per_code = ce / cat.shape[2]
        if cont.shape[2]:
            mean, logstd = codes.cont_mean.float(), codes.cont_logstd.float()  # (B, K, n_cont)
            err = (cont - mean) * torch.exp(-logstd)
            nll = (HALF_LOG_2PI + logstd + 0.5 * err.square()).sum((0, 2)) / b
            nll_per_code = nll / cont.shape[2]
        return InfoTerms(ce + self.cont_weight * nll, ce_per_code, nll_per_code)

    @staticmethod
    def _pick(x: torch.Tensor, detached: torch.Tensor) -> torch.Tensor:
        """x with member k's part detached where detached[k]: x (B, K, ...) or images (B, K*C, H, W)."""
        if not detached.any():
            return x
        if detached.all():
            return x.detach()
        mask = detached.reshape(1, -1, *([1] * (x.dim() - 2)))
        if x.dim() == 4:  # images: the member's channels
            mask = detached.repeat_interleave(x.shape[1] // len(detached)).reshape(1, -1, 1, 1)
        return torch.where(mask, x.detach(), x)

    def _update(self, optimizer: PackedOptimizer, loss: torch.Tensor) -> None:
        """Backward of the members' summed losses (K,) (frozen members masked out), then a step."""
        optimizer.zero_grad()
        total = loss if self.all_active else torch.where(self.active, loss, 0.0)
        total.sum().backward()
        optimizer.step()

    def _add_up(self, loss_d: torch.Tensor, loss_adv: torch.Tensor, info: InfoTerms | None,
                real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:  # fmt: skip
        with torch.no_grad():
            info_vals = (info.loss, info.ce_per_code, info.nll_per_code) if info else (torch.zeros_like(loss_d),) * 3
            self.sums += torch.stack(
                [
                    loss_d.detach(),
                    loss_adv.detach(),
                    *(v.detach() for v in info_vals),
                    torch.sigmoid(real_logits.detach()).mean(0),
                    torch.sigmoid(fake_logits.detach()).mean(0),
                ]
            )  # fmt: skip  (7, K)

    def _infogan_step(self) -> None:
        """`Trainer._infogan_step` for K members: (B, K) logits, (K,) losses."""
        m = self.model
        _, real_in, latent, fake_noise = self._batch()

        # --- D update ---
        with self.autocast:
            fake = m.generator(m.latent_vector(*latent))  # (B, K*C, H, W)
            h_fake = m.trunk(fake.detach() + fake_noise)  # (B, K, F)
            real_logits = m.d_head(m.trunk(real_in)).squeeze(2).float()  # (B, K)
            fake_logits = m.d_head(h_fake).squeeze(2).float()
            loss_d = _bce_mean(real_logits, 1.0) + _bce_mean(fake_logits, 0.0)  # (K,)
            loss_d_total = loss_d
            if self.use_d_info:
                # members whose single run reads no codes here keep Q's batch-norm statistics
                with keep_member_stats(m.q_head, self.d_weight == 0) if self.d_info_mixed else nullcontext():
                    codes = m.q_head(self._pick(h_fake, self.d_detached))[0]
                loss_d_total = loss_d + self.d_weight * self._info(codes, latent).loss
        self._update(self.opt_d, loss_d_total)

        # --- G (+ Q's head) update, D frozen ---
        _set_requires_grad(self.d_params, False)
        with self.autocast:
            h = m.trunk(fake + fake_noise)
            loss_adv = _bce_mean(m.d_head(h).squeeze(2).float(), 1.0)
            loss_g, info = loss_adv, None
            if m.q_head is not None:
                info = self._info(m.q_head(self._pick(h, self.g_detached))[0], latent)
                if self.use_g_info:
                    loss_g = loss_adv + self.g_weight * info.loss
        self._update(self.opt_g, loss_g)
        _set_requires_grad(self.d_params, True)
        self._add_up(loss_d, loss_adv, info, real_logits, fake_logits)

    def _bidirectional_step(self) -> None:
        """`Trainer._bidirectional_step` for K members."""
        m = self.model
        real, real_in, latent, fake_noise = self._batch()
        with self.autocast:
            latent_vec = m.latent_vector(*latent)  # (B, K, latent_dim)
            fake = m.generator(latent_vec)  # (B, K*C, H, W)
            enc_real = m.encode_latent(real)  # E(x) of the clean images, as the single step
            real_logits = m.discriminate(real_in, enc_real.detach()).float()
            fake_logits = m.discriminate(fake.detach() + fake_noise, latent_vec).float()
            loss_d = _bce_mean(real_logits, 1.0) + _bce_mean(fake_logits, 0.0)
        self._update(self.opt_d, loss_d)

        _set_requires_grad(self.d_params, False)
        with self.autocast:
            g_logits = m.discriminate(fake + fake_noise, latent_vec).float()
            e_logits = m.discriminate(real_in, enc_real).float()
            loss_adv = _bce_mean(g_logits, 1.0) + _bce_mean(-e_logits, 1.0)
            info = self._info(m.encode(self._pick(fake, self.g_detached)), latent)
            loss_g = loss_adv + self.g_weight * info.loss
        self._update(self.opt_g, loss_g)
        _set_requires_grad(self.d_params, True)
        self._add_up(loss_d, loss_adv, info, real_logits, fake_logits)

    # ------------------------------------------------------------------ members
    def freeze(self, k: int) -> None:
        """Member k stops: its parameters stay as they are and its losses no longer count."""
        self.active[k] = False
        self.all_active = False
        self.opt_d.freeze(k)
        self.opt_g.freeze(k)

    def running(self) -> list[int]:
        return [k for k, m in enumerate(self.members) if m.status == "running"]

    def saved_members(self) -> list[int]:
        """The members a checkpoint holds: all but the diverged (frozen) ones."""
        return [k for k, m in enumerate(self.members) if m.status != "diverged"]

    def collect_metrics(self, elapsed_s: float) -> dict[int, dict[str, float]]:
        """`Trainer.collect_metrics` of each running member (one host sync); resets the sums."""
        means = (self.sums / max(self.sum_steps, 1)).T.tolist()  # (K, 7)
        out = {}
        for k in self.running():
            cfg = self.members[k].config
            mean = dict(zip(_SUMS, means[k]))
            metrics = {"step": float(self.step), **{key: mean[key] for key in ("loss/d", "loss/g", "loss/info",
                                                                                "d/real", "d/fake")}}  # fmt: skip
            metrics.update(mi_bounds(mean["ce"], mean["nll"], cat_dim=cfg.cat_dim,
                                     has_cat=cfg.n_cat_codes > 0, has_cont=cfg.n_cont_codes > 0))  # fmt: skip
            metrics["instance_noise"] = instance_noise_std(cfg.instance_noise, cfg.instance_noise_steps, self.step)
            metrics["perf/images_per_s"] = self.sum_steps * cfg.batch_size / max(elapsed_s, 1e-9)
            metrics["diverged"] = 0.0
            assert metrics.keys() == METRICS.keys()
            out[k] = metrics
        self.sums.zero_()
        self.sum_steps = 0
        return out

    # ------------------------------------------------------------------ checkpoints
    def member_state_dict(self, k: int) -> dict[str, Any]:
        """Member k's checkpoint state, as `Trainer.state_dict` of its single run."""
        member, t = self.members[k], self.template
        opt_states = {}
        for name, opt, single_params, lr in (
            ("opt_d", self.opt_d, t.d_parameters(), member.config.lr_d),
            ("opt_g", self.opt_g, t.g_parameters(), member.config.lr_g),
        ):
            c = member.config
            if opt.kind == "adam":
                single = torch.optim.Adam(single_params, lr=lr, betas=(c.beta1, c.beta2), fused=True)
            else:
                single = torch.optim.SGD(single_params, lr=lr, momentum=c.sgd_momentum, fused=True)
            for p, state in zip(single_params, opt.member_state(k, [p.shape for p in single_params])):
                single.state[p] = state
            opt_states[name] = single.state_dict()
        return {
            "config": member.config.to_dict(), "step": self.step, "image_shape": tuple(self.data.image_shape),
            "model": member_state_dict(self.model, k), **opt_states,
            "rng": member.rng.get_state(), "rng_device": self.device.type,
        }  # fmt: skip

    def save(self, directory: str | Path) -> Path:
        """The checkpoint of every member that did not diverge in `directory/member_<k>`, and
        `pack.json`: each member's status (a diverged member has no folder, as a diverged single
        run saves no checkpoint)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for k in self.saved_members():
            write_checkpoint({**self.member_state_dict(k), "metrics": self.members[k].metrics or {}},
                             directory / member_folder(k))  # fmt: skip
        described = [{"status": m.status, "reason": m.reason, "metrics": m.metrics or {}} for m in self.members]
        (directory / PACK_FILE).write_text(json.dumps({"step": self.step, "members": described}, indent=1))
        return directory

    def load(self, directory: str | Path) -> None:
        """Restore a pack checkpoint written by `save` (same members, same order)."""
        directory = Path(directory)
        described = json.loads((directory / PACK_FILE).read_text())["members"]
        if len(described) != self.k:
            raise BadInputError(f"{directory} holds a pack of {len(described)} members, not {self.k}")
        for k, (member, entry) in enumerate(zip(self.members, described)):
            member.metrics = entry["metrics"]
            if entry["status"] == "diverged":  # ended for good; the others go on (to a new `steps`, say)
                member.status, member.reason = entry["status"], entry["reason"]
                self.freeze(k)
                continue
            state = read_checkpoint(directory / member_folder(k), map_location=self.device)
            saved = InfoGANConfig.from_dict(state["config"])
            diff = [n for n in InfoGANConfig.field_names()
                    if n not in RESUMABLE_CHANGES and getattr(saved, n) != getattr(member.config, n)]  # fmt: skip
            if diff:
                raise BadInputError(f"member {k}'s checkpoint was trained with {diff[0]}={getattr(saved, diff[0])!r}, "
                                    f"not {getattr(member.config, diff[0])!r}; resume with the same configs")  # fmt: skip
            used = load_member_state(self.model, k, state["model"])
            assert used == set(state["model"]), "a member checkpoint's keys match the packed model's"
            self.opt_d.load_member_state(k, list(state["opt_d"]["state"].values()), int(state["step"]))
            self.opt_g.load_member_state(k, list(state["opt_g"]["state"].values()), int(state["step"]))
            if state.get("rng_device") == self.device.type:
                member.rng.set_state(state["rng"].cpu())
            else:
                member.rng.manual_seed(member.config.seed + int(state["step"]))
            self.step = int(state["step"])


def train_packed(
    configs: list[InfoGANConfig],
    *,
    device: str | torch.device = "auto",
    report: PackReportFn | None = None,
    resume_from: str | Path | None = None,
    data: Any = None,
    evaluate: Callable[[InfoGAN], dict[str, float]] | None = None,
) -> list[TrainResult]:
    """`trainables.loop.train` for a pack: every `report_every` steps and at the end,
    `report({k: metrics of member k}, save_checkpoint)` for the members still running (a member
    that diverges is reported once with diverged=1.0, then frozen). A reason returned by `report`
    stops every running member there. `evaluate(model)` gets each running member's networks as a
    single `InfoGAN`. Returns each member's TrainResult, in order."""
    trainer = PackedTrainer(configs, device=device, data=data)
    cfg = trainer.config
    if resume_from is not None:
        trainer.load(resume_from)
    t0 = time.perf_counter()
    probe_model = InfoGAN(cfg, trainer.data.image_shape).to(trainer.device) if evaluate is not None else None
    if trainer.step >= cfg.steps:
        for m in trainer.members:
            m.status = "completed" if m.status == "running" else m.status
    try:
        while trainer.running():
            trainer.train_step()
            if trainer.step % cfg.report_every and trainer.step != cfg.steps:
                continue
            reports = trainer.collect_metrics(time.perf_counter() - t0)
            for k, metrics in reports.items():
                member = trainer.members[k]
                member.status, member.reason = report_status(metrics, member.config)
                if member.status == "diverged":
                    metrics["diverged"] = 1.0
                    trainer.freeze(k)
                elif probe_model is not None:
                    probe_model.load_state_dict(member_state_dict(trainer.model, k))
                    metrics.update(evaluate(probe_model))
                member.metrics = metrics
            stop = report(reports, trainer.save) if report is not None else None
            if stop:
                for k in trainer.running():
                    trainer.members[k].status = "stopped"
                    trainer.members[k].reason = f"stopped at step {trainer.step} of {cfg.steps} {stop}"
            t0 = time.perf_counter()
    except (RuntimeError, MemoryError) as err:
        if not out_of_memory(err):
            raise
        raise BadInputError(
            f"out of memory on {trainer.device.type} at step {trainer.step + 1} with {trainer.k} packed members of "
            f"batch_size={cfg.batch_size}; pack fewer (--pack) or use a smaller batch_size (or width)"
        ) from None
    # a member's step: where its run ended (a diverged member's, at its divergence)
    return [TrainResult(m.status, m.reason, int(m.metrics["step"]) if m.metrics else trainer.step, m.metrics or {})
            for m in trainer.members]  # fmt: skip
