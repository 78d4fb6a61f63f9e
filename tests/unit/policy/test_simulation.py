"""The canary checked after every tick: error rate under A/A and power under a real uplift.

No Ray: :func:`autopilot.policy.simulate.simulate_canary` draws Bernoulli traffic
for every live run at once and calls ``decide``/``next_state`` per run per
tick, exactly as the controller would. Seeds are fixed, so the rates are
reproducible; ``pytest -s`` prints them.
"""

from __future__ import annotations

import numpy as np
import pytest

from autopilot.config import CanaryConfig, PolicyConfig
from autopilot.policy.simulate import simulate_canary

# Defaults except the budget: 40k labelled rows is what a 2-point uplift at 80 %
# accuracy needs for >= 80 % power with an always-valid test; 2000 requests per
# tick keeps the test fast (about 20 looks per A/A run, each one a chance to err).
POLICY = PolicyConfig(canary=CanaryConfig(max_samples=40_000, max_duration_s=1e9))
RUNS = 300


@pytest.fixture(scope="module")
def aa() -> float:
    res = simulate_canary(0.80, 0.80, RUNS, POLICY, np.random.default_rng(11),
                          requests_per_tick=2000)
    print(f"\nA/A (0.80 vs 0.80, {RUNS} runs): promote rate {res.promote_rate:.3f} "
          f"outcomes {res.outcomes} mean ticks {res.mean_ticks:.1f}")
    return res.promote_rate


@pytest.fixture(scope="module")
def uplift() -> float:
    res = simulate_canary(0.80, 0.82, RUNS, POLICY, np.random.default_rng(12),
                          requests_per_tick=2000)
    print(f"\nuplift (0.80 vs 0.82, {RUNS} runs): promote rate {res.promote_rate:.3f} "
          f"outcomes {res.outcomes} mean ticks {res.mean_ticks:.1f}")
    return res.promote_rate


def test_aa_canary_rarely_promotes(aa: float) -> None:
    assert aa <= 0.05


def test_two_point_uplift_usually_promotes(uplift: float) -> None:
    assert uplift >= 0.80


def test_worse_challenger_never_promotes() -> None:
    res = simulate_canary(0.82, 0.78, 50, POLICY, np.random.default_rng(13),
                          requests_per_tick=2000)
    assert res.outcomes.get("promote", 0) == 0
    assert res.outcomes.get("rollback", 0) >= 45


def test_simulation_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="p_challenger"):
        simulate_canary(0.8, 1.2, 10, POLICY, np.random.default_rng(0))
    with pytest.raises(ValueError, match="positive"):
        simulate_canary(0.8, 0.8, 0, POLICY, np.random.default_rng(0))
