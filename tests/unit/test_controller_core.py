"""ControllerCore without Ray: in-memory registry, real MonitorStore, fake clock, fake traffic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from autopilot.config import AutopilotConfig
from autopilot.controller import (
    ControllerCore,
    LocalLauncher,
    RetrainRequest,
    build_table,
)
from autopilot.errors import ControlError
from autopilot.journal import Journal
from autopilot.monitor import MonitorStore
from autopilot.notify import slack_body
from autopilot.policy.types import ModelState
from autopilot.registry import InMemoryRegistry, Lineage
from autopilot.routing import RoutingTable, choose_version
from autopilot.schema import Column, FeatureSchema
from autopilot.stats import ReferenceProfile

NAME = "churn"
SCHEMA = FeatureSchema((Column("x1", "numeric"), Column("x2", "numeric")), "y",
                       "classification", ("0", "1"))


class _Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class _Notes:
    """Collects notifications (the Notifier interface the core uses)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []  # what a Slack webhook would receive

    def notify(self, model: str, action: str, reasons: Any = (), numbers: Any = None) -> bool:
        self.sent.append((model, action))
        self.bodies.append(slack_body(model, action, reasons, numbers))
        return True


def _data(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(size=(n, 2))
    x[:, 0] += shift
    y = (x[:, 0] - shift + x[:, 1] > 0).astype(int)  # the concept follows the shift
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y})


def _cfg(tmp_path: Path, **policy: Any) -> AutopilotConfig:
    pol = {
        "triggers": {"drift": {"min_rows": 100, "severity": "high"},
                     "performance": {"min_labels": 50}},
        "guards": {"min_interval_s": 0.0},
        "gate": {"min_rows": 50},
        "canary": {"steps": [0.2, 0.5, 1.0], "min_samples_per_step": 40,
                   "guardrail_min_requests": 10, "srm_min_requests": 50},
    }
    for k, v in policy.items():
        pol[k] = {**pol.get(k, {}), **v}
    return AutopilotConfig.model_validate({
        "name": NAME, "task": "classification",
        "data": {"generator": {"n_rows": 1000}, "target": "y"},
        "training": {"metric": "accuracy"},
        "monitor": {"window_rows": 400},
        "policy": pol,
        "controller": {"tick_interval_s": 10.0, "min_retrain_rows": 30},
        "state_dir": str(tmp_path / "state"),
    })


def _tiny_model() -> LogisticRegression:
    return LogisticRegression().fit(pd.DataFrame({"x1": [0.0, 1.0], "x2": [0.0, 1.0]}), [0, 1])


def _register(reg: InMemoryRegistry, model: Any, ref: pd.DataFrame, *, trigger: str = "initial",
              parent: str | None = None, acc: float = 0.9) -> str:
    lineage = Lineage(trigger=trigger, parent_version=parent, data_fingerprint="f",
                      data_window="w", metrics={"accuracy": acc}, training_run_id=None,
                      family=type(model).__name__, params={})
    profile = ReferenceProfile.fit(ref[["x1", "x2"]]).to_dict()
    return reg.register(NAME, model, schema=SCHEMA, lineage=lineage,
                        reference_profile=profile).version


