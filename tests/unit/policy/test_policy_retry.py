"""A candidate that learnt from the few rows after a change and lost the gate is not yet
evidence that the champion holds up: the retrain is tried once more from the same change
when more rows follow it, and only a second loss accepts the new normal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from policy_scenarios import T0, gate_rows, validating

from autopilot.config import PolicyConfig
from autopilot.policy import Evidence, ModelState, decide, next_state
from autopilot.policy.gate import run_gate
from autopilot.policy.types import GateEvidence, StreamAlarm

CHANGE = T0 - 900.0  # where the change was located


def cut_cycle(rows: int = 400) -> ModelState:
    """A performance-triggered cycle that trained on the ``rows`` rows after CHANGE."""
    return replace(validating("performance"), train_since=CHANGE, train_rows=rows)


def failing(**kw: Any) -> Evidence:
    # the champion is 10 % below its baseline on 1,000 labels
    kw.setdefault("metric_value", 0.81)
    kw.setdefault("baseline_value", 0.90)
    kw.setdefault("metric_labels", 1000)
    return Evidence(model="m", now=T0, **kw)


def lost() -> Evidence:
    return failing(gate=gate_rows(0.85, 0.855))


def test_a_lost_first_try_is_retried_later_without_accepting(policy: PolicyConfig) -> None:
    d = decide(cut_cycle(), lost(), policy)
    assert d.action == "archive_candidate" and d.rebaseline is False and d.baseline is None
    assert d.numbers["retry_since"] == CHANGE
    assert "retrained once more from that change when 1000 labelled rows follow it" \
        in d.reasons[-1]
    s = next_state(cut_cycle(), d, lost())
    assert (s.phase, s.champion, s.retry_since, s.train_since) == ("steady", "3", CHANGE, None)


def test_the_retry_waits_for_its_rows_then_trains_from_the_change(policy: PolicyConfig) -> None:
    s = replace(ModelState(model="m", champion="3", weights={"3": 1.0},
                           last_training_at=T0 - 3600, training_history=(T0 - 3600,)),
                retry_since=CHANGE)
    wait = decide(s, failing(rows_since_retry=999), policy)
    assert wait.action == "hold" and wait.train_since is None
    assert "waiting for 1000 labelled rows after the change whose first retrain lost " \
           "(have 999)" in wait.reasons[-1]
    go = decide(s, failing(rows_since_retry=1000), policy)
    assert (go.action, go.trigger, go.train_since) == ("retrain", "performance", CHANGE)
    assert go.numbers["retry"] == 1.0 and go.numbers["train_rows_since"] == 1000.0
    t = next_state(s, go, failing())
    # a retry cycle is one cut at the change with retry_rows_after_change rows behind it
    assert (t.phase, t.retry_since, t.train_since, t.train_rows) == \
        ("training", None, CHANGE, 1000)


def test_a_lost_retry_accepts_the_new_normal(policy: PolicyConfig) -> None:
    d = decide(cut_cycle(rows=1000), lost(), policy)  # the retry: 1,000 rows after CHANGE
    assert d.action == "archive_candidate" and d.rebaseline is True
    assert d.baseline == pytest.approx(0.81) and "retry_since" not in d.numbers


def test_a_first_try_on_enough_rows_is_not_retried(policy: PolicyConfig) -> None:
    d = decide(cut_cycle(rows=1500), lost(), policy)
    assert d.rebaseline is True and "retry_since" not in d.numbers


@pytest.mark.parametrize("state", [
    replace(validating("drift"), train_since=None),  # not cut at a change
    replace(validating("performance"), train_since=None),
])
def test_only_cycles_cut_at_a_change_are_retried(state: ModelState, policy: PolicyConfig) -> None:
    d = decide(state, lost(), policy)
    assert d.rebaseline is True and "retry_since" not in d.numbers


def test_retry_can_be_switched_off(make_policy: Callable[..., PolicyConfig]) -> None:
    policy = make_policy(triggers={"performance": {"retry_rows_after_change": None}})
    d = decide(cut_cycle(), lost(), policy)
    assert d.rebaseline is True and "retry_since" not in d.numbers


def test_a_newer_change_takes_over_from_the_retry(policy: PolicyConfig) -> None:
    s = ModelState(model="m", champion="3", weights={"3": 1.0}, retry_since=CHANGE,
                   last_training_at=T0 - 3600, training_history=(T0 - 3600,))
    newer = StreamAlarm("adwin", T0 - 400, 400, 0.9, 0.7)
    d = decide(s, failing(rows_since_retry=200, error_change=newer), policy)
    assert d.action == "retrain" and d.train_since == T0 - 400 and "retry" not in d.numbers


def test_the_gate_reports_the_candidates_own_level() -> None:
    rng = np.random.default_rng(0)
    g = gate_rows(0.80, 0.90)
    res = run_gate(g, PolicyConfig().gate, rng)
    assert res.candidate_value == pytest.approx(float(np.mean(g.candidate_pred == g.y_true)))
    y = rng.normal(size=300)
    pred = y + rng.normal(scale=0.5, size=300)
    rmse = run_gate(GateEvidence(y, y + 1.0, pred, "rmse"), PolicyConfig().gate, rng)
    assert rmse.candidate_value == pytest.approx(float(np.sqrt(np.mean((pred - y) ** 2))))


def test_a_passing_gate_records_the_candidates_level_in_the_metric_watched(
        policy: PolicyConfig) -> None:
    g = gate_rows(0.75, 0.90)
    d = decide(validating("drift"), failing(gate=g), policy)
    assert d.action == "start_canary"
    assert d.numbers["gate_candidate_value"] == pytest.approx(
        float(np.mean(g.candidate_pred == g.y_true)))
    other = decide(validating("drift"), failing(gate=g, metric_name="f1"), policy)
    assert "gate_candidate_value" not in other.numbers  # a different metric: not comparable
