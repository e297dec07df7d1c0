"""Adam and SGD for K packed members, each with its own learning rate, betas (or momentum).

A packed parameter holds the K members' tensors member-major along its first dimension (see
`_layers.py`), so it views as (K, n). The optimiser puts all of its parameters and
its state into one flat buffer each (the parameters become views into it, as in apex's flat
master weights), so an update is one fused call or a handful of elementwise kernels over the
whole buffer, whatever the number of tensors. When the members share their Adam betas (the
usual case: a study varies lr, lambda, seeds), the update is `torch.optim.Adam(fused=True)`
itself, on the packed parameters and the gradients autograd hands over (nothing accumulated
into a buffer), with its state in views of the flat state buffers: on the parameters directly
when the members also share their lr, else on a direction buffer at lr 1 that each element's
member lr then scales (`lr` spread over the elements once). Members that differ in their betas
(or SGD) get the same arithmetic as a few elementwise kernels over the flat buffers, gradients
included, with per-member bias corrections gathered each step. The arithmetic is
`torch.optim.Adam`'s (no weight decay, no amsgrad; eps 1e-8), and SGD's with momentum
(dampening 0, no Nesterov): a member's trajectory matches a single run's fused optimiser up to
float rounding (`tests/test_packed.py`).

A member can be frozen (`freeze(k)`): its parameters no longer change, whatever its gradients
(NaN included); the others go on. Members' optimiser states go in and out in `torch.optim`'s own
per-parameter form (`member_state`, `load_member_state`), so a member's checkpoint is a single
run's checkpoint.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

EPS = 1e-8  # torch.optim.Adam's default, which the single loop uses


class PackedOptimizer:
    """`kind` 'adam' (lr, beta1, beta2 per member) or 'sgd' (lr, momentum per member), over packed
    parameters whose first dimension is K members' tensors stacked."""

    def __init__(self, params: list[nn.Parameter], *, k: int, kind: str, lr: list[float],
                 beta1: list[float] | None = None, beta2: list[float] | None = None,
                 momentum: list[float] | None = None) -> None:  # fmt: skip
        assert kind in ("adam", "sgd") and len(lr) == k
        self.params, self.k, self.kind = params, k, kind
        device = params[0].device
        sizes = [p.numel() for p in params]
        self.flat = torch.cat([p.detach().reshape(-1) for p in params])  # (P,) all parameters, param-major
        self.segments: list[tuple[int, int]] = []  # (offset, elements per member) of each parameter
        offset = 0
        for p, n in zip(params, sizes):
            assert n % k == 0, "a packed parameter holds K equal member parts"
            p.data = self.flat[offset : offset + n].view_as(p)  # the parameter now lives in the buffer
            self.segments.append((offset, n // k))
            offset += n
        # member of each element: (P,)
        self.member = torch.cat([torch.arange(k, device=device).repeat_interleave(n // k) for n in sizes])
        f64 = {"dtype": torch.float64, "device": device}
        self.lr = torch.tensor(lr, **f64)  # (K,)
        self.active = torch.ones(k, dtype=torch.bool, device=device)
        self.all_active = True
        self.steps = 0
        self.lr_e = self.lr.to(self.flat.dtype)[self.member]  # (P,) each element's member's lr, once
        self.fused: torch.optim.Adam | None = None
        self.in_place = False  # fused Adam steps the parameters themselves (one lr, every member active)
        if kind == "adam":
            self.beta1, self.beta2 = torch.tensor(beta1, **f64), torch.tensor(beta2, **f64)
            self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.flat), torch.zeros_like(self.flat)
            if len(set(beta1)) == 1 and len(set(beta2)) == 1:  # the usual case: torch's fused Adam
                # Adam keeps its per-parameter state in views of these buffers and updates them in
                # place; each step count is a float32 tensor on the device, as the fused kernel wants
                self.adam_states = [{"step": torch.zeros((), dtype=torch.float32, device=device),
                                     "exp_avg": self._view(self.exp_avg, i),
                                     "exp_avg_sq": self._view(self.exp_avg_sq, i)}
                                    for i in range(len(params))]  # fmt: skip
                self.betas = (beta1[0], beta2[0])
                self.in_place = len(set(lr)) == 1
                self.fused = self._fused_adam(params, lr[0]) if self.in_place else self._fused_direction()
            else:
                self.one_minus_b1 = (1 - self.beta1).to(self.flat.dtype)[self.member]  # (P,)
                self.beta2_e = self.beta2.to(self.flat.dtype)[self.member]
                self.one_minus_b2 = (1 - self.beta2).to(self.flat.dtype)[self.member]
        else:
            self.momentum = torch.tensor(momentum, **f64)
            self.momentum_e = self.momentum.to(self.flat.dtype)[self.member]
            self.buf = torch.zeros_like(self.flat)
        if self.fused is None:  # the elementwise paths read every gradient from one flat buffer
            self.grad = torch.zeros_like(self.flat)
            for i, p in enumerate(params):
                p.grad = self._view(self.grad, i)  # autograd accumulates into it in place

    def _view(self, buffer: Tensor, i: int) -> Tensor:
        """Parameter i's part of a flat buffer, shaped as the parameter."""
        offset, n = self.segments[i]
        return buffer[offset : offset + n * self.k].view_as(self.params[i])

    def zero_grad(self) -> None:
        if self.fused is None:
            self.grad.zero_()
        else:  # autograd hands fresh gradients to fused Adam: no accumulation into a buffer
            for p in self.params:
                p.grad = None

    def freeze(self, k: int) -> None:
        """Member k's parameters stop changing from the next step on."""
        self.active[k] = False
        self.all_active = False
        self.active_e = self.active[self.member]
        if self.in_place:  # the update must be masked from now on
            self.in_place = False
            self.fused = self._fused_direction()

    def _fused_adam(self, tensors: list[Tensor], lr: float) -> torch.optim.Adam:
        """`torch.optim.Adam(fused=True)` over the packed parameters (or their directions), on the
        packed state."""
        adam = torch.optim.Adam(tensors, lr=lr, betas=self.betas, eps=EPS, fused=True)
        for tensor, state in zip(tensors, self.adam_states):
            adam.state[tensor] = state
        return adam

    def _fused_direction(self) -> torch.optim.Adam:
        """Fused Adam at lr 1 on a zeroed direction buffer (viewed per parameter): after its step
        the buffer holds each element's Adam step, which `step` scales by the element's member lr
        (and masks)."""
        self.direction = torch.zeros_like(self.flat)
        self.directions = [self._view(self.direction, i) for i in range(len(self.params))]
        return self._fused_adam(self.directions, 1.0)

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        if self.fused is not None:
            for p in self.params:  # a parameter no loss reached steps on zeros, as in the flat paths
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            if self.in_place:
                self.fused.step()
                return
            for d, p in zip(self.directions, self.params):
                d.grad = p.grad
            self.fused.step()
            direction = self.direction if self.all_active else torch.where(self.active_e, self.direction, 0.0)
            self.flat.addcmul_(direction, self.lr_e)  # direction = -Adam's step at lr 1
            self.direction.zero_()
            return
        g = self.grad
        if self.kind == "adam":  # members differ in their betas
            self.exp_avg.lerp_(g, self.one_minus_b1)
            self.exp_avg_sq.mul_(self.beta2_e).addcmul_(g, g * self.one_minus_b2)
            # bias corrections per member in float64, then spread over its elements
            step_size = (self.lr / (1 - self.beta1**self.steps)).to(self.flat.dtype)[self.member]
            bc2_sqrt = (1 - self.beta2**self.steps).sqrt().to(self.flat.dtype)[self.member]
            update = self.exp_avg / (self.exp_avg_sq.sqrt() / bc2_sqrt).add_(EPS) * step_size
        else:
            if self.steps == 1:
                self.buf.copy_(g)
            else:
                self.buf.mul_(self.momentum_e).add_(g)
            update = self.buf * self.lr_e
        if not self.all_active:
            update = torch.where(self.active_e, update, 0.0)
        self.flat.sub_(update)

    # ------------------------------------------------------------------ one member's state
    def _part(self, buffer: Tensor, i: int, k: int) -> Tensor:
        offset, n = self.segments[i]
        return buffer[offset + k * n : offset + (k + 1) * n]

    def member_state(self, k: int, shapes: list[torch.Size]) -> list[dict[str, Tensor]]:
        """Member k's per-parameter state as `torch.optim.Adam(fused=True)` / `SGD` keep it (copies),
        for the single parameters of `shapes`."""
        out = []
        for i, shape in enumerate(shapes):
            if self.kind == "adam":
                out.append({
                    "step": torch.tensor(float(self.steps), dtype=torch.float32, device=self.flat.device),
                    "exp_avg": self._part(self.exp_avg, i, k).view(shape).clone(),
                    "exp_avg_sq": self._part(self.exp_avg_sq, i, k).view(shape).clone(),
                })  # fmt: skip
            else:
                out.append({"momentum_buffer": self._part(self.buf, i, k).view(shape).clone()})
        return out

    def load_member_state(self, k: int, states: list[dict[str, Tensor]], steps: int) -> None:
        """Member k's state from a single optimiser's per-parameter states; `steps` taken so far."""
        self.steps = steps
        if self.fused is not None:
            for state in self.adam_states:
                state["step"].fill_(steps)
        with torch.no_grad():
            for i, state in enumerate(states):
                if self.kind == "adam":
                    self._part(self.exp_avg, i, k).copy_(state["exp_avg"].reshape(-1))
                    self._part(self.exp_avg_sq, i, k).copy_(state["exp_avg_sq"].reshape(-1))
                else:
                    self._part(self.buf, i, k).copy_(state["momentum_buffer"].reshape(-1))
