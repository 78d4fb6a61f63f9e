"""Beta-Binomial P(B > A): exact sum vs numerical integration and Monte Carlo; Thompson weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as sps

from autopilot.stats.bayes import prob_b_beats_a, thompson_weights


def _by_quadrature(sa: int, na: int, sb: int, nb: int) -> float:
    pa, pb = sps.beta(1 + sa, 1 + na - sa), sps.beta(1 + sb, 1 + nb - sb)
    centre = [(sa + 1) / (na + 2), (sb + 1) / (nb + 2)]
    value, _ = integrate.quad(lambda x: pb.pdf(x) * pa.cdf(x), 0, 1, points=centre, limit=500)
    return float(value)


@pytest.mark.parametrize(
    "case",
    [
        (100, 1000, 130, 1000),
        (3, 10, 7, 12),
        (900, 1000, 850, 1000),
        (0, 5, 5, 5),
        (1, 1, 0, 1),
        (250, 400, 240, 410),
        (12, 900, 20, 1100),
    ],
)
def test_exact_sum_matches_numerical_integration(case: tuple[int, int, int, int]) -> None:
    assert prob_b_beats_a(*case) == pytest.approx(_by_quadrature(*case), rel=1e-7, abs=1e-12)


@pytest.mark.parametrize(
    "case", [(480, 10_000, 540, 10_000), (20_000, 400_000, 20_300, 400_000), (5, 50, 9, 60)]
)
def test_exact_sum_matches_monte_carlo(case: tuple[int, int, int, int]) -> None:
    sa, na, sb, nb = case
    rng = np.random.default_rng(0)
    draws = 400_000
    mc = np.mean(rng.beta(1 + sb, 1 + nb - sb, draws) > rng.beta(1 + sa, 1 + na - sa, draws))
    exact = prob_b_beats_a(*case)
    assert abs(exact - mc) < 4.5 * np.sqrt(exact * (1 - exact) / draws) + 1e-9


def test_known_values() -> None:
    assert prob_b_beats_a(0, 0, 0, 0) == 0.5
    # one success each way in one trial: P(U1 > U2) for Beta(1,2) vs Beta(2,1) is 5/6
    assert prob_b_beats_a(0, 1, 1, 1) == pytest.approx(5 / 6, rel=1e-12)
    assert prob_b_beats_a(10, 20, 10, 20) == pytest.approx(0.5, rel=1e-12)


def test_large_counts_do_not_overflow() -> None:
    p = prob_b_beats_a(3_000_000, 10_000_000, 3_004_000, 10_000_000)
    assert 0.0 < p < 1.0
    z = (0.3004 - 0.3) / np.sqrt(2 * 0.3 * 0.7 / 1e7)
    assert p == pytest.approx(sps.norm.cdf(z), abs=1e-3)


small = st.integers(0, 300)


@settings(max_examples=100, deadline=None)
@given(small, small, small, small)
def test_probability_bounds_and_complement(x: int, y: int, u: int, v: int) -> None:
    sa, na = min(x, y), max(x, y)
    sb, nb = min(u, v), max(u, v)
    ab = prob_b_beats_a(sa, na, sb, nb)
    ba = prob_b_beats_a(sb, nb, sa, na)
    assert 0.0 <= ab <= 1.0
    assert ab + ba == pytest.approx(1.0, abs=1e-9)  # continuous: ties have probability 0
    if sb < nb:  # one more success for B (same trials) can only help B
        assert prob_b_beats_a(sa, na, sb + 1, nb) >= ab - 1e-12


def test_prob_bad_input() -> None:
    with pytest.raises(ValueError, match="successes_a=5 exceeds trials_a=3"):
        prob_b_beats_a(5, 3, 1, 2)
    with pytest.raises(ValueError, match="trials_b must be a non-negative integer"):
        prob_b_beats_a(1, 3, 1, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="successes_b must be a non-negative integer"):
        prob_b_beats_a(1, 3, -1, 2)


def test_thompson_weights_floor_sum_and_preference() -> None:
    rng = np.random.default_rng(0)
    w = thompson_weights([10, 30, 12], [90, 70, 88], rng, floor=0.05)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert (w >= 0.05 - 1e-12).all()
    assert int(np.argmax(w)) == 1
    even = thompson_weights([50, 50], [50, 50], np.random.default_rng(1), floor=0.0)
    assert even == pytest.approx([0.5, 0.5], abs=0.02)
    assert thompson_weights([3], [4], rng).tolist() == [1.0]


def test_thompson_two_arms_matches_exact_probability() -> None:
    draws, floor = 200_000, 0.02
    w = thompson_weights([40, 52], [360, 348], np.random.default_rng(3), floor=floor, draws=draws)
    p_b = prob_b_beats_a(40, 400, 52, 400)
    assert (w[1] - floor) / (1 - 2 * floor) == pytest.approx(p_b, abs=4 * np.sqrt(0.25 / draws))


def test_thompson_reproducible_with_seed() -> None:
    a = thompson_weights([5, 6, 7], [5, 4, 3], np.random.default_rng(9), draws=1000)
    b = thompson_weights([5, 6, 7], [5, 4, 3], np.random.default_rng(9), draws=1000)
    assert np.array_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500)), min_size=1, max_size=6),
    st.floats(0, 1),
)
def test_thompson_weights_properties(arms: list[tuple[int, int]], frac: float) -> None:
    k = len(arms)
    floor = frac / k
    s, f = zip(*arms, strict=True)
    w = thompson_weights(list(s), list(f), np.random.default_rng(0), floor=floor, draws=500)
    assert w.shape == (k,)
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    assert (w >= floor - 1e-12).all()


def test_thompson_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"floor must lie in \[0, 1/3\]"):
        thompson_weights([1, 2, 3], [1, 2, 3], rng, floor=0.4)
    with pytest.raises(ValueError, match="one entry per arm"):
        thompson_weights([1, 2], [1, 2, 3], rng)
    with pytest.raises(ValueError, match="failures must be finite and non-negative"):
        thompson_weights([1, 2], [1, -2], rng)
    with pytest.raises(ValueError, match="successes must be a non-empty"):
        thompson_weights([], [], rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        thompson_weights([1], [1], 0)  # type: ignore[arg-type]
