"""The MLflow registry on a real SQLite store: lineage, integrity, aliases, lifecycle.

No Ray needed. Each test gets a fresh store at the ``tracking_uri`` fixture's path,
seeded from an empty store created once per module: creating MLflow's tables
(alembic migrations) takes about 9 s on a busy 2-core box; copying the file, 0.1 s.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from autopilot.config import parse_config
from autopilot.errors import IntegrityError, RegistryError, TransitionError, VersionNotFound
from autopilot.registry import Lineage, MlflowRegistry, open_registry
from autopilot.training.data import fingerprint, infer_schema, split_xy
from autopilot.training.generator import drifting_stream

pytestmark = pytest.mark.integration


def _db(uri: str) -> Path:
    return Path(uri[len("sqlite:///") :])


@pytest.fixture(scope="module")
def _empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # creates the tables
    return db


@pytest.fixture()
def store(tracking_uri: str, _empty_store: Path) -> str:
    """``tracking_uri``, already holding MLflow's (empty) tables."""
    shutil.copy(_empty_store, _db(tracking_uri))
    return tracking_uri


@pytest.fixture(scope="module")
def data():  # noqa: ANN201 - (schema, X, y, frame)
    frame = drifting_stream("demo", n_rows=1500, seed=0).reference()
    schema = infer_schema(frame, "y", time_column="t")
    X, y = split_xy(frame, schema)
    return schema, X, y, frame


def _pipeline(schema, X, y, C: float = 1.0):  # noqa: ANN001, ANN202
    num = [c.name for c in schema.columns if c.kind == "numeric"]
    cat = [c.name for c in schema.columns if c.kind != "numeric"]
    pre = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), num),
        (make_pipeline(SimpleImputer(strategy="most_frequent"),
                       OneHotEncoder(handle_unknown="ignore")), cat),
    )
    return make_pipeline(pre, LogisticRegression(C=C, max_iter=500)).fit(X, y)


def _lineage(frame, trigger: str = "initial", parent: str | None = None) -> Lineage:  # noqa: ANN001
    return Lineage(
        trigger=trigger, parent_version=parent, data_fingerprint=fingerprint(frame),
        data_window="rows 0:450", metrics={"roc_auc": 0.93, "accuracy": 0.87},
        training_run_id=None, family="logistic", params={"C": 1.0},
    )


def _register(reg: MlflowRegistry, data, name: str = "churn", C: float = 1.0, **kw):  # noqa: ANN001, ANN201
    schema, X, y, frame = data
    return reg.register(name, _pipeline(schema, X, y, C), schema=schema,
                        lineage=_lineage(frame, **kw), reference_profile={"rows": len(X)})


def _local(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)


class _Unpicklable:
    def predict(self, X):  # noqa: ANN001, ANN201
        return X

    def __reduce__(self):  # noqa: ANN204
        raise TypeError("this model refuses to be pickled")


