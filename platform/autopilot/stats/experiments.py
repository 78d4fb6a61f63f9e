"""Fixed-horizon experiment tests: two-sample tests, effect sizes, SRM, model comparisons.

Every function returns a :class:`~autopilot.stats.results.TestResult`. Where
scipy or statsmodels computes the same test, the statistic and p-value are
theirs number for number (the unit tests check this), so the sign conventions
follow them too:

- two-sample tests on ``(a, b)`` (:func:`welch_ttest`, :func:`mann_whitney`,
  :func:`proportions_ztest`, :func:`cohens_d`, :func:`cohens_h`) report
  ``a`` minus ``b``, as ``scipy.stats.ttest_ind(a, b)`` does;
- :func:`relative_lift`, :func:`mcnemar_test` and :func:`paired_bootstrap`
  report how much ``b`` (treatment, challenger) improves on ``a`` (control,
  champion): ``b`` minus ``a``.

Unpaired samples drop NaN values (a missing observation carries no evidence);
an empty sample, an all-NaN sample or infinities raise ``ValueError`` naming
the argument. Paired inputs must have equal lengths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from autopilot.stats._checks import float_series
from autopilot.stats.results import TestResult

__all__ = [
    "adjust_pvalues",
    "chi2_independence",
    "cohens_d",
    "cohens_h",
    "mann_whitney",
    "mcnemar_test",
    "paired_bootstrap",
    "proportions_ztest",
    "relative_lift",
    "srm_test",
    "welch_ttest",
]

_ADJUST_METHODS = ("bonferroni", "holm", "bh")


# --------------------------------------------------------------------------- validation


def _check_alpha(alpha: float, name: str = "alpha") -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {alpha!r}")
    return alpha


def _sample(x: ArrayLike, name: str, min_size: int = 1) -> NDArray[np.float64]:
    """A 1-D float sample with NaN dropped; ValueError naming ``name`` otherwise."""
    arr = float_series(x, name)
    arr = arr[~np.isnan(arr)]
    if arr.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} non-NaN values, got {arr.size}")
    return arr


def _counts(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """A 1-D array of non-negative whole numbers."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values: {arr.tolist()}")
    if (arr < 0).any() or (arr != np.round(arr)).any():
        raise ValueError(f"{name} must hold non-negative whole numbers, got {arr.tolist()}")
    return arr


