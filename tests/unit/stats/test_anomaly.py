"""Anomaly detectors: cross-checks with scipy/sklearn, Welford exactness, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.ensemble import IsolationForest

from autopilot.stats.anomaly import (
    AnomalyResult,
    Welford,
    ewma_control_limits,
    isolation_forest_anomalies,
    modified_zscore_anomalies,
    zscore_anomalies,
)


def test_zscore_matches_scipy_and_keeps_nan_positions() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, 300)
    x[[5, 50]] = np.nan
    x[100] = 30.0
    r = zscore_anomalies(x)
    ref = stats.zscore(x, nan_policy="omit")
    np.testing.assert_allclose(r.scores, ref, rtol=1e-12, equal_nan=True)
    assert r.indices.tolist() == [100]
    assert not r.is_anomaly[[5, 50]].any()


def test_modified_zscore_formula_and_robustness() -> None:
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(0, 1, 200), [8.0, 9.0, 10.0, 11.0, 12.0] * 4]  # 9 % heavy outliers
    r = modified_zscore_anomalies(x)
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    np.testing.assert_allclose(r.scores, 0.6745 * (x - med) / mad, rtol=1e-12)
    assert set(range(200, 220)) <= set(r.indices.tolist())
    # the plain z-score is masked by the same outliers it is judged by
    assert len(zscore_anomalies(x).indices) < 20


def test_modified_zscore_falls_back_when_mad_is_zero() -> None:
    x = np.array([5.0] * 10 + [6.0, 50.0])
    r = modified_zscore_anomalies(x)
    mean_ad = np.mean(np.abs(x - 5.0))
    np.testing.assert_allclose(r.scores, (x - 5.0) / (1.253314 * mean_ad), rtol=1e-12)
    assert r.indices.tolist() == [11]
    flat = modified_zscore_anomalies(np.ones(5))
    assert (flat.scores == 0).all() and flat.indices.size == 0


def test_ewma_chart_recursion_and_limits() -> None:
    rng = np.random.default_rng(2)
    x = np.r_[rng.normal(10, 2, 80), rng.normal(12, 2, 40)]
    chart = ewma_control_limits(x, lam=0.1, width=2.7, target=10.0, sigma=2.0)
    z = 10.0
    for t, value in enumerate(x, start=1):
        z = 0.1 * value + 0.9 * z
        assert chart.ewma[t - 1] == pytest.approx(z, rel=1e-12)
        half = 2.7 * 2.0 * math.sqrt(0.1 / 1.9 * (1 - 0.9 ** (2 * t)))
        assert chart.upper[t - 1] == pytest.approx(10.0 + half, rel=1e-12)
        assert chart.lower[t - 1] == pytest.approx(10.0 - half, rel=1e-12)
    assert chart.first_signal is not None and chart.first_signal >= 80
    assert np.array_equal(
        chart.out_of_control, (chart.ewma > chart.upper) | (chart.ewma < chart.lower)
    )


def test_ewma_in_control_false_alarms_are_rare() -> None:
    """lam=0.2, L=3 has an in-control ARL of about 560: few 100-point windows alarm."""
    rng = np.random.default_rng(3)
    alarms = [
        ewma_control_limits(rng.normal(0, 1, 100), target=0.0, sigma=1.0).first_signal is not None
        for _ in range(300)
    ]
    assert np.mean(alarms) < 0.2


def test_ewma_estimates_target_and_sigma_when_omitted() -> None:
    x = np.array([1.0, 2.0, 3.0, np.nan, 4.0])
    chart = ewma_control_limits(x)
    assert chart.target == pytest.approx(2.5) and chart.sigma == pytest.approx(
        np.std([1, 2, 3, 4], ddof=1)
    )
    assert chart.ewma[3] == chart.ewma[2]  # NaN carries the statistic forward


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
    st.integers(0, 60),
)
def test_welford_matches_numpy_and_merges_exactly(xs: list[float], cut: int) -> None:
    w = Welford()
    for v in xs:
        w.update(v)
    arr = np.asarray(xs)
    assert w.n == arr.size
    assert w.mean == pytest.approx(arr.mean(), rel=1e-9, abs=1e-6)
    scale = max(1.0, float(np.max(np.abs(arr))) ** 2)
    if arr.size > 1:
        assert w.variance == pytest.approx(arr.var(ddof=1), rel=1e-7, abs=1e-9 * scale)
    else:
        assert math.isnan(w.variance)
    left, right = Welford(), Welford()
    left.update_many(arr[:cut])
    right.update_many(arr[cut:])
    merged = left.merge(right)
    assert merged.n == w.n
    assert merged.mean == pytest.approx(w.mean, rel=1e-9, abs=1e-6)
    assert merged.variance_population == pytest.approx(
        w.variance_population, rel=1e-7, abs=1e-9 * scale
    )


def test_welford_is_stable_with_a_large_offset() -> None:
    rng = np.random.default_rng(4)
    x = 1e9 + rng.normal(0, 1, 10_000)
    w = Welford()
    for v in x:
        w.update(v)
    assert w.variance == pytest.approx(np.var(x, ddof=1), rel=1e-6)


def test_isolation_forest_wraps_sklearn() -> None:
    rng = np.random.default_rng(5)
    X = np.r_[rng.normal(0, 1, (400, 3)), [[7.0, 7.0, 7.0], [-8.0, 6.0, 0.0], [0.0, 0.0, 9.0]]]
    r = isolation_forest_anomalies(X, np.random.default_rng(0), contamination=0.01)
    assert isinstance(r, AnomalyResult)
    assert {400, 401, 402} <= set(r.indices.tolist())
    seed = int(np.random.default_rng(0).integers(0, 2**31 - 1))
    ref = IsolationForest(contamination=0.01, random_state=seed).fit(X)
    np.testing.assert_allclose(r.scores, -ref.score_samples(X), rtol=1e-12)
    assert np.array_equal(r.is_anomaly, ref.predict(X) == -1)
    again = isolation_forest_anomalies(X, np.random.default_rng(0), contamination=0.01)
    assert np.array_equal(again.scores, r.scores)


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="x is empty"):
        zscore_anomalies([])
    with pytest.raises(ValueError, match="x holds only NaN"):
        modified_zscore_anomalies([np.nan, np.nan])
    with pytest.raises(ValueError, match="x contains infinite"):
        zscore_anomalies([1.0, np.inf])
    with pytest.raises(ValueError, match="threshold must be positive"):
        zscore_anomalies([1.0, 2.0], threshold=0)
    with pytest.raises(ValueError, match="lam must lie in"):
        ewma_control_limits([1.0, 2.0], lam=0.0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        ewma_control_limits([1.0, 2.0], sigma=0.0)
    with pytest.raises(ValueError, match="x must be finite"):
        Welford().update(float("nan"))
    with pytest.raises(TypeError, match="can only merge a Welford"):
        Welford().merge(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="X contains NaN"):
        isolation_forest_anomalies([[1.0], [np.nan]], np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        isolation_forest_anomalies([[1.0], [2.0]], 0)  # type: ignore[arg-type]
