"""A canary in which neither arm meets the champion's bar is ended, so the performance
trigger can retrain; a canary that can still give users a model meeting it goes on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from policy_scenarios import T0

from autopilot.config import PolicyConfig
from autopilot.policy import ArmStats, Evidence, ModelState, decide, next_state
from autopilot.stats import mean_confidence_sequence

# baseline 0.88, performance trigger at 5 %: the bar is 0.836


def ev(arms: dict[str, ArmStats], **kw: Any) -> Evidence:
    kw.setdefault("metric_value", 0.52)  # the champion fails: 41 % below its baseline
    kw.setdefault("baseline_value", 0.88)
    kw.setdefault("metric_labels", 900)
    return Evidence(model="m", now=T0 + 600, arms=arms, **kw)


def test_both_failing_ends_the_canary_and_the_trigger_retrains(
    canary_state: Callable[..., ModelState], arms: Callable[..., dict[str, ArmStats]],
    policy: PolicyConfig,
) -> None:
    st = canary_state(step=0, last_training_at=T0 - 7200)
    e = ev(arms(1520, 0.52, 80, 0.5))  # 5 %: no sample-ratio mismatch
    d = decide(st, e, policy)
    assert (d.action, d.version, d.weights) == ("archive_candidate", "2", {"1": 1.0})
    assert "neither arm meets the bar accuracy 0.836" in d.reasons[0]
    high = mean_confidence_sequence(40.0, 80, sigma2=0.25, tau2=(0.88 - 0.836) ** 2,
                                    alpha=policy.canary.alpha)[1]
    assert d.numbers["challenger_upper"] == pytest.approx(high) and high < 0.836
    s = next_state(st, d, e)
    assert (s.phase, s.champion, s.challenger) == ("steady", "1", None)
    nxt = decide(s, Evidence(model="m", now=T0 + 900, metric_value=0.52, baseline_value=0.88,
                             metric_labels=900), policy)
    assert (nxt.action, nxt.trigger) == ("retrain", "performance"), nxt.reasons


def test_too_few_challenger_rows_to_tell_keeps_the_canary(
    canary_state: Callable[..., ModelState], arms: Callable[..., dict[str, ArmStats]],
    policy: PolicyConfig,
) -> None:
    # 10 rows at 0.5: the always-valid bound still reaches the bar (peeking is allowed
    # for, so a handful of bad rows does not end an experiment)
    d = decide(canary_state(step=0), ev(arms(190, 0.52, 10, 0.5)), policy)
    assert d.action in ("none", "hold", "ramp"), d.reasons


def test_a_challenger_that_may_meet_the_bar_keeps_the_canary(
    canary_state: Callable[..., ModelState], arms: Callable[..., dict[str, ArmStats]],
    policy: PolicyConfig,
) -> None:
    # the remedy: the canary's own test promotes it, not this rule
    d = decide(canary_state(step=2), ev(arms(300, 0.52, 300, 0.89)), policy)
    assert d.action == "promote"
    d = decide(canary_state(step=0), ev(arms(760, 0.52, 40, 0.8)), policy)
    assert d.action in ("none", "hold", "ramp"), d.reasons


@pytest.mark.parametrize("kw", [
    {"metric_value": 0.86},                     # the champion holds up (2.3 % below)
    {"metric_labels": 150},                     # too few labels to say it fails
    {"baseline_value": None},                   # no bar
    {"metric_name": "r2"},                      # the arms' score is not the metric
])
def test_no_bar_or_no_failing_champion_keeps_the_canary(
    kw: dict[str, Any], canary_state: Callable[..., ModelState],
    arms: Callable[..., dict[str, ArmStats]], policy: PolicyConfig,
) -> None:
    d = decide(canary_state(step=0), ev(arms(3800, 0.52, 200, 0.5), **kw), policy)
    assert d.action in ("none", "hold", "ramp"), d.reasons


def test_switched_off_with_the_performance_trigger(
    canary_state: Callable[..., ModelState], arms: Callable[..., dict[str, ArmStats]],
    make_policy: Callable[..., PolicyConfig],
) -> None:
    policy = make_policy(triggers={"performance": {"enabled": False}})
    d = decide(canary_state(step=0), ev(arms(3800, 0.52, 200, 0.5)), policy)
    assert d.action in ("none", "hold", "ramp"), d.reasons
