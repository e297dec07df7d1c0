"""`infogan-study report`: writes one HTML file and prints its path; bad input is one line on
stderr, exit 2, and no file (nor temp file) left behind."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.schema import METADATA_KEY, SCHEMAS, write_table
from study.cli import main


def test_report_writes_the_page_and_prints_its_path(experiment, tmp_path, capsys):
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(experiment), "-o", str(out), "--no-images"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "Not rendered (--no-images)." in html and "★ pick" in html
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left


def test_report_defaults_to_the_experiment_folder(experiment, capsys):
    assert main(["report", str(experiment), "--no-images"]) == 0
    assert capsys.readouterr().out.strip() == str(experiment / "report.html")
    assert (experiment / "report.html").is_file()


def _break_version(experiment):
    """Re-tag trials.parquet as schema version 0."""
    path = experiment / "trials.parquet"
    table = pq.read_table(path).replace_schema_metadata({METADATA_KEY: b"trials/0"})
    pq.write_table(table, path)


def _untagged(experiment):
    """A parquet file not written by `write_table` (no schema tag)."""
    pq.write_table(pa.table({"trial_id": ["a"]}), experiment / "trials.parquet")


def _empty_trials(experiment):
    write_table(SCHEMAS["trials"].empty_table(), "trials", experiment / "trials.parquet")


def _no_curves(experiment):
    (experiment / "curves.parquet").unlink()


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda e: e / "nowhere", "is not a folder"),
        (lambda e: e / "trials.parquet", "is not a folder"),
        (lambda e: e.parent, "run `infogan-study analyze"),  # a folder, but not an analysed experiment
        (_break_version, "has schema trials/0"),
        (_untagged, "has schema none"),
        (_empty_trials, "has no trials"),
        (_no_curves, "curves.parquet not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_without_output(experiment, tmp_path, capsys, breakage, message):
    target = breakage(experiment)
    target = experiment if target is None else target
    out = tmp_path / "report.html"
    assert main(["report", str(target), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infogan-study: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".report.html*"))


def test_output_path_that_is_a_folder_is_refused(experiment, tmp_path, capsys):
    assert main(["report", str(experiment), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def _sys_file(tmp_path):
    """A file in /sys, where even root cannot create one (skipped where /sys is not like that)."""
    target = "/sys/infogan-study-report.html"
    try:
        with open(target, "w"):
            pass
    except OSError:
        return target
    pytest.skip("/sys is writable here")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda tmp: tmp / "a-file" / "report.html", "is not writable (Not a directory: "),
        (lambda tmp: tmp / "a-file" / "deeper" / "report.html", "is not writable (Not a directory: "),
        (_sys_file, "is not writable (Permission denied: /sys)"),
    ],
    ids=["under-a-file", "deeper-under-a-file", "read-only-place"],
)
def test_an_unwritable_output_is_one_line_and_writes_nothing(experiment, tmp_path, capsys, where, message):
    (tmp_path / "a-file").write_text("not a folder")
    out = where(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    assert main(["report", str(experiment), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"infogan-study: error: -o {out} ") and message in err and err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_the_report_imports_neither_torch_nor_ray(drawn_experiment, tmp_path):
    """The report reads parquet only, the traversal grids too (analyze drew them): a fresh process
    imports neither torch nor Ray, and the page still holds the grids."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; from study.cli import main\n"
        f"rc = main(['report', {str(drawn_experiment)!r}, '-o', {str(tmp_path / 'r.html')!r}])\n"
        "print(rc, [m for m in ('torch', 'ray', 'torchvision') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr[-2000:]
    assert (tmp_path / "r.html").read_text().count('<img src="data:image/png;base64,') == 9  # 3 grids x 3 trials
