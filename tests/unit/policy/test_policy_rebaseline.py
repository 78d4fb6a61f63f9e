"""Accepting the new normal: a drift- or performance-triggered candidate that fails the gate
re-baselines the champion (reference profile, and performance baseline when measured)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from policy_scenarios import T0, gate_rows, validating

from autopilot.config import PolicyConfig
from autopilot.policy import Decision, Evidence, decide, next_state


def ev(now: float = T0, **kw: Any) -> Evidence:
    return Evidence(model="m", now=now, **kw)


def test_drift_triggered_gate_reject_rebaselines(policy: PolicyConfig) -> None:
    d = decide(validating("drift"), ev(gate=gate_rows(0.85, 0.84)), policy)
    assert d.action == "archive_candidate" and d.version == "4" and d.weights == {"3": 1.0}
    assert d.rebaseline is True
    assert "offline gate failed" in d.reasons[0]
    assert any("re-baselined" in r and "champion 3" in r for r in d.reasons)
    out = d.to_dict()
    assert out["rebaseline"] is True
    assert json.loads(json.dumps(out))["rebaseline"] is True
    # Archiving still returns to steady with the same champion.
    s = next_state(validating("drift"), d, ev())
    assert (s.phase, s.champion, s.challenger) == ("steady", "3", None)


def test_performance_triggered_gate_reject_reanchors_the_baseline(policy: PolicyConfig) -> None:
    # The champion's holdout said 0.94; live it does 0.87, and a retrain cannot beat it.
    e = ev(gate=gate_rows(0.85, 0.84), metric_value=0.87, baseline_value=0.94,
           metric_labels=1000)
    d = decide(validating("performance"), e, policy)
    assert d.action == "archive_candidate" and d.rebaseline is True
    assert d.baseline == pytest.approx(0.87)
    assert any("performance baseline re-anchored to accuracy 0.87" in r for r in d.reasons)
    assert d.to_dict()["baseline"] == pytest.approx(0.87)


def test_too_few_labels_rebaselines_the_profile_only(policy: PolicyConfig) -> None:
    e = ev(gate=gate_rows(0.85, 0.84), metric_value=0.87, baseline_value=0.94,
           metric_labels=policy.triggers.performance.min_labels - 1)
    d = decide(validating("drift"), e, policy)
    assert d.rebaseline is True and d.baseline is None


@pytest.mark.parametrize("trigger", ["schedule", "manual", None])
def test_other_triggers_gate_reject_does_not_rebaseline(trigger: str | None,
                                                        policy: PolicyConfig) -> None:
    d = decide(validating(trigger), ev(gate=gate_rows(0.85, 0.84)), policy)
    assert d.action == "archive_candidate" and d.rebaseline is False
    assert not any("re-baselined" in r for r in d.reasons)
    assert d.to_dict()["rebaseline"] is False


def test_gate_pass_does_not_rebaseline(policy: PolicyConfig) -> None:
    d = decide(validating("drift"), ev(gate=gate_rows(0.75, 0.88)), policy)
    assert d.action == "start_canary" and d.rebaseline is False


def test_gate_give_up_without_evidence_does_not_rebaseline(policy: PolicyConfig) -> None:
    # No gate evidence means nothing shows the champion held up: keep the reference.
    d = decide(validating("drift"), ev(now=T0 + 3 * 86400.0), policy)
    assert d.action == "archive_candidate" and d.rebaseline is False


def test_decision_defaults_to_no_rebaseline() -> None:
    assert Decision("archive_candidate").rebaseline is False


@pytest.mark.parametrize(("trigger", "accepted"), [("drift", True), ("performance", True),
                                                    ("schedule", False)])
def test_canary_with_no_verdict_accepts_the_recent_window(
        trigger: str, accepted: bool, make_policy: Any) -> None:
    from autopilot.policy import ArmStats, ModelState

    policy = make_policy(canary={"max_samples": 1000})
    st = ModelState(model="m", phase="canary", champion="3", challenger="4", step=2,
                    weights={"3": 0.5, "4": 0.5}, canary_started_at=T0 - 600,
                    step_started_at=T0 - 600, trigger=trigger)
    arms = {v: ArmStats(v, 600, 510.0, 600, p95_latency_ms=10.0) for v in ("3", "4")}
    d = decide(st, ev(arms=arms, metric_value=0.85, baseline_value=0.88, metric_labels=600),
               policy)
    assert d.action == "archive_candidate" and "no significant difference" in d.reasons[0]
    assert d.rebaseline is accepted
    assert d.baseline == (pytest.approx(0.85) if accepted else None)


def test_no_verdict_can_promote_a_challenger_that_is_not_worse(make_policy: Any) -> None:
    from autopilot.policy import ArmStats, ModelState

    policy = make_policy(canary={"max_samples": 1000, "on_no_verdict": "promote"})
    st = ModelState(model="m", phase="canary", champion="3", challenger="4", step=2,
                    weights={"3": 0.5, "4": 0.5}, canary_started_at=T0 - 600,
                    step_started_at=T0 - 600, trigger="drift")
    arms = {"3": ArmStats("3", 600, 500.0, 600, p95_latency_ms=10.0),
            "4": ArmStats("4", 600, 510.0, 600, p95_latency_ms=10.0)}
    d = decide(st, ev(arms=arms, metric_value=0.85, baseline_value=0.88, metric_labels=600),
               policy)
    assert (d.action, d.version, d.weights) == ("promote", "4", {"4": 1.0})
    assert "canary.on_no_verdict" in d.reasons[0] and d.rebaseline is False
    # a challenger whose estimate is worse is still archived
    arms["4"] = ArmStats("4", 600, 490.0, 600, p95_latency_ms=10.0)
    d = decide(st, ev(arms=arms, metric_value=0.85, baseline_value=0.88, metric_labels=600),
               policy)
    assert d.action == "archive_candidate" and d.rebaseline is True
