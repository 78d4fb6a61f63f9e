"""The endpoint's logic as plain Python (no Ray): routing, cache, breaker, admin, records."""

from __future__ import annotations

import asyncio
import doctest
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import deployments.app
import deployments.breaker
import deployments.cache
import deployments.schemas
from autopilot.config import AutopilotConfig
from autopilot.errors import IntegrityError, ServingError
from autopilot.registry import InMemoryRegistry, Lineage
from autopilot.routing import Arm, RoutingTable
from autopilot.schema import Column, FeatureSchema
from deployments.endpoint import AutopilotEndpoint, hash_token
from deployments.schemas import RequestError

SCHEMA = FeatureSchema(
    (Column("a", "numeric", nullable=False), Column("b", "numeric")), "y", "classification",
    ("0", "1"),
)
LINEAGE = Lineage("initial", None, "fp", "0:100", {"acc": 0.9}, None, "logistic")


class Exploding(LogisticRegression):
    """A fitted classifier whose predictions always fail (a broken version)."""

    def predict(self, X):  # noqa: N803
        raise RuntimeError("injected failure")

    def predict_proba(self, X):  # noqa: N803
        raise RuntimeError("injected failure")


def _fit(cls=LogisticRegression, flip: bool = False):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = ((X["a"] > 0) ^ flip).astype(int)
    return cls().fit(X, y)


def _cfg(tmp_path: Path, **serving) -> dict:
    return AutopilotConfig.model_validate({
        "name": "m", "data": {"generator": {}, "target": "y"}, "state_dir": str(tmp_path),
        "serving": serving,
    }).model_dump(mode="json")


def _rows(n: int, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"a": float(v), "b": float(-v)} for v in rng.normal(size=n)]


@pytest.fixture()
def reg() -> InMemoryRegistry:
    r = InMemoryRegistry()
    r.register("m", _fit(), schema=SCHEMA, lineage=LINEAGE)  # v1
    r.register("m", _fit(flip=True), schema=SCHEMA, lineage=LINEAGE)  # v2
    r.register("m", _fit(Exploding), schema=SCHEMA, lineage=LINEAGE)  # v3
    r.promote("m", "1")
    return r


def run(coro):
    return asyncio.run(coro)


def test_doctests_of_deployment_modules() -> None:
    for mod in (deployments.cache, deployments.breaker, deployments.schemas, deployments.app):
        assert doctest.testmod(mod).failed == 0


def test_predictions_match_model_and_cache(tmp_path: Path, reg: InMemoryRegistry) -> None:
    ep = AutopilotEndpoint(_cfg(tmp_path), registry=reg, start_threads=False)
    rows = _rows(20)

    async def go():
        first = await ep.predict_rows(rows, "k1")
        second = await ep.predict_rows(rows, "k1")
        return first, second

    first, second = run(go())
    model = reg.load("m", "1").model
    frame = pd.DataFrame(rows).astype(float)
    assert first["version"] == "1"
    assert first["predictions"] == model.predict(frame).tolist()
    assert np.allclose(first["proba"], model.predict_proba(frame))
    assert first["cache_hits"] == 0 and second["cache_hits"] == 20
    assert second["predictions"] == first["predictions"]
    assert len(set(first["request_ids"])) == 20
    ep.records.flush()
    d = ep.describe()
    assert d["cache"]["hits"] == 20 and d["records"]["accepted"] == 40
    # No monitor actor: records land in the JSONL fallback, none dropped.
    files = list((tmp_path / "records").glob("m-predictions-*.jsonl"))
    assert files and sum(1 for _ in files[0].open()) == 40 and d["records"]["dropped"] == 0


