"""Experiments on object storage (s3://, gs://, any URI pyarrow opens): a local copy to read and
score, and the tables put back.

`analyze` and `report` work on a folder on this machine. For an experiment at a URI they read a
copy made here, in a temporary folder that is removed afterwards (`local_copy`), and `analyze`
uploads the parquet tables it wrote into the experiment at the URI (`upload`). The copy is fresh
every time, so checkpoints Tune has deleted meanwhile never look present.

The file system and its settings come from the URI as pyarrow reads it, so the usual variables
apply: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION, and AWS_ENDPOINT_URL for an
S3-compatible server other than AWS (MinIO, Ceph, moto), the same ones Ray Tune's trials and
driver use for `--storage-path s3://...`.
"""

from __future__ import annotations

import contextlib
import posixpath
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow.fs

from trainables.errors import BadInputError


def is_uri(path: str | Path) -> bool:
    return "://" in str(path)


def user_cache() -> Path:
    """Where the dataset classifiers of studies on object storage are kept, on every machine that
    trains or scores them (a local study keeps them in its storage folder's .cache)."""
    return Path.home() / ".cache" / "infogan-study"


def _open(uri: str) -> tuple[pyarrow.fs.FileSystem, str]:
    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as err:
        raise BadInputError(f"{uri}: cannot open ({type(err).__name__}: {err})") from None


def download(uri: str, dest: Path, *, wanted: Callable[[str], bool] = lambda rel: True) -> int:
    """Copy the files under `uri` whose path relative to it (a/b/c, '/'-separated) is `wanted` into
    `dest`, keeping the layout; returns how many were copied."""
    fs, root = _open(uri)
    root = root.rstrip("/")
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
    except (FileNotFoundError, OSError) as err:
        raise BadInputError(f"{uri}: cannot list it ({err}); check the URI and the credentials") from None
    count = 0
    for info in infos:
        rel = posixpath.relpath(info.path, root)
        if info.type != pyarrow.fs.FileType.File or not wanted(rel):
            continue
        target = dest.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src, target.open("wb") as out:
            while chunk := src.read(1 << 22):
                out.write(chunk)
        count += 1
    return count


@contextlib.contextmanager
def local_copy(uri: str, *, wanted: Callable[[str], bool] = lambda rel: True,
               missing: str = "pass <storage-path>/<name> of a study") -> Iterator[Path]:  # fmt: skip
    """A temporary local copy of the experiment at `uri` (its `wanted` files), named like it; a
    one-line error ending in `missing` if there is none of them."""
    name = posixpath.basename(_open(uri)[1].rstrip("/")) or "experiment"
    with tempfile.TemporaryDirectory(prefix="infogan-storage-") as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        if download(uri, folder, wanted=wanted) == 0:
            raise BadInputError(f"{uri}: nothing there; {missing}")
        yield folder


def upload(files: Sequence[Path], uri: str) -> list[str]:
    """Put local files into the folder at `uri` (one object each); returns their URIs."""
    fs, root = _open(uri)
    out = []
    for file in files:
        target = f"{root.rstrip('/')}/{file.name}"
        with file.open("rb") as src, fs.open_output_stream(target) as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
        out.append(f"{uri.rstrip('/')}/{file.name}")
    return out
