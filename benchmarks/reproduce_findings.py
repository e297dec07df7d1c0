"""Reproduce the seed studies' findings through the product's own path: `sweep` -> `analyze`.

Each part is one real sweep on a local Ray instance (exactly the CLI's `infogan-study sweep`),
scored by `infogan-study analyze`; the script then reads the parts' trials.parquet and prints one
table: per configuration, mean ± std over seeds of the generator-side score (gen/cat_acc, the
headline), Q's Hungarian accuracy on held-out real images (the InfoGAN paper's protocol), the
final MI bound, the Fréchet distance, and the failure flags raised; then every seed of the MNIST
parts, the budget and the wall time.

Parts (`--parts`, default all; the budgets were sized to take about two hours on a 2-core CPU;
measured there: line and rects ~2.5 min each, mnist-ablation 42 min + 2 min to analyze,
mnist-paper ~35 min per seed, two at a time):
- `mnist-paper`: the InfoGAN paper's MNIST configuration at its budget (batch 128, 5,000 steps,
  D lr 2e-4, G lr 1e-3, lambda 1), `--paper-seeds` seeds; scored with the full protocol (all
  10,000 test digits; the label-free selection skipped). Expected: the categorical code means the
  digit (paper: 5% error).
- `mnist-ablation`: the seed ablation (vanilla GAN, GAN+codes lambda = 0, InfoGAN, codes-only,
  cat-only, Bidirectional-InfoGAN) on MNIST at reduced width and budget. Expected: lambda = 0
  codes at chance; InfoGAN's code tied to the digit; codes-only and cat-only learn with less
  variety (FD).
- `line`: InfoGAN on basicprop-line with and without the seed's noise trick. Expected: it needs
  the trick.
- `rects`: InfoGAN on basicprop-rects with and without the trick, at the lines' settings.
  Expected: it fails at the seed's settings.

    uv run python benchmarks/reproduce_findings.py --data-root ../shared/datasets
    uv run python benchmarks/reproduce_findings.py --parts line,rects        # minutes, no MNIST needed

Extra sweep options go to every part after `--` (e.g. `-- --set precision=bf16`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.report import shorten_labels
from analysis.schema import read_table
from study.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Part:
    name: str
    sweep: list[str]  # `infogan-study sweep` arguments (without --seeds, --name, --storage-path)
    analyze: list[str]  # extra `infogan-study analyze` arguments
    needs_mnist: bool
    budget: str


def parts(data_root: str) -> list[Part]:
    mnist = ["--dataset", "mnist", "--data-root", data_root, "--set", "report_every=250"]
    bf16 = ["--set", "precision=bf16"]  # 1.7x the images/s of fp32 on this project's AVX512-BF16 CPU
    line = ["--batch-size", "32", "--steps", "1500", "--set", "width=0.25", "--set", "report_every=75"]
    return [
        Part("line", ["noise-trick", "--dataset", "basicprop-line", *line], ["--quick"], False,
             "width 0.25, batch 32, 1,500 steps"),
        Part("rects", ["noise-trick", "--dataset", "basicprop-rects", *line], ["--quick"], False,
             "width 0.25, batch 32, 1,500 steps"),
        Part("mnist-paper", ["infogan-paper", *mnist, "--batch-size", "128", "--steps", "5000", *bf16],
             ["--no-selection"], True,
             "width 1, batch 128, 5,000 steps (the paper's 50 epochs of 100 updates), bf16 autocast"),
        Part("mnist-ablation", ["seed-ablation", *mnist, "--batch-size", "128", "--steps", "2500", "--set", "width=0.5",
                                *bf16], ["--no-selection"], True, "width 0.5, batch 128, 2,500 steps, bf16 autocast"),
    ]  # fmt: skip


def run_part(part: Part, *, seeds: int, storage: Path, stamp: str, extra: list[str]) -> tuple[Path, float]:
    """Sweep then analyze one part; returns its experiment folder and wall seconds."""
    name = f"reproduce-{part.name}-{stamp}"
    start = time.perf_counter()
    for argv in (
        ["sweep", *part.sweep, "--seeds", str(seeds), "--name", name, "--storage-path", str(storage), *extra],
        ["analyze", str(storage / name), *part.analyze],
    ):
        print(f"\n$ infogan-study {' '.join(argv)}", flush=True)
        code = cli(argv)
        if code != 0:
            raise SystemExit(f"{part.name}: `infogan-study {argv[0]}` exited with {code}")
    return storage / name, time.perf_counter() - start


COLUMNS = {"gen/cat_acc": "gen/cat_acc ↑", "q/real_hungarian_acc": "Q real acc ↑", "mi/final": "MI bound",
           "quality/fd": "FD ↓"}  # fmt: skip
FLAGS = ("flag/diverged", "flag/d_overconfident", "flag/mode_collapse", "flag/mi_stuck")


def _pm(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "n/a"
    digits = 0 if values.abs().mean() >= 100 else 3
    mean = f"{values.mean():.{digits}f}"
    return mean if len(values) < 2 else f"{mean} ± {values.std(ddof=1):.{digits}f}"


def summarise(part: str, trials: pd.DataFrame) -> tuple[list[dict[str, str]], str]:
    """One table row per configuration group of a part's trials.parquet, and the settings the
    part's configurations share (cut from their labels)."""
    short, common = shorten_labels(trials["group_label"])
    trials = trials.assign(group_label=short)
    rows = []
    for _, g in trials.groupby("group_label", sort=False):
        flags = {f.removeprefix("flag/"): int(g[f].sum()) for f in FLAGS if g[f].any()}
        rows.append({
            "part": part, "configuration": str(g["group_label"].iloc[0]), "common": common, "seeds": str(len(g)),
            **{label: _pm(g[col]) for col, label in COLUMNS.items()},
            "flags": ", ".join(f"{k} {v}/{len(g)}" for k, v in flags.items()) or "none",
        })  # fmt: skip
    rows.sort(key=lambda r: -_mean(trials, r["configuration"]))
    return rows, common