def test_breaker_trips_and_fallback_answers(tmp_path: Path, reg: InMemoryRegistry) -> None:
    ep = AutopilotEndpoint(_cfg(tmp_path, cache={"enabled": False},
                                breaker={"window": 10, "min_requests": 3, "open_s": 60}),
                           registry=reg, start_threads=False)
    out = ep._local_command("set_weights", {"weights": {"1": 0.0, "3": 1.0}})
    assert out["table"]["table_version"] == 2
    good = reg.load("m", "1").model

    async def go():
        return [await ep.predict_rows(_rows(3, seed=i), f"user{i}") for i in range(8)]

    outs = run(go())
    for i, o in enumerate(outs):
        assert o["chosen"] == "3" and o["version"] == "1"
        frame = pd.DataFrame(_rows(3, seed=i)).astype(float)
        assert o["predictions"] == good.predict(frame).tolist()
    assert ep._state.live["3"].breaker.state == "open"
    # After the trip the broken version is not called any more: no new errors recorded.
    assert all(o["errors"] == [] for o in outs[3:]) and outs[0]["errors"]


def test_all_versions_broken_gives_baseline(tmp_path: Path, reg: InMemoryRegistry) -> None:
    ep = AutopilotEndpoint(_cfg(tmp_path, cache={"enabled": False}), registry=reg,
                           start_threads=False)
    ep._local_command("promote", {"version": "3"})
    o = run(ep.predict_rows(_rows(2), None))
    assert o["version"] == "1"  # the old champion became the fallback
    ep._local_command("set_weights", {"weights": {"3": 1.0}, "fallback": None})
    o = run(ep.predict_rows(_rows(2), None))
    assert o["version"] == "baseline" and len(o["predictions"]) == 2


def test_shadow_answers_with_champion_and_records_copy(tmp_path: Path,
                                                      reg: InMemoryRegistry) -> None:
    ep = AutopilotEndpoint(_cfg(tmp_path, cache={"enabled": False}), registry=reg,
                           start_threads=False)
    ep._local_command("set_weights", {"weights": {"1": 1.0, "2": 0.0}, "mode": "shadow"})
    seen: list[dict] = []
    ep.records._sink = seen.extend  # capture instead of the monitor

    async def go():
        outs = [await ep.predict_rows(_rows(1, seed=i), f"u{i}") for i in range(10)]
        await asyncio.sleep(0.05)
        while ep._shadow_tasks:
            await asyncio.sleep(0.01)
        return outs

    outs = run(go())
    assert {o["version"] for o in outs} == {"1"}
    ep.records.flush()
    shadow = [r for r in seen if r["shadow"]]
    assert len(shadow) == 10 and {r["version"] for r in shadow} == {"2"}
    # v2 is the flipped model: its shadow answers differ from what users got.
    live = {r["request_id"]: r["prediction"] for r in seen if not r["shadow"]}
    assert all(live[r["request_id"]] != r["prediction"] for r in shadow)


def test_tampered_version_is_refused(tmp_path: Path, reg: InMemoryRegistry) -> None:
    ep = AutopilotEndpoint(_cfg(tmp_path), registry=reg, start_threads=False)
    reg.files[("m", "2")]["model.pkl"] += b"tamper"
    with pytest.raises(IntegrityError):
        ep._local_command("promote", {"version": "2"})
    assert reg.alias("m", "champion").version == "1"
    assert ep._state.table.champion == "1" and "2" not in ep._state.live
    # A table from the controller or file naming it is refused too; the old one stays.
    bad = RoutingTable("m", 9, "split", (Arm("1", 0.5, "champion"), Arm("2", 0.5, "challenger")))
    ep._apply(bad, "controller")
    assert ep._state.table.table_version == 1 and "refused" in ep._last_error


def test_admin_file_is_picked_up_by_other_replicas(tmp_path: Path,
                                                   reg: InMemoryRegistry) -> None:
    a = AutopilotEndpoint(_cfg(tmp_path), registry=reg, start_threads=False)
    b = AutopilotEndpoint(_cfg(tmp_path), registry=reg, start_threads=False)
    a._local_command("set_weights", {"weights": {"1": 0.9, "2": 0.1}})
    a._local_command("pause", {})
    b.refresh()
    assert b._state.table == a._state.table and b._state.table.paused
    assert json.loads((tmp_path / "routing" / "m.json").read_text())["table_version"] == 3
    with pytest.raises(RequestError, match="weights"):
        a._local_command("set_weights", {"weights": {"1": 0.5, "2": 0.2}})
    with pytest.raises(RequestError, match="controller"):
        a._local_command("retrain", {})


