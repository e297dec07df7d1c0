"""Latent traversal grids in the report: what the best configurations (the top groups' best
trials), the label-free pick and one failed or flagged trial actually generate, as in the InfoGAN
paper's figures.

`analyze` draws them (`traversal_table`: each chosen trial's checkpoint rebuilt with
`trainables.checkpoint.load_model` and drawn with `trainables.visualize.traversal_images`; rows:
fixed noise, columns: one code swept) into traversals.parquet, with torch already loaded for the
scoring; the report reads them from there (`get_traversal_info`), so it reads only parquet and
imports no torch. The PNGs are embedded as base64 data URIs so the HTML stays one self-contained
file. A missing or unreadable checkpoint becomes a note in place of the image.
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd
import pyarrow as pa

from analysis.report._data import FAILED_STATUSES, ReportTables, group_order, ranking_score, resolve_checkpoint
from analysis.report._sections import best_trial_of, pick_trial
from analysis.schema import SCHEMAS
from trainables.errors import BadInputError

if TYPE_CHECKING:
    import torch

TOP = 3  # configurations shown (their best trial each)
ROWS = 6  # rows of fixed noise per grid
MAX_CODES = 3  # grids per trial: its first codes
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


def _png(images: torch.Tensor, *, nrow: int) -> tuple[bytes, int]:
    """Images (N, C, H, W) in [0, 1] -> one PNG grid with `nrow` images per row, and its width."""
    from torchvision.utils import make_grid, save_image  # here: torchvision's import costs seconds

    grid = make_grid(images, nrow=nrow, padding=1, pad_value=0.5)  # (C, H', W')
    buf = io.BytesIO()
    save_image(grid, buf, format="png")
    return buf.getvalue(), int(grid.shape[-1])


def _render(path: Path, *, rows: int, max_codes: int) -> list[tuple[str, bytes, int]]:
    """(code, PNG, width) per grid of the model saved at `path`."""
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
            grids.append((code, *_png(images, nrow=len(images) // rows)))
        if not grids:
            grids.append(("samples", *_png(sample_images(model, n=rows * 8), nrow=8)))
        return grids
    finally:
        torch.set_num_threads(threads)


def traversal_table(tables: ReportTables, *, top: int = TOP, rows: int = ROWS, max_codes: int = MAX_CODES) -> pa.Table:
    """The grids of the trials the report shows (`_chosen`), drawn from their checkpoints: the
    TRAVERSALS_SCHEMA table `analyze` writes (a trial without a grid has one row with its note)."""
    out = []
    for _, row in _chosen(tables, top=top):
        trial_id, path = str(row["trial_id"]), resolve_checkpoint(tables, str(row["checkpoint"]))
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
        out += [{"trial_id": trial_id, "code": c, "png": png, "width": w, "note": ""} for c, png, w in grids]
        if note:
            out.append({"trial_id": trial_id, "code": "", "png": None, "width": 0, "note": note})
    return pa.Table.from_pylist(out, schema=SCHEMAS["traversals"])


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def get_traversal_info(tables: ReportTables, *, render: bool = True, top: int = TOP) -> TraversalInfo:
    """The chosen trials with the grids `analyze` drew for them (`tables.traversals`)."""
    if not render:
        return TraversalInfo([], "Not rendered (--no-images).")
    drawn = tables.traversals
    entries = []
    for role, row in _chosen(tables, top=top):
        trial_id = str(row["trial_id"])
        mine = drawn[drawn["trial_id"] == trial_id] if drawn is not None else pd.DataFrame()
        grids = [Grid(str(g.code), _uri(g.png), int(g.width)) for g in mine.itertuples() if not g.note]
        notes = [str(n) for n in mine["note"] if n] if not mine.empty else []
        if drawn is None:
            note = "No traversals in this analysis: run `infogan-study analyze` again to draw them."
        elif mine.empty:
            note = "No traversal was drawn for this trial: run `infogan-study analyze` again."
        else:
            note = notes[0] if notes else ""
        detail = str(row["failure_reason"] or row["reason"]) if row["failed"] or row["flagged"] else ""
        entries.append(
            TraversalEntry(role, trial_id, str(row["group_label"]), str(row["checkpoint"]), detail, grids, note)
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