def test_register_and_load_round_trip(
    store: str, data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    # The caller's own MLflow settings are neither used nor changed by the registry.
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    schema, X, y, frame = data
    reg = MlflowRegistry(store)
    model = _pipeline(schema, X, y)
    exp_id = reg.ensure_experiment("autopilot-training")
    run_id = reg._client.create_run(exp_id).info.run_id  # a training's run, as jobs pass it
    t0 = time.perf_counter()
    v = reg.register("churn", model, schema=schema, lineage=_lineage(frame),
                     reference_profile={"rows": len(X), "mean": np.float64(0.5)},
                     input_example=X.head(3), run_id=run_id)
    t_register = time.perf_counter() - t0
    assert (v.version, v.status, v.run_id) == ("1", "draft", run_id)
    assert len(v.sha256) == 64 and v.source.startswith("models:/")
    assert v.lineage == _lineage(frame)
    assert v.tags["lineage.data_fingerprint"] == fingerprint(frame)
    assert v.tags["lineage.trigger"] == "initial"

    # Artifacts live under the absolute artifact root next to the database, not the cwd.
    where = _local(reg._client.get_model_version_download_uri("churn", "1"))
    assert where.is_absolute() and (where / "model.pkl").is_file()
    assert str(where).startswith(str(_db(store).parent))

    t0 = time.perf_counter()
    loaded = reg.load("churn", "1")
    t_load = time.perf_counter() - t0
    assert (loaded.model.predict(X) == model.predict(X)).all()
    np.testing.assert_allclose(loaded.model.predict_proba(X), model.predict_proba(X))
    assert loaded.schema == schema
    assert loaded.reference_profile == {"rows": len(X), "mean": 0.5}
    assert loaded.version == reg.get("churn", 1)
    import mlflow

    assert mlflow.get_tracking_uri() == elsewhere
    assert not (tmp_path / "elsewhere.db").exists()
    print(f"\nmlflow register {t_register:.3f}s, load {t_load:.3f}s")


def test_tampered_artifact_is_refused(store: str, data, monkeypatch) -> None:  # noqa: ANN001
    reg = MlflowRegistry(store)
    _register(reg, data)
    _register(reg, data, C=0.5)
    where = _local(reg._client.get_model_version_download_uri("churn", "1"))
    pkl = where / "model.pkl"
    blob = bytearray(pkl.read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one bit of one byte
    pkl.write_bytes(bytes(blob))

    import cloudpickle

    def _boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickled a tampered artifact")

    with monkeypatch.context() as m:
        m.setattr(cloudpickle, "loads", _boom)
        with pytest.raises(IntegrityError, match="churn v1.*does not match"):
            reg.load("churn", 1)
    reg.load("churn", 2)  # the untouched version still loads

    schema_file = next((_local(reg._client.get_model_version_download_uri("churn", "2"))
                        ).rglob("schema.json"))
    schema_file.write_text(schema_file.read_text().replace("numeric", "categorical", 1))
    with pytest.raises(IntegrityError, match="churn v2"):
        reg.load("churn", 2)


def test_aliases_promote_rollback_and_transitions(store: str, data) -> None:  # noqa: ANN001
    reg = MlflowRegistry(store)
    for C in (1.0, 0.5, 0.1):
        _register(reg, data, C=C)
    reg.set_alias("churn", "challenger", 2)
    assert reg.alias("churn", "challenger").version == "2"
    reg.set_alias("churn", "challenger", 3)
    assert reg.get("churn", 2).aliases == () and reg.get("churn", 3).aliases == ("challenger",)

    assert reg.promote("churn", 1).aliases == ("champion",)
    reg.transition("churn", 2, "testing")
    reg.transition("churn", 2, "staging")
    with pytest.raises(TransitionError, match="staging -> testing"):
        reg.transition("churn", 2, "testing")
    with pytest.raises(TransitionError, match="promote"):
        reg.transition("churn", 3, "production")
    reg.promote("churn", 2)
    reg.promote("churn", 3)  # the challenger alias leaves with promotion
    assert reg.alias("churn", "challenger") is None
    assert reg.champion_history("churn") == ["1", "2", "3"]
    statuses = {v.version: (v.status, v.aliases) for v in reg.list_versions("churn")}
    assert statuses == {
        "1": ("archived", ()),
        "2": ("archived", ("previous",)),
        "3": ("production", ("champion",)),
    }
    back = reg.rollback("churn")
    assert (back.version, back.status) == ("2", "production")
    assert reg.alias("churn", "champion").version == "2"
    assert reg.alias("churn", "previous").version == "1"
    assert reg.get("churn", 3).status == "archived"
    assert "autopilot.rolled_back_at" in reg.get("churn", 3).tags


def test_history_survives_a_new_registry_instance(store: str, data) -> None:  # noqa: ANN001
    first = MlflowRegistry(store)
    for _ in range(3):
        _register(first, data)
    first.promote("churn", 1)
    first.promote("churn", 3)
    del first
    again = MlflowRegistry(store)  # e.g. the controller after a restart
    assert again.champion_history("churn") == ["1", "3"]
    assert again.alias("churn", "champion").version == "3"
    assert again.rollback("churn").version == "1"
    assert MlflowRegistry(store).champion_history("churn") == ["1"]


def test_failed_operations_leave_versions_unchanged(store: str, data) -> None:  # noqa: ANN001
    reg = MlflowRegistry(store)
    _register(reg, data)
    _register(reg, data)
    reg.promote("churn", 1)
    before = reg.list_versions("churn")

    schema, _, _, frame = data
    with pytest.raises(RegistryError, match="pickle"):
        reg.register("churn", _Unpicklable(), schema=schema, lineage=_lineage(frame))
    with pytest.raises(VersionNotFound):
        reg.promote("churn", 7)
    with pytest.raises(TransitionError):
        reg.transition("churn", 2, "staging")
    with pytest.raises(RegistryError) as info:
        reg.set_alias("churn", "v1", 2)  # MLflow reserves aliases like v1
    assert not isinstance(info.value, VersionNotFound)
    assert info.value.__cause__ is not None  # translated from MLflow with `raise ... from`
    with pytest.raises(VersionNotFound):
        reg.get("nobody", 1)
    assert reg.list_versions("churn") == before
    assert reg.champion_history("churn") == ["1"]


def test_registry_pickles_by_address(store: str, data) -> None:  # noqa: ANN001
    import pickle

    reg = MlflowRegistry(store)
    _register(reg, data)
    copy = pickle.loads(pickle.dumps(reg))
    assert copy.tracking_uri == store and copy.artifact_root == reg.artifact_root
    assert [v.version for v in copy.list_versions("churn")] == ["1"]


def test_open_registry_uses_the_state_folder(tmp_path: Path, _empty_store: Path) -> None:
    (tmp_path / "s").mkdir()
    shutil.copy(_empty_store, tmp_path / "s" / "mlflow.db")
    cfg = parse_config(
        {"name": "m", "data": {"generator": {}, "target": "y"}, "state_dir": str(tmp_path / "s")}
    )
    reg = open_registry(cfg)
    assert reg.tracking_uri == f"sqlite:///{tmp_path / 's' / 'mlflow.db'}"
    assert reg.artifact_root == tmp_path / "s" / "mlartifacts"
    assert reg.list_versions("m") == []