def test_no_champion_is_a_serving_error(tmp_path: Path) -> None:
    with pytest.raises(ServingError, match="no champion"):
        AutopilotEndpoint(_cfg(tmp_path), registry=InMemoryRegistry(), start_threads=False)


def test_token_hash_and_parser_errors(tmp_path: Path, reg: InMemoryRegistry) -> None:
    ep = AutopilotEndpoint(_cfg(tmp_path), token_sha256=hash_token("s3cret"), registry=reg,
                           start_threads=False)
    assert ep._token_sha == hash_token("s3cret")
    with pytest.raises(RequestError, match=r"rows\[0\]\.a: NaN"):
        ep._state.parser.predict([{"a": float("nan"), "b": 1.0}])
    with pytest.raises(RequestError, match="too many rows"):
        ep._state.parser.predict(_rows(10_001))


def test_http_routes_without_ray(tmp_path: Path, reg: InMemoryRegistry,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.delenv("AUTOPILOT_ADMIN_TOKEN", raising=False)
    from deployments.endpoint import build_fastapi

    ep = AutopilotEndpoint(_cfg(tmp_path), token_sha256=hash_token("s3cret"), registry=reg,
                           start_threads=False)
    with TestClient(build_fastapi(ep)) as c:
        r = c.post("/v1/models/m/predict", json={"rows": _rows(3), "key": "u"})
        assert r.status_code == 200 and r.json()["version"] == "1"
        assert len(r.json()["probabilities"]) == 3
        r = c.post("/v1/models/m/predict", json=[{"a": 1.0}])
        assert r.status_code == 422 and "rows[0].b: missing feature" in r.json()["error"]
        assert c.post("/v1/models/x/predict", json=_rows(1)).status_code == 404
        r = c.post("/v1/models/m/admin/pause", json={})
        assert r.status_code == 401
        assert ep._state.table.paused is False
        r = c.post("/v1/models/m/admin/pause", json={},
                   headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and ep._state.table.paused
        assert "Row" in c.get("/openapi.json").json()["components"]["schemas"]
        for junk in (b"[" * 100_000, b"\xff\xfe", b"{", b'{"rows": 5}', b'"text"'):
            r = c.post("/v1/models/m/predict", content=junk)
            assert 400 <= r.status_code < 500, (junk[:10], r.status_code)
        r = c.post("/v1/models/m/feedback", json={"request_id": "r1", "label": 1})
        assert r.status_code == 202 and r.json()["accepted"] == 1
    off = AutopilotEndpoint(_cfg(tmp_path / "o"), registry=reg, start_threads=False)
    with TestClient(build_fastapi(off)) as c:
        r = c.post("/v1/models/m/admin/pause", json={})
        assert r.status_code == 403 and "AUTOPILOT_ADMIN_TOKEN" in r.json()["error"]


def test_serve_config_file_is_valid_and_matches_builder() -> None:
    import yaml
    from ray.serve.schema import ServeDeploySchema

    from deployments.app import deployment_options

    root = Path(__file__).resolve().parents[3]
    raw = yaml.safe_load((root / "deployments" / "serve_config.yaml").read_text())
    schema = ServeDeploySchema.model_validate(raw)
    app_cfg = schema.applications[0]
    assert app_cfg.import_path == "deployments.app:app_builder"
    from autopilot.config import load_config

    cfg = load_config(root / app_cfg.args["config_path"])
    assert app_cfg.deployments[0].name == deployment_options(cfg)["name"]


def test_fast_frame_matches_training_representation() -> None:
    from autopilot.training.data import coerce_features
    from deployments.endpoint import _frame

    schema = FeatureSchema(
        (Column("x", "numeric"), Column("seg", "categorical"), Column("p", "binary"),
         Column("z", "numeric")), "y", "classification", ("0", "1"),
    )
    rows = [{"x": 1.5, "seg": "a", "p": 1, "z": None},
            {"x": None, "seg": 2.0, "p": True, "z": -3.0},
            {"x": 0.0, "seg": None, "p": 0.0, "z": 4.0}]
    fast = _frame(rows, schema)
    slow = coerce_features(pd.DataFrame(rows), schema)
    pd.testing.assert_frame_equal(fast, slow)
