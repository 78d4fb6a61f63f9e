"""The user's config: errors name the key path; the shipped examples load and run their data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autopilot.config import AutopilotConfig, load_config, parse_config
from autopilot.errors import ConfigError
from autopilot.training.data import infer_schema, load_frame, validate_training_data

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

MINIMAL = {"name": "m", "data": {"generator": {"n_rows": 500}, "target": "y"}}


def _with(path: str, value: object) -> dict:
    """MINIMAL with ``value`` set at a dotted ``path`` (sections created on the way)."""
    raw = yaml.safe_load(yaml.safe_dump(MINIMAL))
    node = raw
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return raw


def test_minimal_config_gets_defaults() -> None:
    cfg = parse_config(MINIMAL)
    assert isinstance(cfg, AutopilotConfig)
    assert cfg.task is None and cfg.training.cv_folds == 5
    assert cfg.resolved_tracking_uri().startswith("sqlite:///")


@pytest.mark.parametrize(
    ("path", "value", "key_path"),
    [
        ("training.num_trails", 5, "training.num_trails"),  # misspelt key
        ("data.generator.scenery", "demo", "data.generator.scenery"),
        ("policy.canary.stepz", [0.5], "policy.canary.stepz"),
        ("bogus", 1, "bogus"),
    ],
)
def test_unknown_keys_are_named(path: str, value: object, key_path: str) -> None:
    with pytest.raises(ConfigError, match=rf"{key_path}: Extra inputs are not permitted"):
        parse_config(_with(path, value))


@pytest.mark.parametrize(
    ("path", "value", "key_path"),
    [
        ("training.cv_folds", "five", "training.cv_folds"),  # wrong type
        ("training.cv_folds", 1, "training.cv_folds"),  # out of range
        ("training.time_budget_s", -3, "training.time_budget_s"),
        ("task", "ranking", "task"),
        ("serving.http_port", 70000, "serving.http_port"),
        ("policy.canary.steps", [0.5, 1.5], "policy.canary.steps.1"),
        ("policy.triggers.drift.severity", "huge", "policy.triggers.drift.severity"),
        ("name", "bad name!", "name"),
        ("data.generator.n_rows", 5, "data.generator.n_rows"),
    ],
)
def test_bad_values_and_types_are_named(path: str, value: object, key_path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_with(path, value))
    assert f"  {key_path}: " in str(info.value)


def test_data_needs_exactly_one_source(tmp_path: Path) -> None:
    both = _with("data.path", str(tmp_path / "d.csv"))
    with pytest.raises(ConfigError, match="data: .*exactly one of 'path'"):
        parse_config(both)
    with pytest.raises(ConfigError, match="data.target: Field required"):
        parse_config({"name": "m", "data": {"generator": {}}})
    with pytest.raises(ConfigError, match=r"d\.txt.*\.csv or \.parquet"):
        parse_config({"name": "m", "data": {"path": "d.txt", "target": "y"}})


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(scalar)


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "m.yaml").write_text(
        "name: m\ndata: {path: data/d.csv, target: y}\nstate_dir: state\n"
    )
    cfg = load_config(sub / "m.yaml")
    assert cfg.data.path == sub / "data" / "d.csv"
    assert cfg.resolved_state_dir() == sub / "state"


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"autopilot.yaml", "regression.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_load_and_their_data_validates(path: Path) -> None:
    cfg = load_config(path)
    frame = load_frame(cfg.data, window=(0, 3000))
    schema = infer_schema(
        frame, cfg.data.target, features=cfg.data.features, task=cfg.task,
        time_column=cfg.data.time_column,
    )
    validate_training_data(frame, schema, cfg.training.cv_folds)
    assert schema.task == cfg.task
    assert cfg.training.num_trials <= 20  # the examples are quick defaults
