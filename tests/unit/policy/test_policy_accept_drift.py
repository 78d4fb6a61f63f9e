"""triggers.drift.confirm_with_labels: drift the labelled rows contradict is accepted (the
reference re-baselined) instead of retrained on; anything else keeps the usual path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from policy_scenarios import T0

from autopilot.config import PolicyConfig
from autopilot.policy import Evidence, ModelState, decide, next_state


def steady() -> ModelState:
    return ModelState(model="m", champion="3", weights={"3": 1.0},
                      last_training_at=T0 - 86400, training_history=(T0 - 86400,))


def drifted(**kw: Any) -> Evidence:
    kw.setdefault("metric_value", 0.88)  # 2.2 % under the 0.90 baseline: within 5 %
    kw.setdefault("baseline_value", 0.90)
    kw.setdefault("metric_labels", 800)
    return Evidence(model="m", now=T0, drift_severity="critical", drift_share=0.6,
                    drift_rows=2000, **kw)


@pytest.fixture
def confirming(make_policy: Callable[..., PolicyConfig]) -> PolicyConfig:
    return make_policy(triggers={"drift": {"confirm_with_labels": True}})


def test_drift_the_labels_contradict_is_accepted(confirming: PolicyConfig) -> None:
    d = decide(steady(), drifted(), confirming)
    assert (d.action, d.version, d.rebaseline, d.baseline) == ("accept_drift", "3", True, None)
    assert d.reasons[0].startswith("drift severity 'critical'")
    assert "labelled rows say the champion holds up (labelled accuracy 0.88 within 5.0% of " \
           "baseline 0.9)" in d.reasons[1]
    assert next_state(steady(), d, drifted()) == steady()


@pytest.mark.parametrize("kw", [
    {"metric_value": 0.80},  # the labels show the drop: the performance trigger fires too
    {"metric_labels": 100},  # too few labels to say anything
    {"metric_value": None, "metric_labels": 0, "estimated_value": 0.89},  # an estimate only
    {"baseline_value": None},  # nothing to hold up against
])
def test_otherwise_drift_retrains_as_usual(kw: dict[str, Any],
                                           confirming: PolicyConfig) -> None:
    d = decide(steady(), drifted(**kw), confirming)
    assert d.action == "retrain" and d.trigger in ("drift", "performance")


def test_off_by_default(policy: PolicyConfig) -> None:
    d = decide(steady(), drifted(), policy)
    assert (d.action, d.trigger) == ("retrain", "drift")
