"""The self-driving loop on real Ray, Serve, HTTP and SQLite MLflow.

One stack per module (deploying costs 5-10 s here): a Monitor actor, a
Controller actor (ticks driven by hand), the endpoint on Serve, an MLflow
registry on SQLite. The tests run in file order, each starting from where the
previous one left the stack:

1. every request served is one stored prediction record;
2. covariate drift triggers a real retrain (AutoML on Ray Tune in a Ray task)
   and a new version, which passes the gate and is ramped and promoted;
3. a worse challenger is rolled back by the sequential test;
4. a challenger that errors is rolled back within one tick while every user
   still gets an answer;
5. the controller killed mid-canary comes back with the same champion,
   challenger, weights and journal;
6. a monitor restart loses no acknowledged record.

Later challengers come from a scripted trainer (a Ray task, like the real
one) so each scenario gets the model it needs; the gate runs in
non-inferiority mode with a wide margin so they reach the canary, where the
live statistics must catch them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.integration

MODEL = "loop-test"
FEATURES = ("x1", "x2")
SHIFT = 3.0


def _data(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(size=(n, 2))
    x[:, 0] += shift
    y = (x[:, 0] - shift + x[:, 1] > 0).astype(int)  # the concept moves with the shift
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y})


class FlagBroken:
    """A good model that raises once ``flag`` exists (an injected live failure)."""

    def __init__(self, model: Any, flag: str) -> None:
        self.model = model
        self.flag = flag
        self.classes_ = model.classes_

    def predict(self, X: Any) -> Any:
        if Path(self.flag).exists():
            raise RuntimeError("injected failure")
        return self.model.predict(X)

    def predict_proba(self, X: Any) -> Any:
        if Path(self.flag).exists():
            raise RuntimeError("injected failure")
        return self.model.predict_proba(X)


def scripted_train(request: Any) -> str:
    """Train what ``<state_dir>/next_model`` asks for: the real pipeline, or a scripted model."""
    from sklearn.linear_model import LogisticRegression

    from autopilot.config import load_config
    from autopilot.controller import train_from_request
    from autopilot.registry import Lineage, open_registry
    from autopilot.stats import ReferenceProfile
    from autopilot.training.data import infer_schema

    cfg = load_config(request.config_path)
    kind = (cfg.resolved_state_dir() / "next_model").read_text().strip()
    if kind == "real":
        return train_from_request(request)
    frame = pd.read_parquet(request.data_path)
    X, y = frame[list(FEATURES)], frame["y"].astype(int).to_numpy()
    if kind == "worse":  # blind to x1: about 75 % accurate where the champion is about 97 %
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import make_pipeline

        model: Any = make_pipeline(ColumnTransformer([("x2", "passthrough", ["x2"])]),
                                   LogisticRegression()).fit(X, y)
    elif kind == "erroring":
        model = FlagBroken(LogisticRegression().fit(X, y),
                           str(cfg.resolved_state_dir() / "break"))
    else:
        model = LogisticRegression().fit(X, y)
    reg = open_registry(cfg)
    schema = infer_schema(frame, target="y", task="classification")
    lineage = Lineage(request.trigger, request.parent_version, "scripted", request.data_window,
                      {"accuracy": float((model.predict(X) == y).mean())}, None, kind, {})
    profile = ReferenceProfile.fit(X).to_dict()
    return reg.register(cfg.name, model, schema=schema, lineage=lineage,
                        reference_profile=profile).version


class Stack:
    def __init__(self, port: int, root: Path, tracking_uri: str) -> None:
        self.port = port
        self.root = root
        self.state = root / "state"
        self.tracking_uri = tracking_uri
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
        self.rng = np.random.default_rng(0)
        self.n = 0
        self.served = 0
        self.controller: Any = None
        self.monitor: Any = None
        self.registry: Any = None

    def script(self, kind: str) -> None:
        (self.state / "next_model").write_text(kind)

    def send(self, n: int, *, shift: float = SHIFT, label: bool = True) -> list[dict[str, Any]]:
        """``n`` single-row requests from distinct users over HTTP, then their labels."""
        frame = _data(self.rng, n, shift)
        keys = [f"user-{self.n + i}" for i in range(n)]
        self.n += n

        def one(i: int) -> dict[str, Any]:
            row = {f: float(frame[f].iloc[i]) for f in FEATURES}
            r = self.client.post(f"/v1/models/{MODEL}/predict",
                                 json={"rows": [row], "key": keys[i]})
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(8) as pool:
            out = list(pool.map(one, range(n)))
        self.served += n
        if label:
            labels = [{"request_id": o["request_id"], "label": int(frame["y"].iloc[i])}
                      for i, o in enumerate(out)]
            r = self.client.post(f"/v1/models/{MODEL}/feedback", json={"labels": labels})
            assert r.status_code == 202, r.text
        return out

    def stored(self, served_only: bool = True) -> int:
        import ray

        return ray.get(self.monitor.call.remote("count", MODEL, served_only=served_only))

    def wait_stored(self, expected: int, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        got = self.stored()
        while got < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            got = self.stored()
        return got

    def wait_labels(self, timeout: float = 30.0) -> None:
        import ray

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ray.get(self.monitor.call.remote("label_count", MODEL)) >= self.served:
                return
            time.sleep(0.2)

    def tick(self) -> str:
        import ray

        return ray.get(self.controller.tick.remote(MODEL))[MODEL]["action"]

    def status(self) -> dict[str, Any]:
        import ray

        return ray.get(self.controller.status.remote(MODEL))[MODEL]

    def history(self) -> list[str]:
        import ray

        return [e["action"] for e in ray.get(self.controller.history.remote(MODEL, limit=None))]

    def wait_table(self, timeout: float = 20.0) -> None:
        """Until the endpoint serves the controller's current routing table."""
        want = self.status()["routing"]
        deadline = time.monotonic() + timeout
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            info = self.client.get(f"/v1/models/{MODEL}").json()
            if info.get("table") == want:
                return
            time.sleep(0.2)
        raise AssertionError(f"endpoint never applied table {want}: {info.get('table')}")

    def step(self, n: int = 150) -> str:
        """Serve a batch at the current weights, let it land, tick once."""
        self.wait_table()
        self.send(n)
        self.wait_stored(self.served)
        self.wait_labels()
        return self.tick()


