"""Experiments: cross-checks against scipy/statsmodels, error rates, properties, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_effectsize
from statsmodels.stats.proportion import proportions_ztest as sm_proportions_ztest

from autopilot.stats import TestResult
from autopilot.stats.experiments import (
    adjust_pvalues,
    chi2_independence,
    cohens_d,
    cohens_h,
    mann_whitney,
    mcnemar_test,
    paired_bootstrap,
    proportions_ztest,
    relative_lift,
    srm_test,
    welch_ttest,
)

REL = 1e-9
SEEDS = range(5)


def close(a: float, b: float, rel: float = REL) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)


# ----------------------------------------------------------------- number-for-number checks


@pytest.mark.parametrize("seed", SEEDS)
def test_welch_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, 40 + seed), rng.normal(0.3, 2.5, 70)
    ours = welch_ttest(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert close(ours.statistic, ref.statistic)
    assert close(ours.p_value, ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert close(ours.ci_low, ci.low) and close(ours.ci_high, ci.high)
    assert close(ours.effect, a.mean() - b.mean())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["small_exact", "ties", "large"])
def test_mann_whitney_matches_scipy(seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    if kind == "small_exact":
        a, b = rng.normal(0, 1, 7), rng.normal(1, 1, 6)
    elif kind == "ties":
        a, b = rng.integers(0, 5, 60).astype(float), rng.integers(1, 6, 45).astype(float)
    else:
        a, b = rng.exponential(1, 400), rng.exponential(1.2, 300)
    ours = mann_whitney(a, b)
    ref = stats.mannwhitneyu(a, b, alternative="two-sided")
    assert close(ours.statistic, ref.statistic)
    assert close(ours.p_value, ref.pvalue)
    # effect is P(A > B) + P(A = B)/2, checked by brute force
    diff = a[:, None] - b[None, :]
    assert close(ours.effect, float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0)))
    assert 0.0 <= ours.ci_low <= ours.effect <= ours.ci_high <= 1.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(2, 2), (3, 4)])
@pytest.mark.parametrize("correction", [True, False])
def test_chi2_independence_matches_scipy(
    seed: int, shape: tuple[int, int], correction: bool
) -> None:
    table = np.random.default_rng(seed).integers(5, 60, shape)
    ours = chi2_independence(table, correction=correction)
    ref = stats.chi2_contingency(table, correction=correction)
    assert close(ours.statistic, ref.statistic)
    assert close(ours.p_value, ref.pvalue)
    assert close(ours.effect, stats.contingency.association(table, method="cramer"))


def test_chi2_independence_drops_empty_rows_and_columns() -> None:
    table = np.array([[10, 0, 20], [0, 0, 0], [30, 0, 5]])
    ours = chi2_independence(table)
    ref = stats.chi2_contingency(np.array([[10, 20], [30, 5]]))
    assert close(ours.p_value, ref.pvalue)


@pytest.mark.parametrize("seed", SEEDS)
def test_proportions_ztest_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = rng.integers(200, 5000, 2)
    s = rng.binomial(n, [0.1, 0.12])
    ours = proportions_ztest(s, n)
    z, p = sm_proportions_ztest(s, n)
    assert close(ours.statistic, z)
    assert close(ours.p_value, p)
    assert close(ours.effect, s[0] / n[0] - s[1] / n[1])


def test_proportions_ztest_degenerate_rates() -> None:
    r = proportions_ztest([0, 0], [100, 200])
    assert (r.statistic, r.p_value, r.effect) == (0.0, 1.0, 0.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["bonferroni", "holm", "bh"])
def test_adjust_pvalues_matches_multipletests(seed: int, method: str) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 0.06, 12), rng.uniform(0, 1, 20), [0.01, 0.01, 0.5]])
    rng.shuffle(p)
    sm_method = "fdr_bh" if method == "bh" else method
    ref = multipletests(p, method=sm_method)[1]
    ours = adjust_pvalues(p, method)
    np.testing.assert_allclose(ours, ref, rtol=REL, atol=0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("exact", [True, False])
def test_mcnemar_matches_statsmodels(seed: int, exact: bool) -> None:
    rng = np.random.default_rng(seed)
    a = rng.random(300) < 0.8
    b = np.where(rng.random(300) < 0.85, a, ~a)
    ours = mcnemar_test(a, b, exact=exact)
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    ref = mcnemar(table, exact=exact, correction=True)
    assert close(ours.statistic, float(ref.statistic))
    assert close(ours.p_value, float(ref.pvalue))
    assert close(ours.effect, b.mean() - a.mean())
    assert ours.ci_low < ours.effect < ours.ci_high


def test_mcnemar_auto_switches_on_discordant_count() -> None:
    a = np.ones(100, dtype=bool)
    b = a.copy()
    b[:10] = False
    assert mcnemar_test(a, b).method == "mcnemar_exact"
    b[:40] = False
    assert mcnemar_test(a, b).method == "mcnemar_chi2"
    assert mcnemar_test(a, a).p_value == 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_srm_matches_chisquare(seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = np.array([0.5, 0.3, 0.2])
    counts = rng.multinomial(10_000, w)
    ours = srm_test(counts, w * 7.0)  # any positive scale
    ref = stats.chisquare(counts, counts.sum() * w)
    assert close(ours.statistic, ref.statistic)
    assert close(ours.p_value, ref.pvalue)
    assert ours.alpha == 0.001


def test_srm_flags_broken_split_and_zero_weight_arm() -> None:
    assert srm_test([5400, 4600], [1, 1]).rejected
    assert not srm_test([5030, 4970], [1, 1]).rejected
    broken = srm_test([900, 100, 3], [0.9, 0.1, 0.0])
    assert broken.p_value == 0.0 and broken.rejected
    idle = srm_test([900, 100, 0], [0.9, 0.1, 0.0])
    assert close(idle.p_value, stats.chisquare([900, 100], [900, 100]).pvalue)


@pytest.mark.parametrize("seed", SEEDS)
def test_cohens_h_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = rng.integers(100, 2000, 2)
    s = rng.binomial(n, [0.3, 0.4])
    ours = cohens_h(s, n)
    assert close(ours.effect, proportion_effectsize(s[0] / n[0], s[1] / n[1]))


@pytest.mark.parametrize("seed", SEEDS)
def test_cohens_d_matches_student_t_and_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.4, 1.3, 35), rng.normal(0, 1.3, 50)
    ours = cohens_d(a, b)
    ref = stats.ttest_ind(a, b)
    assert close(ours.statistic, ref.statistic)
    assert close(ours.p_value, ref.pvalue)
    sp = math.sqrt((34 * a.var(ddof=1) + 49 * b.var(ddof=1)) / 83)
    assert close(ours.effect, (a.mean() - b.mean()) / sp)
    # the exact interval is close to the normal approximation at this size
    se = math.sqrt(1 / 35 + 1 / 50 + ours.effect**2 / (2 * 85))
    assert ours.ci_low == pytest.approx(ours.effect - 1.96 * se, abs=0.03)
    assert ours.ci_high == pytest.approx(ours.effect + 1.96 * se, abs=0.03)


def test_cohens_d_and_lift_intervals_cover() -> None:
    """95 % intervals of d and lift cover the truth about 95 % of the time."""
    rng = np.random.default_rng(11)
    reps, cover_d, cover_lift = 300, 0, 0
    for _ in range(reps):
        a, b = rng.normal(10.0, 2.0, 40), rng.normal(11.0, 2.0, 40)
        d = cohens_d(b, a)
        cover_d += d.ci_low <= 0.5 <= d.ci_high
        lift = relative_lift(a, b)
        cover_lift += lift.ci_low <= 0.1 <= lift.ci_high
    margin = 3.5 * math.sqrt(0.05 * 0.95 / reps)
    assert abs(cover_d / reps - 0.95) < margin
    assert abs(cover_lift / reps - 0.95) < margin


def test_relative_lift_log_and_linear_branches() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 1, 500), rng.normal(11, 1, 500)
    r = relative_lift(a, b)
    assert close(r.effect, b.mean() / a.mean() - 1)
    assert r.ci_low < r.effect < r.ci_high and r.rejected
    neg = relative_lift(-a, b)  # means of opposite sign: linear delta method
    assert close(neg.effect, b.mean() / -a.mean() - 1)
    assert neg.ci_low < neg.effect < neg.ci_high


# ----------------------------------------------------------------- error rates under no change


def _rejection_rate(pvalues: list[float]) -> float:
    return float(np.mean(np.asarray(pvalues) < 0.05))


def test_type_one_error_rates_by_simulation() -> None:
    """Each test at alpha = 0.05 rejects 5 % +/- sampling error when nothing changed."""
    rng = np.random.default_rng(2024)
    reps = 1000
    margin = 3.5 * math.sqrt(0.05 * 0.95 / reps)  # ~0.024
    welch, mw, prop, h, srm, mcn = [], [], [], [], [], []
    for _ in range(reps):
        a, b = rng.normal(0, 1, 30), rng.normal(0, 3, 45)
        welch.append(welch_ttest(a, b).p_value)
        mw.append(mann_whitney(rng.exponential(1, 40), rng.exponential(1, 35)).p_value)
        s = rng.binomial([800, 1200], 0.2)
        prop.append(proportions_ztest(s, [800, 1200]).p_value)
        h.append(cohens_h(s, [800, 1200]).p_value)
        srm.append(srm_test(rng.multinomial(3000, [0.7, 0.3]), [0.7, 0.3], alpha=0.05).p_value)
        ca = rng.random(400) < 0.7
        flip = rng.random(400) < 0.2
        cb = np.where(flip, rng.random(400) < 0.7, ca)
        mcn.append(mcnemar_test(ca, cb, exact=False).p_value)
    rates = {
        "welch": _rejection_rate(welch),
        "mann_whitney": _rejection_rate(mw),
        "proportions_z": _rejection_rate(prop),
        "cohens_h": _rejection_rate(h),
        "srm": _rejection_rate(srm),
        "mcnemar_chi2": _rejection_rate(mcn),
    }
    print("type I error at alpha=0.05:", {k: round(v, 4) for k, v in rates.items()})
    for name, rate in rates.items():
        if name == "mcnemar_chi2":  # continuity-corrected: conservative by design
            assert rate <= 0.05 + margin, name
        else:
            assert abs(rate - 0.05) <= margin, (name, rate)


def test_chi2_independence_type_one_error_rate() -> None:
    rng = np.random.default_rng(7)
    reps = 1000
    rows = rng.multinomial(500, [0.3, 0.7], size=reps)
    pv = []
    for r in rows:
        t = np.stack(
            [rng.multinomial(r[0], [0.2, 0.5, 0.3]), rng.multinomial(r[1], [0.2, 0.5, 0.3])]
        )
        pv.append(chi2_independence(t).p_value)
    assert abs(_rejection_rate(pv) - 0.05) <= 3.5 * math.sqrt(0.05 * 0.95 / reps)


def test_paired_bootstrap_false_positive_rate_and_power() -> None:
    """One-sided p < 0.05 at most ~5 % of the time for equally good models."""
    rng = np.random.default_rng(9)

    def accuracy(t: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(t == p))

    reps, hits = 200, 0
    for _ in range(reps):
        y = rng.integers(0, 2, 300)
        pa = np.where(rng.random(300) < 0.8, y, 1 - y)
        pb = np.where(rng.random(300) < 0.8, y, 1 - y)
        hits += paired_bootstrap(y, pa, pb, accuracy, rng, n_resamples=199).p_value < 0.05
    rate = hits / reps
    print("paired bootstrap false-positive rate:", rate)
    assert rate <= 0.05 + 3.5 * math.sqrt(0.05 * 0.95 / reps)
    y = rng.integers(0, 2, 600)
    pa = np.where(rng.random(600) < 0.75, y, 1 - y)
    pb = np.where(rng.random(600) < 0.9, y, 1 - y)
    r = paired_bootstrap(y, pa, pb, accuracy, rng, n_resamples=500)
    assert r.p_value < 0.01 and r.ci_low > 0 and close(r.effect, accuracy(y, pb) - accuracy(y, pa))


def test_paired_bootstrap_identical_models_and_reproducible() -> None:
    y = np.arange(50) % 2
    pred = (np.arange(50) % 3 == 0).astype(int)

    def acc(t: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(t == p))

    r = paired_bootstrap(y, pred, pred, acc, np.random.default_rng(0), n_resamples=100)
    assert r.p_value == 1.0 and r.effect == 0.0
    r1 = paired_bootstrap(y, pred, 1 - pred, acc, np.random.default_rng(5), n_resamples=100)
    r2 = paired_bootstrap(y, pred, 1 - pred, acc, np.random.default_rng(5), n_resamples=100)
    assert r1 == r2


# ----------------------------------------------------------------- properties (hypothesis)

finite = st.integers(-(10**6), 10**6).map(lambda i: i / 100.0)
samples = st.lists(finite, min_size=3, max_size=40)


def _nonconstant(x: list[float]) -> bool:
    return len(set(x)) > 1


@settings(max_examples=60, deadline=None)
@given(samples.filter(_nonconstant), samples.filter(_nonconstant))
def test_two_sample_tests_valid_and_symmetric(a: list[float], b: list[float]) -> None:
    for fn in (welch_ttest, mann_whitney):
        ab, ba = fn(a, b), fn(b, a)
        assert isinstance(ab, TestResult)
        assert 0.0 <= ab.p_value <= 1.0
        assert ab.p_value == pytest.approx(ba.p_value, rel=1e-9, abs=1e-12)
    w_ab, w_ba = welch_ttest(a, b), welch_ttest(b, a)
    assert w_ab.statistic == pytest.approx(-w_ba.statistic, rel=1e-9, abs=1e-12)
    m_ab, m_ba = mann_whitney(a, b), mann_whitney(b, a)
    assert m_ab.effect == pytest.approx(1.0 - m_ba.effect, abs=1e-12)


counts_pair = st.tuples(st.integers(1, 5000), st.integers(1, 5000)).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n[0]), st.integers(0, n[1]))
)


@settings(max_examples=80, deadline=None)
@given(counts_pair)
def test_proportion_tests_valid_and_symmetric(data: tuple[tuple[int, int], int, int]) -> None:
    (na, nb), sa, sb = data
    for fn in (proportions_ztest, cohens_h):
        ab, ba = fn([sa, sb], [na, nb]), fn([sb, sa], [nb, na])
        assert 0.0 <= ab.p_value <= 1.0
        assert ab.p_value == pytest.approx(ba.p_value, rel=1e-9, abs=1e-15)
        assert ab.effect == pytest.approx(-ba.effect, rel=1e-9, abs=1e-15)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=200), st.randoms(use_true_random=False))
def test_mcnemar_valid_and_antisymmetric(a: list[bool], rnd: object) -> None:
    b = [x if rnd.random() < 0.7 else not x for x in a]  # type: ignore[attr-defined]
    ab, ba = mcnemar_test(a, b), mcnemar_test(b, a)
    assert 0.0 <= ab.p_value <= 1.0
    assert ab.p_value == pytest.approx(ba.p_value, rel=1e-12)
    assert ab.effect == pytest.approx(-ba.effect, abs=1e-15)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=50),
    st.sampled_from(["bonferroni", "holm", "bh"]),
)
def test_adjusted_pvalues_bounded_and_not_smaller(p: list[float], method: str) -> None:
    adj = adjust_pvalues(p, method)
    assert ((adj >= np.asarray(p) - 1e-15) & (adj <= 1.0)).all()
    order = np.argsort(p, kind="stable")
    assert (np.diff(adj[order]) >= -1e-15).all()  # monotone in the raw p-values


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=2, max_size=6).filter(lambda c: sum(c) > 0))
def test_srm_pvalue_in_unit_interval(counts: list[int]) -> None:
    r = srm_test(counts, [1.0] * len(counts))
    assert 0.0 <= r.p_value <= 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 200), min_size=2, max_size=4), min_size=2, max_size=4))
def test_chi2_pvalue_in_unit_interval(rows: list[list[int]]) -> None:
    width = min(len(r) for r in rows)
    table = np.array([r[:width] for r in rows])
    nonzero = table[table.sum(1) > 0][:, table.sum(0) > 0]
    if nonzero.shape[0] < 2 or nonzero.shape[1] < 2:
        with pytest.raises(ValueError, match="table needs"):
            chi2_independence(table)
    else:
        r = chi2_independence(table)
        assert 0.0 <= r.p_value <= 1.0 and 0.0 <= r.effect <= 1.0


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize("fn", [welch_ttest, mann_whitney, cohens_d, relative_lift])
def test_two_sample_bad_input_names_the_problem(fn: object) -> None:
    f = fn  # type: ignore[assignment]
    with pytest.raises(ValueError, match="a is empty"):
        f([], [1.0, 2.0])  # type: ignore[operator]
    with pytest.raises(ValueError, match="b holds only NaN"):
        f([1.0, 2.0, 3.0], [np.nan, np.nan])  # type: ignore[operator]
    with pytest.raises(ValueError, match="a needs at least 2"):
        f([1.0, np.nan], [1.0, 2.0])  # type: ignore[operator]
    with pytest.raises(ValueError, match="b contains infinite"):
        f([1.0, 2.0], [1.0, np.inf])  # type: ignore[operator]
    with pytest.raises(ValueError, match="alpha"):
        f([1.0, 2.0], [1.0, 3.0], alpha=1.5)  # type: ignore[operator]


def test_nan_values_are_dropped_from_unpaired_samples() -> None:
    a = [1.0, 2.0, np.nan, 4.0]
    b = [2.0, 3.5, 5.0]
    assert welch_ttest(a, b) == welch_ttest([1.0, 2.0, 4.0], b)


def test_bad_input_elsewhere_names_the_problem() -> None:
    with pytest.raises(ValueError, match="correct_a and correct_b must be paired"):
        mcnemar_test([True, False], [True])
    with pytest.raises(ValueError, match="correct_b must hold booleans"):
        mcnemar_test([1, 0, 1], [1, 2, 0])
    with pytest.raises(ValueError, match="correct_a is empty"):
        mcnemar_test([], [])
    with pytest.raises(ValueError, match="weights must have shape"):
        srm_test([10, 20], [0.5, 0.3, 0.2])
    with pytest.raises(ValueError, match="counts are all zero"):
        srm_test([0, 0], [1, 1])
    with pytest.raises(ValueError, match="counts must hold non-negative whole"):
        srm_test([10.5, 3], [1, 1])
    with pytest.raises(ValueError, match="method must be one of"):
        adjust_pvalues([0.1], "sidak")
    with pytest.raises(ValueError, match="pvalues is empty"):
        adjust_pvalues([], "holm")
    with pytest.raises(ValueError, match="pvalues contains NaN"):
        adjust_pvalues([0.1, np.nan], "bh")
    with pytest.raises(ValueError, match=r"pvalues must lie in \[0, 1\]"):
        adjust_pvalues([0.1, 1.2], "bh")
    with pytest.raises(ValueError, match="successes .* exceed trials"):
        proportions_ztest([5, 12], [10, 10])
    with pytest.raises(ValueError, match="2 entries"):
        proportions_ztest([5, 6, 7], [10, 10, 10])
    with pytest.raises(ValueError, match="table is empty|table must be two-dimensional"):
        chi2_independence([])
    with pytest.raises(ValueError, match="table contains NaN"):
        chi2_independence([[1, np.nan], [2, 3]])
    with pytest.raises(ValueError, match="both constant"):
        welch_ttest([1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="mean\\(a\\) is 0"):
        relative_lift([-1.0, 1.0], [2.0, 3.0])


def test_paired_bootstrap_bad_input() -> None:
    def acc(t: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(t == p))

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="must be paired"):
        paired_bootstrap([0, 1, 1], [0, 1], [0, 1, 1], acc, rng)
    with pytest.raises(ValueError, match="y_true is empty"):
        paired_bootstrap([], [], [], acc, rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        paired_bootstrap([0, 1], [0, 1], [0, 1], acc, 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap([0, 1], [0, 1], [0, 1], acc, rng, n_resamples=0)
    with pytest.raises(ValueError, match="non-finite"):
        paired_bootstrap([0, 1], [0, 1], [0, 1], lambda t, p: float("nan"), rng)


def test_auc_and_paired_accuracy_intervals_cover() -> None:
    """DeLong interval of the Mann-Whitney AUC and Wald interval of McNemar's difference."""
    rng = np.random.default_rng(21)
    reps = 400
    true_auc = float(stats.norm.cdf(0.5 / math.sqrt(2)))
    true_diff = 0.85 * 0.8 + 0.15 * 0.85 - 0.8
    auc_hits = diff_hits = 0
    for _ in range(reps):
        r = mann_whitney(rng.normal(0.5, 1, 60), rng.normal(0, 1, 50))
        auc_hits += r.ci_low <= true_auc <= r.ci_high
        a = rng.random(400) < 0.8
        b = np.where(rng.random(400) < 0.15, rng.random(400) < 0.85, a)
        m = mcnemar_test(a, b)
        diff_hits += m.ci_low <= true_diff <= m.ci_high
    margin = 3.5 * math.sqrt(0.05 * 0.95 / reps)
    assert abs(auc_hits / reps - 0.95) < margin
    assert abs(diff_hits / reps - 0.95) < margin
