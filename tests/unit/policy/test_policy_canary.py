"""Canary judgement: SRM, guardrails, sequential verdicts, budget, ramp, shadow, bandit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from autopilot.config import CanaryConfig
from autopilot.policy.canary import judge_canary, last_wait_step, online_test, start_weights
from autopilot.policy.types import ArmStats, Evidence, ModelState

T0 = 1_800_000_000.0  # as in conftest.py

StateF = Callable[..., ModelState]
ArmsF = Callable[..., dict[str, ArmStats]]


def ev(arms: dict[str, ArmStats], now: float = T0 + 600, **kw: Any) -> Evidence:
    return Evidence(model="m", now=now, arms=arms, **kw)


def test_srm_mismatch_halts_without_a_verdict(canary_state: StateF, arms: ArmsF,
                                              rng: np.random.Generator) -> None:
    # 25 % step but the challenger got 15 % of 4000 requests, and is clearly better.
    d = judge_canary(canary_state(step=1), ev(arms(3400, 0.7, 600, 0.95)), CanaryConfig(), rng)
    assert d.action == "halt" and d.alert
    assert d.weights == {"1": 1.0} and d.version == "2"
    assert "sample ratio mismatch" in d.reasons[0] and d.numbers["srm_p"] < 0.001
    assert "always_valid_p" not in d.numbers  # no verdict was reached


def test_srm_skipped_until_counts_are_settled(canary_state: StateF, arms: ArmsF,
                                              rng: np.random.Generator) -> None:
    # Right after a weight change the baseline is not taken yet: no SRM, no safety ramp.
    state = canary_state(step=1, step_requests={})
    d = judge_canary(state, ev(arms(3400, 0.8, 600, 0.8)), CanaryConfig(), rng)
    assert d.action == "hold" and "srm_p" not in d.numbers


def test_srm_uses_counts_since_the_step_began(canary_state: StateF, arms: ArmsF,
                                              rng: np.random.Generator) -> None:
    # Cumulative counts carry the 5 % step; since the 25 % step began the split is right.
    state = canary_state(step=1, step_requests={"1": 1900, "2": 100})
    d = judge_canary(state, ev(arms(1900 + 1500, 0.8, 100 + 500, 0.8)), CanaryConfig(), rng)
    assert d.action != "halt" and d.numbers["srm_p"] > 0.01


@pytest.mark.parametrize(("errors", "p95", "word"), [(30, 20.0, "error rate"),
                                                      (0, 900.0, "p95 latency")])
def test_guardrail_breach_rolls_back_at_once(canary_state: StateF, arms: ArmsF,
                                             rng: np.random.Generator, errors: int, p95: float,
                                             word: str) -> None:
    state = canary_state(step=2)
    d = judge_canary(state, ev(arms(500, 0.8, 500, 0.8, errors_b=errors, p95_b=p95)),
                     CanaryConfig(), rng)
    assert d.action == "rollback" and d.strategy == "instant" and d.alert
    assert d.weights == {"1": 1.0} and d.version == "2" and d.target == "1"
    assert word in " ".join(d.reasons)


def test_latency_guardrail_is_relative_to_the_champion(canary_state: StateF,
                                                       rng: np.random.Generator) -> None:
    def judge(p95_a: float, p95_b: float) -> str:
        a = {"1": ArmStats("1", 500, 400.0, 500, 0, p95_a),
             "2": ArmStats("2", 500, 400.0, 500, 0, p95_b)}
        return judge_canary(canary_state(step=2), ev(a), CanaryConfig(), rng).action

    assert judge(20.0, 300.0) == "rollback"
    assert judge(280.0, 300.0) == "hold"  # everything is slow: not the challenger's fault
    assert judge(280.0, 450.0) == "rollback"


def test_guardrails_wait_for_min_requests(canary_state: StateF, arms: ArmsF,
                                          rng: np.random.Generator) -> None:
    d = judge_canary(canary_state(), ev(arms(190, 0.8, 10, 0.8, errors_b=3)), CanaryConfig(),
                     rng)
    assert d.action == "hold"


def test_significantly_better_ramps_early_then_promotes(canary_state: StateF, arms: ArmsF,
                                                        rng: np.random.Generator) -> None:
    cfg = CanaryConfig()
    big = arms(20_000, 0.80, 20_000, 0.84)
    state0 = canary_state(step=0, step_requests={"1": 19_000, "2": 19_950})
    d = judge_canary(state0, ev(big), cfg, rng)
    assert d.action == "ramp" and d.weights == {"1": 0.75, "2": 0.25}
    assert d.numbers["always_valid_p"] <= 0.05 and d.numbers["effect"] == pytest.approx(0.04)
    state2 = canary_state(step=2, step_requests={"1": 10_000, "2": 10_000})
    p = judge_canary(state2, ev(big), cfg, rng)
    assert p.action == "promote" and p.version == "2" and p.weights == {"2": 1.0}


def test_significantly_worse_rolls_back_gradually_or_instantly(
    canary_state: StateF, arms: ArmsF, rng: np.random.Generator
) -> None:
    worse = arms(20_000, 0.84, 20_000, 0.80)
    settled = {"1": 19_000, "2": 19_000}
    d = judge_canary(canary_state(step=2, step_requests=settled), ev(worse), CanaryConfig(),
                     rng)
    assert d.action == "rollback" and d.strategy == "gradual"
    assert d.weights == {"1": 0.75, "2": 0.25}
    five = {"1": 20_000 - 1900, "2": 20_000 - 100}  # a 95/5 split since step 0 began
    d0 = judge_canary(canary_state(step=0, step_requests=five), ev(worse), CanaryConfig(), rng)
    assert d0.strategy == "instant" and d0.weights == {"1": 1.0}
    off = CanaryConfig(gradual_rollback=False)
    assert judge_canary(canary_state(step=2, step_requests=settled), ev(worse), off,
                        rng).strategy == "instant"


def test_running_p_value_is_carried_between_ticks(canary_state: StateF, arms: ArmsF,
                                                  rng: np.random.Generator) -> None:
    # Evidence that has faded still counts: the always-valid p is a running minimum.
    state = canary_state(step=2, min_p=0.01, step_requests={"1": 900, "2": 900})
    d = judge_canary(state, ev(arms(1000, 0.80, 1000, 0.81)), CanaryConfig(), rng)
    assert d.action == "promote" and d.numbers["always_valid_p"] == 0.01


def test_budget_ends_with_no_difference(canary_state: StateF, arms: ArmsF,
                                        rng: np.random.Generator) -> None:
    cfg = CanaryConfig(max_samples=4000)
    state = canary_state(step=2, step_requests={"1": 1900, "2": 1900})
    d = judge_canary(state, ev(arms(2000, 0.8, 2000, 0.8)), cfg, rng)
    assert d.action == "archive_candidate" and d.weights == {"1": 1.0} and d.version == "2"
    assert "no significant difference" in d.reasons[0] and "max_samples" in d.reasons[0]
    late = judge_canary(state, ev(arms(300, 0.8, 300, 0.8), now=T0 + 2 * 86400),
                        CanaryConfig(), rng)
    assert late.action == "archive_candidate" and "max_duration_s" in late.reasons[0]


def test_ramp_on_safety_after_min_samples(canary_state: StateF, arms: ArmsF,
                                          rng: np.random.Generator) -> None:
    cfg = CanaryConfig(min_samples_per_step=200)
    state = canary_state(step=0, step_requests={"1": 0, "2": 0})
    few = judge_canary(state, ev(arms(3800, 0.8, 190, 0.8)), cfg, rng)
    assert few.action == "hold" and "no verdict yet" in few.reasons[0]
    enough = judge_canary(state, ev(arms(3900, 0.8, 210, 0.8)), cfg, rng)
    assert enough.action == "ramp" and enough.weights == {"1": 0.75, "2": 0.25}
    # The last step below 100 % waits for the test.
    last = canary_state(step=2, step_requests={"1": 0, "2": 0})
    assert judge_canary(last, ev(arms(3000, 0.8, 3000, 0.8)), cfg, rng).action == "hold"


def test_shadow_mode_judges_mirrored_traffic(canary_state: StateF, arms: ArmsF,
                                             rng: np.random.Generator) -> None:
    state = canary_state(mode="shadow", share=0.0, weights={"1": 1.0}, shadow=("2",))
    # Equal counts despite zero weight: no SRM in shadow mode.
    better = judge_canary(state, ev(arms(20_000, 0.80, 20_000, 0.84)), CanaryConfig(), rng)
    assert better.action == "promote"
    worse = judge_canary(state, ev(arms(20_000, 0.84, 20_000, 0.80)), CanaryConfig(), rng)
    assert worse.action == "archive_candidate" and not worse.alert
    broken = judge_canary(state, ev(arms(500, 0.8, 500, 0.8, errors_b=100)), CanaryConfig(),
                          rng)
    assert broken.action == "archive_candidate" and "shadow guardrail" in broken.reasons[0]


def test_bandit_mode_sets_thompson_weights_with_floor(canary_state: StateF, arms: ArmsF,
                                                      rng: np.random.Generator) -> None:
    state = canary_state(mode="bandit", share=0.5, step_requests={"1": 0, "2": 0})
    d = judge_canary(state, ev(arms(300, 0.70, 300, 0.75)), CanaryConfig(bandit_floor=0.05),
                     rng)
    assert d.action == "set_weights" and d.weights is not None
    assert sum(d.weights.values()) == pytest.approx(1.0)
    assert min(d.weights.values()) >= 0.05 and d.weights["2"] > d.weights["1"]
    win = judge_canary(state, ev(arms(20_000, 0.80, 20_000, 0.84)), CanaryConfig(), rng)
    assert win.action == "promote"


def test_missing_arm_holds(canary_state: StateF, rng: np.random.Generator) -> None:
    d = judge_canary(canary_state(), ev({}), CanaryConfig(), rng)
    assert d.action == "hold" and "version 1" in d.reasons[0]


def test_helpers() -> None:
    cfg = CanaryConfig()
    assert last_wait_step(cfg) == 2
    assert last_wait_step(CanaryConfig(steps=(0.1, 0.3))) == 1
    assert start_weights("1", "2", cfg) == ({"1": 0.95, "2": 0.05}, ())
    assert start_weights("1", "2", CanaryConfig(mode="shadow")) == ({"1": 1.0}, ("2",))


def test_online_test_continuous_scores() -> None:
    # Regression: per-row scores (negative squared error) with sums of squares.
    r = np.random.default_rng(1)
    xa, xb = -r.exponential(1.0, 5000), -r.exponential(0.8, 5000)
    a = ArmStats("1", 5000, float(xa.sum()), 5000, score_sumsq=float((xa**2).sum()))
    b = ArmStats("2", 5000, float(xb.sum()), 5000, score_sumsq=float((xb**2).sum()))
    step = online_test(a, b, CanaryConfig(), 1.0)
    assert step.rejected and step.estimate == pytest.approx(xb.mean() - xa.mean())
    same = online_test(a, a, CanaryConfig(), 1.0)
    assert not same.rejected
