"""Rollback strategies, chosen by the kind of failure.

=============  =====================================  ===========================================
strategy       when                                   what the routing does
=============  =====================================  ===========================================
``instant``    challenger breaches a guardrail        all traffic back to the champion now
               (error rate, p95 latency) or errors
``fallback``   the champion itself fails (its error   all traffic to the fallback version (the
               rate, or its breaker is open)          previous champion), which becomes champion
``gradual``    challenger significantly worse on the  challenger share steps back down the canary
               online metric but healthy              steps, one step per tick, then to zero
``isolate``    a version's circuit breaker is open    the version leaves the routing table
=============  =====================================  ===========================================

Each function returns a :class:`~autopilot.policy.types.Decision` (or None when
nothing is failing); the canary judge and :func:`autopilot.policy.decide` call them.

Example
-------
>>> from autopilot.config import CanaryConfig
>>> from autopilot.policy.types import ModelState
>>> s = ModelState(model="m", phase="canary", champion="1", challenger="2", step=2,
...                weights={"1": 0.5, "2": 0.5})
>>> d = gradual_rollback(s, CanaryConfig(), ("worse",), {})
>>> d.strategy, dict(d.weights)
('gradual', {'1': 0.75, '2': 0.25})
"""

from __future__ import annotations

from collections.abc import Mapping

from autopilot.config import CanaryConfig
from autopilot.policy.types import Decision, Evidence, ModelState

__all__ = [
    "champion_failure",
    "gradual_rollback",
    "instant_rollback",
    "isolate_version",
]


def _healthy(version: str | None, state: ModelState, evidence: Evidence, cfg: CanaryConfig) -> bool:
    if version is None or version in state.isolated:
        return False
    if evidence.breakers.get(version) == "open":
        return False
    arm = evidence.arms.get(version)
    return not (
        arm is not None
        and arm.requests >= cfg.guardrail_min_requests
        and arm.error_rate > cfg.max_error_rate
    )


def instant_rollback(
    state: ModelState,
    reasons: tuple[str, ...],
    numbers: Mapping[str, float],
) -> Decision:
    """All traffic back to the champion at once; the challenger is out of the experiment."""
    if state.champion is None or state.challenger is None:
        raise ValueError(f"instant rollback needs a champion and a challenger, state is {state!r}")
    return Decision(
        "rollback",
        reasons,
        dict(numbers),
        weights={state.champion: 1.0},
        version=state.challenger,
        target=state.champion,
        strategy="instant",
        alert=True,
    )


def gradual_rollback(
    state: ModelState,
    cfg: CanaryConfig,
    reasons: tuple[str, ...],
    numbers: Mapping[str, float],
) -> Decision:
    """Shift the challenger's share one canary step down (to zero below the first step).

    The challenger is significantly worse but answers correctly and fast, so users
    are moved back in steps rather than all at once (caches, sticky sessions and
    the champion's capacity warm up). A decision whose weights give the
    challenger nothing ends the experiment.
    """
    if state.champion is None or state.challenger is None:
        raise ValueError(f"gradual rollback needs a champion and a challenger, state is {state!r}")
    share = cfg.steps[state.step - 1] if state.step >= 1 else 0.0
    weights = {state.champion: 1.0 - share, state.challenger: share}
    nums = {**numbers, "challenger_share": share}
    return Decision(
        "rollback",
        reasons,
        nums,
        weights=weights,
        version=state.challenger,
        target=state.champion,
        strategy="gradual",
        alert=True,
    )


def isolate_version(
    state: ModelState, version: str, reasons: tuple[str, ...], numbers: Mapping[str, float]
) -> Decision:
    """Drop ``version`` (its breaker is open) from routing; ends a canary it was in."""
    if state.champion is None:
        raise ValueError("cannot isolate a version of a model with no champion")
    return Decision(
        "rollback",
        reasons,
        dict(numbers),
        weights={state.champion: 1.0},
        version=version,
        target=state.champion,
        strategy="isolate",
        alert=True,
    )


def champion_failure(state: ModelState, evidence: Evidence, cfg: CanaryConfig) -> Decision | None:
    """Fallback when the champion itself fails; None when the champion is healthy.

    The champion fails if its breaker is open or, with at least
    ``cfg.guardrail_min_requests`` requests, its error rate exceeds
    ``cfg.max_error_rate``. Traffic then goes to the fallback version (previous
    champion) if it is healthy, else to a healthy challenger; with neither, the
    decision is an alerting ``hold`` (the router's breaker keeps serving
    fallback answers meanwhile).
    """
    champ = state.champion
    if champ is None:
        return None
    arm = evidence.arms.get(champ)
    numbers: dict[str, float] = {}
    why: str | None = None
    if evidence.breakers.get(champ) == "open":
        why = f"champion {champ} circuit breaker is open"
    elif arm is not None and arm.requests >= cfg.guardrail_min_requests:
        numbers = {"champion_error_rate": arm.error_rate, "max_error_rate": cfg.max_error_rate}
        if arm.error_rate > cfg.max_error_rate:
            why = (
                f"champion {champ} error rate {arm.error_rate:.1%} > {cfg.max_error_rate:.1%} "
                f"over {arm.requests} requests"
            )
    if why is None:
        return None
    for target in (state.fallback, state.challenger):
        if target is not None and target != champ and _healthy(target, state, evidence, cfg):
            return Decision(
                "rollback",
                (why, f"falling back to version {target}"),
                numbers,
                weights={target: 1.0},
                version=champ,
                target=target,
                strategy="fallback",
                alert=True,
            )
    return Decision("hold", (why, "no healthy fallback version; routing unchanged"), numbers,
                    alert=True)
