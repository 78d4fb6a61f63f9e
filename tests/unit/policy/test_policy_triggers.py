"""Retraining triggers and the cron matcher."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from autopilot.config import (
    AgeTrigger,
    DriftTrigger,
    GuardsConfig,
    PerformanceTrigger,
    ScheduleTrigger,
    TriggersConfig,
    VolumeTrigger,
)
from autopilot.policy.triggers import (
    age_trigger,
    drift_trigger,
    evaluate_triggers,
    manual_trigger,
    parse_cron,
    performance_trigger,
    schedule_trigger,
    volume_trigger,
)
from autopilot.policy.types import Evidence, ManualCommand, ModelState

DAY = 86400.0


def ev(**kw: object) -> Evidence:
    base: dict[str, object] = {"model": "m", "now": 100 * DAY}
    base.update(kw)
    return Evidence(**base)  # type: ignore[arg-type]


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


# ------------------------------------------------------------------------ drift


@pytest.mark.parametrize(
    ("severity", "threshold", "fired"),
    [("critical", "high", True), ("high", "high", True), ("medium", "high", False),
     ("none", "low", False), ("low", "low", True)],
)
def test_drift_fires_at_or_above_threshold(severity: str, threshold: str, fired: bool) -> None:
    r = drift_trigger(ev(drift_severity=severity, drift_rows=1000, drift_share=0.5,
                         drift_features={"x1": 0.4, "x2": 0.1}),
                      DriftTrigger(severity=threshold))  # type: ignore[arg-type]
    assert r.fired is fired
    assert r.urgent
    assert repr(severity) in r.reason
    if fired:
        assert "x1=0.4" in r.reason and "50%" in r.reason


def test_drift_needs_min_rows_and_a_report() -> None:
    cfg = DriftTrigger(severity="low", min_rows=500)
    few = drift_trigger(ev(drift_severity="critical", drift_rows=499), cfg)
    assert not few.fired and "499 rows" in few.reason
    assert not drift_trigger(ev(drift_severity=None, drift_rows=10_000), cfg).fired
    off = drift_trigger(ev(drift_severity="critical", drift_rows=10_000),
                        DriftTrigger(enabled=False))
    assert not off.fired and "disabled" in off.reason


def test_drift_unknown_severity_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="severe"):
        drift_trigger(ev(drift_severity="severe", drift_rows=1000), DriftTrigger())


# ------------------------------------------------------------------ performance


def test_performance_relative_drop_fires_with_numbers() -> None:
    cfg = PerformanceTrigger(relative_drop=0.05, min_labels=200)
    r = performance_trigger(ev(metric_value=0.84, baseline_value=0.90, metric_labels=300), cfg)
    assert r.fired and r.urgent
    assert r.numbers["relative_drop"] == pytest.approx(0.06 / 0.90)
    assert r.numbers["labels"] == 300
    assert "0.9" in r.reason and "300 labels" in r.reason
    ok = performance_trigger(ev(metric_value=0.88, baseline_value=0.90, metric_labels=300), cfg)
    assert not ok.fired and ok.numbers["relative_drop"] == pytest.approx(0.02 / 0.90)


def test_performance_respects_direction_for_losses() -> None:
    cfg = PerformanceTrigger(relative_drop=0.10, min_labels=10)
    worse = ev(metric_value=1.2, baseline_value=1.0, metric_labels=50, metric_name="rmse",
               higher_is_better=False)
    better = ev(metric_value=0.8, baseline_value=1.0, metric_labels=50, metric_name="rmse",
                higher_is_better=False)
    assert performance_trigger(worse, cfg).fired
    assert not performance_trigger(better, cfg).fired


def test_performance_absolute_floor() -> None:
    cfg = PerformanceTrigger(relative_drop=0.5, absolute_floor=0.7, min_labels=10)
    r = performance_trigger(ev(metric_value=0.69, baseline_value=0.72, metric_labels=50), cfg)
    assert r.fired and "below the floor 0.7" in r.reason
    assert not performance_trigger(ev(metric_value=0.71, baseline_value=0.72, metric_labels=50),
                                   cfg).fired


def test_performance_needs_labels_or_uses_the_estimate() -> None:
    cfg = PerformanceTrigger(relative_drop=0.05, min_labels=200)
    few = ev(metric_value=0.5, baseline_value=0.9, metric_labels=20)
    assert not performance_trigger(few, cfg.model_copy(update={"use_estimate": False})).fired
    r = performance_trigger(ev(metric_value=0.5, baseline_value=0.9, metric_labels=20,
                               estimated_value=0.80), cfg)
    assert r.fired and r.reason.startswith("estimated") and r.numbers["estimated"] == 1.0
    assert not performance_trigger(ev(baseline_value=0.9), cfg).fired


# --------------------------------------------------------------------- schedule


def test_schedule_interval_counts_from_last_training() -> None:
    cfg = ScheduleTrigger(enabled=True, interval_s=7 * DAY)
    state = ModelState(model="m", last_training_at=100 * DAY - 8 * DAY)
    r = schedule_trigger(state, ev(), cfg)
    assert r.fired and not r.urgent and r.numbers["interval_s"] == 7 * DAY
    recent = ModelState(model="m", last_training_at=100 * DAY - 6 * DAY)
    assert not schedule_trigger(recent, ev(), cfg).fired
    # No training recorded: the champion's age stands in.
    assert schedule_trigger(ModelState(model="m"), ev(model_age_s=8 * DAY), cfg).fired
    assert not schedule_trigger(ModelState(model="m"), ev(), cfg).fired


def test_schedule_cron_fires_once_a_time_has_passed() -> None:
    cfg = ScheduleTrigger(enabled=True, cron="0 3 * * *")  # daily 03:00 UTC
    state = ModelState(model="m", last_training_at=ts(2026, 11, 24, 12, 0))
    before = schedule_trigger(state, ev(now=ts(2026, 11, 25, 2, 59)), cfg)
    after = schedule_trigger(state, ev(now=ts(2026, 11, 25, 3, 0)), cfg)
    assert not before.fired and after.fired
    assert "2026-11-25 03:00" in after.reason


def test_schedule_adaptive_interval_follows_volume() -> None:
    cfg = ScheduleTrigger(enabled=True)
    state = ModelState(model="m", last_training_at=100 * DAY - 10 * DAY)
    high = ev(labels_per_day=50_000)
    low = ev(labels_per_day=10)
    assert schedule_trigger(state, high, cfg, GuardsConfig()).fired  # 7 d interval
    r = schedule_trigger(state, low, cfg, GuardsConfig())  # 30 d interval
    assert not r.fired and r.numbers["interval_s"] == 30 * DAY
    assert not schedule_trigger(state, high, cfg, GuardsConfig(adaptive=False)).fired


def test_schedule_disabled_by_default() -> None:
    state = ModelState(model="m", last_training_at=0.0)
    assert not schedule_trigger(state, ev(), ScheduleTrigger()).fired


# ------------------------------------------------------------- age/volume/manual


def test_age_and_volume() -> None:
    age = AgeTrigger(enabled=True, max_age_s=30 * DAY)
    assert age_trigger(ev(model_age_s=31 * DAY), age).fired
    assert not age_trigger(ev(model_age_s=29 * DAY), age).fired
    assert not age_trigger(ev(), age).fired
    vol = VolumeTrigger(enabled=True, min_new_labels=1000)
    r = volume_trigger(ev(new_labels=1000), vol)
    assert r.fired and r.numbers == {"new_labels": 1000.0, "min_new_labels": 1000.0}
    assert not volume_trigger(ev(new_labels=999), vol).fired
    assert not volume_trigger(ev(new_labels=10**6), VolumeTrigger()).fired  # off by default


def test_manual_trigger() -> None:
    assert manual_trigger(ev(command=ManualCommand("retrain", reason="ops ticket"))).fired
    assert not manual_trigger(ev(command=ManualCommand("pause"))).fired
    assert not manual_trigger(ev()).fired


def test_evaluate_triggers_reports_every_trigger() -> None:
    res = evaluate_triggers(ModelState(model="m"), ev(), TriggersConfig())
    assert [r.name for r in res] == ["manual", "performance", "drift", "schedule", "age",
                                     "volume"]
    assert not any(r.fired for r in res)


# -------------------------------------------------------------------------- cron


def test_cron_fields() -> None:
    c = parse_cron("*/20 1-3,22 1,15 jan-mar mon")
    assert sorted(c.minutes) == [0, 20, 40]
    assert sorted(c.hours) == [1, 2, 3, 22]
    assert sorted(c.days) == [1, 15]
    assert sorted(c.months) == [1, 2, 3]
    assert c.weekdays == frozenset({0})  # Monday in Python's numbering
    assert sorted(parse_cron("5-20/5 * * * *").minutes) == [5, 10, 15, 20]
    assert parse_cron("0 0 * * 7").weekdays == parse_cron("0 0 * * 0").weekdays == {6}


def test_cron_day_of_month_or_day_of_week() -> None:
    # Vixie cron: both restricted -> either matches.
    c = parse_cron("0 0 13 * fri")
    assert c.matches(datetime(2026, 11, 13, tzinfo=UTC))  # a Friday the 13th
    assert c.matches(datetime(2026, 11, 20, tzinfo=UTC))  # a Friday
    assert c.matches(datetime(2026, 12, 13, tzinfo=UTC))  # a Sunday the 13th
    assert not c.matches(datetime(2026, 11, 19, tzinfo=UTC))
    only_dom = parse_cron("0 0 13 * *")
    assert not only_dom.matches(datetime(2026, 11, 20, tzinfo=UTC))


def test_cron_next_after() -> None:
    c = parse_cron("@monthly")
    nxt = c.next_after(ts(2026, 1, 31, 12, 0))
    assert datetime.fromtimestamp(nxt, UTC) == datetime(2026, 2, 1, tzinfo=UTC)
    # strictly after: a matching minute itself moves on to the next one
    assert c.next_after(ts(2026, 2, 1)) == ts(2026, 3, 1)
    leap = parse_cron("0 12 29 2 *").next_after(ts(2026, 3, 1))
    assert datetime.fromtimestamp(leap, UTC) == datetime(2028, 2, 29, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="never matches"):
        parse_cron("0 0 30 2 *").next_after(0.0)


@pytest.mark.parametrize(
    ("expr", "match"),
    [("* * * *", "5 fields"), ("60 * * * *", "minute value 60"), ("* 24 * * *", "hour"),
     ("* * 0 * *", "day of month value 0"), ("* * * foo *", "month field has a bad value 'foo'"),
     ("*/0 * * * *", "bad step"), ("5-1 * * * *", "reversed")],
)
def test_cron_errors_name_the_field(expr: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_cron(expr)


def test_cron_type_error() -> None:
    with pytest.raises(TypeError):
        parse_cron(5)  # type: ignore[arg-type]


def test_config_rejects_a_bad_cron() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="minute value 61"):
        ScheduleTrigger(cron="61 * * * *")
    with pytest.raises(ValidationError, match="never matches"):
        ScheduleTrigger(cron="0 0 31 2 *")
    assert ScheduleTrigger(cron="@weekly").cron == "@weekly"
