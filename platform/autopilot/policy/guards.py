"""Guards: whether a retrain that a trigger asked for may start now.

A trigger says *why* a model should retrain; a guard says *not now*: too soon
after the last training, too many trainings running, too many trainings today
(per-model history), or, for routine triggers only, outside the low-usage
window. :func:`adaptive_interval` gives the routine retraining interval from
how much labelled data arrives and how the model has been doing.

Example
-------
>>> from autopilot.config import GuardsConfig
>>> from autopilot.policy.types import Evidence, ModelState
>>> state = ModelState(model="m", last_training_at=0.0, training_history=(0.0,))
>>> check_guards(state, Evidence(model="m", now=600.0), GuardsConfig(), urgent=True).reason
'last training 600 s ago < min interval 3600 s'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from autopilot.config import GuardsConfig
from autopilot.policy.types import Evidence, ModelState

__all__ = ["GuardResult", "adaptive_interval", "check_guards", "in_low_usage_window"]

_DAY = 86400.0


@dataclass(frozen=True)
class GuardResult:
    """Whether a retrain may start now; ``guard`` names the one that blocked it."""

    allowed: bool
    guard: str | None
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)


def in_low_usage_window(now: float, hours: tuple[int, int] | None) -> bool:
    """Whether Unix time ``now`` falls in the ``[start, end)`` hour window (UTC).

    The window may wrap midnight (``(22, 4)``); ``None`` means any time;
    ``start == end`` means the whole day.

    >>> in_low_usage_window(datetime(2026, 1, 1, 23, tzinfo=UTC).timestamp(), (22, 4))
    True
    >>> in_low_usage_window(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp(), (22, 4))
    False
    """
    if hours is None:
        return True
    start, end = hours
    for name, h in (("start", start), ("end", end)):
        if not 0 <= h <= 24:
            raise ValueError(f"low_usage_hours {name} {h!r} must be an hour in 0-24")
    hour = datetime.fromtimestamp(now, UTC).hour
    start, end = start % 24, end % 24
    if start == end:
        return True
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def adaptive_interval(evidence: Evidence, cfg: GuardsConfig) -> tuple[float, str]:
    """Routine retraining interval (seconds) from labelled-data volume and performance.

    Volume tiers by labels per day: ``>= cfg.adaptive_levels[0]`` is high,
    ``>= cfg.adaptive_levels[1]`` medium, otherwise (or unknown) low, giving
    ``cfg.adaptive_intervals_s`` (7, 14, 30 days by default). If the champion's
    labelled metric has already lost ``cfg.adaptive_perf_drop`` (relative, 2.5 %
    by default: half the default performance trigger) of its validation
    baseline, the interval is multiplied by ``cfg.adaptive_perf_factor``: a
    model that is slipping retrains sooner.

    Returns
    -------
    (interval_s, why)

    >>> from autopilot.config import GuardsConfig
    >>> from autopilot.policy.types import Evidence
    >>> adaptive_interval(Evidence(model="m", now=0.0, labels_per_day=20_000), GuardsConfig())
    (604800.0, 'high volume: 20000 labels/day')
    """
    high, medium = cfg.adaptive_levels
    if high < medium:
        raise ValueError(
            f"adaptive_levels {cfg.adaptive_levels!r} must be (high, medium) with high >= medium"
        )
    rate = evidence.labels_per_day
    if rate is not None and rate >= high:
        tier, interval = "high", cfg.adaptive_intervals_s[0]
    elif rate is not None and rate >= medium:
        tier, interval = "medium", cfg.adaptive_intervals_s[1]
    else:
        tier, interval = "low", cfg.adaptive_intervals_s[2]
    why = f"{tier} volume: {rate:.0f} labels/day" if rate is not None else "low volume: unknown"
    v, b = evidence.metric_value, evidence.baseline_value
    if v is not None and b is not None and b != 0:
        sign = 1.0 if evidence.higher_is_better else -1.0
        drop = sign * (b - v) / abs(b)
        if drop >= cfg.adaptive_perf_drop:
            interval *= cfg.adaptive_perf_factor
            why += f"; performance {drop:.1%} below baseline"
    return float(interval), why


def check_guards(
    state: ModelState,
    evidence: Evidence,
    cfg: GuardsConfig,
    urgent: bool,
) -> GuardResult:
    """Whether a retrain may start now.

    Order: concurrency (a cluster-wide limit), minimum interval since this
    model's last training, this model's trainings in the last 24 h, then, for
    routine (non-urgent) triggers only, the retry backoff (the last training
    started after the champion was made, so it did not replace it: wait
    ``cfg.retry_backoff_s`` before trying again on schedule, age or volume) and
    the low-usage window.
    """
    now = evidence.now
    numbers: dict[str, Any] = {
        "running_trainings": float(evidence.running_trainings),
        "max_concurrent": float(cfg.max_concurrent),
    }
    if evidence.running_trainings >= cfg.max_concurrent:
        reason = (
            f"{evidence.running_trainings} trainings running >= max_concurrent {cfg.max_concurrent}"
        )
        return GuardResult(False, "concurrency", reason, numbers)
    if state.last_training_at is not None:
        since = now - state.last_training_at
        numbers["since_last_s"] = float(since)
        if since < cfg.min_interval_s:
            reason = f"last training {since:.0f} s ago < min interval {cfg.min_interval_s:.0f} s"
            return GuardResult(False, "min_interval", reason, numbers)
    if cfg.max_per_day is not None:
        recent = sum(1 for t in state.training_history if now - t < _DAY)
        numbers["trainings_24h"] = float(recent)
        if recent >= cfg.max_per_day:
            reason = f"{recent} trainings in the last 24 h >= max_per_day {cfg.max_per_day}"
            return GuardResult(False, "history", reason, numbers)
    if (
        not urgent
        and state.last_training_at is not None
        and evidence.model_age_s is not None
        and now - state.last_training_at < evidence.model_age_s  # attempt after the champion
        and now - state.last_training_at < cfg.retry_backoff_s
    ):
        since = now - state.last_training_at
        reason = (
            f"last retrain {since:.0f} s ago did not replace the champion; routine retrain "
            f"waits for retry_backoff_s {cfg.retry_backoff_s:.0f} s"
        )
        return GuardResult(False, "retry_backoff", reason, numbers)
    if not urgent and not in_low_usage_window(now, cfg.low_usage_hours):
        start, end = cfg.low_usage_hours or (0, 0)
        reason = f"routine retrain deferred to the low-usage window {start:02d}:00-{end:02d}:00 UTC"
        return GuardResult(False, "low_usage_window", reason, numbers)
    return GuardResult(True, None, "guards passed", numbers)
