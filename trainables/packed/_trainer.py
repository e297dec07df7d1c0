"""The packed trainer: K runs of one architecture as one network (`_networks.py`), stepped by the
single loop's own step (`trainables/step.py`) with a member dimension, and each member drawn,
judged, reported and checkpointed by the single loop's pieces (`trainables/loop.py`,
`trainables/checkpoint.py`). What is its own: which configurations pack (`pack_key`,
`check_pack`), the draws gathered into the packed layout (`_batch`), the summed update that
leaves frozen members out (`_update`, `PackedOptimizer`), and a checkpoint of K runs (`save`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainables.checkpoint import check_resumable, read_checkpoint, restore_rng, run_state, write_checkpoint
from trainables.config import InfoGANConfig
from trainables.errors import BadInputError
from trainables.loop import TrainResult, build_optimizers, judge_report, metrics_row, resolve_device, stopped_reason
from trainables.memory import check_memory, out_of_memory, out_of_memory_error
from trainables.models import InfoGAN, Latent, scale_latent
from trainables.packed._layers import keep_member_stats, load_member_state, member_state_dict
from trainables.packed._networks import PackedInfoGAN
from trainables.packed._optim import PackedOptimizer
from trainables.step import SUMS, Draws, InfoTerm, StepParts, Stepper, draw_after_real, info_terms
from trainables.trial_record import member_folder

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


@dataclass
class _Member:
    config: InfoGANConfig
    rng: torch.Generator
    status: str = "running"
    reason: str = ""
    metrics: dict[str, float] | None = None


class PackedTrainer(Stepper):
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
        self.template = singles[0].to(self.device)  # a single model: shapes and state-dict layout
        check_memory(self.template, cfg.batch_size * self.k, self.device)
        self.model = PackedInfoGAN(singles).to(self.device).train()
        del singles
        per = {name: [getattr(c, name) for c in configs] for name in MEMBER_FIELDS}
        adam = {"kind": "adam", "beta1": per["beta1"], "beta2": per["beta2"]}
        d_opt = adam if cfg.d_optimizer == "adam" else {"kind": "sgd", "momentum": per["sgd_momentum"]}
        self.opt_d = PackedOptimizer(self.model.d_parameters(), k=self.k, lr=per["lr_d"], **d_opt)
        self.opt_g = PackedOptimizer(self.model.g_parameters(), k=self.k, lr=per["lr_g"], **adam)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        # L_I's weight and detachment per member and update (`info_terms`), as (K,) tensors
        terms = [info_terms(c, q_with_d=self.model.q_with_d) for c in configs]
        d_info, g_info = (InfoTerm.of_members(list(ts), self.device) for ts in zip(*terms))
        self.d_info_mixed = d_info.on and not all(d.on for d, _ in terms)
        cont_weight = torch.tensor(per["cont_weight"], device=self.device)
        parts = StepParts(self.model, self.opt_d, self.opt_g, d_info, g_info, cont_weight, autocast, self._update,
                          self._reading_codes_in_d)  # fmt: skip
        self.start_steps(parts, device=self.device, bidirectional=cfg.bidirectional, members=(self.k,))
        self.members = [_Member(c, torch.Generator(self.device).manual_seed(c.seed)) for c in configs]
        self.active = torch.ones(self.k, dtype=torch.bool, device=self.device)
        self.all_active = True

    # ------------------------------------------------------------------ one step
    def _batch(self) -> Draws:
        """Each member's draws from its own generator in the single run's order (`Trainer._batch`):
        the real batches, then each member's `draw_after_real`. Real images and D's input of them
        (B, K*C, H, W), the latent parts (B, K, ...), the noise on fakes (or 0.0)."""
        real = self.data.sample_many(self.config.batch_size, [m.rng for m in self.members])  # (B, K, C, H, W)
        draws = [draw_after_real(m.config, self.step, m.rng, real[:, k].shape) for k, m in enumerate(self.members)]
        raw = Latent(*(torch.stack(part, 1) for part in zip(*(latent for latent, _, _ in draws))))  # (B, K, ...)
        latent = scale_latent(self.config, raw)  # all members at once: each member's draws, as its single run's
        real = real.flatten(1, 2)  # (B, K*C, H, W): member k's channels k*C..(k+1)*C
        if all(fake_noise is None for _, _, fake_noise in draws):
            return Draws(real, real, latent, 0.0)
        zero = torch.zeros_like(real[:, : real.shape[1] // self.k])
        real_noise, fake_noise = (torch.cat([x if x is not None else zero for x in xs], 1)
                                  for xs in zip(*(noises for _, *noises in draws)))  # fmt: skip
        return Draws(real, real + real_noise, latent, fake_noise)

    def _update(self, optimizer: PackedOptimizer, loss: torch.Tensor) -> None:
        """Backward of the members' summed losses (K,) (frozen members masked out), then a step."""
        optimizer.zero_grad()
        total = loss if self.all_active else torch.where(self.active, loss, 0.0)
        total.sum().backward()
        optimizer.step()

    def _reading_codes_in_d(self) -> AbstractContextManager[Any]:
        """Members whose single run reads no codes in the D update keep Q's batch-norm statistics."""
        if not self.d_info_mixed:
            return nullcontext()
        return keep_member_stats(self.model.q_head, self.parts.d_info.weight == 0)

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
        means, steps = self.take_means()  # (7, K)
        out = {}
        for k in self.running():
            config = self.members[k].config
            member_means = {name: row[k] for name, row in zip(SUMS, means)}
            out[k] = metrics_row(config, self.step, member_means, steps * config.batch_size, elapsed_s)
        return out

    # ------------------------------------------------------------------ checkpoints
    def member_state_dict(self, k: int) -> dict[str, Any]:
        """Member k's checkpoint state, as `Trainer.state_dict` of its single run: its optimisers'
        states handed to the single run's optimisers, which write them in their own format."""
        member, opt_states = self.members[k], []
        for packed, single in zip((self.opt_d, self.opt_g), build_optimizers(member.config, self.template)):
            params = single.param_groups[0]["params"]
            for p, state in zip(params, packed.member_state(k, [p.shape for p in params])):
                single.state[p] = state
            opt_states.append(single.state_dict())
        return run_state(member.config, self.step, self.data.image_shape, member_state_dict(self.model, k),
                         *opt_states, member.rng, self.device)  # fmt: skip

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
            check_resumable(state, member.config, what=f"member {k}'s checkpoint")
            used = load_member_state(self.model, k, state["model"])
            assert used == set(state["model"]), "a member checkpoint's keys match the packed model's"
            self.opt_d.load_member_state(k, list(state["opt_d"]["state"].values()), int(state["step"]))
            self.opt_g.load_member_state(k, list(state["opt_g"]["state"].values()), int(state["step"]))
            restore_rng(member.rng, state, member.config.seed)
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
    probe_model = InfoGAN(cfg, trainer.data.image_shape).to(trainer.device) if evaluate is not None else None

    def probe(k: int) -> Callable[[], dict[str, float]] | None:
        """Member k's evaluation: `evaluate` of its networks, loaded into a single model."""
        if probe_model is None or evaluate is None:
            return None

        def member_metrics() -> dict[str, float]:
            probe_model.load_state_dict(member_state_dict(trainer.model, k))
            return evaluate(probe_model)

        return member_metrics

    if trainer.step >= cfg.steps:
        for m in trainer.members:
            m.status = "completed" if m.status == "running" else m.status
    t0 = time.perf_counter()
    try:
        while trainer.running():
            trainer.train_step()
            if trainer.step % cfg.report_every and trainer.step != cfg.steps:
                continue
            reports = trainer.collect_metrics(time.perf_counter() - t0)
            for k, metrics in reports.items():
                member = trainer.members[k]
                member.status, member.reason = judge_report(metrics, member.config, probe(k))
                if member.status == "diverged":
                    trainer.freeze(k)
                member.metrics = metrics
            stop = report(reports, trainer.save) if report is not None else None
            for k in trainer.running() if stop else []:
                trainer.members[k].status, trainer.members[k].reason = (
                    "stopped",
                    stopped_reason(trainer.step, cfg, stop),
                )
            t0 = time.perf_counter()
    except (RuntimeError, MemoryError) as err:
        if not out_of_memory(err):
            raise
        raise out_of_memory_error(trainer.device, trainer.step + 1, cfg.batch_size, members=trainer.k) from None
    # a member's step: where its run ended (a diverged member's, at its divergence)
    return [TrainResult(m.status, m.reason, int(m.metrics["step"]) if m.metrics else trainer.step, m.metrics or {})
            for m in trainer.members]  # fmt: skip
