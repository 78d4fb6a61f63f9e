"""Tick-by-tick simulation of the canary on synthetic Bernoulli arms (no Ray).

Every run starts a canary the way the controller does (``start_canary``
through :func:`~autopilot.policy.decide.next_state`), then each tick draws the
traffic each arm gets under the current weights, the labelled correct
answers among it, and calls :func:`~autopilot.policy.decide.decide` exactly
as the controller would, until the canary ends (promote, rollback, archive,
halt) or ``max_ticks`` pass. Traffic is drawn for all live runs at once; the
policy runs per run, as in production.

It measures the two numbers a canary must get right: how often an A/A
experiment (no real difference) promotes, checked after every tick, and how
often a real uplift promotes.

Example
-------
>>> import numpy as np
>>> from autopilot.config import CanaryConfig, PolicyConfig
>>> pol = PolicyConfig(canary=CanaryConfig(max_samples=10_000))
>>> r = simulate_canary(0.70, 0.80, 20, pol, np.random.default_rng(0), requests_per_tick=500)
>>> r.outcomes
{'promote': 20}
>>> simulate_canary(0.70, 0.70, 20, pol, np.random.default_rng(0), 500).outcomes
{'archive_candidate': 20}
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from autopilot.config import PolicyConfig
from autopilot.policy.canary import start_weights
from autopilot.policy.decide import decide, next_state
from autopilot.policy.types import ArmStats, Decision, Evidence, ModelState

__all__ = ["SimulationResult", "simulate_canary"]

_TERMINAL = frozenset({"promote", "rollback", "archive_candidate", "halt"})


@dataclass(frozen=True)
class SimulationResult:
    """Outcome counts of ``runs`` simulated canaries.

    Attributes
    ----------
    runs : int
    outcomes : dict[str, int]
        Final action per run (``"promote"``, ``"rollback"``, ``"archive_candidate"``,
        ``"halt"``, or ``"unfinished"`` after ``max_ticks``).
    promote_rate : float
        Share of runs that promoted the challenger.
    mean_ticks : float
        Mean ticks until the canary ended.
    mean_labelled : float
        Mean labelled rows (both arms) when it ended.
    """

    runs: int
    outcomes: dict[str, int]
    promote_rate: float
    mean_ticks: float
    mean_labelled: float


def simulate_canary(
    p_champion: float,
    p_challenger: float,
    runs: int,
    policy: PolicyConfig,
    rng: np.random.Generator,
    requests_per_tick: int = 1000,
    label_rate: float = 1.0,
    max_ticks: int = 1000,
    tick_s: float = 60.0,
) -> SimulationResult:
    """Simulate ``runs`` canaries of a challenger against a champion.

    Parameters
    ----------
    p_champion, p_challenger : float
        True per-request accuracy of each arm.
    runs : int
        Independent experiments.
    policy : PolicyConfig
        The policy under test (its ``canary`` section matters).
    rng : numpy.random.Generator
        Source of traffic, labels and the policy's own randomness.
    requests_per_tick : int
        Requests between two controller ticks.
    label_rate : float
        Share of requests whose label arrives (immediately).
    max_ticks : int
        Give up on a run after this many ticks ("unfinished").
    tick_s : float
        Seconds per tick (for ``max_duration_s``).

    Returns
    -------
    SimulationResult
    """
    for name, p in (("p_champion", p_champion), ("p_challenger", p_challenger),
                    ("label_rate", label_rate)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p!r}")
    if runs < 1 or requests_per_tick < 1 or max_ticks < 1:
        raise ValueError(
            f"runs, requests_per_tick and max_ticks must be positive, got {runs}, "
            f"{requests_per_tick}, {max_ticks}"
        )
    champ, chall = "1", "2"
    start = Evidence(model="sim", now=0.0)
    base = ModelState(model="sim", phase="validating", champion=champ, challenger=chall,
                      weights={champ: 1.0}, validating_since=0.0)
    weights, shadow = start_weights(champ, chall, policy.canary)
    begin = Decision("start_canary", ("simulation",), weights=weights, shadow=shadow,
                     version=chall, mode=policy.canary.mode)
    states = [next_state(base, begin, start) for _ in range(runs)]
    # Cumulative counts per run: [requests, correct, labelled] for champion / challenger.
    req = np.zeros((runs, 2), dtype=np.int64)
    cor = np.zeros((runs, 2), dtype=np.int64)
    lab = np.zeros((runs, 2), dtype=np.int64)
    outcome: list[str | None] = [None] * runs
    ended_at = np.full(runs, max_ticks, dtype=np.int64)
    rates = np.array([p_champion, p_challenger])
    live = np.arange(runs)
    for tick in range(1, max_ticks + 1):
        if live.size == 0:
            break
        share = np.array([states[i].weights.get(chall, 0.0) for i in live])
        if policy.canary.mode == "shadow":
            # Every request is answered by the champion and mirrored to the challenger.
            n_both = np.full(live.size, requests_per_tick)
            new_req = np.stack([n_both, n_both], axis=1)
        else:
            n_b = rng.binomial(requests_per_tick, np.clip(share, 0.0, 1.0))
            new_req = np.stack([requests_per_tick - n_b, n_b], axis=1)
        new_lab = rng.binomial(new_req, label_rate)
        new_cor = rng.binomial(new_lab, rates)
        req[live] += new_req
        lab[live] += new_lab
        cor[live] += new_cor
        still: list[int] = []
        for i in live:
            ev = Evidence(
                model="sim",
                now=tick * tick_s,
                arms={
                    champ: ArmStats(champ, int(req[i, 0]), float(cor[i, 0]), int(lab[i, 0]),
                                    0, 10.0),
                    chall: ArmStats(chall, int(req[i, 1]), float(cor[i, 1]), int(lab[i, 1]),
                                    0, 10.0),
                },
            )
            d = decide(states[i], ev, policy, rng)
            if d.action in _TERMINAL:
                outcome[i] = d.action
                ended_at[i] = tick
            else:
                states[i] = next_state(states[i], d, ev)
                still.append(int(i))
        live = np.array(still, dtype=np.int64)
    final = [o if o is not None else "unfinished" for o in outcome]
    counts = dict(Counter(final))
    return SimulationResult(
        runs=runs,
        outcomes=counts,
        promote_rate=counts.get("promote", 0) / runs,
        mean_ticks=float(ended_at.mean()),
        mean_labelled=float(lab.sum(axis=1).mean()),
    )
