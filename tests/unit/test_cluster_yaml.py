"""cluster.yaml is a valid Ray cluster-launcher config that installs the project."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _prepared() -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config = prepare_config(raw)
    validate_config(config)  # Ray's own JSON schema; raises on a bad key
    return config


def test_cluster_yaml_passes_rays_schema() -> None:
    config = _prepared()
    assert config["provider"]["type"] == "local"
    assert config["head_node_type"] in config["available_node_types"]


def test_setup_installs_the_pinned_project() -> None:
    config = _prepared()
    setup = " ".join(config["setup_commands"])
    assert "-c ~/autopilot/requirements.lock" in setup
    assert "pip install" in setup and "-e ~/autopilot" in setup
    assert config["file_mounts"]["~/autopilot"] == "."
    assert any("mlflow server" in c for c in config["head_start_ray_commands"])