def _flags(x: ArrayLike, name: str) -> NDArray[np.bool_]:
    """A 1-D boolean array from booleans or 0/1 values."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == np.bool_:
        return arr
    try:
        num = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must hold booleans or 0/1 values: {exc}") from exc
    if np.isnan(num).any():
        raise ValueError(f"{name} contains NaN; it must hold booleans or 0/1 values")
    if not np.isin(num, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold booleans or 0/1 values only")
    return num.astype(np.bool_)


def _two_proportions(successes: ArrayLike, trials: ArrayLike) -> tuple[float, float, float, float]:
    s = _counts(successes, "successes")
    n = _counts(trials, "trials")
    if s.size != 2 or n.size != 2:
        raise ValueError(
            f"successes and trials must each have 2 entries (a, b), got {s.size} and {n.size}"
        )
    if (n <= 0).any():
        raise ValueError(f"trials must be positive, got {n.tolist()}")
    if (s > n).any():
        raise ValueError(f"successes {s.tolist()} exceed trials {n.tolist()}")
    return float(s[0]), float(n[0]), float(s[1]), float(n[1])


def _normal_ci(estimate: float, se: float, alpha: float) -> tuple[float, float]:
    z = float(stats.norm.isf(alpha / 2.0))
    return estimate - z * se, estimate + z * se


def _two_sided_normal_p(z: float) -> float:
    return float(min(1.0, 2.0 * stats.norm.sf(abs(z))))


# --------------------------------------------------------------------------- two-sample tests


def welch_ttest(a: ArrayLike, b: ArrayLike, alpha: float = 0.05) -> TestResult:
    """Welch's unequal-variance t-test of equal means.

    Parameters
    ----------
    a, b : array_like, shape (n_a,), (n_b,)
        Samples; NaN values are dropped. Each needs two values.
    alpha : float
        Significance level; the interval has level ``1 - alpha``.

    Returns
    -------
    TestResult
        ``statistic`` and ``p_value`` equal
        ``scipy.stats.ttest_ind(a, b, equal_var=False)``; ``effect`` is
        ``mean(a) - mean(b)`` with the Welch (Satterthwaite df) interval.

    Raises
    ------
    ValueError
        On empty, NaN-only or too-short samples, or when both are constant.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> r = welch_ttest(rng.normal(0, 1, 200), rng.normal(0.3, 2, 300))
    >>> round(r.statistic, 3), round(r.p_value, 4), round(r.effect, 3)
    (-1.258, 0.2089, -0.175)
    """
    alpha = _check_alpha(alpha)
    x = _sample(a, "a", 2)
    y = _sample(b, "b", 2)
    va, vb = float(np.var(x, ddof=1)), float(np.var(y, ddof=1))
    if va == 0.0 and vb == 0.0:
        raise ValueError("a and b are both constant; the t statistic is undefined")
    # The formula of scipy.stats.ttest_ind(equal_var=False), without its overhead.
    diff = float(np.mean(x) - np.mean(y))
    ga, gb = va / x.size, vb / y.size
    se = float(np.sqrt(ga + gb))
    df = (ga + gb) ** 2 / (ga**2 / (x.size - 1) + gb**2 / (y.size - 1))
    t = diff / se
    p = float(min(1.0, 2.0 * stats.t.sf(abs(t), df)))
    q = float(stats.t.isf(alpha / 2.0, df))
    return TestResult(
        method="welch_ttest",
        statistic=t,
        p_value=p,
        effect=diff,
        ci_low=diff - q * se,
        ci_high=diff + q * se,
        alpha=alpha,
    )


def mann_whitney(a: ArrayLike, b: ArrayLike, alpha: float = 0.05) -> TestResult:
    """Mann-Whitney U test (two-sided) with the probability of superiority.

    Parameters
    ----------
    a, b : array_like, shape (n_a,), (n_b,)
        Samples; NaN values are dropped. Each needs two values.
    alpha : float
        Significance level; the interval has level ``1 - alpha``.

    Returns
    -------
    TestResult
        ``statistic`` (U of ``a``) and ``p_value`` equal
        ``scipy.stats.mannwhitneyu(a, b)`` (its automatic exact/asymptotic
        choice). ``effect`` is ``U / (n_a * n_b) = P(A > B) + P(A = B) / 2``
        (the AUC of ``a`` over ``b``; 0.5 means no shift), with a DeLong
        normal interval clipped to [0, 1] (degenerate under complete
        separation).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> r = mann_whitney(rng.normal(0.5, 1, 80), rng.normal(0, 1, 60))
    >>> round(r.statistic, 1), round(r.p_value, 4), round(r.effect, 3)
    (3219.0, 0.0006, 0.671)
    """
    alpha = _check_alpha(alpha)
    x = _sample(a, "a", 2)
    y = _sample(b, "b", 2)
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    na, nb = x.size, y.size
    auc = float(res.statistic) / (na * nb)
    # DeLong placements from mid-ranks: pooled rank minus within-sample rank
    # counts the other sample's values below (ties count one half).
    pooled = stats.rankdata(np.concatenate([x, y]))
    v10 = (pooled[:na] - stats.rankdata(x)) / nb
    v01 = 1.0 - (pooled[na:] - stats.rankdata(y)) / na
    se = float(np.sqrt(np.var(v10, ddof=1) / na + np.var(v01, ddof=1) / nb))
    lo, hi = _normal_ci(auc, se, alpha)
    return TestResult(
        method="mann_whitney",
        statistic=float(res.statistic),
        p_value=float(res.pvalue),
        effect=auc,
        ci_low=max(0.0, lo),
        ci_high=min(1.0, hi),
        alpha=alpha,
    )


def chi2_independence(table: ArrayLike, correction: bool = True, alpha: float = 0.05) -> TestResult:
    """Chi-square test of independence on an r x c contingency table.

    Parameters
    ----------
    table : array_like, shape (r, c)
        Non-negative counts. All-zero rows and columns are dropped (they
        carry no information); at least a 2 x 2 table must remain.
    correction : bool
        Yates' continuity correction for 2 x 2 tables, as scipy.
    alpha : float
        Significance level recorded on the result.

    Returns
    -------
    TestResult
        ``statistic`` and ``p_value`` equal
        ``scipy.stats.chi2_contingency(table, correction=correction)``;
        ``effect`` is Cramér's V (from the uncorrected statistic, as
        ``scipy.stats.contingency.association``); no interval (NaN).

    Examples
    --------
    >>> r = chi2_independence([[30, 70], [45, 55]])
    >>> round(r.statistic, 4), round(r.p_value, 4), round(r.effect, 4)
    (4.1813, 0.0409, 0.1549)
    """
    alpha = _check_alpha(alpha)
    arr = np.asarray(table, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"table must be two-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("table is empty")
    if not np.isfinite(arr).all():
        raise ValueError("table contains NaN or infinite values")
    if (arr < 0).any():
        raise ValueError("table must hold non-negative counts")
    arr = arr[arr.sum(axis=1) > 0][:, arr.sum(axis=0) > 0]
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(
            f"table needs at least 2 non-empty rows and 2 non-empty columns, got {arr.shape}"
        )
    res = stats.chi2_contingency(arr, correction=correction)
    raw = stats.chi2_contingency(arr, correction=False).statistic
    v = float(np.sqrt(raw / (arr.sum() * (min(arr.shape) - 1))))
    return TestResult(
        method="chi2_independence",
        statistic=float(res.statistic),
        p_value=float(res.pvalue),
        effect=v,
        ci_low=float("nan"),
        ci_high=float("nan"),
        alpha=alpha,
    )


def proportions_ztest(successes: ArrayLike, trials: ArrayLike, alpha: float = 0.05) -> TestResult:
    """Two-sample z-test of equal proportions (pooled variance).

    Parameters
    ----------
    successes, trials : array_like, shape (2,)
        Success counts and trial counts of ``a`` and ``b``.
    alpha : float
        Significance level; the interval has level ``1 - alpha``.

    Returns
    -------
    TestResult
        ``statistic`` and ``p_value`` equal
        ``statsmodels.stats.proportion.proportions_ztest(successes, trials)``
        (pooled standard error). ``effect`` is ``p_a - p_b`` with the Wald
        (unpooled) interval. When the pooled rate is 0 or 1 the samples are
        identical: statistic 0, p-value 1.

    Examples
    --------
    >>> r = proportions_ztest([120, 150], [1000, 1000])
    >>> round(r.statistic, 3), round(r.p_value, 4), round(r.effect, 3)
    (-1.96, 0.05, -0.03)
    """
    alpha = _check_alpha(alpha)
    sa, na, sb, nb = _two_proportions(successes, trials)
    pa, pb = sa / na, sb / nb
    pooled = (sa + sb) / (na + nb)
    diff = pa - pb
    se_pooled = np.sqrt(pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb))
    if se_pooled == 0.0:
        z, p = 0.0, 1.0
    else:
        z = float(diff / se_pooled)
        p = _two_sided_normal_p(z)
    se = float(np.sqrt(pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb))
    lo, hi = _normal_ci(diff, se, alpha)
    return TestResult("proportions_ztest", z, p, diff, lo, hi, alpha)


# --------------------------------------------------------------------------- effect sizes


def _nct_ncp_interval(t_obs: float, df: float, alpha: float) -> tuple[float, float] | None:
    """Invert the noncentral t cdf in its noncentrality (Steiger & Fouladi, 1997)."""

    def bound(q: float) -> float:
        def f(ncp: float) -> float:
            return float(stats.nct.cdf(t_obs, df, ncp)) - q

        width = 2.0 + abs(t_obs)
        lo, hi = t_obs - width, t_obs + width
        for _ in range(60):  # cdf falls in ncp; widen until the root is bracketed
            if f(lo) > 0 > f(hi):
                return float(optimize.brentq(f, lo, hi, xtol=1e-12))
            lo, hi = lo - width, hi + width
            width *= 2.0
        raise ArithmeticError("could not bracket the noncentrality")

    try:
        low, high = bound(1.0 - alpha / 2.0), bound(alpha / 2.0)
    except (ArithmeticError, ValueError):
        return None
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return low, high


def cohens_d(a: ArrayLike, b: ArrayLike, alpha: float = 0.05) -> TestResult:
    """Cohen's d, ``(mean(a) - mean(b)) / pooled sd``, with an exact interval.

    Parameters
    ----------
    a, b : array_like, shape (n_a,), (n_b,)
        Samples; NaN values are dropped. Each needs two values.
    alpha : float
        Significance level; the interval has level ``1 - alpha``.

    Returns
    -------
    TestResult
        ``effect`` = d with the interval from inverting the noncentral t
        distribution of the pooled t statistic (Steiger & Fouladi), falling
        back to the normal approximation ``se^2 = 1/n_a + 1/n_b +
        d^2 / (2 (n_a + n_b))`` if the inversion fails numerically.
        ``statistic``/``p_value`` are Student's equal-variance t-test
        (``scipy.stats.ttest_ind(a, b)``), the test d is the effect of.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> r = cohens_d(rng.normal(0.5, 1, 50), rng.normal(0, 1, 50))
    >>> round(r.effect, 3), round(r.ci_low, 3), round(r.ci_high, 3)
    (0.584, 0.182, 0.983)
    """
    alpha = _check_alpha(alpha)
    x = _sample(a, "a", 2)
    y = _sample(b, "b", 2)
    na, nb = x.size, y.size
    df = na + nb - 2
    sp2 = ((na - 1) * np.var(x, ddof=1) + (nb - 1) * np.var(y, ddof=1)) / df
    if sp2 == 0.0:
        raise ValueError("a and b are both constant; Cohen's d is undefined")
    d = float((np.mean(x) - np.mean(y)) / np.sqrt(sp2))
    scale = float(np.sqrt(na * nb / (na + nb)))
    t = d * scale
    p = float(2.0 * stats.t.sf(abs(t), df))
    ncp = _nct_ncp_interval(t, df, alpha)
    if ncp is not None:
        lo, hi = ncp[0] / scale, ncp[1] / scale
    else:
        se = float(np.sqrt(1.0 / na + 1.0 / nb + d * d / (2.0 * (na + nb))))
        lo, hi = _normal_ci(d, se, alpha)
    return TestResult("cohens_d", t, min(1.0, p), d, lo, hi, alpha)


def cohens_h(successes: ArrayLike, trials: ArrayLike, alpha: float = 0.05) -> TestResult:
    """Cohen's h, ``2 asin(sqrt(p_a)) - 2 asin(sqrt(p_b))``, with a normal interval.

    Parameters
    ----------
    successes, trials : array_like, shape (2,)
        Success and trial counts of ``a`` and ``b``.
    alpha : float
        Significance level; the interval has level ``1 - alpha``.

    Returns
    -------
    TestResult
        ``effect`` = h (equal to statsmodels' ``proportion_effectsize(p_a,
        p_b)``); the arcsine transform stabilises the variance, so
        ``se(h) = sqrt(1/n_a + 1/n_b)`` gives the interval and the z
        ``statistic = h / se(h)`` with its two-sided ``p_value``.

    Examples
    --------
    >>> r = cohens_h([120, 150], [1000, 1000])
    >>> round(r.effect, 4), round(r.ci_low, 4), round(r.ci_high, 4)
    (-0.0879, -0.1756, -0.0003)
    """
    alpha = _check_alpha(alpha)
    sa, na, sb, nb = _two_proportions(successes, trials)
    h = float(2.0 * np.arcsin(np.sqrt(sa / na)) - 2.0 * np.arcsin(np.sqrt(sb / nb)))
    se = float(np.sqrt(1.0 / na + 1.0 / nb))
    lo, hi = _normal_ci(h, se, alpha)
    z = h / se
    return TestResult("cohens_h", z, _two_sided_normal_p(z), h, lo, hi, alpha)


def relative_lift(a: ArrayLike, b: ArrayLike, alpha: float = 0.05) -> TestResult:
    """Relative lift of ``b`` over ``a``, ``mean(b) / mean(a) - 1``, by the delta method.

    Parameters
    ----------
    a, b : array_like, shape (n_a,), (n_b,)
        Control and treatment samples (0/1 flags give conversion-rate lift);
        NaN dropped, two values each, ``mean(a) != 0``.
    alpha : float
        Significance level; the interval has level ``1 - alpha``.

    Returns
    -------
    TestResult
        ``effect`` = lift. When both means are positive the interval is the
        delta-method interval on ``log(mean(b) / mean(a))``, mapped back
        (asymmetric, never below -100 %), and ``statistic`` is that log
        ratio's z; otherwise the plain delta method on the ratio is used.
        ``p_value`` is the two-sided normal p-value of ``statistic``.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> r = relative_lift(rng.normal(10, 2, 400), rng.normal(10.5, 2, 400))
    >>> round(r.effect, 4), round(r.ci_low, 4), round(r.ci_high, 4)
    (0.0503, 0.0224, 0.0789)
    """
    alpha = _check_alpha(alpha)
    x = _sample(a, "a", 2)
    y = _sample(b, "b", 2)
    ma, mb = float(np.mean(x)), float(np.mean(y))
    if ma == 0.0:
        raise ValueError("mean(a) is 0; the relative lift is undefined")
    ga = float(np.var(x, ddof=1)) / x.size  # squared standard errors of the means
    gb = float(np.var(y, ddof=1)) / y.size
    lift = mb / ma - 1.0
    if ma > 0.0 and mb > 0.0:
        log_ratio = np.log(mb / ma)
        se = float(np.sqrt(ga / ma**2 + gb / mb**2))
        if se == 0.0:
            raise ValueError("a and b are both constant; the lift interval is undefined")
        lo, hi = _normal_ci(float(log_ratio), se, alpha)
        z = float(log_ratio / se)
        ci = (float(np.expm1(lo)), float(np.expm1(hi)))
    else:
        se = float(np.sqrt(gb / ma**2 + mb**2 * ga / ma**4))
        if se == 0.0:
            raise ValueError("a and b are both constant; the lift interval is undefined")
        ci = _normal_ci(lift, se, alpha)
        z = lift / se
    return TestResult("relative_lift", z, _two_sided_normal_p(z), lift, ci[0], ci[1], alpha)


# --------------------------------------------------------------------------- multiple testing


def adjust_pvalues(pvalues: ArrayLike, method: str = "holm") -> NDArray[np.float64]:
    """Adjust p-values for multiple testing.

    Parameters
    ----------
    pvalues : array_like, shape (m,)
        Raw p-values in [0, 1].
    method : {"bonferroni", "holm", "bh"}
        Family-wise error control (Bonferroni, Holm step-down) or false
        discovery rate control (Benjamini-Hochberg; ``"fdr_bh"`` accepted).

    Returns
    -------
    ndarray, shape (m,)
        Adjusted p-values in the input order, equal to
        ``statsmodels.stats.multitest.multipletests(p, method=...)[1]``.

    Examples
    --------
    >>> adjust_pvalues([0.01, 0.04, 0.03, 0.2], "holm").round(3).tolist()
    [0.04, 0.09, 0.09, 0.2]
    >>> adjust_pvalues([0.01, 0.04, 0.03, 0.2], "bh").round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.2]
    """
    key = "bh" if method == "fdr_bh" else method
    if key not in _ADJUST_METHODS:
        raise ValueError(f"method must be one of {_ADJUST_METHODS}, got {method!r}")
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be one-dimensional, got shape {p.shape}")
    if p.size == 0:
        raise ValueError("pvalues is empty")
    if not np.isfinite(p).all():
        raise ValueError("pvalues contains NaN or infinite values")
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"pvalues must lie in [0, 1], got min {p.min()} and max {p.max()}")
    m = p.size
    if key == "bonferroni":
        return np.minimum(p * float(m), 1.0)
    # The same operations, in the same order, as statsmodels' multipletests.
    order = np.argsort(p)
    ps = p[order]
    if key == "holm":
        adj = np.maximum.accumulate(ps * np.arange(m, 0, -1))
    else:
        adj = np.minimum.accumulate((ps / (np.arange(1, m + 1) / float(m)))[::-1])[::-1]
    adj = np.minimum(adj, 1.0)
    out = np.empty_like(adj)
    out[order] = adj
    return out


# --------------------------------------------------------------------------- traffic health


def srm_test(counts: ArrayLike, weights: ArrayLike, alpha: float = 0.001) -> TestResult:
    """Sample-ratio mismatch: chi-square goodness of fit of arm counts to intended weights.

    Parameters
    ----------
    counts : array_like, shape (k,)
        Observed units per arm.
    weights : array_like, shape (k,)
        Intended traffic weights (any positive scale; normalised here).
        An arm with weight 0 and no units is ignored; weight 0 with units is
        a certain mismatch (statistic inf, p-value 0).
    alpha : float
        Significance level; SRM checks conventionally use 0.001 because they
        run continuously and a false alarm halts an experiment.

    Returns
    -------
    TestResult
        ``statistic`` and ``p_value`` equal ``scipy.stats.chisquare(counts,
        total * weights / sum(weights))``; ``effect`` is the largest absolute
        gap between an arm's observed and intended share; no interval.
        ``rejected`` means the split is broken.

    Examples
    --------
    >>> r = srm_test([5100, 4900], [0.5, 0.5])
    >>> round(r.statistic, 3), round(r.p_value, 4), r.rejected
    (4.0, 0.0455, False)
    >>> srm_test([5300, 4700], [1, 1]).rejected
    True
    """
    alpha = _check_alpha(alpha)
    c = _counts(counts, "counts")
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size != c.size:
        raise ValueError(f"weights must have shape ({c.size},) like counts, got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be finite and non-negative, got {w.tolist()}")
    if c.size < 2:
        raise ValueError(f"counts needs at least 2 arms, got {c.size}")
    if w.sum() <= 0:
        raise ValueError(f"weights must not all be zero, got {w.tolist()}")
    total = c.sum()
    if total == 0:
        raise ValueError("counts are all zero; there is no traffic to check")
    share = w / w.sum()
    gap = float(np.max(np.abs(c / total - share)))
    if ((w == 0) & (c > 0)).any():
        return TestResult("srm_chi2", float("inf"), 0.0, gap, float("nan"), float("nan"), alpha)
    keep = w > 0
    if keep.sum() < 2:  # all traffic goes to the single arm that should get it
        return TestResult("srm_chi2", 0.0, 1.0, gap, float("nan"), float("nan"), alpha)
    res = stats.chisquare(c[keep], total * share[keep])
    return TestResult(
        "srm_chi2",
        float(res.statistic),
        float(res.pvalue),
        gap,
        float("nan"),
        float("nan"),
        alpha,
    )


# --------------------------------------------------------------------------- model comparison


def mcnemar_test(
    correct_a: ArrayLike,
    correct_b: ArrayLike,
    exact: bool | None = None,
    alpha: float = 0.05,
) -> TestResult:
    """McNemar's test: do two models scored on the same rows differ in accuracy?

    Parameters
    ----------
    correct_a, correct_b : array_like of bool, shape (n,)
        Whether model ``a`` (champion) and ``b`` (challenger) got each row
        right; 0/1 accepted. Row ``i`` of both must be the same example.
    exact : bool or None
        Exact binomial test on the discordant pairs (True), chi-square with
        continuity correction (False), or exact when fewer than 25 discordant
        pairs (None, the usual rule).
    alpha : float
        Significance level; the interval has level ``1 - alpha``.

    Returns
    -------
    TestResult
        ``statistic`` and ``p_value`` equal
        ``statsmodels.stats.contingency_tables.mcnemar(table, exact=...)``
        (statistic ``min(n01, n10)`` when exact, the corrected chi-square
        otherwise; p-value 1 with no discordant pairs). ``effect`` is
        ``accuracy(b) - accuracy(a) = (n10 - n01) / n`` with the Wald interval
        for paired proportions, where ``n01`` counts rows only ``a`` got right
        and ``n10`` rows only ``b`` got right.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> a = rng.random(500) < 0.80
    >>> b = np.where(rng.random(500) < 0.9, a, ~a) | (rng.random(500) < 0.2)
    >>> r = mcnemar_test(a, b)
    >>> r.method, round(r.p_value, 4), round(r.effect, 3)
    ('mcnemar_chi2', 0.2077, 0.022)
    """
    alpha = _check_alpha(alpha)
    ca = _flags(correct_a, "correct_a")
    cb = _flags(correct_b, "correct_b")
    if ca.size != cb.size:
        raise ValueError(
            f"correct_a and correct_b must be paired (same length), got {ca.size} and {cb.size}"
        )
    n = ca.size
    n01 = int(np.sum(ca & ~cb))
    n10 = int(np.sum(~ca & cb))
    disc = n01 + n10
    use_exact = disc < 25 if exact is None else bool(exact)
    if use_exact:
        statistic = float(min(n01, n10))
        p = float(min(1.0, 2.0 * stats.binom.cdf(statistic, disc, 0.5)))
        method = "mcnemar_exact"
    else:
        method = "mcnemar_chi2"
        if disc == 0:
            statistic, p = 0.0, 1.0
        else:
            statistic = (abs(n01 - n10) - 1.0) ** 2 / disc
            p = float(stats.chi2.sf(statistic, 1))
    effect = (n10 - n01) / n
    se = float(np.sqrt(max(disc - (n10 - n01) ** 2 / n, 0.0)) / n)
    lo, hi = _normal_ci(effect, se, alpha)
    return TestResult(method, float(statistic), p, effect, lo, hi, alpha)


def paired_bootstrap(
    y_true: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    metric: Callable[[Any, Any], float],
    rng: np.random.Generator,
    n_resamples: int = 2000,
    alpha: float = 0.05,
) -> TestResult:
    """Paired bootstrap of ``metric(b) - metric(a)`` over the same rows.

    Rows are resampled with replacement and both models are scored on each
    resample, so the comparison keeps the pairing (the row difficulty both
    models share cancels out).

    Parameters
    ----------
    y_true : array_like, shape (n,) or (n, ...)
        Targets.
    pred_a, pred_b : array_like, shape (n,) or (n, ...)
        Predictions of the champion ``a`` and the challenger ``b`` (labels,
        scores or probability rows; indexed along axis 0).
    metric : callable ``(y_true, pred) -> float``
        Higher is better (pass a negated loss for losses).
    rng : numpy.random.Generator
        Source of the resampling.
    n_resamples : int
        Bootstrap resamples.
    alpha : float
        Significance level; the percentile interval has level ``1 - alpha``.

    Returns
    -------
    TestResult
        ``statistic`` = ``effect`` = ``metric(y, b) - metric(y, a)`` on the
        full data, with the percentile interval. ``p_value`` is ONE-SIDED for
        "b is not better" (H0: difference <= 0): ``(1 + #{resampled
        differences <= 0}) / (n_resamples + 1)``, the bootstrap percentile
        p-value; it is below ``alpha`` roughly when the one-sided
        ``1 - alpha`` lower bound is above 0. Identical predictions give 1.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> y = rng.integers(0, 2, 400)
    >>> pa = np.where(rng.random(400) < 0.75, y, 1 - y)
    >>> pb = np.where(rng.random(400) < 0.85, y, 1 - y)
    >>> def accuracy(t, p):
    ...     return float(np.mean(t == p))
    >>> r = paired_bootstrap(y, pa, pb, accuracy, np.random.default_rng(0), 500)
    >>> round(r.effect, 4), r.p_value < 0.05
    (0.0875, True)
    """
    alpha = _check_alpha(alpha)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not callable(metric):
        raise TypeError(f"metric must be callable, got {type(metric).__name__}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    y = np.asarray(y_true)
    pa = np.asarray(pred_a)
    pb = np.asarray(pred_b)
    for name, arr in (("y_true", y), ("pred_a", pa), ("pred_b", pb)):
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise ValueError(f"{name} is empty")
    if not y.shape[0] == pa.shape[0] == pb.shape[0]:
        raise ValueError(
            "y_true, pred_a and pred_b must be paired (same length), got "
            f"{y.shape[0]}, {pa.shape[0]} and {pb.shape[0]}"
        )

    def score(idx: Any) -> float:
        value = float(metric(y[idx], pb[idx])) - float(metric(y[idx], pa[idx]))
        if not np.isfinite(value):
            raise ValueError(f"metric returned a non-finite difference {value!r}")
        return value

    observed = score(slice(None))
    n = y.shape[0]
    diffs = np.empty(int(n_resamples))
    for i in range(int(n_resamples)):  # one resample at a time: memory stays O(n)
        diffs[i] = score(rng.integers(0, n, size=n))
    p = (1.0 + float(np.sum(diffs <= 0.0))) / (n_resamples + 1.0)
    lo, hi = np.quantile(diffs, [alpha / 2.0, 1.0 - alpha / 2.0])
    return TestResult("paired_bootstrap", observed, p, observed, float(lo), float(hi), alpha)