@pytest.fixture(scope="module")
def stack(serve_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import ray
    import ray.cloudpickle
    from ray import serve
    from sklearn.linear_model import LogisticRegression

    from autopilot.config import load_config
    from autopilot.controller import start_controller
    from autopilot.monitor import start_monitor
    from autopilot.registry import Lineage, open_registry
    from autopilot.stats import ReferenceProfile
    from autopilot.training.data import infer_schema
    from deployments.app import build_app

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    root = tmp_path_factory.mktemp("loop")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    s = Stack(serve_port, root, uri)
    s.state.mkdir()
    cfg_path = root / "loop.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": MODEL, "task": "classification",
        "data": {"generator": {"n_rows": 500}, "target": "y"},
        "training": {"families": ["logistic"], "metric": "accuracy", "num_trials": 2,
                     "time_budget_s": 40, "cv_folds": 2, "cpus_per_trial": 0.5,
                     "ensemble_top_k": 0},
        "serving": {"num_cpus": 0.25, "table_refresh_s": 0.3, "record_flush_s": 0.1,
                    "cache": {"enabled": False},
                    "breaker": {"window": 50, "min_requests": 40, "error_rate": 0.9}},
        "monitor": {"window_rows": 1000},
        "policy": {
            "triggers": {"drift": {"min_rows": 100, "severity": "high"},
                         "performance": {"min_labels": 50}},
            "guards": {"min_interval_s": 0},
            "gate": {"min_rows": 30, "mode": "non_inferior", "margin": 0.35},
            "canary": {"steps": [0.2, 0.5, 1.0], "min_samples_per_step": 30,
                       "guardrail_min_requests": 10, "srm_min_requests": 60},
        },
        "controller": {"tick_interval_s": 3600},
        "state_dir": str(s.state), "tracking_uri": uri,
    }))
    cfg = load_config(cfg_path)
    # The first champion: trained on the pre-shift world, with its reference profile.
    base = _data(np.random.default_rng(1), 600)
    reg = open_registry(cfg)
    v1 = reg.register(
        MODEL, LogisticRegression().fit(base[list(FEATURES)], base["y"]),
        schema=infer_schema(base, target="y", task="classification"),
        lineage=Lineage("initial", None, "fp", "rows 0:600", {"accuracy": 0.97}, None,
                        "logistic", {}),
        reference_profile=ReferenceProfile.fit(base[list(FEATURES)]).to_dict(),
    ).version
    reg.promote(MODEL, v1)
    s.registry = reg
    s.script("real")
    s.monitor = start_monitor(s.state / "monitor.db", window_rows=1000, detached=False)
    s.controller = start_controller([cfg], auto_tick=False, launcher="task",
                                    train_fn=scripted_train, detached=False)
    serve.run(build_app(cfg), name="autopilot-loop", route_prefix="/")
    try:
        yield s
    finally:
        serve.delete("autopilot-loop")
        for actor in (s.controller, s.monitor):
            ray.kill(actor, no_restart=True)


def _wait_action(s: Stack, wanted: str, timeout: float = 150.0) -> list[str]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        act = s.tick()
        seen.append(act)
        if act == wanted:
            return seen
        if act not in ("hold", "none"):
            raise AssertionError(f"expected {wanted}, got {act}: {seen}")
        time.sleep(1.0)
    raise AssertionError(f"no {wanted} within {timeout} s: {seen}")


def test_records_stored_equal_requests_served(stack: Stack) -> None:
    stack.send(60, shift=0.0)
    assert stack.wait_stored(stack.served) == stack.served == 60
    assert stack.tick() == "none"  # no drift, nothing to do


