"""Connecting the driver to Ray: a local instance with this machine's resources, or a cluster.

- No `--address`: `ray.init()` starts a local instance with every CPU and GPU it detects (inside
  `ray job submit`, RAY_ADDRESS points it at the job's cluster instead).
- `--address auto`: the cluster this machine is part of (the head node after `ray up`).
- `--address HOST:PORT` (GCS) or `ray://HOST:PORT` (Ray Client): a remote cluster. The port is
  probed first, because Ray itself keeps retrying an unreachable GCS for minutes; a wrong address
  is a one-line error within `CONNECT_TIMEOUT_S`.
- A driver that is already connected (a test, a notebook) is reused and left connected.
- Quiet unless `verbose`: Ray's own log lines below ERROR (its start-up lines, the token
  authentication notice) stay out of the console, and so does what the trials print (Ray keeps
  both in the logs/ folder of its session, under its temp dir); the study shows its own progress line.

Ray's `uv run` integration would give every worker a freshly built copy of the virtualenv (tens
of seconds per worker); the workers of a local instance already run this interpreter and a
cluster installs the project in its set-up commands, so it is turned off through its documented
switch, RAY_ENABLE_UV_RUN_RUNTIME_ENV=0, unless the user set it. Ray reads the switch once, when
`ray` is first imported, so `study/__init__.py` sets it, before any module of this package imports
Ray; a program that imports Ray before `study` has to set it itself (`uv_switch_missed` tells).
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.parse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from trainables.errors import BadInputError

CONNECT_TIMEOUT_S = 30.0


def uv_switch_missed() -> bool:
    """Whether Ray was imported before `study` could set RAY_ENABLE_UV_RUN_RUNTIME_ENV=0."""
    import study

    return study.RAY_IMPORTED_FIRST


def _host_port(address: str) -> tuple[str, int]:
    parsed = urllib.parse.urlparse(address if "://" in address else f"gcs://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise BadInputError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    return host, port


def probe_address(address: str, *, timeout_s: float = 10.0) -> None:
    """Raise BadInputError unless something accepts TCP connections at the address's host:port."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or type(err).__name__)
        raise BadInputError(
            f"--address {address}: cannot reach a Ray cluster at {host}:{port} ({reason}); "
            "check the address, or drop --address to run locally"
        ) from None


def starts_local_instance(address: str | None) -> bool:
    """Whether `connect(address)` would start a Ray instance on this machine."""
    return address is None and not ray.is_initialized() and "RAY_ADDRESS" not in os.environ


def check_local_fit(*, cpus: float, gpus: float) -> None:
    """A trial must fit on this machine when the study runs on a local instance (no autoscaler
    would add a node; Tune would wait for ever)."""
    import torch

    have_cpus, have_gpus = os.cpu_count() or 1, torch.cuda.device_count()
    if cpus > have_cpus:
        raise BadInputError(f"--cpus-per-trial {cpus:g}: this machine has {have_cpus} CPUs")
    if gpus > have_gpus:
        if have_gpus == 0:
            raise BadInputError(
                f"--gpus-per-trial {gpus:g}: this machine has no GPU; use 0, or --address a GPU cluster"
            )
        raise BadInputError(f"--gpus-per-trial {gpus:g}: this machine has {have_gpus} GPU(s)")


def _logging(verbose: bool) -> dict[str, object]:
    """ray.init's console settings: everything with `verbose`, else errors only and no trial output."""
    return {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.ERROR}


def init_local(*, num_cpus: int | None = None, num_gpus: int | None = None, verbose: bool = True) -> None:
    """Start a local Ray instance (all detected resources unless given)."""
    if uv_switch_missed():
        warnings.warn(
            "ray was imported before infogan-study set RAY_ENABLE_UV_RUN_RUNTIME_ENV=0: under `uv run` each "
            "worker builds its own virtualenv; set the variable before importing ray",
            stacklevel=2,
        )
    # address="local": always a new instance; with None, Ray joins any cluster already running here
    ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, **_logging(verbose))


def connect(address: str | None, *, verbose: bool = True) -> bool:
    """Connect to Ray as described above; True if this call started or joined a session (the caller
    then shuts it down), False if one was already connected."""
    if ray.is_initialized():
        return False
    if address is None:
        init_local(verbose=verbose)
        return True
    if address != "auto":
        probe_address(address, timeout_s=min(10.0, CONNECT_TIMEOUT_S))
    try:
        ray.init(address=address, **_logging(verbose))
    except (ConnectionError, TimeoutError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if address == "auto":
            raise BadInputError(
                "--address auto: no running Ray cluster on this machine; start one (`ray start --head` "
                "or `ray up cluster.yaml`) or drop --address to run locally"
            ) from None
        raise BadInputError(f"--address {address}: cannot connect ({first})") from None
    return True


@contextmanager
def ray_session(address: str | None, *, verbose: bool = True) -> Iterator[None]:
    """Connected for the duration of the block; disconnects only what it connected."""
    started = connect(address, verbose=verbose)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
