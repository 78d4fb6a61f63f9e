"""Canary judgement, run after every controller tick.

Order of the checks (the first that speaks decides):

1. **Sample-ratio mismatch** (split mode): the arms' request counts since
   the weights last settled are tested against those weights
   (:func:`autopilot.stats.experiments.srm_test` at ``srm_alpha``). A mismatch
   means the experiment itself is broken (router, hashing, dropped records), so
   nothing about the challenger can be concluded: ``halt`` and alert. Bandit
   mode re-weights every tick, so no count is ever under one settled
   allocation and SRM is not checked there; shadow mode mirrors every request.
2. **Guardrails**: a challenger whose error rate exceeds ``max_error_rate``,
   or whose p95 latency exceeds both ``max_p95_latency_ms`` and
   ``latency_ratio`` times the champion's (load that slows every version is not
   the challenger's fault), is rolled back at once (``instant``). In shadow
   mode nobody saw its answers, so it is simply archived.
3. **Sequential test** on the online metric (correct predictions among
   labelled rows, or a continuous per-row score): the always-valid mSPRT
   p-value (:mod:`autopilot.stats.sequential`) is carried between ticks as
   ``ModelState.min_p``, so checking it after every tick keeps the false
   positive rate at ``alpha``. Significantly better: ramp to the next step
   (or promote from the last step below 100 %, or at once in shadow/bandit
   mode). Significantly worse: roll back (``gradual``; ``instant`` at the
   first step or with ``gradual_rollback`` off; archived in shadow mode).
4. **Budget**: ``max_samples`` labelled rows or ``max_duration_s`` end the
   canary as "no difference": the champion stays, the challenger is archived
   (``on_no_verdict="promote"``: the challenger is promoted if its point
   estimate is not worse, since it already beat the champion offline).
5. **Ramp on safety** (split mode): after ``min_samples_per_step`` challenger
   requests in the current step with no harm shown, move to the next step
   below 100 %; the last such step waits for the test.
6. **Bandit** mode instead sets the weights from Thompson sampling with a floor.

Example
-------
>>> import numpy as np
>>> from autopilot.config import CanaryConfig
>>> from autopilot.policy.types import ArmStats, Evidence, ModelState
>>> s = ModelState(model="m", phase="canary", champion="1", challenger="2",
...                canary_started_at=0.0, weights={"1": 0.95, "2": 0.05})
>>> ev = Evidence(model="m", now=60.0, arms={
...     "1": ArmStats("1", requests=950, successes=760, labelled=950, p95_latency_ms=20.0),
...     "2": ArmStats("2", requests=50, successes=40, labelled=50, errors=10, p95_latency_ms=20.0)})
>>> d = judge_canary(s, ev, CanaryConfig(), np.random.default_rng(0))
>>> d.action, d.strategy
('rollback', 'instant')
"""

from __future__ import annotations

import math

import numpy as np

from autopilot.config import CanaryConfig
from autopilot.policy.rollback import gradual_rollback, instant_rollback
from autopilot.policy.types import ArmStats, Decision, Evidence, ModelState
from autopilot.stats.bayes import thompson_weights
from autopilot.stats.experiments import srm_test
from autopilot.stats.sequential import MsprtStep, msprt_from_sums, msprt_proportions_from_counts

__all__ = [
    "DEFAULT_TAU_SD",
    "judge_canary",
    "last_wait_step",
    "online_test",
    "start_weights",
    "urgent_step",
]

# With tau2 unset the mixing distribution's standard deviation is this fraction of
# the metric's per-row standard deviation: model updates typically move accuracy by
# a few points, i.e. about 0.05 standard deviations of a 0/1 outcome near 80 %.
DEFAULT_TAU_SD = 0.05


def last_wait_step(cfg: CanaryConfig) -> int:
    """Index of the last canary step below 100 %: where the canary waits for a verdict."""
    below = [i for i, s in enumerate(cfg.steps) if s < 1.0]
    return below[-1] if below else 0