class _Rig:
    """Registry, monitor, journal, launcher and a core; plus a traffic simulator."""

    def __init__(self, tmp_path: Path, *, champion: Any = None, trainer: str = "good",
                 cfg: AutopilotConfig | None = None, journal: Journal | None = None,
                 registry: InMemoryRegistry | None = None,
                 monitor: MonitorStore | None = None) -> None:
        self.tmp = tmp_path
        self.rng = np.random.default_rng(0)
        self.clock = _Clock()
        self.cfg = cfg or _cfg(tmp_path)
        self.registry = registry or InMemoryRegistry()
        self.monitor = monitor or MonitorStore(tmp_path / "mon.db", window_rows=400)
        self.journal = journal or Journal(tmp_path / "journal.db")
        self.notes = _Notes()
        self.trainer = trainer
        self.requests: list[RetrainRequest] = []
        self.launcher = LocalLauncher(self._train)
        self.base = _data(self.rng, 1000)
        if registry is None:
            model = champion if champion is not None else LogisticRegression().fit(
                self.base[["x1", "x2"]], self.base["y"])
            v = _register(self.registry, model, self.base)
            self.registry.promote(NAME, v)
        self.core = self.make_core()
        self.n = 0
        self.served: dict[str, int] = {}
        self.models: dict[str, Any] = {}

    def make_core(self) -> ControllerCore:
        core = ControllerCore(registry=self.registry, monitor=self.monitor, journal=self.journal,
                              launcher=self.launcher, notifier=self.notes, clock=self.clock)
        core.add_model(self.cfg)
        return core

    def _train(self, req: RetrainRequest) -> str:
        self.requests.append(req)
        frame = pd.read_parquet(req.data_path)
        y = frame["y"].astype(int)
        if self.trainer == "fail":
            raise RuntimeError("out of memory")
        if self.trainer == "bad":
            y = 1 - y  # learns the opposite
        model = LogisticRegression().fit(frame[["x1", "x2"]], y)
        return _register(self.registry, model, frame, trigger=req.trigger,
                         parent=req.parent_version)

    def serve(self, n: int, *, shift: float = 0.0, erroring: str | None = None,
              label: bool = True, flip: bool = False) -> None:
        """Route ``n`` requests by the core's table, predict, record, and label them."""
        table = RoutingTable.from_dict(self.core.routing_table(NAME))
        frame = _data(self.rng, n, shift)
        x = frame[["x1", "x2"]]
        ids = [f"r{self.n + i + 1}" for i in range(n)]
        self.n += n
        chosen = [choose_version(table, f"u{rid}", self.rng) for rid in ids]
        answer = [table.champion if v == erroring else v for v in chosen]
        preds: dict[str, np.ndarray] = {}
        for v in set(answer):
            if v not in self.models:
                self.models[v] = self.registry.load(NAME, v).model
            preds[v] = self.models[v].predict(x)
        records, labels = [], []
        for i, rid in enumerate(ids):
            ts = self.clock.t + i * 0.001
            feats = {"x1": float(x["x1"].iloc[i]), "x2": float(x["x2"].iloc[i])}
            if chosen[i] == erroring:
                records.append(self._record(rid, chosen[i], feats, None, ts, error="boom"))
            v = answer[i]  # the breaker's fallback (champion) answers an erroring arm
            records.append(self._record(rid, v, feats, int(preds[v][i]), ts))
            self.served[v] = self.served.get(v, 0) + 1
            y = int(frame["y"].iloc[i])
            labels.append({"request_id": rid, "model": NAME, "label": 1 - y if flip else y,
                           "ts": ts + 1})
        assert self.monitor.ingest(records) == len(records)
        if label:
            self.monitor.ingest_labels(labels)

    @staticmethod
    def _record(rid: str, version: str, feats: dict[str, float], pred: Any, ts: float,
                error: str | None = None) -> dict[str, Any]:
        return {"request_id": rid, "model": NAME, "version": version, "features": feats,
                "prediction": pred, "proba": None, "latency_ms": 3.0, "error": error,
                "cache_hit": False, "caller_key": None, "ts": ts, "shadow": False}

    def tick(self, dt: float = 10.0) -> str:
        self.clock.t += dt
        d = self.core.tick(NAME)[NAME]
        self.launcher.wait()
        return d.action

    def actions(self) -> list[str]:
        return [e.action for e in self.journal.query(model=NAME)]

    def state(self) -> ModelState:
        return ModelState.from_dict(self.core.status(NAME)[NAME]["state"])


def _run_canary(rig: _Rig, *, until: Callable[[_Rig], bool], per_tick: int = 200,
                max_ticks: int = 40, **serve: Any) -> list[str]:
    seen = []
    for _ in range(max_ticks):
        rig.serve(per_tick, **serve)
        seen.append(rig.tick())
        if until(rig):
            break
    return seen


