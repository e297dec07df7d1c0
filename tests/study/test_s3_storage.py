"""`--storage-path s3://...` end to end against an S3-compatible server on loopback (moto's server
mode, a bucket of its own): a sweep whose driver is interrupted (Ctrl-C) mid-way, `resume` from
the bucket, `status`, `analyze` (tables uploaded back into the experiment) and `report` (HTML
written here, traversals drawn from checkpoints in the bucket). Every command is the real CLI in
its own process, configured as a user's would be: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_REGION and AWS_ENDPOINT_URL (read by pyarrow, so by Ray Tune's storage, the trials' records
and `analyze`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs
import pytest
from ray_nodes import free_port

REPO = Path(__file__).resolve().parents[2]
STEPS, EVERY = 200, 20
BUCKET, NAME = "infogan-test", "s3sweep"
STORAGE = f"s3://{BUCKET}/results"
SPACE = "from ray import tune\nDESCRIPTION = 'seeds'\ndef space():\n    return {'seed': tune.grid_search([0, 1])}\n"


@pytest.fixture
def s3_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port with one bucket; the environment that reaches it."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAY_ADDRESS"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
               AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
               HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")  # fmt: skip
    (tmp_path / "home").mkdir()
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)  # fmt: skip
    try:
        yield env
    finally:
        server.stop()


def _cli(env: dict[str, str], *argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    print(f"{time.strftime('%H:%M:%S')} infogan-study {argv[0]}", flush=True)  # (shown with -s: where the time goes)
    return subprocess.run([sys.executable, "-m", "study.cli", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def _bucket(env: dict[str, str]) -> pyarrow.fs.S3FileSystem:
    return pyarrow.fs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                                   endpoint_override=env["AWS_ENDPOINT_URL"])  # fmt: skip


def _records(env: dict[str, str]) -> dict[str, dict]:
    """The trials' own records in the bucket, by trial folder."""
    fs = _bucket(env)
    infos = fs.get_file_info(pyarrow.fs.FileSelector(f"{BUCKET}/results/{NAME}", recursive=True, allow_not_found=True))
    out = {}
    for info in infos:
        if info.base_name == "infogan-trial.json":
            with fs.open_input_stream(info.path) as f:
                text = f.read()
            try:
                out[info.path.split("/")[-2]] = json.loads(text)
            except json.JSONDecodeError:  # read while the trial replaced it: once seen cut short (a prefix)
                continue  # the product's RecordStore.read answers None then too; the next poll reads it whole
    return out


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_sweep_interrupt_resume_status_analyze_report_on_s3(s3_env: dict[str, str], tmp_path: Path) -> None:
    space = tmp_path / "space.py"
    space.write_text(SPACE)
    log = tmp_path / "sweep.log"
    argv = ["sweep", str(space), "--dataset", "basicprop-line", "--batch-size", "8", "--set", "width=0.125",
            "--steps", str(STEPS), "--set", f"report_every={EVERY}", "--storage-path", STORAGE,
            "--name", NAME]  # fmt: skip
    with log.open("w") as out:
        driver = subprocess.Popen([sys.executable, "-m", "study.cli", *argv], cwd=REPO, env=s3_env, stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not any(r["step"] >= 3 * EVERY for r in _records(s3_env).values()):
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial reported three times"
            time.sleep(0.5)
        driver.send_signal(signal.SIGINT)  # Ctrl-C
        assert driver.wait(timeout=180) == 130, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert f"infogan-study resume {NAME} --storage-path {STORAGE}" in log.read_text()
    interrupted = _records(s3_env)
    assert interrupted and any(r["step"] < STEPS for r in interrupted.values())

    resumed = _cli(s3_env, "resume", NAME, "--storage-path", STORAGE)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    records = _records(s3_env)
    assert len(records) == 2 and all(r["status"] == "completed" and r["step"] == STEPS for r in records.values())

    status = _cli(s3_env, "status", NAME, "--storage-path", STORAGE)
    assert status.returncode == 0 and "2 trials: 2 COMPLETED" in status.stdout, status.stdout + status.stderr

    experiment = f"{STORAGE}/{NAME}"
    analyzed = _cli(s3_env, "analyze", experiment, "--quick", "--no-selection", "--quiet")
    assert analyzed.returncode == 0, analyzed.stderr[-3000:]
    assert "analyzed 2 trials (2 scored)" in analyzed.stdout and f"-> {experiment}:" in analyzed.stdout
    tables = _bucket(s3_env).get_file_info(
        [f"{BUCKET}/results/{NAME}/{t}.parquet" for t in ("trials", "curves", "selection", "traversals")]
    )
    assert all(t.type == pyarrow.fs.FileType.File for t in tables)

    # The report: the default goes to ./NAME-report.html; the traversals analyze drew come with the tables.
    reported = _cli(s3_env, "report", experiment, cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr[-3000:]
    page = tmp_path / f"{NAME}-report.html"
    assert reported.stdout.strip() == str(page) and page.is_file()
    html = page.read_text()
    assert "data:image/png;base64," in html and "No checkpoint was recorded" not in html
