"""Retraining triggers: each looks at the evidence and says whether it fired, and why.

Every trigger returns a :class:`~autopilot.policy.types.TriggerResult` with a
reason a person can read and the numbers behind it, fired or not, so the
journal shows how close a model came to retraining. Drift, performance and
manual triggers are *urgent* (the model is, or may be, wrong now); schedule,
age and volume are routine and may be deferred to a low-usage window by the
guards.

Example
-------
>>> from autopilot.config import PolicyConfig
>>> from autopilot.policy.types import Evidence, ModelState
>>> ev = Evidence(model="m", now=0.0, metric_value=0.80, baseline_value=0.90,
...               metric_labels=500)
>>> r = performance_trigger(ev, PolicyConfig().triggers.performance)
>>> r.fired, round(r.numbers["relative_drop"], 3)
(True, 0.111)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike

from autopilot.config import (
    AgeTrigger,
    DriftTrigger,
    GuardsConfig,
    PerformanceTrigger,
    ScheduleTrigger,
    TriggersConfig,
    VolumeTrigger,
)
from autopilot.policy.types import Evidence, ModelState, StreamAlarm, TriggerResult
from autopilot.stats.changepoint import cusum_test, locate_shift
from autopilot.stats.report import severity_rank

__all__ = [
    "CHANGE_TRIGGERS",
    "CronSchedule",
    "URGENT_TRIGGERS",
    "acted_on_change",
    "age_trigger",
    "drift_trigger",
    "evaluate_triggers",
    "locate_window_change",
    "manual_trigger",
    "parse_cron",
    "performance_trigger",
    "schedule_trigger",
    "volume_trigger",
    "window_change",
    "window_drop",
]

URGENT_TRIGGERS = frozenset({"drift", "performance", "manual"})
#: Triggers that say the data changed: their cycles re-baseline a champion that held up and
#: pass its baseline on to a replacement.
CHANGE_TRIGGERS = frozenset({"drift", "performance"})


def _off(name: str) -> TriggerResult:
    return TriggerResult(name, False, f"{name} trigger disabled", {}, name in URGENT_TRIGGERS)


# ---------------------------------------------------------------------- triggers


def drift_trigger(evidence: Evidence, cfg: DriftTrigger) -> TriggerResult:
    """Fire when the drift report's severity is at or above ``cfg.severity``.

    Needs at least ``cfg.min_rows`` rows in the drift window, so a handful of
    early requests cannot trigger a retrain.
    """
    name = "drift"
    if not cfg.enabled:
        return _off(name)
    sev = evidence.drift_severity
    numbers = {
        "drift_share": float(evidence.drift_share),
        "rows": float(evidence.drift_rows),
        "min_rows": float(cfg.min_rows),
        "threshold_rank": float(severity_rank(cfg.severity)),
    }
    if sev is None:
        return TriggerResult(name, False, "no drift report yet", numbers, True)
    numbers["severity_rank"] = float(severity_rank(sev))
    if evidence.drift_rows < cfg.min_rows:
        reason = f"drift window has {evidence.drift_rows} rows < min_rows {cfg.min_rows}"
        return TriggerResult(name, False, reason, numbers, True)
    if severity_rank(sev) >= severity_rank(cfg.severity):
        top = sorted(evidence.drift_features.items(), key=lambda kv: -kv[1])[:3]
        feats = ", ".join(f"{k}={v:.3g}" for k, v in top)
        reason = (
            f"drift severity {sev!r} >= {cfg.severity!r} "
            f"({evidence.drift_share:.0%} of features drifted{'; ' + feats if feats else ''})"
        )
        return TriggerResult(name, True, reason, numbers, True)
    return TriggerResult(name, False, f"drift severity {sev!r} < {cfg.severity!r}", numbers, True)


def performance_trigger(evidence: Evidence, cfg: PerformanceTrigger) -> TriggerResult:
    """Fire when the champion's performance dropped by ``cfg.relative_drop`` or more.

    Two views, either fires:

    - *window*: the metric on recent labelled rows against the validation
      baseline, ``(baseline - value) / |baseline|`` for metrics where higher is
      better (sign reversed otherwise), or below ``cfg.absolute_floor``. Needs
      ``cfg.min_labels`` labelled rows; with fewer, and ``cfg.use_estimate``, the
      label-free estimate stands in.
    - *stream* (``cfg.streaming``): ADWIN found a change in the champion's
      labelled error stream (:attr:`Evidence.error_change`) and the online metric
      after the located change is ``cfg.relative_drop`` worse than before it.
      Live before-and-after numbers on the same traffic: no holdout optimism,
      and the change point tells the retrain which rows to learn from.
    """
    name = "performance"
    if not cfg.enabled:
        return _off(name)
    window = window_drop(evidence, cfg)
    stream = _stream_drop(evidence, cfg)
    numbers = {**window.numbers, **stream.numbers}
    fired = [r for r in (window, stream) if r.fired]
    if fired:
        return TriggerResult(name, True, "; ".join(r.reason for r in fired), numbers, True)
    reason = window.reason if not stream.reason else f"{window.reason}; {stream.reason}"
    return TriggerResult(name, False, reason, numbers, True)


def window_drop(evidence: Evidence, cfg: PerformanceTrigger) -> TriggerResult:
    """The performance trigger's window view: the champion's labelled metric (or the
    estimate while labels are few) against the absolute floor and its baseline.

    ``numbers["estimated"]`` says whether the estimate stood in; ``relative_drop`` is
    set when a baseline was compared.
    """
    name = "performance"
    value = evidence.metric_value
    source = "labelled"
    numbers: dict[str, float] = {
        "labels": float(evidence.metric_labels),
        "min_labels": float(cfg.min_labels),
    }
    if value is None or evidence.metric_labels < cfg.min_labels:
        if cfg.use_estimate and evidence.estimated_value is not None:
            value, source = evidence.estimated_value, "estimated"
        else:
            reason = (
                f"{evidence.metric_labels} labelled rows < min_labels {cfg.min_labels}"
                if value is not None or evidence.metric_labels
                else "no labelled performance yet"
            )
            return TriggerResult(name, False, reason, numbers, True)
    numbers["value"] = float(value)
    numbers["estimated"] = float(source == "estimated")
    sign = 1.0 if evidence.higher_is_better else -1.0
    metric = evidence.metric_name
    if cfg.absolute_floor is not None:
        numbers["floor"] = float(cfg.absolute_floor)
        if sign * (value - cfg.absolute_floor) < 0:
            word = "below" if evidence.higher_is_better else "above"
            reason = f"{source} {metric} {value:.4g} is {word} the floor {cfg.absolute_floor:.4g}"
            return TriggerResult(name, True, reason, numbers, True)
    base = evidence.baseline_value
    if base is None or not math.isfinite(base):
        return TriggerResult(name, False, f"{source} {metric} {value:.4g}; no baseline", numbers,
                             True)
    drop = sign * (base - value) / max(abs(base), 1e-12)
    numbers["baseline"] = float(base)
    numbers["relative_drop"] = float(drop)
    numbers["threshold"] = float(cfg.relative_drop)
    if drop >= cfg.relative_drop:
        reason = (
            f"{source} {metric} {value:.4g} is {drop:.1%} worse than the validation "
            f"baseline {base:.4g} (threshold {cfg.relative_drop:.1%}, {evidence.metric_labels} "
            "labels)"
        )
        return TriggerResult(name, True, reason, numbers, True)
    reason = f"{source} {metric} {value:.4g} within {cfg.relative_drop:.1%} of baseline {base:.4g}"
    return TriggerResult(name, False, reason, numbers, True)


def acted_on_change(evidence: Evidence, cfg: PerformanceTrigger) -> StreamAlarm | None:
    """The located error-stream change the performance trigger acts on, or None.

    One there is when the trigger and its stream view are on and the change made
    the online score at least ``cfg.relative_drop`` worse.
    """
    change = evidence.error_change
    if (change is None or not cfg.enabled or not cfg.streaming
            or change.relative_drop < cfg.relative_drop):
        return None
    return change


def window_change(evidence: Evidence, cfg: PerformanceTrigger) -> StreamAlarm | None:
    """The newest regime found by testing the labelled windows, or None.

    The first of :attr:`Evidence.window_changes` (shortest window first) whose
    OLS-CUSUM test rejects "no change" at ``cfg.window_change_alpha`` and whose
    located change made the online score at least ``cfg.relative_drop`` worse.
    It only tells a retrain which rows to learn from; it fires nothing (the
    window view does, on its own numbers).
    """
    alpha = cfg.window_change_alpha
    if alpha is None:
        return None
    for change in evidence.window_changes:
        if (change.p_value is not None and change.p_value <= alpha
                and change.relative_drop >= cfg.relative_drop):
            return change
    return None


def locate_window_change(
    scores: ArrayLike, times: ArrayLike, labelled_since: Callable[[float], int],
    min_rows: int = 40,
) -> StreamAlarm | None:
    """Test a labelled window for a change in the online score and locate it.

    Parameters
    ----------
    scores : array-like of float
        Per-row online score of the labelled rows, oldest first (1/0 correct
        for classifiers; higher is better), whichever version served them.
    times : array-like of float
        Each row's time.
    labelled_since : callable
        Labelled rows (any version's) at or after a time: what a retrain on the
        rows after the change would get.
    min_rows : int
        Fewer scores than this: None (no split worth testing).

    Returns
    -------
    StreamAlarm | None
        Detector "cusum", located by least squares, with the OLS-CUSUM p-value.
    """
    x = np.asarray(scores, dtype=float)
    if len(x) < max(min_rows, 2):
        return None
    cp = locate_shift(x)
    at = float(np.asarray(times, dtype=float)[cp.index])
    return StreamAlarm("cusum", at, int(labelled_since(at)), cp.mean_before, cp.mean_after,
                       cusum_test(x).p_value)


def _stream_drop(evidence: Evidence, cfg: PerformanceTrigger) -> TriggerResult:
    change = evidence.error_change
    if not cfg.streaming or change is None:
        return TriggerResult("performance", False, "", {}, True)
    drop = change.relative_drop
    numbers = {"change_rows_since": float(change.rows_since),
               "change_before": float(change.metric_before),
               "change_after": float(change.metric_after),
               "change_relative_drop": float(drop)}
    what = (f"{change.detector} found a change in the labelled error stream "
            f"{change.rows_since} labelled rows ago: online score {change.metric_before:.4g} "
            f"-> {change.metric_after:.4g} ({drop:+.1%} worse")
    if acted_on_change(evidence, cfg) is not None:
        return TriggerResult("performance", True, f"{what}, threshold {cfg.relative_drop:.1%})",
                             numbers, True)
    return TriggerResult("performance", False, f"{what}, under {cfg.relative_drop:.1%})",
                         numbers, True)


def _reference_time(state: ModelState, evidence: Evidence) -> float | None:
    """When the current model's clock started: last training, else the champion's age."""
    if state.last_training_at is not None:
        return state.last_training_at
    if evidence.model_age_s is not None:
        return evidence.now - evidence.model_age_s
    return None


def schedule_trigger(
    state: ModelState,
    evidence: Evidence,
    cfg: ScheduleTrigger,
    guards: GuardsConfig | None = None,
) -> TriggerResult:
    """Fire when a scheduled time has passed since the last training.

    With ``cfg.cron`` (5 fields, UTC) the trigger fires once a cron time lies in
    ``(last training, now]``; with ``cfg.interval_s`` once that long has passed;
    with neither and ``guards.adaptive`` the interval comes from
    :func:`autopilot.policy.guards.adaptive_interval` (labelled-data volume and
    recent performance).
    """
    name = "schedule"
    if not cfg.enabled:
        return _off(name)
    ref = _reference_time(state, evidence)
    if ref is None:
        return TriggerResult(name, False, "no training time to count from", {}, False)
    numbers = {"since_s": float(evidence.now - ref)}
    if cfg.cron is not None:
        due = parse_cron(cfg.cron).next_after(ref)
        numbers["due_at"] = due
        if due <= evidence.now:
            when = datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%d %H:%M")
            return TriggerResult(name, True, f"cron {cfg.cron!r} was due at {when} UTC",
                                 numbers, False)
        return TriggerResult(name, False, f"cron {cfg.cron!r} not due yet", numbers, False)
    interval = cfg.interval_s
    how = "interval"
    if interval is None:
        if guards is None or not guards.adaptive:
            return TriggerResult(name, False, "schedule has neither interval nor cron", numbers,
                                 False)
        from autopilot.policy.guards import adaptive_interval  # avoid an import cycle

        interval, why = adaptive_interval(evidence, guards)
        how = f"adaptive interval ({why})"
    numbers["interval_s"] = float(interval)
    if evidence.now - ref >= interval:
        reason = f"{how}: {_days(evidence.now - ref)} since last training >= {_days(interval)}"
        return TriggerResult(name, True, reason, numbers, False)
    return TriggerResult(name, False, f"{how}: next in {_days(ref + interval - evidence.now)}",
                         numbers, False)


def age_trigger(evidence: Evidence, cfg: AgeTrigger) -> TriggerResult:
    """Fire when the champion is older than ``cfg.max_age_s``."""
    name = "age"
    if not cfg.enabled:
        return _off(name)
    if evidence.model_age_s is None:
        return TriggerResult(name, False, "model age unknown", {}, False)
    numbers = {"age_s": float(evidence.model_age_s), "max_age_s": float(cfg.max_age_s)}
    fired = evidence.model_age_s >= cfg.max_age_s
    rel = ">=" if fired else "<"
    reason = f"model age {_days(evidence.model_age_s)} {rel} max {_days(cfg.max_age_s)}"
    return TriggerResult(name, fired, reason, numbers, False)


def volume_trigger(evidence: Evidence, cfg: VolumeTrigger) -> TriggerResult:
    """Fire when at least ``cfg.min_new_labels`` labelled rows arrived since training."""
    name = "volume"
    if not cfg.enabled:
        return _off(name)
    numbers = {
        "new_labels": float(evidence.new_labels),
        "min_new_labels": float(cfg.min_new_labels),
    }
    fired = evidence.new_labels >= cfg.min_new_labels
    rel = ">=" if fired else "<"
    reason = f"{evidence.new_labels} new labelled rows {rel} {cfg.min_new_labels}"
    return TriggerResult(name, fired, reason, numbers, False)


def manual_trigger(evidence: Evidence) -> TriggerResult:
    """Fire when a person asked for a retrain."""
    cmd = evidence.command
    if cmd is not None and cmd.kind == "retrain":
        return TriggerResult("manual", True, f"manual retrain requested: {cmd.reason}", {}, True)
    return TriggerResult("manual", False, "no manual retrain requested", {}, True)


def evaluate_triggers(
    state: ModelState,
    evidence: Evidence,
    cfg: TriggersConfig,
    guards: GuardsConfig | None = None,
) -> tuple[TriggerResult, ...]:
    """Every trigger's result, urgent ones first (manual, performance, drift, ...)."""
    return (
        manual_trigger(evidence),
        performance_trigger(evidence, cfg.performance),
        drift_trigger(evidence, cfg.drift),
        schedule_trigger(state, evidence, cfg.schedule, guards),
        age_trigger(evidence, cfg.age),
        volume_trigger(evidence, cfg.volume),
    )


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"


# -------------------------------------------------------------------------- cron

_FIELDS = (  # name, low, high
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_NAMES = {
    3: {m: i + 1 for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))},
    4: {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


@dataclass(frozen=True)
class CronSchedule:
    """A parsed 5-field cron expression (minute hour day-of-month month day-of-week), UTC.

    As in Vixie cron, when both day fields are restricted a day matches if
    *either* matches; day of week 0 and 7 are Sunday.

    >>> c = parse_cron("30 2 * * mon-fri")
    >>> c.matches(datetime(2026, 11, 23, 2, 30, tzinfo=UTC))  # a Monday
    True
    >>> datetime.fromtimestamp(c.next_after(datetime(2026, 11, 21, tzinfo=UTC).timestamp()),
    ...                        UTC).isoformat()
    '2026-11-23T02:30:00+00:00'
    """

    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday ... 6 = Sunday (Python's convention)
    days_restricted: bool
    weekdays_restricted: bool

    def _day_ok(self, d: datetime) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = d.weekday() in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def matches(self, when: datetime) -> bool:
        """Whether the minute of ``when`` (timezone-aware) is a scheduled minute."""
        when = when.astimezone(UTC)
        return self._day_ok(when) and when.hour in self.hours and when.minute in self.minutes

    def next_after(self, t: float) -> float:
        """First scheduled minute strictly after Unix time ``t`` (as Unix time).

        Raises ``ValueError`` if none falls within the next eight years (e.g. 30 Feb).
        """
        start = datetime.fromtimestamp(math.floor(t / 60.0) * 60.0, UTC) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 8 + 2):
            if self._day_ok(day):
                for h in sorted(self.hours):
                    for m in sorted(self.minutes):
                        cand = day.replace(hour=h, minute=m)
                        if cand >= start:
                            return cand.timestamp()
            day += timedelta(days=1)
        raise ValueError(f"cron {self.expr!r} never matches")


def _parse_field(text: str, index: int) -> tuple[frozenset[int], bool]:
    name, lo, hi = _FIELDS[index]
    names = _NAMES.get(index, {})

    def value(tok: str) -> int:
        tok_l = tok.lower()
        if tok_l in names:
            return names[tok_l]
        if not tok.isdigit():
            raise ValueError(f"cron {name} field has a bad value {tok!r}")
        v = int(tok)
        if not lo <= v <= hi:
            raise ValueError(f"cron {name} value {v} is outside {lo}-{hi}")
        return v

    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_s = part.partition("/")
        step = 1
        if step_s:
            if not step_s.isdigit() or int(step_s) < 1:
                raise ValueError(f"cron {name} field has a bad step {step_s!r}")
            step = int(step_s)
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a_s, b_s = rng.split("-", 1)
            a, b = value(a_s), value(b_s)
            if a > b:
                raise ValueError(f"cron {name} range {rng!r} is reversed")
        else:
            a = value(rng)
            b = hi if step_s else a
        out.update(range(a, b + 1, step))
    return frozenset(out), text != "*"


def parse_cron(expr: str) -> CronSchedule:
    """Parse a 5-field cron expression (or ``@daily``-style macro) evaluated in UTC.

    Fields accept ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists
    ``a,b``, and month / weekday names (``jan``, ``mon``).

    Raises
    ------
    ValueError
        The expression is malformed; the message names the field and value.

    >>> sorted(parse_cron("*/15 * * * *").minutes)
    [0, 15, 30, 45]
    """
    if not isinstance(expr, str):
        raise TypeError(f"cron expression must be a str, got {type(expr).__name__}")
    text = _MACROS.get(expr.strip().lower(), expr)
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"cron expression {expr!r} must have 5 fields, has {len(parts)}")
    fields = [_parse_field(p, i) for i, p in enumerate(parts)]
    # cron counts Sunday as 0 (or 7); Python's weekday() counts Monday as 0.
    weekdays = frozenset((d - 1) % 7 for d in fields[4][0])
    return CronSchedule(
        expr=expr,
        minutes=fields[0][0],
        hours=fields[1][0],
        days=fields[2][0],
        months=fields[3][0],
        weekdays=weekdays,
        days_restricted=fields[2][1],
        weekdays_restricted=fields[4][1],
    )
