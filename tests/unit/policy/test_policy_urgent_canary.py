"""Urgent replacement: a candidate that passes the gate starts high when the champion is
failing (performance trigger) or the offline gain is as large as a failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from policy_scenarios import T0, gate_rows, validating
from pydantic import ValidationError

from autopilot.config import CanaryConfig, PolicyConfig
from autopilot.policy import ArmStats, Evidence, decide, next_state
from autopilot.policy.canary import urgent_step


def ev(now: float = T0, **kw: Any) -> Evidence:
    # The champion collapsed from its validation accuracy 0.86 to 0.51 on labelled rows.
    kw.setdefault("metric_value", 0.51)
    kw.setdefault("baseline_value", 0.86)
    kw.setdefault("metric_labels", 1000)
    kw.setdefault("gate", gate_rows(0.51, 0.87))
    return Evidence(model="m", now=now, **kw)


def test_performance_trigger_gate_pass_starts_at_half(policy: PolicyConfig) -> None:
    d = decide(validating("performance"), ev(), policy)
    assert d.action == "start_canary" and d.version == "4"
    assert d.weights == pytest.approx({"3": 0.5, "4": 0.5})
    assert d.numbers["start_step"] == 2.0
    assert d.numbers["champion_relative_drop"] == pytest.approx((0.86 - 0.51) / 0.86)
    urgent = [r for r in d.reasons if r.startswith("urgent replacement")]
    assert len(urgent) == 1
    assert "40.7% below its baseline 0.86" in urgent[0]
    assert "step 2 (50%) instead of 5%" in urgent[0]
    # The stored state is at that step, so ramps and rollbacks continue from it.
    s = next_state(validating("performance"), d, ev())
    assert (s.phase, s.step, s.challenger) == ("canary", 2, "4")
    assert s.weights == pytest.approx({"3": 0.5, "4": 0.5})


def test_urgent_canary_still_rolls_back_a_broken_challenger(policy: PolicyConfig) -> None:
    d = decide(validating("performance"), ev(), policy)
    s = next_state(validating("performance"), d, ev())
    arms = {"3": ArmStats("3", requests=100, successes=50, labelled=100, p95_latency_ms=20.0),
            "4": ArmStats("4", requests=100, successes=80, labelled=100, errors=30,
                          p95_latency_ms=20.0)}
    r = decide(s, Evidence(model="m", now=T0 + 60, arms=arms), policy)
    assert (r.action, r.strategy) == ("rollback", "instant")
    assert r.weights == {"3": 1.0}


def test_urgent_canary_promotes_from_the_start_step(policy: PolicyConfig) -> None:
    # Step 2 (50 %) is the last step below 100 %: a significant win promotes directly.
    d = decide(validating("performance"), ev(), policy)
    s = next_state(validating("performance"), d, ev())
    arms = {"3": ArmStats("3", requests=2000, successes=1000, labelled=2000,
                          p95_latency_ms=20.0),
            "4": ArmStats("4", requests=2000, successes=1700, labelled=2000,
                          p95_latency_ms=20.0)}
    r = decide(s, Evidence(model="m", now=T0 + 60, arms=arms), policy)
    assert r.action == "promote" and r.weights == {"4": 1.0}


@pytest.mark.parametrize("trigger", ["drift", "schedule", "manual", "age", None])
def test_other_triggers_with_a_modest_gain_start_at_first_step(
        trigger: str | None, policy: PolicyConfig) -> None:
    # significant (4,000 rows) but 3.5 % of the champion's level: under the 5 % trigger
    e = ev(gate=gate_rows(0.85, 0.88, n=4000))
    d = decide(validating(trigger), e, policy)
    assert d.action == "start_canary"
    assert d.weights == pytest.approx({"3": 0.95, "4": 0.05})
    assert d.numbers["start_step"] == 0.0
    assert not any(r.startswith("urgent replacement") for r in d.reasons)
    assert next_state(validating(trigger), d, e).step == 0


@pytest.mark.parametrize("trigger", ["drift", "schedule", "manual", "age", None])
def test_other_triggers_with_a_failure_sized_gain_start_high(
        trigger: str | None, policy: PolicyConfig) -> None:
    d = decide(validating(trigger), ev(), policy)  # 0.51 -> 0.87 offline
    assert d.weights == pytest.approx({"3": 0.5, "4": 0.5})
    urgent = [r for r in d.reasons if r.startswith("urgent replacement")]
    assert len(urgent) == 1 and "beat champion 3 offline by" in urgent[0]


def test_urgent_start_disabled(make_policy: Callable[..., PolicyConfig]) -> None:
    policy = make_policy(canary={"urgent_start_step": None})
    d = decide(validating("performance"), ev(), policy)
    assert d.weights == pytest.approx({"3": 0.95, "4": 0.05})
    assert not any(r.startswith("urgent replacement") for r in d.reasons)
    assert next_state(validating("performance"), d, ev()).step == 0


def test_urgent_start_uses_first_step_at_least_the_share(
        make_policy: Callable[..., PolicyConfig]) -> None:
    policy = make_policy(canary={"steps": [0.01, 0.1, 0.3, 0.6, 1.0], "urgent_start_step": 0.2})
    d = decide(validating("performance"), ev(), policy)
    assert d.weights == pytest.approx({"3": 0.7, "4": 0.3})
    s = next_state(validating("performance"), d, ev())
    assert s.step == 2


def test_urgent_start_never_starts_at_full_traffic() -> None:
    assert urgent_step(CanaryConfig(urgent_start_step=1.0)) == 2
    assert urgent_step(CanaryConfig(steps=(0.1, 0.2), urgent_start_step=0.9)) == 1


def test_gate_failure_is_not_urgent(policy: PolicyConfig) -> None:
    e = Evidence(model="m", now=T0, metric_value=0.51, baseline_value=0.86,
                 gate=gate_rows(0.85, 0.84))
    d = decide(validating("performance"), e, policy)
    assert d.action == "archive_candidate" and d.weights == {"3": 1.0}


def test_shadow_mode_is_not_changed(make_policy: Callable[..., PolicyConfig]) -> None:
    policy = make_policy(canary={"mode": "shadow"})
    d = decide(validating("performance"), ev(), policy)
    assert d.weights == {"3": 1.0} and d.shadow == ("4",)
    assert d.numbers["start_step"] == 0.0


def test_unknown_drop_still_starts_high(policy: PolicyConfig) -> None:
    d = decide(validating("performance"), ev(metric_value=None, baseline_value=None), policy)
    assert d.weights == pytest.approx({"3": 0.5, "4": 0.5})
    assert "champion_relative_drop" not in d.numbers
    assert any("(now unknown)" in r for r in d.reasons)


@pytest.mark.parametrize("bad", [1.5, 0.0, -0.2])
def test_config_rejects_bad_urgent_start(bad: float) -> None:
    with pytest.raises(ValidationError, match="urgent_start_step"):
        CanaryConfig(urgent_start_step=bad)


def test_config_default_and_none() -> None:
    assert CanaryConfig().urgent_start_step == 0.5
    assert CanaryConfig(urgent_start_step=None).urgent_start_step is None