def test_drift_triggers_retrain_gate_canary_and_promotion(tmp_path: Path) -> None:
    weak = DummyClassifier(strategy="constant", constant=0)
    # The failing constant champion also fires the performance trigger, whose canary would
    # start at the urgent step; this test follows the canary ramp from steps[0].
    rig = _Rig(tmp_path, champion=weak.fit([[0, 0], [1, 1]], [0, 1]),
               cfg=_cfg(tmp_path, canary={"urgent_start_step": None}))
    assert rig.core.routing_table(NAME)["arms"] == [
        {"version": "1", "weight": 1.0, "role": "champion"}]
    rig.serve(300, shift=3.0)
    assert rig.tick() == "retrain"
    assert rig.state().phase == "training"
    assert rig.tick() == "validate"
    assert rig.registry.alias(NAME, "challenger").version == "2"
    assert rig.registry.get(NAME, "2").status == "testing"
    assert rig.tick() == "start_canary"
    table = rig.core.routing_table(NAME)
    assert {a["version"]: a["weight"] for a in table["arms"]} == {"1": 0.8, "2": 0.2}
    assert rig.registry.get(NAME, "2").status == "staging"
    _run_canary(rig, until=lambda r: r.state().champion == "2", shift=3.0)
    assert rig.registry.alias(NAME, "champion").version == "2"
    assert rig.registry.alias(NAME, "previous").version == "1"
    acts = rig.actions()
    assert acts[:3] == ["retrain", "validate", "start_canary"]
    assert "ramp" in acts and acts[-1] == "promote"
    final = rig.core.routing_table(NAME)
    assert [(a["version"], a["role"]) for a in final["arms"]] == [("2", "champion")]
    assert final["fallback"] == "1"
    retrain = rig.journal.query(model=NAME, action="retrain")[0]
    assert retrain.evidence["drift_severity"] in ("high", "critical")
    assert retrain.outcome.startswith("applied: local local-")
    assert retrain.outcome.endswith(": trained version 2")
    assert (NAME, "promote") in rig.notes.sent and (NAME, "retrain") in rig.notes.sent
    lineage = rig.registry.get(NAME, "2").lineage
    assert lineage.trigger in ("drift", "performance") and lineage.parent_version == "1"
    # version 2 inherits champion 1's baseline (0.9) as a floor; its own holdout is 0.9 too
    assert rig.journal.load_state(NAME, "baseline_floor:2") == pytest.approx(0.9)
    assert rig.core.gather(rig.core._models[NAME], rig.clock.t).baseline_value == \
        pytest.approx(0.9)
    # its accuracy at the offline gate, on rows it never saw, is kept beside it
    start = rig.journal.query(model=NAME, action="start_canary")[0]
    gate_value = start.numbers["numbers"]["gate_candidate_value"]
    assert 0.5 < gate_value <= 1.0
    assert rig.journal.load_state(NAME, "gate_value:2") == pytest.approx(gate_value)