def _mean(trials: pd.DataFrame, label: str) -> float:
    value = trials.loc[trials["group_label"] == label, "gen/cat_acc"].mean()
    return -math.inf if math.isnan(value) else value


def markdown(rows: list[dict[str, str]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(r[h] for h in head) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default="../shared/datasets", help="folder holding MNIST/raw (torchvision layout)")
    p.add_argument("--parts", default="line,rects,mnist-ablation,mnist-paper", help="comma-separated parts to run")
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    p.add_argument(
        "--paper-seeds",
        type=int,
        default=4,
        help="seeds of the paper's configuration (default 4: two rounds of two trials on 2 cores)",
    )
    p.add_argument("--storage-path", default="results/reproduce", help="where the parts' experiments go")
    p.add_argument("--read", nargs="*", metavar="EXPERIMENT", help="only print the table of analysed experiments")
    args = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    storage = Path(args.storage_path).resolve()
    experiments: dict[str, tuple[Path, float | None]] = {}
    budgets = {part.name: part.budget for part in parts(args.data_root)}
    if args.read:
        for folder in map(Path, args.read):
            part = next((n for n in budgets if f"reproduce-{n}-" in folder.name), folder.name)
            experiments[part] = (folder, None)
    else:
        chosen = args.parts.split(",")
        unknown = sorted(set(chosen) - set(budgets))
        if unknown:
            p.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(budgets)}")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for part in parts(args.data_root):
            if part.name in chosen:
                seeds = args.paper_seeds if part.name == "mnist-paper" else args.seeds
                experiments[part.name] = run_part(part, seeds=seeds, storage=storage, stamp=stamp, extra=extra)

    rows, seeds_rows, settings = [], [], {}
    for part, (folder, _) in experiments.items():
        trials = read_table("trials", folder / "trials.parquet").to_pandas()
        part_rows, common = summarise(part, trials)
        rows += [{k: v for k, v in r.items() if k != "common"} for r in part_rows]
        settings[part] = common
        if part.startswith("mnist"):
            labels = dict(zip(trials["trial_id"], shorten_labels(trials["group_label"])[0]))
            for _, t in trials.sort_values(["group_label", "seed"]).iterrows():
                seeds_rows.append({"part": part, "configuration": labels[t["trial_id"]], "seed": str(t["seed"]),
                                   "gen/cat_acc": f"{t['gen/cat_acc']:.3f}",
                                   "Q real acc": f"{t['q/real_hungarian_acc']:.3f}",
                                   "status": t["status"]})  # fmt: skip
    print("\n## Findings (mean ± std over seeds)\n\n" + markdown(rows))
    if seeds_rows:
        print("\n## MNIST, every seed\n\n" + markdown(seeds_rows))
    print("\n## Budget and wall time\n")
    for part, (folder, seconds) in experiments.items():
        wall = f"{seconds / 60:.1f} min wall" if seconds is not None else "wall time not measured (--read)"
        print(f"- {part}: {budgets.get(part, '?')}; {wall}; common settings: {settings.get(part, '')}; {folder}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
