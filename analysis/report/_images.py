"""Latent traversal grids in the report: what the best configurations (the top groups' best
trials), the label-free pick and one failed or flagged trial actually generate, as in the InfoGAN
paper's figures.

The one place the report reads something other than parquet: each chosen trial's `checkpoint`
is rebuilt with `trainables.checkpoint.load_model` and drawn with
`trainables.visualize.traversal_images` (rows: fixed noise, columns: one code swept). The PNGs
are embedded as base64 data URIs so the HTML stays one self-contained file. A missing or
unreadable checkpoint becomes a note in place of the image.
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd

from analysis.report._data import FAILED_STATUSES, ReportTables, group_order, ranking_score, resolve_checkpoint
from analysis.report._sections import best_trial_of, pick_trial
from trainables.errors import BadInputError

if TYPE_CHECKING:
    import torch

DISPLAY_WIDTH = 420  # px: three grids side by side; smaller grids are scaled up (pixelated), never down


class Grid(NamedTuple):
    code: str  # 'cat0', 'cont1', ... or 'samples' for a model without codes
    uri: str  # data:image/png;base64,...
    width: int  # PNG width in pixels


class TraversalEntry(NamedTuple):
    role: str  # e.g. "#1 configuration" or "failed"
    trial_id: str
    label: str  # group label
    checkpoint: str  # as recorded in trials.parquet
    detail: str  # how a failed trial failed ('' for the best ones)
    grids: list[Grid]  # empty when not rendered
    note: str  # why there is no image ('' when rendered)


class TraversalInfo(NamedTuple):
    entries: list[TraversalEntry]
    note: str  # why the section is empty ('' otherwise)


def _chosen(tables: ReportTables, *, top: int) -> list[tuple[str, pd.Series]]:
    """(role, trial row) for the best trial of the `top` best groups, the label-free pick if it is
    not among them, then one other failed or flagged trial (diverged/errored first; one with a
    checkpoint first)."""
    trials, score = tables.trials, ranking_score(tables)
    chosen = []
    for rank, group in enumerate(group_order(trials, score), 1):
        best = best_trial_of(trials[trials["group"] == group], score)
        if best and len(chosen) < top:
            chosen.append((f"#{rank} configuration", trials[trials["trial_id"] == best].iloc[0]))
    pick = pick_trial(trials)
    if pick and pick not in {row["trial_id"] for _, row in chosen}:
        chosen.append(("label-free pick", trials[trials["trial_id"] == pick].iloc[0]))
    shown = {row["trial_id"] for _, row in chosen}
    problems = trials[(trials["failed"] | trials["flagged"]) & ~trials["trial_id"].isin(shown)]
    if not problems.empty:
        key = (problems["checkpoint"] == "").astype(int) * 2 + (~problems["status"].isin(FAILED_STATUSES)).astype(int)
        row = problems.loc[key.sort_values(kind="stable").index[0]]
        chosen.append(("failed" if row["failed"] else "flagged", row))
    return chosen


def _png_uri(images: torch.Tensor, *, nrow: int) -> Grid:
    """Images (N, C, H, W) in [0, 1] -> one PNG grid with `nrow` images per row."""
    from torchvision.utils import make_grid, save_image  # here: torchvision's import costs seconds

    grid = make_grid(images, nrow=nrow, padding=1, pad_value=0.5)  # (C, H', W')
    buf = io.BytesIO()
    save_image(grid, buf, format="png")
    return Grid("", "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), int(grid.shape[-1]))


def _render(path: Path, *, rows: int, max_codes: int) -> list[Grid]:
    import torch

    from trainables.checkpoint import load_model
    from trainables.visualize import code_names, sample_images, traversal_images

    # One torch thread, as analyze scores: a few dozen small images gain nothing from more, and on a
    # busy machine the threads' waits cost more than the drawing (several times as long).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = load_model(path).model
        grids = []
        for code in code_names(model)[:max_codes]:
            images = traversal_images(model, code, rows=rows)  # (rows * n_values, C, H, W)
            grids.append(_png_uri(images, nrow=len(images) // rows)._replace(code=code))
        if not grids:
            grids.append(_png_uri(sample_images(model, n=rows * 8), nrow=8)._replace(code="samples"))
        return grids
    finally:
        torch.set_num_threads(threads)


def get_traversal_info(tables: ReportTables, *, render: bool = True, top: int = 3, rows: int = 6,
                        max_codes: int = 3) -> TraversalInfo:  # fmt: skip
    if not render:
        return TraversalInfo([], "Not rendered (--no-images).")
    entries = []
    for role, row in _chosen(tables, top=top):
        recorded = str(row["checkpoint"])
        path = resolve_checkpoint(tables, recorded)
        grids, note = [], ""
        if path is None:
            note = "No checkpoint was recorded for this trial."
        elif not path.exists():
            note = f"Checkpoint missing: {path}"
        else:
            try:
                grids = _render(path, rows=rows, max_codes=max_codes)
            except (BadInputError, RuntimeError) as err:  # unreadable or mismatched weights
                note = f"Cannot render {path}: {err}"
        detail = str(row["failure_reason"] or row["reason"]) if row["failed"] or row["flagged"] else ""
        entries.append(
            TraversalEntry(role, str(row["trial_id"]), str(row["group_label"]), recorded, detail, grids, note)
        )
    return TraversalInfo(entries, "" if entries else "No trial to show.")


def traversal_html(info: TraversalInfo) -> str:
    if not info.entries:
        return f"<p>{escape(info.note)}</p>"
    parts = []
    for e in info.entries:
        head = f"<h3>{escape(e.role)}: {escape(e.label)} <code>{escape(e.trial_id)}</code></h3>"
        head += f'<p class="note">{escape(e.detail)}</p>' if e.detail else ""
        if e.note:
            parts.append(f'<div class="traversal">{head}<p class="missing">{escape(e.note)}</p></div>')
            continue
        figs = "".join(
            f'<figure><img src="{g.uri}" width="{max(DISPLAY_WIDTH, g.width)}" alt="{escape(e.trial_id)} {g.code}">'
            f"<figcaption>{escape(g.code)}</figcaption></figure>"
            for g in e.grids
        )
        parts.append(f'<div class="traversal">{head}<div class="grids">{figs}</div></div>')
    return "".join(parts)