def test_baseline_is_the_worse_of_holdout_and_gate_raised_to_the_floor(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    rig.serve(50)
    rig.tick()
    m = rig.core._models[NAME]
    assert rig.monitor._models[NAME].window_rows == 400  # the model's monitor.window_rows
    holdout = rig.core.gather(m, rig.clock.t).baseline_value
    assert holdout == pytest.approx(0.9)
    rig.journal.save_state(NAME, "gate_value:1", 0.8)  # optimistic holdout, lower live level
    assert rig.core.gather(m, rig.clock.t).baseline_value == pytest.approx(0.8)
    rig.journal.save_state(NAME, "gate_value:1", 0.95)  # never above the holdout
    assert rig.core.gather(m, rig.clock.t).baseline_value == pytest.approx(0.9)
    rig.journal.save_state(NAME, "gate_value:1", 0.8)
    rig.journal.save_state(NAME, "baseline_floor:1", 0.85)  # the inherited floor wins
    assert rig.core.gather(m, rig.clock.t).baseline_value == pytest.approx(0.85)
    rig.journal.save_state(NAME, "baseline:1", 0.7)  # a re-anchor overrides all three
    assert rig.core.gather(m, rig.clock.t).baseline_value == pytest.approx(0.7)


def test_gate_archives_a_worse_candidate(tmp_path: Path) -> None:
    rig = _Rig(tmp_path, trainer="bad")
    rig.serve(200)
    rig.core.command(NAME, "retrain", {"reason": "test"})
    assert rig.actions() == ["retrain"]
    rig.launcher.wait()
    rig.serve(300)  # labelled rows after the training cut, for the gate
    assert rig.tick() == "validate"
    assert rig.tick() == "archive_candidate"
    assert rig.registry.get(NAME, "2").status == "archived"
    assert rig.registry.alias(NAME, "challenger") is None
    assert rig.state().phase == "steady"
    assert rig.core.routing_table(NAME)["arms"][0]["version"] == "1"


def _canary_rig(tmp_path: Path, challenger_model: Any, **kw: Any) -> _Rig:
    """A rig whose journal says a canary of version 2 is running (recovery path)."""
    reg = InMemoryRegistry()
    rng = np.random.default_rng(1)
    base = _data(rng, 1000)
    good = LogisticRegression().fit(base[["x1", "x2"]], base["y"])
    reg.promote(NAME, _register(reg, good, base))
    v2 = _register(reg, challenger_model, base, trigger="drift", parent="1")
    reg.set_alias(NAME, "challenger", v2)
    reg.transition(NAME, v2, "testing")
    journal = Journal(tmp_path / "journal.db")
    state = ModelState(model=NAME, phase="canary", champion="1", challenger=v2,
                       canary_started_at=1_000_000.0, step_started_at=1_000_000.0,
                       weights={"1": 0.8, v2: 0.2})
    journal.save_state(NAME, "state", state.to_dict())
    return _Rig(tmp_path, registry=reg, journal=journal, **kw)


def test_erroring_challenger_rolled_back_within_one_tick(tmp_path: Path) -> None:
    rig = _canary_rig(tmp_path, _tiny_model())
    assert rig.state().phase == "canary"
    rig.serve(200, erroring="2")
    assert rig.served.get("2", 0) == 0  # users got the champion's (fallback) answers
    assert rig.tick() == "rollback"
    entry = rig.journal.last(NAME, "rollback")
    assert entry.numbers["strategy"] == "instant"
    assert rig.state().phase == "steady" and rig.state().challenger is None
    assert rig.registry.get(NAME, "2").status == "archived"
    assert [a["version"] for a in rig.core.routing_table(NAME)["arms"]] == ["1"]
    assert (NAME, "rollback") in rig.notes.sent


def test_rollback_message_names_the_version_and_weights(tmp_path: Path) -> None:
    # The canary's own numbers fill Slack's 10 fields; version and weights must not be cut.
    rig = _canary_rig(tmp_path, _tiny_model())
    rig.serve(200, erroring="2")
    assert rig.tick() == "rollback"
    body = rig.notes.bodies[rig.notes.sent.index((NAME, "rollback"))]
    fields = [f["text"] for f in body["blocks"][-1]["fields"]]
    assert "*version*: 2" in fields
    assert "*weights*: {'1': 1.0}" in fields


def test_worse_challenger_rolled_back_by_the_sequential_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    base = _data(rng, 500)
    worse = LogisticRegression().fit(base[["x1", "x2"]], rng.integers(0, 2, 500))
    rig = _canary_rig(tmp_path, worse)
    _run_canary(rig, until=lambda r: r.state().phase != "canary")
    assert rig.actions()[-1] == "rollback"
    assert rig.registry.alias(NAME, "champion").version == "1"
    assert rig.registry.get(NAME, "2").status == "archived"


def test_restart_mid_canary_resumes_with_same_state(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = _data(rng, 1000)
    same = LogisticRegression().fit(base[["x1", "x2"]], base["y"])
    rig = _canary_rig(tmp_path, same)
    rig.serve(200)
    rig.tick()
    before = rig.core.status(NAME)[NAME]
    entries = [e.to_dict() for e in rig.journal.query(model=NAME)]
    # a new core on the same journal, registry and monitor = the actor after a restart
    again = rig.make_core()
    after = again.status(NAME)[NAME]
    assert after["state"] == before["state"]
    assert after["routing"] == before["routing"]
    assert [e.to_dict() for e in rig.journal.query(model=NAME)] == entries
    assert after["state"]["canary_started_at"] == 1_000_000.0  # resumed, not restarted


def test_restart_after_promotion_reconciles_with_registry(tmp_path: Path) -> None:
    rig = _canary_rig(tmp_path, _tiny_model())
    rig.registry.promote(NAME, "2")  # crashed after the registry move, before saving state
    again = rig.make_core()
    st = ModelState.from_dict(again.status(NAME)[NAME]["state"])
    assert (st.phase, st.champion, st.challenger, st.fallback) == ("steady", "2", None, "1")
    assert again.routing_table(NAME)["arms"][0] == {"version": "2", "weight": 1.0,
                                                    "role": "champion"}


def test_training_failure_aborts_and_alerts(tmp_path: Path) -> None:
    rig = _Rig(tmp_path, trainer="fail")
    rig.serve(100)
    out = rig.core.command(NAME, "retrain", {})
    assert out["decision"]["action"] == "retrain"
    rig.launcher.wait()
    assert rig.tick() == "abort"
    assert "out of memory" in rig.journal.last(NAME, "abort").reasons[0]
    assert "out of memory" in rig.journal.last(NAME, "retrain").outcome
    assert rig.state().phase == "steady"
    assert (NAME, "abort") in rig.notes.sent


def test_retrain_with_too_few_labels_fails_cleanly(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    rig.core.command(NAME, "retrain", {})
    assert rig.journal.last(NAME, "retrain").outcome.startswith("failed: only 0 labelled rows")
    assert rig.tick() == "abort"


def test_manual_commands(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    out = rig.core.command(NAME, "pause", {"reason": "maintenance"})
    assert out["state"]["phase"] == "paused" and out["routing"]["paused"] is True
    assert rig.tick() == "none"
    rig.core.command(NAME, "resume", {})
    assert rig.state().phase == "steady"
    assert rig.core.routing_table(NAME)["paused"] is False
    with pytest.raises(ControlError, match="'explode'"):
        rig.core.command(NAME, "explode", {})
    with pytest.raises(ControlError, match="'nope'"):
        rig.core.command("nope", "pause", {})
    with pytest.raises(ControlError, match="weights"):
        rig.core.command(NAME, "set_weights", {})
    hist = rig.core.history(NAME)
    assert [h["action"] for h in hist] == ["pause", "resume"]
    assert "maintenance" in hist[0]["reasons"][0]


def test_manual_promote_and_rollback_move_registry(tmp_path: Path) -> None:
    rig = _canary_rig(tmp_path, _tiny_model())
    rig.core.command(NAME, "promote", {"version": "2"})
    assert rig.registry.alias(NAME, "champion").version == "2"
    rig.core.command(NAME, "rollback", {})
    assert rig.registry.alias(NAME, "champion").version == "1"
    assert rig.core.routing_table(NAME)["arms"][0]["version"] == "1"
    assert rig.actions() == ["promote", "rollback"]


def test_table_versions_only_grow_and_build_table() -> None:
    st = ModelState(model="m", phase="canary", champion="1", challenger="2", fallback="0",
                    weights={"1": 3.0, "2": 1.0})
    t = build_table(st, 7)
    assert t.weights() == {"1": 0.75, "2": 0.25} and t.fallback == "0" and t.table_version == 7
    shadow = build_table(ModelState(model="m", champion="1", challenger="2", shadow=("2",),
                                    weights={"1": 1.0}), 1)
    assert shadow.mode == "shadow" and shadow.challengers == ("2",)
    with pytest.raises(ValueError, match="'m'"):
        build_table(ModelState(model="m"), 1)


def test_retrain_window_gets_time_column_and_holds_out_gate_rows(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"time_column": "t"})})
    rig = _Rig(tmp_path, cfg=cfg)
    seen: list[pd.DataFrame] = []
    rig.launcher = LocalLauncher(lambda req: seen.append(pd.read_parquet(req.data_path)) or "1")
    rig.core = rig.make_core()
    rig.serve(100)
    rig.core.command(NAME, "retrain", {})
    rig.launcher.wait()
    frame = seen[0]
    assert list(frame.columns) == ["x1", "x2", "y", "t"]
    assert len(frame) == 70  # the newest 30 % are kept for the offline gate
    assert frame["t"].is_monotonic_increasing


def test_status_shows_what_the_monitor_sees(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    rig.serve(120)
    mon = rig.core.status(NAME)[NAME]["monitor"]
    assert mon["stored"] == 120 and mon["traffic"]["1"]["served"] == 120
    perf = mon["versions"]["1"]["performance"]
    assert perf["n_labels"] == 120 and perf["accuracy"] > 0.9
    assert mon["versions"]["1"]["detectors_fired"] == []


def test_open_breaker_isolates_the_challenger(tmp_path: Path) -> None:
    rig = _canary_rig(tmp_path, _tiny_model())
    states = {"1": "closed", "2": "open"}
    rig.core = ControllerCore(registry=rig.registry, monitor=rig.monitor, journal=rig.journal,
                              launcher=rig.launcher, notifier=rig.notes, clock=rig.clock,
                              breakers=lambda cfg: states)
    rig.core.add_model(rig.cfg)
    rig.serve(40)
    assert rig.tick() == "rollback"
    assert rig.journal.last(NAME, "rollback").numbers["strategy"] == "isolate"
    assert rig.journal.last(NAME, "rollback").evidence["breakers"] == states
    assert [a["version"] for a in rig.core.routing_table(NAME)["arms"]] == ["1"]
    assert rig.registry.get(NAME, "2").status == "archived"


def test_a_failing_tick_is_journalled_once(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)

    def broken(*a: Any, **k: Any) -> Any:
        raise OSError("disk gone")

    rig.monitor.performance = broken  # type: ignore[method-assign]
    for _ in range(3):
        assert rig.core.tick(NAME) == {}
    errors = rig.journal.query(model=NAME, action="error")
    assert len(errors) == 1 and "disk gone" in errors[0].reasons[0]


def test_endpoint_breakers_reads_a_real_http_answer() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from autopilot.controller import endpoint_breakers

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            body = json.dumps({"versions": {"1": {"breaker": "closed"},
                                            "2": {"breaker": "open"}}}).encode()
            self.send_response(200 if self.path == "/v1/models/churn" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        assert endpoint_breakers(url, "churn") == {"1": "closed", "2": "open"}
        assert endpoint_breakers(url, "other") == {}
    finally:
        srv.shutdown()
        srv.server_close()
    assert endpoint_breakers("http://127.0.0.1:9", "churn", timeout_s=0.5) == {}


def test_repeated_waits_are_journalled_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    base = _data(rng, 1000)
    rig = _canary_rig(tmp_path, LogisticRegression().fit(base[["x1", "x2"]], base["y"]))
    for _ in range(4):
        rig.serve(20)  # too few for a verdict or a ramp: the canary waits
        assert rig.tick() == "hold"
    holds = rig.journal.query(model=NAME, action="hold")
    assert len(holds) <= 2  # "no statistics yet" then "no verdict yet", not one per tick


def test_drift_the_champion_holds_up_on_is_accepted_once(tmp_path: Path) -> None:
    # The champion already knows the shifted concept, but its reference is the unshifted data:
    # the shift reads as drift, the retrained candidate is no better and the gate rejects it.
    fit = _data(np.random.default_rng(5), 1000, shift=3.0)
    champion = LogisticRegression().fit(fit[["x1", "x2"]], fit["y"])
    rig = _Rig(tmp_path, champion=champion)
    rig.serve(300, shift=3.0)
    assert rig.tick() == "retrain"
    assert rig.state().trigger == "drift"
    assert rig.tick() == "validate"
    rig.serve(300, shift=3.0)  # labelled rows after the training cut, for the gate
    assert rig.tick() == "archive_candidate"
    entry = rig.journal.query(model=NAME, action="archive_candidate")[-1]
    assert entry.numbers["rebaseline"] is True
    assert "re-baselined on 100 recent rows" in entry.outcome
    # the champion held up: its performance baseline is now what it did on the recent window
    anchored = rig.journal.load_state(NAME, "baseline:1")
    assert anchored is not None and anchored == pytest.approx(entry.numbers["baseline"])
    assert rig.core.gather(rig.core._models[NAME], rig.clock.t).baseline_value == \
        pytest.approx(anchored)
    assert rig.registry.get(NAME, "2").status == "archived"
    assert not rig.monitor.drift_report(NAME, "1").drifted
    # Same shifted traffic at the next allowed time (guards.min_interval_s is 0): no retrain.
    for _ in range(3):
        rig.serve(200, shift=3.0)
        assert rig.tick() == "none"
    assert rig.actions().count("retrain") == 1
    # A new shift still fires the drift trigger against the re-baselined reference.
    rig.serve(400, shift=6.0)
    assert rig.tick() == "retrain"
    reasons = rig.journal.query(model=NAME, action="retrain")[-1].reasons
    assert any(r.startswith("drift severity") for r in reasons), reasons


def test_a_pending_retry_counts_the_labelled_rows_after_its_change(tmp_path: Path) -> None:
    # ModelState.retry_since survives a restart and the evidence counts, from the real
    # SQLite log, the labelled rows served since then (what the retry would train on)
    from dataclasses import replace

    rig = _Rig(tmp_path)
    rig.serve(200)
    rig.tick()
    m = rig.core._models[NAME]
    assert rig.core.gather(m, rig.clock.t).rows_since_retry is None
    change = rig.clock.t
    rig.serve(150)
    m.state = replace(m.state, retry_since=change)
    rig.core._save(m)
    rig.core = rig.make_core()
    m = rig.core._models[NAME]
    assert m.state.retry_since == change
    assert rig.core.gather(m, rig.clock.t).rows_since_retry == 150


def test_drift_the_labels_contradict_is_accepted_without_retraining(tmp_path: Path) -> None:
    # The same shift a champion already fits: with drift.confirm_with_labels the labelled
    # rows show it holds up, so the shift is accepted (reference re-fitted) and no retrain
    # is launched; its performance baseline is left alone.
    fit = _data(np.random.default_rng(5), 1000, shift=3.0)
    champion = LogisticRegression().fit(fit[["x1", "x2"]], fit["y"])
    cfg = _cfg(tmp_path, triggers={
        "drift": {"min_rows": 100, "severity": "high", "confirm_with_labels": True},
        "performance": {"min_labels": 50}})
    rig = _Rig(tmp_path, cfg=cfg, champion=champion)
    rig.serve(300, shift=3.0)
    assert rig.tick() == "accept_drift"
    entry = rig.journal.query(model=NAME, action="accept_drift")[-1]
    assert entry.numbers["rebaseline"] is True
    assert any("labelled rows say the champion holds up" in r for r in entry.reasons)
    assert "re-baselined on 100 recent rows" in entry.outcome
    assert rig.requests == [] and rig.state().phase == "steady"
    assert rig.journal.load_state(NAME, "baseline:1") is None
    assert not rig.monitor.drift_report(NAME, "1").drifted
    rig.serve(200, shift=3.0)
    assert rig.tick() == "none"


def test_concept_change_retrains_on_the_rows_after_it(tmp_path: Path) -> None:
    # Labels flip (a concept drift: the inputs look the same). ADWIN on the champion's
    # errors finds it, the change is located, and the retrain learns from the rows after it.
    cfg = _cfg(tmp_path, triggers={"performance": {"min_labels": 50,
                                                   "min_rows_after_change": 150}})
    rig = _Rig(tmp_path, cfg=cfg)
    rig.serve(300)
    assert rig.tick() == "none"
    change_ts = rig.clock.t  # serve stamps rows from the clock on
    rig.serve(100, flip=True)
    assert rig.tick() == "hold"  # located, but fewer than 150 labelled rows after it
    hold = rig.journal.query(model=NAME, action="hold")[-1]
    assert any("waiting for 150 labelled rows after the change" in r for r in hold.reasons)
    warned = rig.journal.query(model=NAME, action="detected")
    assert any("error stream of champion 1" in r and "online score" in r
               for e in warned for r in e.reasons), [e.reasons for e in warned]
    rig.serve(100, flip=True)
    assert rig.tick() == "retrain"
    entry = rig.journal.query(model=NAME, action="retrain")[-1]
    since = entry.numbers["train_since"]
    assert change_ts - 1.0 <= since <= change_ts + 0.05  # within 50 rows (1 ms apart)
    assert any("since the change" in r for r in entry.reasons)
    data = pd.read_parquet(rig.requests[-1].data_path)
    assert 100 <= len(data) <= 200  # only rows after the change (less the gate holdout)
    # acted on: the same change does not fire again, even for a restarted core
    assert rig.monitor.error_change(NAME, "1") is None
    assert rig.journal.load_state(NAME, "change_acted:1") == pytest.approx(since)


def test_without_a_streaming_alarm_the_window_test_finds_the_rows_to_learn_from(
        tmp_path: Path) -> None:
    # The same label flip with ADWIN's stream view off: the window view fires on the
    # labelled window, and the OLS-CUSUM test of the champion's rows says where it changed.
    cfg = _cfg(tmp_path, triggers={"performance": {"min_labels": 50, "streaming": False,
                                                   "min_rows_after_change": 150}})
    rig = _Rig(tmp_path, cfg=cfg)
    rig.serve(300)
    assert rig.tick() == "none"
    change_ts = rig.clock.t
    rig.serve(200, flip=True)
    assert rig.tick() == "retrain"
    entry = rig.journal.query(model=NAME, action="retrain")[-1]
    assert any("the window test located (cusum p=" in r for r in entry.reasons), entry.reasons
    assert change_ts - 1.0 <= entry.numbers["train_since"] <= change_ts + 0.05
    tests = entry.evidence["window_changes"]
    assert tests and tests[0]["detector"] == "cusum" and tests[0]["p_value"] < 1e-6
    data = pd.read_parquet(rig.requests[-1].data_path)
    assert 100 <= len(data) <= 200  # only rows after the change (less the gate holdout)


def _serve_x2_shift(rig: _Rig, n: int, shift: float) -> None:
    """Champion traffic whose x2 moved by ``shift`` while the concept stayed (labels follow)."""
    rng = rig.rng
    x = rng.normal(size=(n, 2))
    x[:, 1] += shift
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    champ = rig.state().champion
    model = rig.registry.load(NAME, champ).model
    pred = model.predict(pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1]}))
    recs, labs = [], []
    for i in range(n):
        rid = f"r{rig.n + i + 1}"
        ts = rig.clock.t + i * 0.001
        recs.append(rig._record(rid, champ, {"x1": float(x[i, 0]), "x2": float(x[i, 1])},
                                int(pred[i]), ts))
        labs.append({"request_id": rid, "model": NAME, "label": int(y[i]), "ts": ts + 1})
    rig.n += n
    assert rig.monitor.ingest(recs) == n
    rig.monitor.ingest_labels(labs)


