"""The endpoint over real HTTP against a real local Serve and a real SQLite MLflow.

One application is deployed per test (a deploy costs 5-10 s here) and many
checks run against it, in an order where each step's table change is the
next step's starting point.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from autopilot.registry import Lineage, MlflowRegistry
from autopilot.routing import RoutingTable, choose_version
from autopilot.schema import Column, FeatureSchema

pytestmark = pytest.mark.integration

MODEL = "svc-test"
TOKEN = "test-admin-token"
FEATURES = ("a", "b", "c")
SCHEMA = FeatureSchema(
    tuple(Column(f, "numeric", nullable=(f == "c")) for f in FEATURES), "y", "classification",
    ("0", "1"),
)
LINEAGE = Lineage("initial", None, "fp", "rows 0:400", {"accuracy": 0.9}, None, "logistic")


def _data(seed: int = 0, n: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=list(FEATURES))
    y = (X["a"] + 0.5 * X["b"] > 0).astype(int).to_numpy()
    return X, y


def _models() -> dict[str, object]:
    X, y = _data()
    good = LogisticRegression().fit(X, y)
    flipped = LogisticRegression().fit(X, 1 - y)

    def boom(frame):  # nested: cloudpickle stores it by value, so replicas can load it
        raise RuntimeError("injected model failure")

    broken = Pipeline([("f", FunctionTransformer()), ("m", LogisticRegression())]).fit(X, y)
    broken.steps[0][1].func = boom
    return {"1": good, "2": flipped, "3": broken, "4": good}


def _monitor_class():
    import ray

    @ray.remote(num_cpus=0)
    class FakeMonitor:
        """Stands in for the Monitor actor: keeps what the endpoint hands it."""

        def __init__(self) -> None:
            self.records: list[dict] = []
            self.labels: list[dict] = []

        def ingest(self, batch: list[dict]) -> int:
            self.records.extend(batch)
            return len(batch)

        def ingest_labels(self, batch: list[dict]) -> int:
            self.labels.extend(batch)
            return len(batch)

        def dump(self) -> tuple[list[dict], list[dict]]:
            return self.records, self.labels

    return FakeMonitor


@pytest.fixture()
def deployed(serve_session: int, tracking_uri: str, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch):
    """Register four versions, write a config file, deploy through ``app_builder``."""
    import ray
    import ray.cloudpickle
    from ray import serve

    reg = MlflowRegistry(tracking_uri)
    models = _models()
    for v in ("1", "2", "3", "4"):
        assert reg.register(MODEL, models[v], schema=SCHEMA, lineage=LINEAGE).version == v
    reg.promote(MODEL, "1")

    cfg_path = tmp_path / "model.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": MODEL,
        "data": {"generator": {}, "target": "y"},
        "tracking_uri": tracking_uri,
        "state_dir": str(tmp_path / "state"),
        "serving": {
            "num_cpus": 0.25, "max_rows": 500, "table_refresh_s": 0.5, "record_flush_s": 0.2,
            "breaker": {"window": 10, "min_requests": 3, "error_rate": 0.5, "open_s": 600},
        },
    }))
    monkeypatch.setenv("AUTOPILOT_ADMIN_TOKEN", TOKEN)

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monitor = _monitor_class().options(name="autopilot-monitor", namespace="autopilot").remote()
    from deployments.app import app_builder

    serve.run(app_builder({"config_path": str(cfg_path)}), name="autopilot", route_prefix="/")
    client = httpx.Client(base_url=f"http://127.0.0.1:{serve_session}", timeout=30.0)
    try:
        yield client, reg, models, monitor, tmp_path
    finally:
        client.close()
        ray.kill(monitor)


def _admin(client: httpx.Client, action: str, payload: dict | None = None,
           token: str | None = TOKEN) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return client.post(f"/v1/models/{MODEL}/admin/{action}", json=payload or {}, headers=headers)


def _info(client: httpx.Client) -> dict:
    r = client.get(f"/v1/models/{MODEL}")
    assert r.status_code == 200, r.text
    return r.json()


def _predict(client: httpx.Client, rows: list[dict], key: str | None = None) -> dict:
    headers = {"X-User-Id": key} if key else {}
    r = client.post(f"/v1/models/{MODEL}/predict", json=rows, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _rows(n: int, seed: int) -> list[dict]:
    X, _ = _data(seed, n)
    return X.to_dict(orient="records")


def test_endpoint_end_to_end(deployed) -> None:
    client, reg, models, monitor, tmp_path = deployed
    import ray

    # --- health, docs, metadata ------------------------------------------------------
    assert client.get("/healthz").json()["champion"] == "1"
    docs = client.get("/openapi.json").json()
    assert set(FEATURES) <= set(json.dumps(docs["components"]["schemas"]).split('"'))
    assert client.get("/docs").status_code == 200
    info = _info(client)
    assert info["champion"] == "1" and info["table"]["table_version"] == 1

    # --- predictions match the model's own predict (rows, columnar, KServe v2) ---------
    rows = _rows(40, seed=5)
    frame = pd.DataFrame(rows)
    out = _predict(client, rows, key="alice")
    assert out["version"] == "1" and len(out["request_ids"]) == 40
    assert out["predictions"] == models["1"].predict(frame).tolist()
    assert np.allclose(out["probabilities"], models["1"].predict_proba(frame))
    again = _predict(client, rows, key="alice")
    assert again["cache_hits"] == 40 and again["predictions"] == out["predictions"]
    col = client.post(f"/v1/models/{MODEL}/predict",
                      json={"columns": frame.to_dict(orient="list"), "key": "bob"}).json()
    assert col["predictions"] == out["predictions"]
    v2 = client.post(f"/v2/models/{MODEL}/infer", json={"id": "req-1", "inputs": [
        {"name": f, "shape": [40], "datatype": "FP64", "data": frame[f].tolist()}
        for f in FEATURES]})
    assert v2.status_code == 200, v2.text
    body = v2.json()
    assert body["id"] == "req-1" and body["model_version"] == "1"
    assert body["outputs"][0]["data"] == out["predictions"]
    assert body["outputs"][1]["shape"] == [40, 2]
    single = client.post(f"/v2/models/{MODEL}/infer", json={"inputs": [
        {"name": "x", "shape": [2, 3], "datatype": "FP64", "data": frame.values[:2].tolist()}]})
    assert single.json()["outputs"][0]["data"] == out["predictions"][:2]

    # --- bad input: 4xx naming the field and the problem ---------------------------------
    bad = {
        "missing": ([{"a": 1.0, "b": 2.0}], 422, "rows[0].c: missing feature"),
        "type": ([{"a": "high", "b": 2.0, "c": 1.0}], 422, "rows[0].a"),
        "unknown": ([{"a": 1.0, "b": 2.0, "c": 1.0, "zz": 1}], 422, "rows[0].zz: unknown"),
        "too_many": (_rows(501, seed=1), 413, "too many rows"),
        "empty": ([], 422, "at least one row"),
        "shape": ({"rows": [], "columns": {}}, 422, "exactly one of"),
    }
    for label, (payload, status, text) in bad.items():
        r = client.post(f"/v1/models/{MODEL}/predict", json=payload)
        assert r.status_code == status and text in r.json()["error"], (label, r.text)
    r = client.post(f"/v1/models/{MODEL}/predict", content='[{"a": NaN, "b": 1, "c": 1}]',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and "rows[0].a: NaN" in r.json()["error"]
    r = client.post(f"/v1/models/{MODEL}/predict", content="{not json")
    assert r.status_code == 400 and "body" in r.json()["error"]
    r = client.post("/v1/models/nope/predict", json=rows[:1])
    assert r.status_code == 404 and "'nope'" in r.json()["error"]
    r = client.post(f"/v2/models/{MODEL}/infer", json={"inputs": [
        {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]})
    assert r.status_code == 422 and "inputs[0].shape" in r.json()["error"]

    # --- feedback reaches the monitor, joined by request id -----------------------------
    r = client.post(f"/v1/models/{MODEL}/feedback",
                    json={"labels": [{"request_id": rid, "label": 1}
                                     for rid in out["request_ids"][:5]]})
    assert r.status_code == 202 and r.json()["accepted"] == 5
    r = client.post(f"/v1/models/{MODEL}/feedback", json={"request_id": "x"})
    assert r.status_code == 422 and "label" in r.json()["error"]

    # --- admin without (or with a wrong) token: 401 and nothing changes -------------------
    for token in (None, "wrong"):
        r = _admin(client, "set_weights", {"weights": {"1": 0.5, "2": 0.5}}, token=token)
        assert r.status_code == 401, r.text
    assert _admin(client, "promote", {"version": "2"}, token=None).status_code == 401
    assert _info(client)["table"]["table_version"] == 1
    assert reg.alias(MODEL, "champion").version == "1"

    # --- 90/10 split: sticky by key, and the share matches the weights --------------------
    r = _admin(client, "set_weights", {"weights": {"1": 0.9, "2": 0.1}})
    assert r.status_code == 200, r.text
    table = RoutingTable.from_dict(r.json()["table"])
    keys = [f"user-{i}" for i in range(400)]
    one = _rows(1, seed=9)
    got = {k: _predict(client, one, key=k)["version"] for k in keys}
    rng = np.random.default_rng(0)
    assert got == {k: choose_version(table, k, rng) for k in keys}  # exactly the hash rule
    share = sum(v == "2" for v in got.values()) / len(keys)
    assert abs(share - 0.1) < 4 * math.sqrt(0.1 * 0.9 / len(keys)), share
    for k in keys[:30]:  # the same key lands on the same version every time
        assert _predict(client, _rows(1, seed=11), key=k)["version"] == got[k]

    # --- shadow: the challenger gets a copy, the champion answers -------------------------
    assert _admin(client, "set_weights",
                  {"weights": {"1": 1.0, "2": 0.0}, "mode": "shadow"}).status_code == 200
    shadow_rows = _rows(10, seed=12)
    sh = _predict(client, shadow_rows, key="carol")
    assert sh["version"] == "1"
    assert sh["predictions"] == models["1"].predict(pd.DataFrame(shadow_rows)).tolist()
    deadline = time.time() + 10
    copies: list[dict] = []
    while time.time() < deadline and len(copies) < 10:
        records, labels = ray.get(monitor.dump.remote())
        copies = [r for r in records if r["shadow"] and r["request_id"] in sh["request_ids"]]
        time.sleep(0.2)
    assert len(copies) == 10 and {c["version"] for c in copies} == {"2"}
    flipped = models["2"].predict(pd.DataFrame(shadow_rows)).tolist()
    by_id = {c["request_id"]: c["prediction"] for c in copies}
    assert [by_id[rid] for rid in sh["request_ids"]] == flipped
    assert {lab["request_id"] for lab in labels} == set(out["request_ids"][:5])
    answered = [r for r in records if not r["shadow"] and r["request_id"] in out["request_ids"]]
    assert len(answered) == 40 and {r["version"] for r in answered} == {"1"}

    # --- a version that raises trips its breaker; users get the champion's answers -------
    assert _admin(client, "set_weights",
                  {"weights": {"1": 0.0, "3": 1.0}, "mode": "split"}).status_code == 200
    for i in range(8):
        rs = _rows(3, seed=20 + i)
        res = _predict(client, rs, key=f"dave-{i}")
        assert res["routed_to"] == "3" and res["version"] == "1"
        assert res["predictions"] == models["1"].predict(pd.DataFrame(rs)).tolist()
    assert _info(client)["versions"]["3"]["breaker"] == "open"

    # --- a tampered artifact is never served ---------------------------------------------
    from mlflow import MlflowClient

    uri = MlflowClient(reg.tracking_uri).get_model_version_download_uri(MODEL, "4")
    pkl = next(Path(uri.removeprefix("file://")).rglob("model.pkl"))
    pkl.write_bytes(pkl.read_bytes() + b"tampered")
    r = _admin(client, "promote", {"version": "4"})
    assert r.status_code == 409 and "IntegrityError" in r.json()["error"]
    r = _admin(client, "set_weights", {"weights": {"1": 0.5, "4": 0.5}})
    assert r.status_code == 409 and "IntegrityError" in r.json()["error"]
    assert reg.alias(MODEL, "champion").version == "1"
    assert "4" not in _info(client)["versions"]

    # --- promote then roll back through admin: load, then switch -------------------------
    r = _admin(client, "promote", {"version": "2"})
    assert r.status_code == 200, r.text
    assert reg.alias(MODEL, "champion").version == "2"
    p = _predict(client, rows, key="erin")
    assert p["version"] == "2" and p["predictions"] == models["2"].predict(frame).tolist()
    assert _admin(client, "rollback").status_code == 200
    assert reg.alias(MODEL, "champion").version == "1"
    assert _predict(client, rows, key="erin")["version"] == "1"
    assert _admin(client, "retrain").status_code == 409  # needs the controller

    # --- nothing acknowledged was lost ----------------------------------------------------
    info = _info(client)
    assert info["records"]["dropped"] == 0 and info["labels"]["dropped"] == 0
