"""Adam and SGD for K packed members, each with its own learning rate, betas (or momentum).

A packed parameter holds the K members' tensors member-major along its first dimension (see
`trainables/packed_nn.py`), so it views as (K, n). The optimiser puts all of its parameters and
their gradients into one flat buffer each (the parameters become views into it, as in apex's
flat master weights), and an update is a handful of elementwise kernels over the whole buffer,
whatever the number of tensors, with each member's hyperparameters spread over its elements once
(and one gather per step only when members differ in their betas). The arithmetic is `torch.optim.Adam`'s (no weight decay, no amsgrad; eps
1e-8), and SGD's with momentum (dampening 0, no Nesterov): a member's trajectory matches a single
run's fused optimiser up to float rounding (`tests/test_packed.py`).

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
        self.grad = torch.zeros_like(self.flat)
        self.segments: list[tuple[int, int]] = []  # (offset, elements per member) of each parameter
        offset = 0
        for p, n in zip(params, sizes):
            assert n % k == 0, "a packed parameter holds K equal member parts"
            p.data = self.flat[offset : offset + n].view_as(p)  # the parameter now lives in the buffer
            p.grad = self.grad[offset : offset + n].view_as(p)  # autograd accumulates into it in place
            self.segments.append((offset, n // k))
            offset += n
        # member of each element: (P,)
        self.member = torch.cat([torch.arange(k, device=device).repeat_interleave(n // k) for n in sizes])
        f64 = dict(dtype=torch.float64, device=device)
        self.lr = torch.tensor(lr, **f64)  # (K,)
        self.active = torch.ones(k, dtype=torch.bool, device=device)
        self.all_active = True
        self.steps = 0
        self.lr_e = self.lr.to(self.flat.dtype)[self.member]  # (P,) each element's member's lr, once
        if kind == "adam":
            self.beta1, self.beta2 = torch.tensor(beta1, **f64), torch.tensor(beta2, **f64)
            # the usual case, members differing in lr only: bias corrections are scalars, no gather per step
            self.shared_betas = len(set(beta1)) == 1 and len(set(beta2)) == 1
            self.one_minus_b1 = (1 - self.beta1).to(self.flat.dtype)[self.member]  # (P,)
            self.beta2_e = self.beta2.to(self.flat.dtype)[self.member]
            self.one_minus_b2 = (1 - self.beta2).to(self.flat.dtype)[self.member]
            self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.flat), torch.zeros_like(self.flat)
        else:
            self.momentum = torch.tensor(momentum, **f64)
            self.momentum_e = self.momentum.to(self.flat.dtype)[self.member]
            self.buf = torch.zeros_like(self.flat)

    def zero_grad(self) -> None:
        self.grad.zero_()

    def freeze(self, k: int) -> None:
        """Member k's parameters stop changing from the next step on."""
        self.active[k] = False
        self.all_active = False
        self.active_e = self.active[self.member]

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        g = self.grad
        if self.kind == "adam":
            self.exp_avg.lerp_(g, self.one_minus_b1)
            self.exp_avg_sq.mul_(self.beta2_e).addcmul_(g, g * self.one_minus_b2)
            if self.shared_betas:  # Python floats, as torch computes its bias corrections
                bc1 = 1 - float(self.beta1[0]) ** self.steps
                bc2_sqrt = (1 - float(self.beta2[0]) ** self.steps) ** 0.5
                update = (self.exp_avg_sq.sqrt() / bc2_sqrt).add_(EPS)
                update = self.exp_avg.div(update).mul_(self.lr_e).div_(bc1)
            else:  # per member in float64, then spread over its elements
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
        with torch.no_grad():
            for i, state in enumerate(states):
                if self.kind == "adam":
                    self._part(self.exp_avg, i, k).copy_(state["exp_avg"].reshape(-1))
                    self._part(self.exp_avg_sq, i, k).copy_(state["exp_avg_sq"].reshape(-1))
                else:
                    self._part(self.buf, i, k).copy_(state["momentum_buffer"].reshape(-1))
