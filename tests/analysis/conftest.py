"""A synthetic analysed experiment for the report tests: parquet files written with the schema's
`write_table`, as `infogan-study analyze` would, with known rankings and failures.

Six configurations x 3 seeds on MNIST (score/disentanglement = gen/cat_acc):
  noise   instance_noise=0.1     best disentanglement, worse FD
  default the defaults
  lam05   lambda_info=0.5        best FD among the good ones
  sgd     d_optimizer=sgd        mediocre; seed 0 flagged d_overconfident at step 700
  hi_lr   lr_d=0.002             seeds 0 and 1 diverged at step 300 (NaN scores), seed 2 poor
  lam0    lambda_info=0.0        gan+codes: every seed flagged mi_stuck (low score, best FD)
The label-free pick (highest selection/score = selection/q_balance among the candidates, the 13
trials whose final MI bound reached 0.5) is lam05's seed 1, not the best trial (noise seed 1).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from analysis.schema import FLAG_COLUMNS, SCHEMAS, SCORE_COLUMNS, write_table
from trainables.config import InfoGANConfig

NAN = float("nan")
STEPS = 1000
GROUPS = {  # name -> (config changes, disentanglement per seed, FD per seed)
    "noise": ({"instance_noise": 0.1}, [0.93, 0.97, 0.94], [14.0, 15.0, 13.0]),
    "default": ({}, [0.92, 0.95, 0.90], [12.0, 11.0, 13.0]),
    "lam05": ({"lambda_info": 0.5}, [0.85, 0.88, 0.86], [9.0, 8.5, 9.5]),
    "sgd": ({"d_optimizer": "sgd", "q_fixed_std": False}, [0.60, 0.65, 0.55], [20.0, 22.0, 21.0]),
    "hi_lr": ({"lr_d": 0.002}, [NAN, NAN, 0.50], [NAN, NAN, 30.0]),
    "lam0": ({"lambda_info": 0.0}, [0.25, 0.30, 0.28], [7.0, 7.5, 6.8]),
}
POOL = ["default_s0", "lam05_s1", "noise_s0", "lam0_s0", "sgd_s1"]  # one model per group, ModelCentrality
PICK = "lam05_s1"


def _trial_row(name: str, seed: int, changes: dict, dis: float, fd: float, ckpt_root: Path) -> dict:
    config = InfoGANConfig.from_dict({"dataset": "mnist", "width": 0.125, "steps": STEPS, **changes, "seed": seed})
    trial_id = f"{name}_s{seed}"
    diverged = math.isnan(dis)
    row: dict = dict.fromkeys(SCORE_COLUMNS, NAN) | dict.fromkeys(FLAG_COLUMNS, False)
    row |= config.to_dict() | {
        "trial_id": trial_id, "experiment": "synthetic", "group": f"g-{name}",
        "group_label": f"{config.model_kind} " + (" ".join(f"{k}={v}" for k, v in changes.items()) or "defaults"),
        "model_kind": config.model_kind, "variant": "", "status": "diverged" if diverged else "completed",
        "reason": "loss/d is nan at step 300" if diverged else "", "_last_step": 300 if diverged else STEPS,
        "checkpoint": "" if diverged else str(ckpt_root / trial_id), "failure_reason": "",
        "quality/inception_fid_note": "no network access", "scoring_s": 3.0,
        "score/disentanglement": dis, "gen/cat_acc": dis, "q/real_hungarian_acc": dis - 0.05,
        "q/real_nmi": dis - 0.1, "quality/fd": fd,
        "mi/final": NAN if diverged else (0.05 if name == "lam0" else 0.98),
    }  # fmt: skip
    if diverged:
        row |= {
            "flag/diverged": True,
            "flag/diverged_step": 300.0,
            "failure_reason": "diverged: loss/d is nan at step 300",
        }
    if name == "lam0":
        row |= {"flag/mi_stuck": True, "flag/mi_stuck_step": float(STEPS), "failure_reason": "mi_stuck: mi/cat <= 0.1"}
    if trial_id == "sgd_s0":
        row |= {"flag/d_overconfident": True, "flag/d_overconfident_step": 700.0,
                "failure_reason": "d_overconfident: d/real 0.99, d/fake 0.01 from step 700"}  # fmt: skip
    return row


def _curves(row: dict, rng: np.random.Generator) -> list[tuple[str, int, str, float]]:
    """mi/cat rising to its final value, losses, D outputs; a diverged run stops with NaN losses."""
    out = []
    final_mi = 0.05 if row["lambda_info"] == 0 else 0.98
    for step in range(100, row["_last_step"] + 1, 100):
        mi = final_mi * (1 - math.exp(-step / 150)) + rng.normal(0, 0.01)
        broken = row["status"] == "diverged" and step == row["_last_step"]
        values = {"mi/cat": mi, "loss/d": NAN if broken else 1.2 - step / 5000, "loss/g": 0.8 + step / 4000,
                  "d/real": 0.6 + step / 10000, "d/fake": 0.4 - step / 10000}  # fmt: skip
        out += [(row["trial_id"], step, metric, float(v)) for metric, v in values.items()]
    return out


def write_experiment(folder: Path, *, ckpt_root: Path | None = None) -> list[dict]:
    """Write trials/curves/selection.parquet into `folder`, as `analyze` does; returns the trial rows."""
    rng = np.random.default_rng(0)
    ckpt_root = ckpt_root or folder / "checkpoints"
    rows = [
        _trial_row(name, seed, changes, dis[seed], fd[seed], ckpt_root)
        for name, (changes, dis, fd) in GROUPS.items()
        for seed in range(3)
    ]
    scores = rng.uniform(0.3, 0.7, size=(len(POOL), len(POOL)))  # (M, M): S[i, j]
    scores[:, POOL.index(PICK)] = 0.9  # every model's codes agree with the pick's
    off_diagonal = ~np.eye(len(POOL), dtype=bool)
    centrality = {t: float(scores[:, j][off_diagonal[:, j]].mean()) for j, t in enumerate(POOL)}
    for i, row in enumerate(rows):
        row["selection/centrality"] = centrality.get(row["trial_id"], NAN)
        if not math.isnan(row["score/disentanglement"]):  # scored: Q's label-free signals exist
            balance = 0.99 if row["trial_id"] == PICK else 0.9 + i / 1000
            row |= {"selection/q_balance": balance, "selection/q_confidence": 0.8, "selection/q_info": balance - 0.1}
            row["selection/score"] = balance if row["mi/final"] >= 0.5 else NAN
    folder.mkdir(parents=True, exist_ok=True)
    names = SCHEMAS["trials"].names  # the trial-level last-step column is left null: the report reads curves
    write_table(pa.Table.from_pylist([{k: r.get(k) for k in names} for r in rows]), "trials", folder / "trials.parquet",
                analysis={"labels": True, "pick_signal": "selection/q_balance"})  # fmt: skip
    curves = [c for row in rows for c in _curves(row, rng)]
    write_table(pa.Table.from_pylist([dict(zip(SCHEMAS["curves"].names, c)) for c in curves]), "curves",
                folder / "curves.parquet")  # fmt: skip
    selection = [{"pool": "all", "data_trial": a, "rep_trial": b, "factor_vae": float(scores[i, j])}
                 for i, a in enumerate(POOL) for j, b in enumerate(POOL)]  # fmt: skip
    write_table(pa.Table.from_pylist(selection), "selection", folder / "selection.parquet")
    return rows


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """An analysed experiment folder without checkpoint files (checkpoint columns point nowhere)."""
    folder = tmp_path / "synthetic"
    write_experiment(folder)
    return folder


@pytest.fixture
def experiment_with_checkpoints(tmp_path: Path) -> Path:
    """The same experiment with untrained tiny checkpoints for the trials the report draws (the top
    groups' best trials and the failed sgd_s0), except lam05_s1's, which is missing."""
    import torch

    from trainables.checkpoint import write_checkpoint
    from trainables.models import InfoGAN

    folder = tmp_path / "synthetic"
    for row in write_experiment(folder):
        if row["trial_id"] in ("noise_s1", "default_s1", "sgd_s0"):
            config = InfoGANConfig.from_dict({k: row[k] for k in InfoGANConfig.field_names()})
            torch.manual_seed(0)
            model = InfoGAN(config, (1, 28, 28))
            state = {"config": config.to_dict(), "step": STEPS, "image_shape": (1, 28, 28),
                     "model": model.state_dict(), "metrics": {}}  # fmt: skip
            write_checkpoint(state, row["checkpoint"])
    return folder


@pytest.fixture
def drawn_experiment(experiment_with_checkpoints: Path) -> Path:
    """That experiment with the traversal grids `analyze` draws (traversals.parquet)."""
    from analysis.report._data import load_tables
    from analysis.report._images import traversal_table

    table = traversal_table(load_tables(experiment_with_checkpoints))
    write_table(table, "traversals", experiment_with_checkpoints / "traversals.parquet")
    return experiment_with_checkpoints
