"""Guards (interval, concurrency, history, low-usage window, adaptive) and the offline gate."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from autopilot.config import GateConfig, GuardsConfig
from autopilot.policy.gate import metric_function, run_gate
from autopilot.policy.guards import adaptive_interval, check_guards, in_low_usage_window
from autopilot.policy.types import Evidence, GateEvidence, ModelState

DAY = 86400.0
NOON = datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp()
NIGHT = datetime(2026, 11, 25, 2, tzinfo=UTC).timestamp()


def ev(now: float = NOON, **kw: object) -> Evidence:
    return Evidence(model="m", now=now, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------- guards


def test_min_interval_blocks_even_urgent() -> None:
    state = ModelState(model="m", last_training_at=NOON - 1800)
    r = check_guards(state, ev(), GuardsConfig(min_interval_s=3600), urgent=True)
    assert not r.allowed and r.guard == "min_interval" and r.numbers["since_last_s"] == 1800
    assert check_guards(state, ev(now=NOON + 1801), GuardsConfig(min_interval_s=3600),
                        urgent=True).allowed


def test_concurrency_limit_default_three() -> None:
    state = ModelState(model="m")
    assert check_guards(state, ev(running_trainings=2), GuardsConfig(), urgent=True).allowed
    r = check_guards(state, ev(running_trainings=3), GuardsConfig(), urgent=True)
    assert not r.allowed and r.guard == "concurrency" and "max_concurrent 3" in r.reason


def test_per_model_history_limit() -> None:
    hist = (NOON - 30 * 3600, NOON - 20 * 3600, NOON - 10 * 3600, NOON - 5 * 3600)
    state = ModelState(model="m", last_training_at=hist[-1], training_history=hist)
    cfg = GuardsConfig(max_per_day=3)
    r = check_guards(state, ev(), cfg, urgent=True)
    assert not r.allowed and r.guard == "history" and r.numbers["trainings_24h"] == 3
    assert check_guards(state, ev(), GuardsConfig(max_per_day=4), urgent=True).allowed


def test_low_usage_window_defers_only_routine_retrains() -> None:
    cfg = GuardsConfig(low_usage_hours=(22, 4))
    state = ModelState(model="m")
    routine = check_guards(state, ev(), cfg, urgent=False)
    assert not routine.allowed and routine.guard == "low_usage_window"
    assert "22:00-04:00" in routine.reason
    assert check_guards(state, ev(), cfg, urgent=True).allowed
    assert check_guards(state, ev(now=NIGHT), cfg, urgent=False).allowed


def test_retry_backoff_after_an_attempt_that_did_not_replace_the_champion() -> None:
    state = ModelState(model="m", last_training_at=NOON - 3 * 3600)
    failed = ev(model_age_s=10 * DAY)  # champion older than the last attempt
    r = check_guards(state, failed, GuardsConfig(), urgent=False)
    assert not r.allowed and r.guard == "retry_backoff"
    assert check_guards(state, failed, GuardsConfig(), urgent=True).allowed
    assert check_guards(state, failed, GuardsConfig(retry_backoff_s=3600), urgent=False).allowed
    replaced = ev(model_age_s=2.5 * 3600)  # the last attempt produced this champion
    assert check_guards(state, replaced, GuardsConfig(), urgent=False).allowed


def test_low_usage_window_edges() -> None:
    def at(h: int) -> float:
        return datetime(2026, 1, 1, h, tzinfo=UTC).timestamp()

    assert in_low_usage_window(at(1), (1, 5)) and not in_low_usage_window(at(5), (1, 5))
    assert in_low_usage_window(at(0), (22, 4)) and not in_low_usage_window(at(4), (22, 4))
    assert in_low_usage_window(at(13), (3, 3)) and in_low_usage_window(at(13), None)
    with pytest.raises(ValueError, match="25"):
        in_low_usage_window(at(0), (25, 3))


@pytest.mark.parametrize(("rate", "days"), [(20_000, 7), (10_000, 7), (5_000, 14), (999, 30),
                                            (None, 30)])
def test_adaptive_interval_by_volume(rate: float | None, days: int) -> None:
    interval, why = adaptive_interval(ev(labels_per_day=rate), GuardsConfig())
    assert interval == days * DAY
    assert why.split()[0] in {"high", "medium", "low"}


def test_adaptive_interval_shrinks_when_performance_slips() -> None:
    slipping = ev(labels_per_day=5_000, metric_value=0.87, baseline_value=0.90)
    steady = ev(labels_per_day=5_000, metric_value=0.89, baseline_value=0.90)
    assert adaptive_interval(slipping, GuardsConfig())[0] == 7 * DAY
    assert "below baseline" in adaptive_interval(slipping, GuardsConfig())[1]
    assert adaptive_interval(steady, GuardsConfig())[0] == 14 * DAY


# ------------------------------------------------------------------------- gate


def _classifier_rows(n: int, acc_a: float, acc_b: float, seed: int = 0) -> GateEvidence:
    r = np.random.default_rng(seed)
    y = r.integers(0, 2, n)
    a = np.where(r.random(n) < acc_a, y, 1 - y)
    b = np.where(r.random(n) < acc_b, y, 1 - y)
    return GateEvidence(y, a, b, "accuracy")


def test_gate_mcnemar_passes_a_better_candidate(rng: np.random.Generator) -> None:
    res = run_gate(_classifier_rows(1000, 0.75, 0.88), GateConfig(), rng)
    assert res.passed and res.method.startswith("mcnemar") and res.n == 1000
    assert res.effect == pytest.approx(0.13, abs=0.04) and res.p_value < 0.05
    assert "beats" in res.reason


def test_gate_mcnemar_archives_equal_or_worse(rng: np.random.Generator) -> None:
    same = run_gate(_classifier_rows(1000, 0.80, 0.80, seed=1), GateConfig(), rng)
    worse = run_gate(_classifier_rows(1000, 0.85, 0.70), GateConfig(), rng)
    assert not same.passed and not worse.passed
    assert worse.effect < 0 and worse.p_value < 0.05  # significant, but the wrong way
    assert "does not significantly beat" in worse.reason


def test_gate_bootstrap_for_other_metrics(rng: np.random.Generator) -> None:
    r = np.random.default_rng(3)
    y = r.normal(size=400)
    good = y + r.normal(0, 0.3, 400)
    bad = y + r.normal(0, 0.8, 400)
    cfg = GateConfig(bootstrap_resamples=300)
    res = run_gate(GateEvidence(y, bad, good, "rmse"), cfg, rng)
    assert res.passed and res.method == "paired_bootstrap" and res.effect > 0  # negated loss
    assert not run_gate(GateEvidence(y, good, bad, "rmse"), cfg, rng).passed
    scores = r.random(400)
    labels = (scores + r.normal(0, 0.2, 400) > 0.5).astype(int)
    auc = run_gate(GateEvidence(labels, r.random(400), scores, "roc_auc"), cfg, rng)
    assert auc.passed and auc.effect > 0.3


def test_gate_waits_for_enough_rows(rng: np.random.Generator) -> None:
    res = run_gate(_classifier_rows(50, 0.5, 1.0), GateConfig(min_rows=200), rng)
    assert not res.passed and res.method == "insufficient_data" and "50" in res.reason


def test_gate_non_inferior_mode(rng: np.random.Generator) -> None:
    cfg = GateConfig(mode="non_inferior", margin=0.03)
    assert run_gate(_classifier_rows(3000, 0.80, 0.80, seed=2), cfg, rng).passed
    assert not run_gate(_classifier_rows(3000, 0.85, 0.75), cfg, rng).passed


def test_gate_bad_input(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="paired"):
        run_gate(GateEvidence(np.zeros(300), np.zeros(300), np.zeros(299)), GateConfig(), rng)
    with pytest.raises(ValueError, match="'brier'"):
        run_gate(GateEvidence(np.zeros(300), np.zeros(300), np.ones(300), "brier"),
                 GateConfig(), rng)


def test_metric_functions_are_higher_is_better() -> None:
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0, 1, 0, 0, 1])
    assert metric_function("accuracy")(y, p) == pytest.approx(0.8)
    assert metric_function("f1")(y, p) == pytest.approx(0.8)
    assert metric_function("balanced_accuracy")(y, p) == pytest.approx((1.0 + 2 / 3) / 2)
    assert metric_function("roc_auc")(y, np.array([0.1, 0.9, 0.4, 0.3, 0.8])) == 1.0
    assert metric_function("mae")(np.array([1.0, 3.0]), np.array([2.0, 3.0])) == -0.5
    assert metric_function("r2")(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == 1.0
    assert metric_function("log_loss")(np.array([1, 0]), np.array([1.0, 0.0])) == pytest.approx(0)
