"""The report opens in a real browser (headless Chromium, offline): no script errors, every
figure drawn, every traversal image decoded, nothing fetched from the network. A screenshot is
kept under artifacts/ (gitignored) for a human look.

Chromium is a test dependency (Debian: `apt-get install -y chromium`; CI installs it), so a
missing browser FAILS this test instead of skipping it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.report import FIGURE_COUNT_META, write_report

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=10000", "--window-size=1400,3000"]  # fmt: skip

# Recorded before plotly.js runs: every uncaught error and rejected promise.
ERROR_HOOK = """<script>window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
window.addEventListener("unhandledrejection", function (e) { window.__errors.push(String(e.reason)); });
</script>"""
# After load: what was drawn, written into the DOM for --dump-dom.
PROBE = """<script>window.addEventListener("load", function () { setTimeout(function () {
  var plots = Array.from(document.querySelectorAll(".js-plotly-plot"));
  var images = Array.from(document.querySelectorAll(".traversal img"));
  var fetched = performance.getEntriesByType("resource").map(function (r) { return r.name; })
    .filter(function (n) { return !n.startsWith("data:"); });
  var out = document.createElement("pre");
  out.id = "render-check";
  out.textContent = JSON.stringify({
    plots: plots.length,
    svgs_per_plot: plots.map(function (p) { return p.querySelectorAll(".main-svg").length; }),
    images: images.length,
    decoded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    fetched: fetched, errors: window.__errors });
  document.body.appendChild(out);
}, 500); });</script>"""


def _chromium() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.fail("Chromium not found: install it (Debian: `apt-get install -y chromium`); CI has it, so no skip")


def test_report_renders_in_headless_chromium(drawn_experiment, tmp_path):
    browser = _chromium()
    report = write_report(drawn_experiment, tmp_path / "report.html")
    html = report.read_text(encoding="utf-8")
    expected = int(re.search(rf'<meta name="{FIGURE_COUNT_META}" content="(\d+)">', html).group(1))
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>" + ERROR_HOOK, 1).replace("</body>", PROBE + "</body>", 1))
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report-screenshot.png"
    screenshot.unlink(missing_ok=True)

    run = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}", "--dump-dom",
         probed.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    match = re.search(r'<pre id="render-check">(.*?)</pre>', run.stdout)
    assert match, f"the page never finished loading (exit {run.returncode}):\n{run.stderr[-3000:]}"
    check = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    print(f"screenshot: {screenshot}\nrender check: {check}")

    assert check["errors"] == []
    assert expected == 6 and check["plots"] == expected  # seeds, parallel, importance, MI, Pareto, centrality matrix
    assert all(n >= 1 for n in check["svgs_per_plot"]), check["svgs_per_plot"]
    assert check["images"] == check["decoded"] == 9  # 3 codes x (2 best trials + the failed one)
    assert check["fetched"] == []  # offline: plotly.js and the images are in the page
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
