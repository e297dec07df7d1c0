"""cluster.yaml passes Ray's own cluster-launcher schema validation (as `ray up` runs it) and has
the shape the README promises: a CPU head, an autoscaling GPU worker type, the project installed
by the set-up commands, results on shared storage."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"


def _raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_cluster_yaml_matches_rays_schema_as_written_and_after_defaults() -> None:
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(_raw(), schema)
    validate_config(prepare_config(_raw()))  # what `ray up` does before launching anything


def test_cluster_has_cpu_head_and_autoscaling_gpu_workers() -> None:
    config = _raw()
    assert config["provider"]["type"] in ("aws", "gcp")
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert any(t["resources"].get("GPU", 0) >= 1 and t["max_workers"] > t.get("min_workers", 0) for t in workers)


def test_setup_installs_the_project_and_mounts_shared_storage() -> None:
    config = _raw()
    setup = " ".join(config["setup_commands"])
    assert "~/infogan-study" in config["file_mounts"] and "uv sync --frozen" in setup
    assert "/mnt/shared" in setup and "/mnt/shared/results" in CLUSTER_YAML.read_text()


def test_every_node_gets_the_token_and_starts_ray_with_token_auth() -> None:
    config = _raw()
    assert config["file_mounts"].get("~/.ray/auth_token") == "~/.ray/auth_token"
    starts = [c for key in ("head_start_ray_commands", "worker_start_ray_commands") for c in config[key]
              if "ray start" in c]  # fmt: skip
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token ray start" in c for c in starts)