def urgent_step(cfg: CanaryConfig) -> int:
    """Index of the step an urgent replacement's canary starts at.

    The first configured step whose share is at least ``cfg.urgent_start_step``,
    capped at :func:`last_wait_step` (a canary never starts at 100 %: the last
    step waits for the test); 0 when ``urgent_start_step`` is None.

    >>> from autopilot.config import CanaryConfig
    >>> urgent_step(CanaryConfig()), urgent_step(CanaryConfig(urgent_start_step=0.3))
    (2, 2)
    >>> urgent_step(CanaryConfig(urgent_start_step=1.0)), urgent_step(
    ...     CanaryConfig(urgent_start_step=None))
    (2, 0)
    """
    if cfg.urgent_start_step is None:
        return 0
    last = last_wait_step(cfg)
    at_least = [i for i, s in enumerate(cfg.steps) if s >= cfg.urgent_start_step]
    return min(at_least[0], last) if at_least else last


def start_weights(
    champion: str, challenger: str, cfg: CanaryConfig, step: int = 0
) -> tuple[dict[str, float], tuple[str, ...]]:
    """Routing weights and shadow versions for the first tick of a canary at ``step``."""
    if cfg.mode == "shadow":
        return {champion: 1.0}, (challenger,)
    share = cfg.steps[step]
    return {champion: 1.0 - share, challenger: share}, ()


def _is_binary(a: ArmStats, b: ArmStats) -> bool:
    return a.score_sumsq is None and b.score_sumsq is None


def online_test(a: ArmStats, b: ArmStats, cfg: CanaryConfig, prev_min_p: float) -> MsprtStep:
    """One always-valid mSPRT step comparing challenger ``b`` with champion ``a``.

    0/1 scores (``score_sumsq`` None) use the proportions test on
    (successes, labelled); continuous scores use the mean test with the pooled
    variance from the running sums. ``tau2`` is ``cfg.tau2``, or
    ``(DEFAULT_TAU_SD * sd)**2`` with ``sd`` the pooled per-row standard deviation.
    """
    n_a, n_b = int(a.labelled), int(b.labelled)
    if _is_binary(a, b):
        s_a, s_b = round(a.successes), round(b.successes)
        pooled = (s_a + s_b) / (n_a + n_b) if n_a + n_b else 0.5
        sigma2 = pooled * (1.0 - pooled)
        tau2 = cfg.tau2 if cfg.tau2 is not None else DEFAULT_TAU_SD**2 * max(sigma2, 1e-4)
        return msprt_proportions_from_counts(n_a, s_a, n_b, s_b, tau2=tau2,
                                             prev_min_p=prev_min_p, alpha=cfg.alpha)
    mean_a = a.successes / n_a if n_a else 0.0
    mean_b = b.successes / n_b if n_b else 0.0
    ss = 0.0
    for arm, n, mean in ((a, n_a, mean_a), (b, n_b, mean_b)):
        sq = arm.score_sumsq if arm.score_sumsq is not None else arm.successes  # 0/1: x^2 == x
        ss += max(sq - n * mean**2, 0.0)
    sigma2 = ss / (n_a + n_b - 2) if n_a + n_b > 2 else 0.0
    if sigma2 <= 0.0:  # no spread yet: no information, the p-value stays
        return MsprtStep(prev_min_p, -math.inf, mean_b - mean_a, -math.inf, math.inf,
                         n_a, n_b, cfg.alpha, prev_min_p <= cfg.alpha)
    tau2 = cfg.tau2 if cfg.tau2 is not None else DEFAULT_TAU_SD**2 * sigma2
    return msprt_from_sums(n_a, mean_a, n_b, mean_b, sigma2=sigma2, tau2=tau2,
                           prev_min_p=prev_min_p, alpha=cfg.alpha)


def _since_step(arm: ArmStats, state: ModelState) -> int:
    """Requests of ``arm`` since the current weights were settled."""
    return max(int(arm.requests) - int(state.step_requests.get(arm.version, 0)), 0)


