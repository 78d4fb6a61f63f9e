"""A located change in the champion's error stream: fire, wait for rows after it, train on
them, and end a canary the change overtook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from policy_scenarios import T0

from autopilot.config import PolicyConfig
from autopilot.policy import ArmStats, Evidence, ModelState, decide, next_state
from autopilot.policy.triggers import performance_trigger
from autopilot.policy.types import StreamAlarm


def alarm(rows_since: int = 500, before: float = 0.88, after: float = 0.74,
          at: float = T0 - 500) -> StreamAlarm:
    return StreamAlarm("adwin", at, rows_since, before, after)


def steady() -> ModelState:
    return ModelState(model="m", champion="3", weights={"3": 1.0},
                      last_training_at=T0 - 86400, training_history=(T0 - 86400,))


def ev(now: float = T0, **kw: Any) -> Evidence:
    # the window view alone does not fire: 0.86 against a 0.88 baseline is 2.3 % worse
    kw.setdefault("metric_value", 0.86)
    kw.setdefault("baseline_value", 0.88)
    kw.setdefault("metric_labels", 1000)
    return Evidence(model="m", now=now, **kw)


def test_stream_view_fires_on_a_located_drop(policy: PolicyConfig) -> None:
    r = performance_trigger(ev(error_change=alarm()), policy.triggers.performance)
    assert r.fired and r.urgent
    assert "adwin found a change in the labelled error stream 500 labelled rows ago" in r.reason
    assert r.numbers["change_relative_drop"] == pytest.approx((0.88 - 0.74) / 0.88)
    assert r.numbers["relative_drop"] == pytest.approx((0.88 - 0.86) / 0.88)  # window view too


@pytest.mark.parametrize("after", [0.86, 0.95])  # a 2.3 % drop, and an improvement
def test_stream_view_ignores_small_drops_and_improvements(after: float,
                                                          policy: PolicyConfig) -> None:
    r = performance_trigger(ev(error_change=alarm(after=after)), policy.triggers.performance)
    assert not r.fired
    assert "under 5.0%" in r.reason


def test_stream_view_can_be_switched_off(make_policy: Callable[..., PolicyConfig]) -> None:
    policy = make_policy(triggers={"performance": {"streaming": False}})
    r = performance_trigger(ev(error_change=alarm()), policy.triggers.performance)
    assert not r.fired and "change_relative_drop" not in r.numbers


def test_retrain_learns_from_the_rows_after_the_change(policy: PolicyConfig) -> None:
    e = ev(error_change=alarm(rows_since=500))
    d = decide(steady(), e, policy)
    assert (d.action, d.trigger) == ("retrain", "performance")
    assert d.train_since == T0 - 500
    assert "training on the 500 labelled rows since the change" in d.reasons[-1]
    assert d.to_dict()["train_since"] == T0 - 500
    assert next_state(steady(), d, e).phase == "training"


def test_too_few_rows_after_the_change_waits(policy: PolicyConfig) -> None:
    need = policy.triggers.performance.min_rows_after_change
    d = decide(steady(), ev(error_change=alarm(rows_since=need - 1)), policy)
    assert d.action == "hold" and d.train_since is None
    assert f"waiting for {need} labelled rows after the change (have {need - 1})" in d.reasons[-1]
    assert next_state(steady(), d, ev()).phase == "steady"


def test_window_view_alone_keeps_the_usual_window(policy: PolicyConfig) -> None:
    d = decide(steady(), ev(metric_value=0.70), policy)
    assert d.action == "retrain" and d.train_since is None


def canary(started: float) -> ModelState:
    return ModelState(model="m", phase="canary", champion="3", challenger="4", step=2,
                      weights={"3": 0.5, "4": 0.5}, canary_started_at=started,
                      step_started_at=started, last_training_at=started - 600)


ARMS = {v: ArmStats(v, requests=400, successes=300.0, labelled=400, p95_latency_ms=10.0)
        for v in ("3", "4")}


def test_a_change_after_the_canary_began_ends_it(policy: PolicyConfig) -> None:
    st = canary(started=T0 - 3600)
    e = ev(error_change=alarm(at=T0 - 600), arms=ARMS)
    d = decide(st, e, policy)
    assert (d.action, d.version, d.weights) == ("archive_candidate", "4", {"3": 1.0})
    assert "the data changed during the canary" in d.reasons[0]
    s = next_state(st, d, e)
    assert (s.phase, s.champion, s.challenger) == ("steady", "3", None)
    # steady again, the same located change retrains on the rows after it
    assert decide(s, ev(T0 + 60, error_change=alarm(at=T0 - 600)), policy).train_since \
        == T0 - 600


def test_a_change_from_before_the_challengers_training_does_not_end_it(
    policy: PolicyConfig,
) -> None:
    # the challenger (training began at T0 - 900) may be the very remedy: the canary judges
    d = decide(canary(started=T0 - 300), ev(error_change=alarm(at=T0 - 1000), arms=ARMS), policy)
    assert d.action != "archive_candidate"


def test_a_change_during_the_challengers_training_ends_the_canary(policy: PolicyConfig) -> None:
    # after its training began, before the canary: the challenger never saw the new regime
    st = canary(started=T0 - 300)
    d = decide(st, ev(error_change=alarm(at=T0 - 600), arms=ARMS), policy)
    assert (d.action, d.version) == ("archive_candidate", "4")
    assert "after the challenger's training began" in d.reasons[0]
    # with no training on record the canary's start is the line, as before
    d = decide(replace(st, last_training_at=None), ev(error_change=alarm(at=T0 - 600),
                                                      arms=ARMS), policy)
    assert d.action != "archive_candidate"


@pytest.mark.parametrize(("trigger", "inherits"), [("performance", True), ("drift", True),
                                                    ("schedule", False), (None, False)])
def test_promotion_passes_the_baseline_on_as_a_floor(trigger: str | None, inherits: bool,
                                                     policy: PolicyConfig) -> None:
    st = ModelState(model="m", phase="canary", champion="3", challenger="4", step=2,
                    weights={"3": 0.5, "4": 0.5}, canary_started_at=T0 - 600,
                    step_started_at=T0 - 600, trigger=trigger)
    arms = {"3": ArmStats("3", 2000, 1000.0, 2000, p95_latency_ms=10.0),
            "4": ArmStats("4", 2000, 1700.0, 2000, p95_latency_ms=10.0)}
    d = decide(st, ev(arms=arms), policy)
    assert d.action == "promote"
    assert d.baseline == (0.88 if inherits else None)
    assert any("held to at least its predecessor's baseline" in r for r in d.reasons) == inherits
