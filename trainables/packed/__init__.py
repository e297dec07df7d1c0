"""Packed training: K InfoGAN configurations trained as one network, each still an ordinary run.

Small networks leave a device mostly idle: a GAN step on the paper's MNIST nets at width 0.25 is
hundreds of tiny kernels. Packing K runs of one architecture into one network (grouped
convolutions, batched matmuls, batch norm over K x channels) runs each layer once for all of them.

Which configurations pack together is decided here and only here: `MEMBER_FIELDS` may differ
between members (they enter as (K,) tensors: loss weights, noise stds, optimiser
hyperparameters); every other config field (architecture, data, batch, steps, precision,
optimiser kind, ...) is the pack's key (`pack_key`), and `check_pack` refuses a mixed pack with a
`BadInputError`.

Each member is the run `trainables.loop.train` would make of its config, up to float rounding,
because it is made by the same code with a member dimension:
- its own `torch.Generator`, seeded as the single run's, drawing the single run's draws in its
  order (`trainables.step.draw_after_real`), and its networks initialised from its seed as a
  single run's;
- the single run's step (`trainables.step`), L_I in each update as `info_terms` places it for its
  config: weight (K,) and, where a member's term is on detached features, the detached copy for
  that member only (members are independent in the graph, so the summed loss gives each member
  the gradient of its own loss);
- its own metrics (`trainables.loop.metrics_row`, judged by `judge_report`), and checkpoints in
  the single run's format (`trainables/checkpoint.py`), so `analyze`, `report` and `train
  --resume` take a member as they take any run;
- a member that diverges stops alone: it is frozen (its optimiser state and parameters stay, its
  losses are masked out) and no longer reported, while the others go on.

Modules: `_trainer.py` (the trainer, `train_packed`, which configurations pack), `_networks.py`
(K InfoGANs as one module), `_layers.py` (the packed layers), `_optim.py` (Adam and SGD with
per-member hyperparameters over flat buffers).
"""

from __future__ import annotations

from trainables.packed._trainer import (
    MEMBER_FIELDS,
    PACK_FILE,
    PackedTrainer,
    PackReportFn,
    check_pack,
    pack_key,
    train_packed,
)
from trainables.trial_record import member_folder  # where member k's checkpoint is in a pack checkpoint

__all__ = [
    "MEMBER_FIELDS",
    "PACK_FILE",
    "PackReportFn",
    "PackedTrainer",
    "check_pack",
    "member_folder",
    "pack_key",
    "train_packed",
]
