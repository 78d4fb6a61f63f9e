"""mSPRT: formula, incremental form, always-valid error control vs naive peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from autopilot.stats.sequential import (
    MsprtStep,
    SequentialResult,
    estimate_sigma2,
    mean_confidence_sequence,
    msprt,
    msprt_from_sums,
    msprt_proportions,
    msprt_proportions_from_counts,
)


def _paper_lambda(a: np.ndarray, b: np.ndarray, n: int, sigma2: float, tau2: float) -> float:
    """Johari et al. (2017), eq. for two streams with n pairs, written out independently."""
    d = b[:n].mean() - a[:n].mean()
    return math.sqrt(2 * sigma2 / (2 * sigma2 + n * tau2)) * math.exp(
        n * n * tau2 * d * d / (4 * sigma2 * (2 * sigma2 + n * tau2))
    )


def test_pvalues_follow_the_paper_formula() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1.5, 300), rng.normal(0.3, 1.5, 300)
    r = msprt(a, b, sigma2=2.25, tau2=0.1)
    running = 1.0
    for n in range(1, 301):
        running = min(running, 1.0 / _paper_lambda(a, b, n, 2.25, 0.1))
        assert r.p_values[n - 1] == pytest.approx(min(1.0, running), rel=1e-9)
    assert r.n == 300 and r.p_value == r.p_values[-1]
    assert r.estimate == pytest.approx(b.mean() - a.mean(), rel=1e-12)


def test_confidence_sequence_agrees_with_pvalue_and_inverts_lambda() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 800), rng.normal(0.25, 1, 800)
    r = msprt(a, b, sigma2=1.0, tau2=0.05)
    # Per step: theta is inside iff Lambda_n(theta) < 1/alpha; check both edges at n = 500.
    n, d = 500, b[:500].mean() - a[:500].mean()
    v = 2.0 / n
    w = math.sqrt(2 * v * (v + 0.05) / 0.05 * (math.log(20) + 0.5 * math.log((v + 0.05) / v)))
    for theta in (d - w, d + w):
        lam = math.sqrt(v / (v + 0.05)) * math.exp(0.05 * (d - theta) ** 2 / (2 * v * (v + 0.05)))
        assert lam == pytest.approx(20.0, rel=1e-9)
    assert (np.diff(r.ci_lows) >= 0).all() and (np.diff(r.ci_highs) <= 0).all()
    zero_out = (r.ci_lows > 0) | (r.ci_highs < 0)
    assert np.array_equal(zero_out, r.p_values <= 0.05)
    assert r.rejected and r.first_rejection == int(np.flatnonzero(r.p_values <= 0.05)[0])


def test_incremental_form_equals_batch() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(5, 2, 400), rng.normal(5.3, 2, 400)
    batch = msprt(a, b, sigma2=4.0, tau2=0.09)
    p = 1.0
    lo, hi = -math.inf, math.inf
    for n in range(1, 401):
        step = msprt_from_sums(n, a[:n].mean(), n, b[:n].mean(), 4.0, 0.09, prev_min_p=p)
        p = step.p_value
        lo, hi = max(lo, step.ci_low), min(hi, step.ci_high)
        assert p == pytest.approx(batch.p_values[n - 1], rel=1e-9)
    assert isinstance(step, MsprtStep)
    assert lo == pytest.approx(batch.ci_low, rel=1e-9)
    assert hi == pytest.approx(batch.ci_high, rel=1e-9)


def test_proportions_incremental_equals_batch() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(3000) < 0.1, rng.random(3000) < 0.14
    batch = msprt_proportions(a, b, tau2=0.03**2)
    p = 1.0
    for n in range(1, 3001):  # every pair: identical to the batch form
        step = msprt_proportions_from_counts(n, int(a[:n].sum()), n, int(b[:n].sum()), 0.03**2, p)
        p = step.p_value
        assert p == pytest.approx(batch.p_values[n - 1], rel=1e-9)
    p = 1.0
    for n in range(37, 3001, 37):  # coarser ticks see fewer of the running minima
        step = msprt_proportions_from_counts(n, int(a[:n].sum()), n, int(b[:n].sum()), 0.03**2, p)
        p = step.p_value
        assert p >= batch.p_values[n - 1] - 1e-12
    assert batch.rejected
    assert batch.estimate == pytest.approx(b.mean() - a.mean())


def test_proportions_without_variance_stay_at_one() -> None:
    r = msprt_proportions(np.zeros(50), np.zeros(50), tau2=0.01)
    assert (r.p_values == 1.0).all() and r.first_rejection is None
    step = msprt_proportions_from_counts(100, 0, 100, 0, tau2=0.01)
    assert step.p_value == 1.0 and not step.rejected
    empty = msprt_from_sums(0, 0.0, 10, 1.0, 1.0, 0.1, prev_min_p=0.3)
    assert empty.p_value == 0.3 and math.isnan(empty.estimate)


def test_always_valid_vs_naive_peeking_in_long_aa_run() -> None:
    """A/A runs checked after every pair: mSPRT stays under alpha, naive t-tests do not."""
    rng = np.random.default_rng(2017)
    runs, n, alpha = 600, 1000, 0.05
    a = rng.normal(0, 1, (runs, n))
    b = rng.normal(0, 1, (runs, n))
    msprt_fp = np.mean([msprt(a[i], b[i], sigma2=1.0, tau2=0.01).rejected for i in range(runs)])
    # naive: Welch t-test on all data so far, after every pair from n = 2 on
    k = np.arange(1, n + 1, dtype=float)
    ma, mb = np.cumsum(a, 1) / k, np.cumsum(b, 1) / k
    va = (np.cumsum(a * a, 1) - k * ma**2)[:, 1:] / (k[1:] - 1)
    vb = (np.cumsum(b * b, 1) - k * mb**2)[:, 1:] / (k[1:] - 1)
    kk = k[1:]
    se2 = va / kk + vb / kk
    t = (mb - ma)[:, 1:] / np.sqrt(se2)
    df = se2**2 / ((va / kk) ** 2 / (kk - 1) + (vb / kk) ** 2 / (kk - 1))
    naive_p = 2 * stats.t.sf(np.abs(t), df)
    naive_fp = float(np.mean((naive_p < alpha).any(axis=1)))
    print(
        f"A/A false-positive rate over {n} looks: msprt={msprt_fp:.3f} naive t-test={naive_fp:.3f}"
    )
    margin = 3 * math.sqrt(alpha * (1 - alpha) / runs)
    assert msprt_fp <= alpha + margin
    assert naive_fp >= 3 * alpha


def test_confidence_sequence_covers_uniformly() -> None:
    rng = np.random.default_rng(4)
    runs, n, theta = 300, 500, 0.4
    misses = 0
    for _ in range(runs):
        r = msprt(rng.normal(0, 1, n), rng.normal(theta, 1, n), sigma2=1.0, tau2=0.1)
        misses += not (r.ci_lows <= theta).all() or not (r.ci_highs >= theta).all()
    assert misses / runs <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


def test_power_against_a_real_effect() -> None:
    rng = np.random.default_rng(5)
    hits = [
        msprt(rng.normal(0, 1, 2000), rng.normal(0.2, 1, 2000), 1.0, 0.04).rejected
        for _ in range(100)
    ]
    assert np.mean(hits) > 0.8


def test_estimate_sigma2_is_pooled_variance() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 2, 300), rng.normal(3, 2, 500)
    pooled = (299 * a.var(ddof=1) + 499 * b.var(ddof=1)) / 798
    assert estimate_sigma2(a, b) == pytest.approx(pooled, rel=1e-12)
    assert estimate_sigma2(a) == pytest.approx(a.var(ddof=1), rel=1e-12)
    with pytest.raises(ValueError, match="constant"):
        estimate_sigma2([1.0, 1.0, 1.0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=60),
    st.floats(0.01, 100),
    st.floats(0.001, 10),
)
def test_pvalues_in_unit_interval_and_non_increasing(x: list[float], s2: float, t2: float) -> None:
    a = np.asarray(x)
    b = a[::-1] * 0.5
    r = msprt(a, b, s2, t2)
    assert isinstance(r, SequentialResult)
    assert ((r.p_values >= 0) & (r.p_values <= 1)).all()
    assert (np.diff(r.p_values) <= 0).all()
    swapped = msprt(b, a, s2, t2)  # the test is symmetric in the two arms
    np.testing.assert_allclose(swapped.p_values, r.p_values, rtol=1e-12)
    assert swapped.estimate == pytest.approx(-r.estimate, abs=1e-9)


def test_result_arrays_are_read_only() -> None:
    r = msprt([1.0, 2.0], [2.0, 3.0], 1.0, 1.0)
    with pytest.raises(ValueError):
        r.p_values[0] = 0.0


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="control and treatment must be paired"):
        msprt([1.0, 2.0], [1.0], 1.0, 1.0)
    with pytest.raises(ValueError, match="treatment contains NaN"):
        msprt([1.0, 2.0], [1.0, np.nan], 1.0, 1.0)
    with pytest.raises(ValueError, match="control is empty"):
        msprt([], [], 1.0, 1.0)
    with pytest.raises(ValueError, match="sigma2 must be a positive"):
        msprt([1.0], [1.0], 0.0, 1.0)
    with pytest.raises(ValueError, match="tau2 must be a positive"):
        msprt([1.0], [1.0], 1.0, -1.0)
    with pytest.raises(ValueError, match="control must hold booleans"):
        msprt_proportions([0, 2], [1, 0], 0.1)
    with pytest.raises(ValueError, match="n_a must be a non-negative integer"):
        msprt_from_sums(-1, 0.0, 1, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="mean_b must be finite"):
        msprt_from_sums(3, 0.0, 3, float("nan"), 1.0, 1.0)
    with pytest.raises(ValueError, match="prev_min_p"):
        msprt_from_sums(3, 0.0, 3, 0.0, 1.0, 1.0, prev_min_p=2.0)
    with pytest.raises(ValueError, match="successes exceed trials"):
        msprt_proportions_from_counts(10, 11, 10, 1, 0.1)
    with pytest.raises(ValueError, match="control holds only NaN"):
        estimate_sigma2([np.nan, np.nan])


def test_mean_confidence_sequence_is_the_mixture_boundary_around_one_mean() -> None:
    # Ville: the mixture martingale for the mean equals 1/alpha exactly at both edges
    low, high = mean_confidence_sequence(37.0, 50, sigma2=0.25, tau2=0.002, alpha=0.05)
    v, mean = 0.25 / 50, 37.0 / 50
    for theta in (low, high):
        lam = math.sqrt(v / (v + 0.002)) * math.exp(0.002 * (mean - theta) ** 2
                                                    / (2 * v * (v + 0.002)))
        assert lam == pytest.approx(20.0, rel=1e-9)
    assert (low + high) / 2 == pytest.approx(mean, rel=1e-12)
    # wider than the fixed-n normal interval it replaces (the price of peeking)
    z = stats.norm.ppf(0.975) * math.sqrt(mean * (1 - mean) / 50)
    assert high - mean > z
    assert mean_confidence_sequence(0.0, 0, sigma2=0.25, tau2=0.01) == (-math.inf, math.inf)


@pytest.mark.parametrize("p", [0.5, 0.85])
def test_mean_confidence_sequence_covers_0_1_outcomes_at_every_n(p: float) -> None:
    # sigma2 = 1/4 bounds any 0/1 variable: the guarantee is exact, checked after every row
    rng = np.random.default_rng(7)
    runs, n, alpha = 1000, 1000, 0.05
    k = np.arange(1, n + 1)
    # the half-width depends on n only: read it off the function once per n
    width = np.array([mean_confidence_sequence(0.0, i, 0.25, 0.002, alpha)[1] for i in k])
    m = np.cumsum(rng.random((runs, n)) < p, axis=1) / k
    misses = (np.abs(m - p) > width).any(axis=1).mean()
    half = stats.norm.ppf(1 - alpha / 2) * np.sqrt(m * (1 - m) / k)
    naive = (np.abs(m - p) > half)[:, 29:].any(axis=1).mean()  # peeking at a fixed-n interval
    assert misses <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)
    assert naive >= 3 * alpha


def test_mean_confidence_sequence_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        mean_confidence_sequence(1.0, -1, 0.25, 0.01)
    with pytest.raises(ValueError, match="sigma2"):
        mean_confidence_sequence(1.0, 2, 0.0, 0.01)
    with pytest.raises(ValueError, match="tau2"):
        mean_confidence_sequence(1.0, 2, 0.25, -1.0)
    with pytest.raises(ValueError, match="alpha"):
        mean_confidence_sequence(1.0, 2, 0.25, 0.01, alpha=1.5)
