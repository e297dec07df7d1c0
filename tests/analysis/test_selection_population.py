"""The label-free pick on small synthetic populations with known answers.

The world: real images of ten equally frequent digits, each in one of two styles, read by stand-in
models whose Q maps (digit, style) to a category through a table. The faithful model gives each
digit its own category. The "sharing" model is the failure seen on MNIST: digits 4 and 9 share
category 4, and digit 1 is split over categories 1 and 9 by style. The signals are computed by the
product's own code (`analysis.scoring`'s clustering step, `analysis.selection`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest
import torch

from analysis import selection
from analysis.report._data import label_free_pick
from analysis.scoring import QUICK, TrialScores, _clustering
from analysis.selection import PICK_SIGNAL, Selection, nmi_centrality, pick_score
from trainables.data import ImageData, LabelledSplit

K = 10
FAITHFUL = np.stack([np.arange(K), np.arange(K)], axis=1)  # (digit, style) -> category
SHARING = FAITHFUL.copy()
SHARING[9] = 4  # 9 drawn and read as category 4, with the 4s
SHARING[1, 1] = 9  # the 1s of style 1 take the freed category 9


class Codes(NamedTuple):
    cat_logits: torch.Tensor  # (n, 1, K)


class TableQ(torch.nn.Module):
    """Q of a stand-in model: image (n, 1, 1, 2) = (digit / 10, style) -> category logits."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.table = torch.as_tensor(table)
        self.scale = torch.nn.Parameter(torch.tensor(4.0))  # Q is sure, not certain: 0.86 on its category

    def encode(self, images: torch.Tensor) -> Codes:
        digit = ((images[:, 0, 0, 0] + 1) / 2 * K).round().long().clamp(0, K - 1)  # images in [-1, 1]
        style = (images[:, 0, 0, 1] > 0).long()
        category = self.table[digit, style]
        return Codes((self.scale * torch.nn.functional.one_hot(category, K).float())[:, None])


def world(n: int = 2000) -> ImageData:
    digits, style = torch.arange(n) % K, (torch.arange(n) // K) % 2
    images = torch.stack([(digits.float() + 0.0) / K * 2 - 1, style.float() * 2 - 1], dim=1).reshape(n, 1, 1, 2)
    return ImageData("toy-digits", (1, 1, 2), K, torch.device("cpu"), LabelledSplit(images, digits))


def population(tables: dict[str, np.ndarray]) -> tuple[dict[str, dict[str, float]], Selection]:
    """Each model's selection/* values as analyze computes them, every model a candidate."""
    data, counts = world(), QUICK.__class__(heldout=2000)
    values, assignments = {}, {}
    for tid, table in tables.items():
        out = TrialScores(tid, "")
        with torch.inference_mode():  # as analyze scores
            _clustering(TableQ(table), data, counts, out, labels=False)
        values[tid], assignments[tid] = dict(out.scores), out.assignments
    nmi = nmi_centrality(assignments)
    chosen = Selection(set(tables), {}, nmi, [], {})
    for tid in tables:
        values[tid]["selection/mean_pairwise_nmi"] = nmi[tid]
        values[tid]["selection/score"] = pick_score(tid, values[tid], chosen)
    return values, chosen


def test_one_faithful_model_among_copies_that_share_categories_is_picked():
    values, _ = population({"copy0": SHARING, "copy1": SHARING, "faithful": FAITHFUL, "copy2": SHARING})
    pick, tied = label_free_pick({tid: v["selection/score"] for tid, v in values.items()})
    assert (pick, tied) == ("faithful", ("faithful",))
    assert values["faithful"]["selection/q_balance"] == pytest.approx(1.0)
    shares = np.array([0.2, 0.05, 0.05] + [0.1] * 7)
    assert values["copy0"]["selection/q_balance"] == pytest.approx(-(shares * np.log(shares)).sum() / math.log(K))
    # agreement between seeds sides with the majority: three identical wrong models agree perfectly
    nmi = {tid: v["selection/mean_pairwise_nmi"] for tid, v in values.items()}
    assert max(nmi, key=nmi.get) != "faithful" and nmi["faithful"] < nmi["copy0"] == nmi["copy1"]


def test_identical_models_tie():
    values, _ = population({"a": SHARING, "b": SHARING, "c": SHARING})
    for column in ("selection/q_balance", "selection/q_confidence", "selection/q_info", "selection/score"):
        assert values["a"][column] == values["b"][column] == values["c"][column], column
    assert label_free_pick({tid: v["selection/score"] for tid, v in values.items()}) == ("a", ("a", "b", "c"))


def test_a_model_below_the_information_bar_is_never_picked():
    """A lambda = 0 model's Q may split real images evenly, but its code carries no information
    about G's images (final MI bound ~0): it is no candidate, so its score is NaN."""
    members_mi = {"good": 0.98, "lam0": 0.02}
    chosen = Selection({t for t, mi in members_mi.items() if mi >= selection.MIN_CANDIDATE_MI}, {}, {}, [], {})
    scores = {t: pick_score(t, {PICK_SIGNAL: 1.0 if t == "lam0" else 0.9}, chosen) for t in members_mi}
    assert math.isnan(scores["lam0"]) and label_free_pick(scores) == ("good", ("good",))