def test_drift_retrains_and_better_challenger_is_promoted(stack: Stack) -> None:
    # Covariate shift on x1. The champion's accuracy drops with it, and the window test
    # locates the change: the retrain waits for min_rows_after_change (300) rows after it.
    stack.send(360)
    stack.wait_stored(stack.served)
    stack.wait_labels()
    assert stack.tick() == "retrain"
    assert _wait_action(stack, "validate")[-1] == "validate"
    st = stack.status()["state"]
    new = st["challenger"]
    lineage = stack.registry.get(MODEL, new).lineage
    assert lineage.trigger in ("drift", "performance") and lineage.parent_version == "1"
    stack.send(60)  # labelled rows after the training cut, for the gate
    stack.wait_stored(stack.served)
    stack.wait_labels()
    assert stack.tick() == "start_canary"
    started = stack.status()["state"]
    # A performance-triggered candidate that passed the gate replaces a failing champion
    # urgently: its canary starts at the 50 % step (the last below 100 %), so no ramp.
    urgent = lineage.trigger == "performance"
    assert started["step"] == (1 if urgent else 0), started
    assert started["weights"][new] == (0.5 if urgent else 0.2), started
    actions = [stack.step() for _ in range(15) if stack.status()["state"]["phase"] == "canary"]
    assert actions and actions[-1] == "promote", actions
    assert urgent or "ramp" in actions, actions
    assert stack.registry.alias(MODEL, "champion").version == new
    routing = stack.status()["routing"]
    assert routing["arms"][0] == {"version": new, "weight": 1.0, "role": "champion"}


def _start_scripted_canary(s: Stack, kind: str) -> str:
    s.script(kind)
    s.send(120)
    s.wait_stored(s.served)
    s.wait_labels()
    import ray

    out = ray.get(s.controller.command.remote(MODEL, "retrain", {"reason": kind}))
    assert out["decision"]["action"] == "retrain", out
    _wait_action(s, "validate")
    s.send(60)
    s.wait_stored(s.served)
    s.wait_labels()
    assert s.tick() == "start_canary"
    return s.status()["state"]["challenger"]


def test_worse_challenger_is_rolled_back(stack: Stack) -> None:
    champion = stack.registry.alias(MODEL, "champion").version
    bad = _start_scripted_canary(stack, "worse")
    actions = [stack.step(200) for _ in range(12) if stack.status()["state"]["phase"] == "canary"]
    assert actions[-1] == "rollback", actions
    assert stack.registry.alias(MODEL, "champion").version == champion
    assert stack.registry.get(MODEL, bad).status == "archived"


def test_erroring_challenger_rolled_back_within_one_tick(stack: Stack) -> None:
    import ray

    broken = _start_scripted_canary(stack, "erroring")
    stack.wait_table()
    (stack.state / "break").write_text("1")
    try:
        out = stack.send(200)  # every request still answered (asserted inside send)
        routed = [o for o in out if o["routed_to"] == broken]
        assert routed and all(o["version"] != broken for o in routed)
        stack.wait_stored(stack.served)
        assert stack.tick() == "rollback"
        last = ray.get(stack.controller.history.remote(MODEL, limit=1))[-1]
        assert last["numbers"]["strategy"] == "instant"
        assert stack.registry.get(MODEL, broken).status == "archived"
        assert [a["version"] for a in stack.status()["routing"]["arms"]] == \
            [stack.registry.alias(MODEL, "champion").version]
    finally:
        (stack.state / "break").unlink()


def test_controller_killed_mid_canary_recovers(stack: Stack) -> None:
    import ray

    _start_scripted_canary(stack, "same")
    stack.step()
    before = stack.status()
    journal = ray.get(stack.controller.history.remote(MODEL, limit=None))
    assert before["state"]["phase"] == "canary"
    ray.kill(stack.controller, no_restart=False)
    deadline = time.monotonic() + 60
    after = None
    while time.monotonic() < deadline:
        try:
            after = stack.status()
            break
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
            time.sleep(0.5)
    assert after is not None, "controller did not come back"
    for key in ("champion", "challenger", "weights", "canary_started_at", "step", "phase"):
        assert after["state"][key] == before["state"][key], key
    assert after["routing"] == before["routing"]
    assert ray.get(stack.controller.history.remote(MODEL, limit=None)) == journal
    assert stack.step() in ("hold", "ramp", "promote", "none")  # the canary carries on


def test_monitor_restart_loses_no_acknowledged_record(stack: Stack) -> None:
    import ray

    stack.send(50)
    stored = stack.wait_stored(stack.served)
    assert stored == stack.served
    total = stack.stored(served_only=False)
    ray.kill(stack.monitor, no_restart=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            assert stack.stored(served_only=False) == total
            break
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
            time.sleep(0.5)
    assert stack.stored() == stack.served
    stack.send(30)
    assert stack.wait_stored(stack.served) == stack.served
