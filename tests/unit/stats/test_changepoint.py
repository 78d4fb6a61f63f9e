"""Least-squares change point: agrees with a brute-force l2 search, finds real shifts; the
OLS-CUSUM test agrees with statsmodels and holds its level."""

from __future__ import annotations

import numpy as np
import pytest

from autopilot.stats import CusumTest, cusum_test, locate_shift, mean_shift_point


def _brute_force(x: np.ndarray, min_size: int) -> int:
    # the split minimising the within-segment sum of squares, by definition
    costs = []
    for k in range(min_size, len(x) - min_size + 1):
        a, b = x[:k], x[k:]
        costs.append((((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum(), k))
    best = min(c for c, _ in costs)
    return min(k for c, k in costs if np.isclose(c, best, rtol=0, atol=1e-9))


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_least_squares(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 200))
    x = rng.normal(size=n) + (np.arange(n) >= rng.integers(1, n)) * rng.normal(0, 2)
    if seed % 3 == 0:
        x = (rng.random(n) < 0.3).astype(float)  # 0/1 error streams too
    min_size = int(rng.integers(1, 6))
    cp = mean_shift_point(x, min_size=min_size)
    assert cp.index == _brute_force(x, min_size)
    assert cp.mean_before == pytest.approx(x[:cp.index].mean(), rel=1e-12)
    assert cp.mean_after == pytest.approx(x[cp.index:].mean(), rel=1e-12)


def test_locates_error_rate_shift_within_a_few_percent():
    rng = np.random.default_rng(3)
    misses = []
    for _ in range(200):
        x = np.concatenate([rng.random(700) < 0.12, rng.random(300) < 0.35]).astype(float)
        misses.append(abs(mean_shift_point(x, min_size=20).index - 700))
    assert np.median(misses) <= 10
    assert np.mean(np.array(misses) <= 50) >= 0.95


def test_constant_series_has_zero_statistic():
    cp = mean_shift_point(np.ones(50), min_size=5)
    assert cp.statistic == 0.0 and cp.index == 5


@pytest.mark.parametrize(("x", "min_size", "message"), [
    ([1.0, 2.0, 3.0], 2, "at least 2 \\* min_size"),
    ([1.0, float("nan"), 3.0, 4.0], 1, "NaN"),
    ([1.0, 2.0], 0, "min_size"),
])
def test_bad_input_is_named(x, min_size, message):
    with pytest.raises(ValueError, match=message):
        mean_shift_point(x, min_size=min_size)


def test_locate_shift_clamps_the_segment_size_to_short_series():
    x = np.array([0.0] * 15 + [1.0] * 15)
    assert locate_shift(x).index == 15  # 30 values: segments of 15, not 20
    assert locate_shift(x, min_size=5) == mean_shift_point(x, min_size=5)
    long = np.concatenate([np.zeros(10), np.ones(90)])
    assert locate_shift(long).index == 20  # min_size 20 keeps the split off the edge
    with pytest.raises(ValueError, match="at least 2"):
        locate_shift([1.0])


@pytest.mark.parametrize("seed", range(5))
def test_cusum_test_matches_statsmodels(seed):
    from statsmodels.stats.diagnostic import breaks_cusumolsresid

    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    x = np.concatenate([rng.normal(0, 1, n // 2), rng.normal(rng.uniform(0, 0.3), 1, n - n // 2)])
    ours = cusum_test(x)
    stat, p, _ = breaks_cusumolsresid(x - x.mean(), ddof=1)
    assert ours.statistic == pytest.approx(stat, rel=1e-12)
    assert ours.p_value == pytest.approx(p, rel=1e-10)


def test_cusum_test_false_positive_rate_on_a_steady_error_stream():
    # 0/1 errors at a fixed rate: the asymptotic test should reject at about alpha, not more
    rng = np.random.default_rng(7)
    p = np.array([cusum_test((rng.random(1000) < 0.15).astype(float)).p_value
                  for _ in range(2000)])
    for alpha in (0.01, 0.05):
        assert np.mean(p <= alpha) <= alpha * 1.3
    assert np.mean(p <= 0.05) >= 0.025  # and not absurdly conservative


def test_cusum_test_power_on_a_shift():
    rng = np.random.default_rng(8)
    hits = [cusum_test(np.concatenate([rng.random(700) < 0.12,
                                       rng.random(300) < 0.22]).astype(float)).p_value <= 0.01
            for _ in range(300)]
    assert np.mean(hits) >= 0.8


def test_cusum_test_constant_and_bad_input():
    assert cusum_test(np.ones(10)) == CusumTest(0.0, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        cusum_test([1.0])
    with pytest.raises(ValueError, match="NaN"):
        cusum_test([1.0, float("nan"), 2.0])
