"""The window view fires with no streaming alarm: a change found by testing the champion's
labelled windows (OLS-CUSUM) tells the retrain which rows to learn from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from policy_scenarios import T0

from autopilot.config import PolicyConfig
from autopilot.policy import Evidence, ModelState, decide
from autopilot.policy.triggers import window_change
from autopilot.policy.types import StreamAlarm


def found(p: float = 1e-6, rows_since: int = 600, before: float = 0.90, after: float = 0.80,
           at: float = T0 - 600) -> StreamAlarm:
    return StreamAlarm("cusum", at, rows_since, before, after, p)


def steady() -> ModelState:
    return ModelState(model="m", champion="3", weights={"3": 1.0},
                      last_training_at=T0 - 86400, training_history=(T0 - 86400,))


def ev(*changes: StreamAlarm, **kw: Any) -> Evidence:
    # the window view fires: 0.80 against a 0.90 baseline is 11 % worse
    kw.setdefault("metric_value", 0.80)
    kw.setdefault("baseline_value", 0.90)
    kw.setdefault("metric_labels", 1000)
    return Evidence(model="m", now=T0, window_changes=changes, **kw)


def test_a_tested_change_sets_the_training_window(policy: PolicyConfig) -> None:
    d = decide(steady(), ev(found()), policy)
    assert (d.action, d.trigger) == ("retrain", "performance")
    assert d.train_since == T0 - 600
    assert "training on the 600 labelled rows since the change the window test located " \
           "(cusum p=1e-06: online score 0.9 -> 0.8)" in d.reasons[-1]


@pytest.mark.parametrize("change", [
    found(p=0.02),  # not significant at window_change_alpha 0.01
    found(after=0.88),  # significant, but a 2.2 % drop is under relative_drop
    found(after=0.95),  # an improvement
])
def test_weak_or_small_changes_keep_the_usual_window(change: StreamAlarm,
                                                     policy: PolicyConfig) -> None:
    assert window_change(ev(change), policy.triggers.performance) is None
    d = decide(steady(), ev(change), policy)
    assert d.action == "retrain" and d.train_since is None


def test_the_shortest_window_that_holds_a_change_wins(policy: PolicyConfig) -> None:
    recent = found(at=T0 - 400, rows_since=400)
    longer = found(at=T0 - 3000, rows_since=3000)
    assert window_change(ev(recent, longer), policy.triggers.performance) is recent
    # the recent window has none: the longer one's change is used
    assert window_change(ev(found(p=0.5), longer), policy.triggers.performance) is longer


def test_too_few_rows_after_a_tested_change_waits(policy: PolicyConfig) -> None:
    need = policy.triggers.performance.min_rows_after_change
    d = decide(steady(), ev(found(rows_since=need - 1)), policy)
    assert d.action == "hold" and d.train_since is None
    assert f"waiting for {need} labelled rows after the change" in d.reasons[-1]


def test_a_tested_change_alone_fires_nothing(policy: PolicyConfig) -> None:
    # within 5 % of the baseline: the window view is quiet, so the change is not acted on
    d = decide(steady(), ev(found(), metric_value=0.88), policy)
    assert d.action == "none"


def test_window_test_can_be_switched_off(make_policy: Callable[..., PolicyConfig]) -> None:
    policy = make_policy(triggers={"performance": {"window_change_alpha": None}})
    d = decide(steady(), ev(found()), policy)
    assert d.action == "retrain" and d.train_since is None


def test_evidence_journals_the_window_tests() -> None:
    out = ev(found()).to_dict()
    assert out["window_changes"] == [{"detector": "cusum", "at": T0 - 600, "rows_since": 600,
                                      "metric_before": 0.90, "metric_after": 0.80,
                                      "p_value": 1e-6}]
