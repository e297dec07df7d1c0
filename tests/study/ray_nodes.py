"""Real Ray nodes for the slow tests, started with `ray start` as a user would, on loopback, with
token authentication on, and stopped again by process id.

Everything a node needs is in its own environment: HOME is a temporary folder (the token file is
`$HOME/.ray/auth_token`, so the user's `~/.ray` is never read or written), RAY_AUTH_MODE=token,
every port is a free one picked here, and each node's Ray temp dir is a fresh folder. Nodes run with
`ray start --block`, so each node's processes descend from the `ray start` process the test
holds; stopping them never uses `ray stop`, which ends every Ray process of the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent  # the project's virtualenv: ray, infogan-study
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def node_env(home: Path) -> dict[str, str]:
    """The environment of the nodes and of every CLI call: the temp HOME (its token), token auth on,
    the virtualenv first on PATH, no Ray address or token inherited from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env.update(HOME=str(home), RAY_AUTH_MODE="token", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
               RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")  # fmt: skip
    return env


@dataclass
class LocalCluster:
    """A head and worker nodes of one Ray cluster on this machine."""

    home: Path
    temp_dir: Path
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    nodes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    temp_dirs: list[Path] = field(default_factory=list)  # the head's (temp_dir) and each worker's

    @property
    def env(self) -> dict[str, str]:
        return node_env(self.home)

    @property
    def gcs_address(self) -> str:
        return f"{LOOPBACK}:{self.gcs_port}"

    @property
    def dashboard(self) -> str:
        return f"http://{LOOPBACK}:{self.dashboard_port}"

    def _start(self, args: list[str], name: str) -> None:
        ports = ["--node-manager-port", free_port(), "--object-manager-port", free_port(),
                 "--dashboard-agent-listen-port", free_port(), "--dashboard-agent-grpc-port", free_port(),
                 "--metrics-export-port", free_port(), "--runtime-env-agent-port", free_port()]  # fmt: skip
        log = self.home.parent / f"ray-{name}.log"
        self.logs.append(log)
        command = [str(BIN / "ray"), "start", "--block", "--node-ip-address", LOOPBACK, "--disable-usage-stats",
                   *args, *map(str, ports)]  # fmt: skip
        with log.open("w") as out:
            self.nodes.append(subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT))

    def start_head(self, *, num_cpus: int) -> None:
        self._start(["--head", "--port", str(self.gcs_port), "--num-cpus", str(num_cpus), "--include-dashboard",
                     "true", "--dashboard-host", LOOPBACK, "--dashboard-port", str(self.dashboard_port),
                     "--ray-client-server-port", str(free_port()), "--temp-dir", str(self.temp_dir)],
                    "head")  # fmt: skip

    def add_worker(self, *, num_cpus: int, resources: dict[str, float]) -> None:
        # A temp dir of its own, as on a separate machine: nodes sharing one unpack the job's working
        # dir into the same folder, each deleting what the other is reading.
        own = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
        self.temp_dirs.append(own)
        self._start(["--address", self.gcs_address, "--num-cpus", str(num_cpus), "--resources", json.dumps(resources),
                     "--temp-dir", str(own)], f"worker{len(self.nodes)}")  # fmt: skip

    def api(self, path: str, *, token: bool = True) -> tuple[int, object]:
        """GET the dashboard's HTTP API (with the cluster's token unless told not to): (status, JSON)."""
        request = urllib.request.Request(f"{self.dashboard}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {(self.home / '.ray' / 'auth_token').read_text().strip()}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, None
        except (urllib.error.URLError, OSError, ValueError):
            return 0, None

    def alive_nodes(self) -> int:
        status, body = self.api("/api/v0/nodes?limit=100")
        if status != 200 or not isinstance(body, dict):
            return 0
        return sum(1 for n in body.get("data", {}).get("result", {}).get("result", []) if n.get("state") == "ALIVE")

    def wait_until_up(self, *, nodes: int, timeout_s: float = 180) -> None:
        """Until the dashboard (authenticated) counts `nodes` alive nodes and its job API answers."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            if self.alive_nodes() >= nodes and self.api("/api/jobs/")[0] == 200:
                return
            time.sleep(1)
        raise TimeoutError(f"the cluster did not come up: {self.tail()}")

    def check_alive(self) -> None:
        for node, log in zip(self.nodes, self.logs):
            if node.poll() is not None:
                raise RuntimeError(f"`ray start` exited ({node.returncode}): {log.read_text()[-2000:]}")

    def ray(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """The `ray` CLI with the cluster's environment (and --address for the job commands)."""
        args_ = [*args, "--address", self.dashboard] if args[0] == "job" else list(args)
        done = subprocess.run([str(BIN / "ray"), *args_], env=self.env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(
                f"ray {' '.join(args_)} -> {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def job_status(self, job_id: str) -> str:
        """The job's status through the job API: PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED."""
        status, body = self.api(f"/api/jobs/{job_id}")
        return str(body.get("status")) if status == 200 and isinstance(body, dict) else f"UNKNOWN ({status})"

    def wait_job(self, job_id: str, *, timeout_s: float = 300) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.job_status(job_id)
            if state in ("STOPPED", "SUCCEEDED", "FAILED"):
                return state
            time.sleep(1)
        raise TimeoutError(
            f"job {job_id} is {self.job_status(job_id)} after {timeout_s} s:\n{self.job_logs(job_id)[-3000:]}"
        )

    def job_logs(self, job_id: str) -> str:
        return self.ray("job", "logs", job_id, check=False).stdout

    def unauthenticated_status(self) -> int:
        """The HTTP status the job API gives a request without the token."""
        return self.api("/api/jobs/", token=False)[0]

    def tail(self) -> str:
        return "\n".join(f"{log.name}: {log.read_text()[-1500:]}" for log in self.logs if log.exists())

    def stop(self) -> None:
        """End every process of the cluster, by id: the `ray start` processes and all that descends
        from them (raylets, workers, the job supervisor and its driver, which runs in a session of
        its own), and any process that names one of this cluster's temp dirs."""
        procs: dict[int, psutil.Process] = {}
        for node in self.nodes:
            try:
                parent = psutil.Process(node.pid)
                procs.update({p.pid: p for p in [parent, *parent.children(recursive=True)]})
            except psutil.NoSuchProcess:
                pass
        temp_dirs = [str(d) for d in (self.temp_dir, *self.temp_dirs)]
        for p in psutil.process_iter(["cmdline"]):
            if any(d in " ".join(p.info["cmdline"] or []) for d in temp_dirs):
                procs.setdefault(p.pid, p)
        for node in self.nodes:  # `ray start --block` ends its node's processes on SIGTERM
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(list(procs.values()), timeout=15)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(alive, timeout=10)
        for folder in temp_dirs:
            shutil.rmtree(folder, ignore_errors=True)


def start_cluster(root: Path, *, head_cpus: int = 1, workers: int = 1) -> LocalCluster:
    """A head (with the dashboard, for jobs) and `workers` one-CPU worker nodes, token auth on: the
    token is generated as a user would (`ray get-auth-token --generate`, into $HOME/.ray)."""
    home = root / "home"
    home.mkdir()
    # Ray's socket paths must stay short (AF_UNIX, 107 bytes): a temp dir of its own under /tmp.
    cluster = LocalCluster(home=home, temp_dir=Path(tempfile.mkdtemp(prefix="rt", dir="/tmp")))
    token = subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=cluster.env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert (home / ".ray" / "auth_token").read_text().strip() == token.stdout.strip()
    try:
        cluster.start_head(num_cpus=head_cpus)
        cluster.wait_until_up(nodes=1)  # a worker started before the head's GCS answers gives up
        for i in range(workers):
            cluster.add_worker(num_cpus=1, resources={f"worker_{i}": 1})
        cluster.wait_until_up(nodes=1 + workers)
    except BaseException:
        cluster.stop()
        raise
    return cluster
