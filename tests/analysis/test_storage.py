"""analysis.storage on a `file://` URI (the same pyarrow code path as s3://, without a server):
a filtered local copy keeps the layout and disappears afterwards, uploads land beside the
experiment, and an empty or unreadable location is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.storage import download, is_uri, local_copy, upload
from trainables.errors import BadInputError


def _experiment(root: Path) -> Path:
    exp = root / "results" / "study"
    (exp / "trial_a" / "checkpoint_000001").mkdir(parents=True)
    (exp / "trial_a" / "checkpoint_000001" / "checkpoint.pt").write_bytes(b"x" * 10)
    (exp / "trial_a" / "result.json").write_text("{}\n")
    (exp / "trials.parquet").write_bytes(b"PAR1")
    return exp


def test_local_copy_keeps_the_layout_filters_and_is_removed(tmp_path: Path) -> None:
    uri = _experiment(tmp_path).as_uri()
    assert is_uri(uri) and not is_uri(str(tmp_path))
    with local_copy(uri) as folder:
        assert folder.name == "study"
        assert (folder / "trial_a" / "checkpoint_000001" / "checkpoint.pt").read_bytes() == b"x" * 10
        assert (folder / "trials.parquet").is_file()
    assert not folder.exists()
    with local_copy(uri, wanted=lambda rel: rel.endswith(".parquet")) as folder:
        assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["trials.parquet"]


def test_upload_puts_files_beside_the_experiment(tmp_path: Path) -> None:
    exp = _experiment(tmp_path)
    table = tmp_path / "curves.parquet"
    table.write_bytes(b"PAR1curves")
    assert upload([table], exp.as_uri()) == [f"{exp.as_uri()}/curves.parquet"]
    assert (exp / "curves.parquet").read_bytes() == b"PAR1curves"
    assert download(exp.as_uri(), tmp_path / "back", wanted=lambda rel: rel == "curves.parquet") == 1


def test_nothing_there_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with (
        pytest.raises(BadInputError, match="nothing there; run analyze"),
        local_copy(empty.as_uri(), missing="run analyze"),
    ):
        pass
    with pytest.raises(BadInputError, match="cannot list it"):
        download((tmp_path / "missing").as_uri(), tmp_path / "out")


def test_cli_refuses_what_a_uri_experiment_cannot_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ray tasks on a cluster cannot read this machine's copy; a report needs analyze's tables."""
    from study.cli import main

    uri = _experiment(tmp_path).as_uri()
    assert main(["analyze", uri, "--address", "auto"]) == 2
    assert "temporary copy" in capsys.readouterr().err
    (tmp_path / "results" / "study" / "trials.parquet").unlink()
    assert main(["report", uri, "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert f"run `infogan-study analyze {uri}` first" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()
