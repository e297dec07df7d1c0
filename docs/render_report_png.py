"""Regenerate docs/report.png, the README's picture of the report: the top of an analysed study's
report page (verdict, ranking, every seed) rendered by headless Chromium.

    uv run infogan-study demo --name demo-picture          # or any analysed study
    uv run python docs/render_report_png.py results/demo-picture

Writes the study's report.html if it is missing (`infogan-study report`), then screenshots it.
Chromium comes from the system (Debian: `apt-get install -y chromium`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="an analysed study folder (it holds trials.parquet)")
    parser.add_argument("-o", "--out", default=str(HERE / "report.png"), help="the PNG (default docs/report.png)")
    parser.add_argument("--width", type=int, default=1300)
    parser.add_argument("--height", type=int, default=1500, help="how much of the page's top to keep, in px")
    args = parser.parse_args()
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        print("render_report_png: no Chromium found; install it (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2
    page = Path(args.experiment) / "report.html"
    if not page.is_file():
        subprocess.run([sys.executable, "-m", "study.cli", "report", args.experiment, "--no-images"], check=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--hide-scrollbars", "--virtual-time-budget=10000",
             f"--window-size={args.width},{args.height}", f"--screenshot={Path(args.out).resolve()}",
             page.resolve().as_uri()],
            check=True, capture_output=True, timeout=180,
        )  # fmt: skip
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
