"""The in-memory registry twin: lifecycle, aliases, promote/rollback, integrity."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from autopilot.errors import IntegrityError, RegistryError, TransitionError, VersionNotFound
from autopilot.registry import (
    STATUSES,
    TRANSITIONS,
    InMemoryRegistry,
    Lineage,
    LoadedModel,
    ModelVersion,
    Registry,
    sha256_files,
)
from autopilot.schema import Column, FeatureSchema

SCHEMA = FeatureSchema((Column("x", "numeric"),), "y", "classification", ("0", "1"))


def _lineage(trigger: str = "initial", parent: str | None = None) -> Lineage:
    return Lineage(
        trigger=trigger,
        parent_version=parent,
        data_fingerprint="f" * 64,
        data_window="rows 0:100",
        metrics={"roc_auc": 0.91},
        training_run_id="run-1",
        family="logistic",
        params={"C": 0.5, "penalty": "l2"},
    )


def _model(seed: int = 0) -> LogisticRegression:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 1))
    return LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))


@pytest.fixture()
def reg() -> InMemoryRegistry:
    r = InMemoryRegistry()
    for i in range(3):
        r.register("m", _model(i), schema=SCHEMA, lineage=_lineage(), reference_profile={"i": i})
    return r


def test_is_a_registry_and_statuses_are_closed() -> None:
    assert issubclass(InMemoryRegistry, Registry)
    assert set(TRANSITIONS) == set(STATUSES)
    assert all(set(v) <= set(STATUSES) for v in TRANSITIONS.values())


def test_register_records_lineage_hash_and_draft(reg: InMemoryRegistry) -> None:
    v = reg.register("m", _model(), schema=SCHEMA, lineage=_lineage("drift", "1"), run_id="r9")
    assert isinstance(v, ModelVersion)
    assert (v.name, v.version, v.status, v.aliases, v.run_id) == ("m", "4", "draft", (), "r9")
    assert v.lineage == _lineage("drift", "1")
    assert len(v.sha256) == 64 and v.sha256 == sha256_files(reg.files[("m", "4")])
    assert [x.version for x in reg.list_versions("m")] == ["1", "2", "3", "4"]
    assert reg.list_versions("other") == []


def test_load_round_trip(reg: InMemoryRegistry) -> None:
    loaded = reg.load("m", 2)
    assert isinstance(loaded, LoadedModel)
    X = np.linspace(-2, 2, 9).reshape(-1, 1)
    assert (loaded.model.predict(X) == _model(1).predict(X)).all()
    assert loaded.schema == SCHEMA and loaded.reference_profile == {"i": 1}
    assert loaded.version.version == "2"


def test_tampered_artifact_is_refused_before_unpickling(
    reg: InMemoryRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = reg.files[("m", "1")]
    blob = bytearray(files["model.pkl"])
    blob[len(blob) // 2] ^= 0xFF
    files["model.pkl"] = bytes(blob)

    def _boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickled a tampered artifact")

    monkeypatch.setattr(pickle, "loads", _boom)
    with pytest.raises(IntegrityError, match="m v1.*SHA-256"):
        reg.load("m", "1")


def test_tampered_side_file_is_refused(reg: InMemoryRegistry) -> None:
    reg.files[("m", "2")]["schema.json"] = b'{"columns": []}'
    with pytest.raises(IntegrityError):
        reg.load("m", 2)


def test_unknown_versions(reg: InMemoryRegistry) -> None:
    with pytest.raises(VersionNotFound, match="no version 9"):
        reg.get("m", 9)
    with pytest.raises(VersionNotFound, match="'nope'"):
        reg.get("nope", 1)
    with pytest.raises(VersionNotFound):
        reg.load("m", "x")
    assert reg.alias("m", "champion") is None and reg.alias("nope", "champion") is None


def test_transitions_follow_the_lifecycle(reg: InMemoryRegistry) -> None:
    assert reg.transition("m", 1, "testing").status == "testing"
    assert reg.transition("m", 1, "staging").status == "staging"
    with pytest.raises(TransitionError, match="staging -> draft"):
        reg.transition("m", 1, "draft")
    with pytest.raises(TransitionError, match="promote"):
        reg.transition("m", 1, "production")
    with pytest.raises(TransitionError, match="'retired'"):
        reg.transition("m", 1, "retired")
    with pytest.raises(TransitionError, match="draft -> staging"):
        reg.transition("m", 2, "staging")  # skipping testing
    assert reg.transition("m", 2, "archived").status == "archived"
    with pytest.raises(TransitionError, match="archived -> testing"):
        reg.transition("m", 2, "testing")
    assert reg.get("m", 1).status == "staging"  # failed moves changed nothing
    assert reg.get("m", 2).status == "archived"


def test_aliases(reg: InMemoryRegistry) -> None:
    reg.set_alias("m", "challenger", 2)
    assert reg.alias("m", "challenger").version == "2"
    assert reg.get("m", 2).aliases == ("challenger",)
    reg.set_alias("m", "challenger", 3)  # moves
    assert reg.get("m", 2).aliases == () and reg.get("m", 3).aliases == ("challenger",)
    reg.delete_alias("m", "challenger")
    reg.delete_alias("m", "challenger")  # idempotent
    assert reg.alias("m", "challenger") is None
    with pytest.raises(RegistryError, match="promote"):
        reg.set_alias("m", "champion", 1)
    with pytest.raises(VersionNotFound):
        reg.set_alias("m", "challenger", 42)


def test_promote_moves_champion_previous_and_history(reg: InMemoryRegistry) -> None:
    first = reg.promote("m", 1)
    assert (first.status, first.aliases) == ("production", ("champion",))
    reg.transition("m", 2, "testing")
    reg.transition("m", 2, "staging")
    reg.set_alias("m", "challenger", 2)
    second = reg.promote("m", 2)
    assert (second.status, second.aliases) == ("production", ("champion",))  # challenger gone
    old = reg.get("m", 1)
    assert (old.status, old.aliases) == ("archived", ("previous",))
    assert reg.champion_history("m") == ["1", "2"]
    assert reg.promote("m", 2) == reg.get("m", 2)  # promoting the champion is a no-op
    assert reg.champion_history("m") == ["1", "2"]


def test_rollback_walks_back_the_history(reg: InMemoryRegistry) -> None:
    for v in (1, 2, 3):
        reg.promote("m", v)
    assert reg.champion_history("m") == ["1", "2", "3"]
    back = reg.rollback("m")
    assert (back.version, back.status, back.aliases) == ("2", "production", ("champion",))
    bad = reg.get("m", 3)
    assert bad.status == "archived" and "autopilot.rolled_back_at" in bad.tags
    assert reg.alias("m", "previous").version == "1"
    assert reg.champion_history("m") == ["1", "2"]
    assert reg.rollback("m").version == "1"
    assert reg.alias("m", "previous") is None
    with pytest.raises(VersionNotFound, match="no earlier champion"):
        reg.rollback("m")
    assert reg.alias("m", "champion").version == "1"  # the failed rollback changed nothing


def test_rollback_without_champion(reg: InMemoryRegistry) -> None:
    with pytest.raises(VersionNotFound, match="no champion"):
        reg.rollback("m")


def test_promote_refuses_unknown_version_and_changes_nothing(reg: InMemoryRegistry) -> None:
    reg.promote("m", 1)
    with pytest.raises(VersionNotFound):
        reg.promote("m", 99)
    assert reg.alias("m", "champion").version == "1"
    assert reg.champion_history("m") == ["1"]


def test_reserved_tags_and_free_tags(reg: InMemoryRegistry) -> None:
    reg.set_tag("m", 1, "owner", "team-a")
    assert reg.get("m", 1).tags["owner"] == "team-a"
    for key in ("autopilot.status", "autopilot.sha256", "autopilot.lineage"):
        with pytest.raises(RegistryError, match=key):
            reg.set_tag("m", 1, key, "x")


def test_unpicklable_model_is_a_registry_error_and_registers_nothing() -> None:
    r = InMemoryRegistry()
    with pytest.raises(RegistryError, match="serialise"):
        r.register("m", lambda x: x, schema=SCHEMA, lineage=_lineage())
    assert r.list_versions("m") == []


def test_lineage_round_trip() -> None:
    lin = _lineage("performance", "3")
    assert Lineage.from_dict(lin.to_dict()) == lin
    assert Lineage.from_dict({"metrics": {"a": np.float64(0.5)}}).metrics == {"a": 0.5}
    assert hash(lin) == hash(Lineage.from_dict(lin.to_dict()))  # usable as a dict key


def test_versions_are_hashable(reg: InMemoryRegistry) -> None:
    assert len({reg.get("m", 1), reg.get("m", 1), reg.get("m", 2)}) == 2


def test_twin_pickles_with_its_state(reg: InMemoryRegistry) -> None:
    reg.promote("m", 2)
    copy = pickle.loads(pickle.dumps(reg))  # e.g. handed to a Ray actor in a test
    assert copy.alias("m", "champion").version == "2"
    copy.promote("m", 3)  # the copy has a working lock of its own
    assert reg.alias("m", "champion").version == "2"