def test_a_shifted_feature_is_journalled_once_and_retrains_nothing(tmp_path: Path) -> None:
    # The drift trigger waits for critical drift: a 0.3-sd shift of x2 reads as medium, the
    # model stays right (the concept did not move), so no policy trigger fires; ADWIN on x2
    # does, and says so once.
    cfg = _cfg(tmp_path, triggers={"drift": {"min_rows": 100, "severity": "critical"},
                                   "performance": {"min_labels": 50}})
    rig = _Rig(tmp_path, cfg=cfg)
    for _ in range(10):
        _serve_x2_shift(rig, 200, 0.0)
        rig.tick()
    assert "detected" not in rig.actions()
    for _ in range(15):
        _serve_x2_shift(rig, 200, 0.3)
        rig.tick()
    assert rig.actions() == ["detected"]  # no retrain, no other decision
    entry = rig.journal.last(NAME, "detected")
    [alarm] = entry.numbers["alarms"]
    assert (alarm["signal"], alarm["detector"], alarm["version"]) == ("x2", "adwin", "1")
    assert 2000 < alarm["n"] <= 5000 and alarm["mean_after"] > alarm["mean_before"]
    assert "ADWIN on feature x2" in entry.reasons[0]
    assert rig.notes.sent.count((NAME, "detected")) == 1
    assert [a["feature"] for a in rig.core.status(NAME)[NAME]["monitor"]["feature_alarms"]] \
        == ["x2"]
    assert rig.state().phase == "steady"
    # A restarted controller remembers what it journalled.
    rig.core = rig.make_core()
    rig.tick()
    assert rig.actions() == ["detected"]
    # A new champion: the alarms spoke of the old one's traffic and are started afresh.
    v2 = _register(rig.registry, LogisticRegression().fit(rig.base[["x1", "x2"]],
                                                          rig.base["y"]), rig.base)
    rig.core.command(NAME, "promote", {"version": v2})
    assert rig.state().champion == v2
    assert rig.monitor.feature_alarms(NAME) == []
    rig.tick()
    assert rig.actions() == ["detected", "promote"]