def judge_canary(
    state: ModelState,
    evidence: Evidence,
    cfg: CanaryConfig,
    rng: np.random.Generator,
) -> Decision:
    """Decide this tick of a running canary (see the module docstring for the order).

    Parameters
    ----------
    state : ModelState
        Phase ``"canary"`` with ``champion`` and ``challenger`` set; ``min_p``
        carries the always-valid p-value between ticks.
    evidence : Evidence
        ``arms`` holds both versions' stats, cumulative since the canary began.
    cfg : CanaryConfig
    rng : numpy.random.Generator
        For Thompson sampling (bandit mode).

    Returns
    -------
    Decision
        ``numbers["always_valid_p"]`` is the p-value to carry to the next tick.
    """
    champ, chall = state.champion, state.challenger
    if champ is None or chall is None:
        raise ValueError(f"a canary needs a champion and a challenger, got {champ!r}, {chall!r}")
    a, b = evidence.arms.get(champ), evidence.arms.get(chall)
    mode = state.mode
    shadow = mode == "shadow"
    if a is None or b is None:
        missing = champ if a is None else chall
        return Decision("hold", (f"no traffic statistics for version {missing} yet",),
                        {"always_valid_p": state.min_p})
    elapsed = evidence.now - (state.canary_started_at if state.canary_started_at is not None
                              else evidence.now)
    numbers: dict[str, float] = {
        "elapsed_s": elapsed,
        "champion_requests": float(a.requests),
        "challenger_requests": float(b.requests),
        "champion_labelled": float(a.labelled),
        "challenger_labelled": float(b.labelled),
        "step": float(state.step),
    }

    # The request counts when the weights last changed are taken one tick later
    # (``step_requests`` empty until then): routers pick a new table up within a
    # refresh interval, and requests routed by the old table must not count as a
    # mismatch against the new weights.
    settled = bool(state.step_requests)

    # 1. SRM: is traffic split the way we asked since the weights last changed?
    if mode == "split" and settled:
        counts = [_since_step(a, state), _since_step(b, state)]
        intended = [float(state.weights.get(champ, 0.0)), float(state.weights.get(chall, 0.0))]
        if sum(counts) >= cfg.srm_min_requests and sum(intended) > 0:
            srm = srm_test(counts, intended, alpha=cfg.srm_alpha)
            numbers.update(srm_p=srm.p_value, srm_gap=srm.effect)
            if srm.rejected:
                share = counts[1] / sum(counts)
                should = intended[1] / sum(intended)
                reason = (
                    f"sample ratio mismatch: challenger got {share:.1%} of {sum(counts)} requests "
                    f"but should get {should:.1%} (p={srm.p_value:.2g} < {cfg.srm_alpha}); "
                    "experiment halted without a verdict"
                )
                return Decision("halt", (reason,), numbers, weights={champ: 1.0},
                                version=chall, alert=True)

    # 2. Guardrails on the challenger.
    breach: list[str] = []
    if b.requests >= cfg.guardrail_min_requests:
        numbers["challenger_error_rate"] = b.error_rate
        if b.error_rate > cfg.max_error_rate:
            breach.append(f"challenger error rate {b.error_rate:.1%} > {cfg.max_error_rate:.1%} "
                          f"over {b.requests} requests")
        if math.isfinite(b.p95_latency_ms):
            numbers["challenger_p95_ms"] = b.p95_latency_ms
            champ_p95 = a.p95_latency_ms if math.isfinite(a.p95_latency_ms) else 0.0
            numbers["champion_p95_ms"] = a.p95_latency_ms
            if b.p95_latency_ms > max(cfg.max_p95_latency_ms, cfg.latency_ratio * champ_p95):
                breach.append(f"challenger p95 latency {b.p95_latency_ms:.0f} ms > "
                              f"{cfg.max_p95_latency_ms:.0f} ms (champion {champ_p95:.0f} ms)")
    if breach:
        numbers["always_valid_p"] = state.min_p
        if shadow:
            return Decision("archive_candidate", ("shadow guardrail breach", *breach), numbers,
                            weights={champ: 1.0}, version=chall, alert=True)
        return instant_rollback(state, ("guardrail breach", *breach), numbers)

    # A gradual rollback under way just keeps stepping back.
    if state.rolling_back:
        numbers["always_valid_p"] = state.min_p
        return gradual_rollback(state, cfg, ("continuing gradual rollback",), numbers)

    # 3. Always-valid sequential test on the online metric.
    test = online_test(a, b, cfg, state.min_p)
    p = test.p_value
    numbers.update(always_valid_p=p, effect=test.estimate, ci_low=test.ci_low,
                   ci_high=test.ci_high)
    rate = (f"challenger {b.success_rate:.4f} vs champion {a.success_rate:.4f} "
            f"on {b.labelled}+{a.labelled} labelled rows")
    last = last_wait_step(cfg)
    if test.rejected and test.estimate > 0:
        why = f"challenger significantly better ({rate}; always-valid p={p:.3g} <= {cfg.alpha})"
        if shadow or mode == "bandit" or state.step >= last:
            return Decision("promote", (why,), numbers, weights={chall: 1.0}, version=chall)
        return _ramp(state, cfg, (why, "ramping without waiting"), numbers)
    if test.rejected and test.estimate < 0:
        why = f"challenger significantly worse ({rate}; always-valid p={p:.3g} <= {cfg.alpha})"
        if shadow:
            return Decision("archive_candidate", (why,), numbers, weights={champ: 1.0},
                            version=chall)
        if cfg.gradual_rollback and mode == "split" and state.step >= 1:
            return gradual_rollback(state, cfg, (why,), numbers)
        return instant_rollback(state, (why,), numbers)

    # 4. Budget spent with no verdict.
    total = a.labelled + b.labelled
    if total >= cfg.max_samples or elapsed >= cfg.max_duration_s:
        spent = (f"{total} labelled rows >= max_samples {cfg.max_samples}"
                 if total >= cfg.max_samples
                 else f"{elapsed:.0f} s >= max_duration_s {cfg.max_duration_s:.0f}")
        if cfg.on_no_verdict == "promote" and test.estimate >= 0:
            why = (f"no significant difference ({rate}; p={p:.3g}) after {spent}; the "
                   "challenger, which passed the offline gate, is not worse: promoted "
                   "(canary.on_no_verdict)")
            return Decision("promote", (why,), {**numbers, "budget_spent": 1.0},
                            weights={chall: 1.0}, version=chall)
        why = f"no significant difference ({rate}; p={p:.3g}) after {spent}; champion kept"
        return Decision("archive_candidate", (why,), {**numbers, "budget_spent": 1.0},
                        weights={champ: 1.0}, version=chall)

    # 5./6. Allocation while waiting.
    if mode == "bandit":
        w = thompson_weights(np.array([a.successes, b.successes], dtype=float),
                             np.array([a.labelled - a.successes, b.labelled - b.successes],
                                      dtype=float),
                             rng, cfg.bandit_floor)
        return Decision("set_weights", (f"bandit allocation by Thompson sampling ({rate})",),
                        numbers, weights={champ: float(w[0]), chall: float(w[1])})
    if mode == "split" and state.step < last and settled:
        done = _since_step(b, state)
        numbers["step_requests"] = float(done)
        if done >= cfg.min_samples_per_step:
            why = (f"step {state.step} ({cfg.steps[state.step]:.0%}) healthy after {done} "
                   f"challenger requests; no harm shown (p={p:.3g})")
            return _ramp(state, cfg, (why,), numbers)
    return Decision("hold", (f"canary running: no verdict yet ({rate}; p={p:.3g})",), numbers)


def _ramp(state: ModelState, cfg: CanaryConfig, reasons: tuple[str, ...],
          numbers: dict[str, float]) -> Decision:
    assert state.champion is not None and state.challenger is not None
    nxt = min(state.step + 1, last_wait_step(cfg))
    share = cfg.steps[nxt]
    return Decision(
        "ramp",
        reasons,
        {**numbers, "next_step": float(nxt), "challenger_share": share},
        weights={state.champion: 1.0 - share, state.challenger: share},
        version=state.challenger,
    )
