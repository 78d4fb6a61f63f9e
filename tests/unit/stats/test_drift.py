"""Univariate drift checks: scipy cross-checks, error rates, properties, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from autopilot.stats import (
    DriftResult,
    chi2_test,
    hellinger,
    jensen_shannon,
    kl_divergence,
    ks_test,
    psi,
    wasserstein,
)
from autopilot.stats.drift import _bin_counts, _quantile_edges, _sketch

REL = 1e-9


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


# ---------------------------------------------------------------- scipy cross-checks

KS_SIZES = [(5, 7), (30, 30), (100, 37), (999, 1000), (3000, 4500), (10_000, 10_000),
            (10_001, 400), (20_000, 15_000)]


@pytest.mark.parametrize(("n", "m"), KS_SIZES)
@pytest.mark.parametrize("shift", [0.0, 0.1])
@pytest.mark.parametrize("ties", [False, True])
def test_ks_equals_scipy_ks_2samp(n: int, m: int, shift: float, ties: bool) -> None:
    rng = np.random.default_rng(n * 7 + m)
    a = rng.normal(size=n)
    b = rng.normal(shift, 1.0, size=m)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    ours = ks_test(a, b)
    ref = stats.ks_2samp(a, b)
    assert _rel(ours.statistic, float(ref.statistic)) <= REL
    assert _rel(ours.p_value, float(ref.pvalue)) <= REL
    assert ours.drifted == (ref.pvalue < 0.05)


def test_ks_drops_nan_like_scipy_omit() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=200)
    b = rng.normal(0.3, 1.0, size=150)
    a[::17] = np.nan
    ref = stats.ks_2samp(a, b, nan_policy="omit")
    ours = ks_test(a, b)
    assert _rel(ours.p_value, float(ref.pvalue)) <= REL


@pytest.mark.parametrize("n", [50, 2000])
def test_wasserstein_equals_scipy_over_reference_std(n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.lognormal(size=n)
    b = np.round(rng.lognormal(0.2, 1.0, size=n + 13), 1)
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert _rel(wasserstein(a, b).statistic, expected) <= REL


def test_chi2_equals_chi2_contingency_with_unseen_category() -> None:
    rng = np.random.default_rng(5)
    ref = rng.choice(["a", "b", "c"], size=400, p=[0.5, 0.3, 0.2])
    cur = rng.choice(["a", "b", "c", "new"], size=300, p=[0.4, 0.3, 0.2, 0.1])
    table = np.array([[np.sum(ref == k) for k in "abc"] + [0],
                      [np.sum(cur == k) for k in "abc"] + [np.sum(cur == "new")]])
    expected = stats.chi2_contingency(table, correction=False)
    res = chi2_test(ref, cur)
    assert _rel(res.statistic, float(expected.statistic)) <= REL
    assert _rel(res.p_value, float(expected.pvalue)) <= REL
    assert res.drifted


def _decile_shares(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.quantile(a, np.arange(1, 10) / 10)
    full = np.concatenate(([-np.inf], edges, [np.inf]))
    ca = np.histogram(a, full)[0]
    cb = np.histogram(b, full)[0]
    return ca / ca.sum(), cb / cb.sum()


def test_binned_measures_equal_scipy_on_deciles() -> None:
    rng = np.random.default_rng(11)
    a = rng.normal(size=3000)
    b = rng.normal(0.3, 1.2, size=2500)
    p, q = _decile_shares(a, b)
    assert (p > 0).all() and (q > 0).all()  # no smoothing involved here
    assert _rel(jensen_shannon(a, b).statistic, float(jensenshannon(p, q, base=2))) <= REL
    assert _rel(kl_divergence(a, b).statistic, float(special.rel_entr(p, q).sum())) <= REL
    assert _rel(kl_divergence(a, b).statistic, float(stats.entropy(p, q))) <= REL
    assert _rel(psi(a, b).statistic, float(np.sum((q - p) * np.log(q / p)))) <= REL
    expected_h = np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2)
    assert _rel(hellinger(a, b).statistic, float(expected_h)) <= REL


def test_categorical_binned_measures_by_category() -> None:
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 20 + ["b"] * 30 + ["c"] * 40 + ["d"] * 10  # "d" unseen in the reference
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.2, 0.3, 0.4, 0.1])
    assert _rel(jensen_shannon(ref, cur).statistic, float(jensenshannon(p, q, base=2))) <= REL
    # PSI and KL smooth the empty reference share to 1e-4 and renormalise.
    ps = np.where(p == 0, 1e-4, p)
    ps = ps / ps.sum()
    assert _rel(psi(ref, cur).statistic, float(np.sum((q - ps) * np.log(q / ps)))) <= REL
    assert _rel(kl_divergence(ref, cur).statistic, float(special.rel_entr(ps, q).sum())) <= REL


def test_psi_bins_are_reference_deciles_open_at_both_ends() -> None:
    ref = np.arange(1.0, 101.0)
    edges = _quantile_edges(ref, 10)
    assert edges.size == 9
    np.testing.assert_allclose(edges, np.quantile(ref, np.arange(1, 10) / 10))
    counts = _bin_counts(np.sort(ref), edges)
    assert counts.tolist() == [10] * 10
    # values far outside the reference fall into the open outer bins
    assert _bin_counts(np.array([-1e9, 1e9]), edges).tolist() == [1] + [0] * 8 + [1]


def test_psi_on_discrete_reference_merges_duplicate_edges() -> None:
    ref = np.array([0.0] * 80 + [1.0] * 20)
    edges = _quantile_edges(ref, 10)
    # nine deciles, but ties leave three distinct edges (0.8-quantile interpolates)
    assert edges.tolist() == pytest.approx([0.0, 0.2, 1.0])
    assert psi(ref, ref).statistic == 0.0


def test_sketch_keeps_ecdf_within_half_over_k() -> None:
    rng = np.random.default_rng(2)
    full = np.sort(rng.normal(size=12_345))
    k = 1000
    sk = _sketch(full, k)
    assert sk.size == k and np.all(np.diff(sk) >= 0)
    grid = np.linspace(-4, 4, 2001)
    f_full = np.searchsorted(full, grid, side="right") / full.size
    f_sk = np.searchsorted(sk, grid, side="right") / k
    assert np.max(np.abs(f_full - f_sk)) <= 0.5 / k + 1e-12


def test_wasserstein_is_in_reference_std_units() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(100.0, 20.0, size=4000)
    res = wasserstein(ref, ref + 5.0)  # about a quarter of a std
    assert res.statistic == pytest.approx(5.0 / np.std(ref), rel=1e-9)
    assert res.p_value is None and res.drifted


# ---------------------------------------------------------------- error rates by simulation


def _rejection_rate(fn, draw, reps: int, rng: np.random.Generator) -> float:
    return float(np.mean([fn(draw(rng), draw(rng)).drifted for _ in range(reps)]))


def test_ks_rejects_about_alpha_under_no_change() -> None:
    rng = np.random.default_rng(20260101)
    reps = 600
    rate = _rejection_rate(ks_test, lambda r: r.normal(size=80), reps, rng)
    se = np.sqrt(0.05 * 0.95 / reps)
    # KS is discrete at n=80, so its size is a little under alpha, never above.
    assert 0.05 - 4 * se <= rate <= 0.05 + 3 * se, rate


def test_chi2_rejects_about_alpha_under_no_change() -> None:
    rng = np.random.default_rng(20260102)
    reps = 600
    cats = np.array(["a", "b", "c", "d"])
    rate = _rejection_rate(chi2_test, lambda r: r.choice(cats, size=300, p=[0.4, 0.3, 0.2, 0.1]),
                           reps, rng)
    se = np.sqrt(0.05 * 0.95 / reps)
    assert abs(rate - 0.05) <= 3 * se, rate


def test_ks_and_chi2_have_power_under_change() -> None:
    rng = np.random.default_rng(9)
    assert ks_test(rng.normal(size=500), rng.normal(0.4, 1.0, size=500)).drifted
    ref = rng.choice(["a", "b"], size=500, p=[0.5, 0.5])
    assert chi2_test(ref, rng.choice(["a", "b"], size=500, p=[0.62, 0.38])).drifted


# ---------------------------------------------------------------- properties

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(finite, min_size=1, max_size=60)
labels = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_p_values_in_unit_interval(a: list[float], b: list[float]) -> None:
    res = ks_test(a, b)
    assert 0.0 <= res.p_value <= 1.0
    assert 0.0 <= res.statistic <= 1.0


@settings(max_examples=60, deadline=None)
@given(labels, labels)
def test_chi2_p_values_in_unit_interval(a: list[str], b: list[str]) -> None:
    res = chi2_test(np.array(a), np.array(b))
    assert 0.0 <= res.p_value <= 1.0
    assert res.statistic >= 0.0


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_psi_non_negative_and_zero_on_identical(a: list[float], b: list[float]) -> None:
    assert psi(a, b).statistic >= 0.0
    assert psi(a, a).statistic == 0.0
    assert kl_divergence(a, b).statistic >= 0.0
    assert kl_divergence(a, a).statistic == 0.0


@settings(max_examples=60, deadline=None)
@given(labels, labels)
def test_symmetric_measures_are_symmetric(a: list[str], b: list[str]) -> None:
    # By category the share vectors do not depend on which sample is the reference.
    for fn in (jensen_shannon, hellinger):
        ab, ba = fn(np.array(a), np.array(b)).statistic, fn(np.array(b), np.array(a)).statistic
        assert ab == pytest.approx(ba, abs=1e-12)
        assert 0.0 <= ab <= 1.0 + 1e-12
    assert chi2_test(np.array(a), np.array(b)).p_value == pytest.approx(
        chi2_test(np.array(b), np.array(a)).p_value, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(samples, samples)
def test_wasserstein_non_negative_and_zero_on_identical(a: list[float], b: list[float]) -> None:
    assert wasserstein(a, b).statistic >= 0.0
    assert wasserstein(a, a).statistic == 0.0


# ---------------------------------------------------------------- bad input

ALL = [ks_test, psi, chi2_test, jensen_shannon, wasserstein, kl_divergence, hellinger]


@pytest.mark.parametrize("fn", ALL)
def test_empty_input_names_the_sample(fn) -> None:
    with pytest.raises(ValueError, match="reference is empty"):
        fn([], [1.0, 2.0])
    with pytest.raises(ValueError, match="current is empty"):
        fn([1.0, 2.0], np.array([]))


@pytest.mark.parametrize("fn", [ks_test, psi, jensen_shannon, wasserstein, kl_divergence,
                                hellinger, chi2_test])
def test_nan_only_input_names_the_sample(fn) -> None:
    with pytest.raises(ValueError, match="current has no"):
        fn([1.0, 2.0, 3.0], [np.nan, np.nan])
    with pytest.raises(ValueError, match="reference has no"):
        fn(np.array([np.nan]), [1.0])


@pytest.mark.parametrize("fn", ALL)
def test_mismatched_kinds_say_which_is_which(fn) -> None:
    with pytest.raises(ValueError, match="reference is numeric .* current is categorical"):
        fn([1.0, 2.0, 3.0], ["a", "b", "c"])


@pytest.mark.parametrize("fn", [ks_test, wasserstein])
def test_numeric_only_checks_refuse_categories(fn) -> None:
    with pytest.raises(ValueError, match="needs numeric samples"):
        fn(["a", "b"], ["a", "c"])


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="alpha"):
        ks_test([1.0, 2.0], [1.0, 3.0], alpha=1.5)
    with pytest.raises(ValueError, match="threshold"):
        psi([1.0, 2.0], [1.0, 3.0], threshold=-1)
    with pytest.raises(ValueError, match="bins"):
        psi([1.0, 2.0], [1.0, 3.0], bins=1)
    with pytest.raises(ValueError, match="1-D"):
        ks_test(np.ones((3, 2)), [1.0])


def test_inputs_accept_series_lists_and_object_numbers() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=100), rng.normal(size=120)
    base = ks_test(a, b)
    assert ks_test(pd.Series(a), pd.Series(b)) == base
    assert ks_test(list(a), list(b)) == base
    assert ks_test(np.array(list(a) + [None], dtype=object), b) == base
    assert ks_test(pd.Series(list(a) + [None], dtype=object), b) == base
    assert chi2_test(pd.Series(["x", "y"] * 5, dtype="str"), ["x", "y", "y"]).method == "chi2"
    assert isinstance(base, DriftResult) and base.method == "ks"


def test_categories_normalise_numbers() -> None:
    # 1, 1.0 and True are the same category; a binary 0/1 feature works with chi2.
    res = chi2_test(np.array([0, 1, 1, 0]), np.array([0.0, 1.0, 1.0, 0.0]))
    assert res.statistic == 0.0 and res.p_value == 1.0
    assert chi2_test(["x"] * 5, ["x"] * 3).p_value == 1.0  # one category overall


def test_pandas_categorical_ignores_unused_levels() -> None:
    levels = ["a", "b", "c", "unused"]
    ref = pd.Series(pd.Categorical(["a", "b", "b", "c"] * 25, categories=levels))
    cur = pd.Series(pd.Categorical(["a", "b", "c", "c"] * 25, categories=levels))
    plain = chi2_test(np.array(ref.astype(str)), np.array(cur.astype(str)))
    assert chi2_test(ref, cur) == plain
    assert psi(ref, cur) == psi(np.array(ref.astype(str)), np.array(cur.astype(str)))
