r"""Power, sample size and minimum detectable effect for two-group experiments.

Means: the two-sided two-sample t-test with pooled variance. With ``n`` in the
control group and ``ratio * n`` in the treatment group, the statistic has a
noncentral t distribution with ``df = n + ratio n - 2`` and noncentrality
:math:`d \sqrt{n_{eff}}`, :math:`n_{eff} = 1 / (1/n_1 + 1/n_2)`; power adds
both rejection tails. This is statsmodels' ``TTestIndPower`` (checked number
for number in the tests).

Proportions: the arcsine (Cohen's h) normal approximation,
:math:`h = 2\arcsin\sqrt{p_t} - 2\arcsin\sqrt{p_c}`, whose estimate has
variance :math:`1/n_1 + 1/n_2` whatever the rates;
power :math:`= \Phi(|h|\sqrt{n_{eff}} - z_{1-\alpha/2}) +
\Phi(-|h|\sqrt{n_{eff}} - z_{1-\alpha/2})`. This is statsmodels'
``NormalIndPower`` with ``proportion_effectsize``. It is close to the classic
pooled/unpooled (Fleiss) formula: 3,835 vs 3,841 per group for 10 % -> 12 %,
7,674 vs 7,750 for 1 % -> 1.5 % (alpha 0.05, power 0.8).

Sample sizes are the smallest whole number of units per control group whose
power reaches the target (statsmodels returns the real-valued root; ours is
its ceiling).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import optimize, special, stats

from autopilot.stats.experiments import _check_alpha

__all__ = [
    "minimum_detectable_effect",
    "power_means",
    "power_proportions",
    "sample_size_means",
    "sample_size_proportions",
]


def _check_power(power: float) -> float:
    power = float(power)
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power!r}")
    return power


def _check_ratio(ratio: float) -> float:
    ratio = float(ratio)
    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio must be a positive finite number, got {ratio!r}")
    return ratio


def _check_rate(p: float, name: str) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {p!r}")
    return p


def _n_eff(n: float, ratio: float) -> float:
    return 1.0 / (1.0 / n + 1.0 / (n * ratio))


def _t_power(d: float, n: float, alpha: float, ratio: float) -> float:
    df = n - 1.0 + n * ratio - 1.0
    nc = d * math.sqrt(_n_eff(n, ratio))
    upper = float(stats.t.isf(alpha / 2.0, df))
    lower = float(stats.t.ppf(alpha / 2.0, df))
    return 1.0 - _nct_cdf(upper, df, nc) + _nct_cdf(lower, df, nc)


def _nct_cdf(x: float, df: float, nc: float) -> float:
    """Noncentral t cdf: scipy.special.nctdtr, the routine statsmodels calls.

    nctdtr returns NaN deep in a tail for some (df, nc) (statsmodels' power is
    then NaN too); those tails are astronomically small, so fall back to
    scipy.stats.nct and then to the normal approximation rather than NaN.
    """
    value = float(special.nctdtr(df, nc, x))
    if math.isnan(value):
        value = float(stats.nct.cdf(x, df, nc))
    if math.isnan(value):
        value = float(stats.norm.cdf(x - nc))
    return value


def _z_power(h: float, n: float, alpha: float, ratio: float) -> float:
    shift = h * math.sqrt(_n_eff(n, ratio))
    crit = float(stats.norm.isf(alpha / 2.0))
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def _smallest_n(f: Callable[[int], float], target: float, start: float, n_min: int) -> int:
    """Smallest integer n >= n_min with f(n) >= target (power rises with n)."""
    n = max(n_min, int(math.ceil(start)))
    while f(n) < target:
        n = max(n + 1, int(n * 1.05))  # overshoot quickly, then walk back down
    lo = n_min
    hi = n
    while lo < hi:  # binary search in [n_min, n]
        mid = (lo + hi) // 2
        if f(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return hi


def power_means(effect_size: float, n: float, alpha: float = 0.05, ratio: float = 1.0) -> float:
    """Power of the two-sided two-sample t-test.

    Parameters
    ----------
    effect_size : float
        Cohen's d, the difference in means over the common standard deviation.
    n : float
        Units in the control group (at least 2); treatment has ``ratio * n``.
    alpha : float
        Significance level.
    ratio : float
        Treatment-to-control size ratio.

    Returns
    -------
    float
        Equal to ``TTestIndPower().power(effect_size, n, alpha, ratio)``.

    Examples
    --------
    >>> round(power_means(0.5, 64), 4)
    0.8015
    """
    alpha = _check_alpha(alpha)
    ratio = _check_ratio(ratio)
    if not (math.isfinite(n) and n >= 2):
        raise ValueError(f"n must be at least 2, got {n!r}")
    if not math.isfinite(effect_size):
        raise ValueError(f"effect_size must be finite, got {effect_size!r}")
    return _t_power(float(effect_size), float(n), alpha, ratio)


def sample_size_means(
    effect_size: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> int:
    """Units per control group for a two-sided two-sample t-test.

    Parameters
    ----------
    effect_size : float
        Cohen's d to detect (sign ignored; must be non-zero).
    alpha : float
        Significance level.
    power : float
        Target power.
    ratio : float
        Treatment-to-control size ratio (1: equal groups, the per-group size).

    Returns
    -------
    int
        The smallest ``n`` with :func:`power_means` ``>= power``; equal to
        ``ceil(TTestIndPower().solve_power(effect_size, None, alpha, power, ratio))``.

    Examples
    --------
    >>> sample_size_means(0.5)
    64
    >>> sample_size_means(0.2, power=0.9)
    527
    """
    alpha = _check_alpha(alpha)
    power = _check_power(power)
    ratio = _check_ratio(ratio)
    d = abs(float(effect_size))
    if not (math.isfinite(d) and d > 0):
        raise ValueError(f"effect_size must be non-zero and finite, got {effect_size!r}")
    z = float(stats.norm.isf(alpha / 2.0) + stats.norm.ppf(power))
    start = (z / d) ** 2 * (1.0 + 1.0 / ratio)  # normal approximation, a lower bound
    return _smallest_n(lambda n: _t_power(d, float(n), alpha, ratio), power, start, 2)


def _cohens_h(p_control: float, p_treatment: float) -> float:
    return 2.0 * math.asin(math.sqrt(p_treatment)) - 2.0 * math.asin(math.sqrt(p_control))


def power_proportions(
    p_control: float,
    p_treatment: float,
    n: float,
    alpha: float = 0.05,
    ratio: float = 1.0,
) -> float:
    """Power of the two-sided two-sample test of proportions (arcsine approximation).

    Parameters
    ----------
    p_control, p_treatment : float
        Rates in control and treatment.
    n : float
        Units in the control group; treatment has ``ratio * n``.
    alpha : float
        Significance level.
    ratio : float
        Treatment-to-control size ratio.

    Returns
    -------
    float
        Equal to ``NormalIndPower().power(proportion_effectsize(p_treatment,
        p_control), n, alpha, ratio)``.

    Examples
    --------
    >>> round(power_proportions(0.10, 0.12, 3000), 4)
    0.6978
    """
    alpha = _check_alpha(alpha)
    ratio = _check_ratio(ratio)
    pc = _check_rate(p_control, "p_control")
    pt = _check_rate(p_treatment, "p_treatment")
    if not (math.isfinite(n) and n > 0):
        raise ValueError(f"n must be positive, got {n!r}")
    return _z_power(_cohens_h(pc, pt), float(n), alpha, ratio)


def sample_size_proportions(
    p_control: float,
    p_treatment: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> int:
    """Units per control group to detect ``p_control -> p_treatment`` (arcsine formula).

    Parameters
    ----------
    p_control, p_treatment : float
        Baseline and target rates (must differ).
    alpha : float
        Significance level.
    power : float
        Target power.
    ratio : float
        Treatment-to-control size ratio.

    Returns
    -------
    int
        Smallest ``n`` with :func:`power_proportions` ``>= power``; equal to
        ``ceil(NormalIndPower().solve_power(proportion_effectsize(p_treatment,
        p_control), None, alpha, power, ratio))``. Roughly
        ``(z_{1-alpha/2} + z_power)^2 (1 + 1/ratio) / h^2``.

    Examples
    --------
    >>> sample_size_proportions(0.10, 0.12)
    3835
    """
    alpha = _check_alpha(alpha)
    power = _check_power(power)
    ratio = _check_ratio(ratio)
    pc = _check_rate(p_control, "p_control")
    pt = _check_rate(p_treatment, "p_treatment")
    h = abs(_cohens_h(pc, pt))
    if h == 0.0:
        raise ValueError(f"p_treatment must differ from p_control, both are {pc!r}")
    z = float(stats.norm.isf(alpha / 2.0) + stats.norm.ppf(power))
    start = (z / h) ** 2 * (1.0 + 1.0 / ratio) * 0.999
    return _smallest_n(lambda n: _z_power(h, float(n), alpha, ratio), power, start, 1)


def minimum_detectable_effect(
    n: float,
    alpha: float = 0.05,
    power: float = 0.8,
    p_control: float | None = None,
    ratio: float = 1.0,
) -> float:
    """Smallest effect detectable with the given power at sample size ``n``.

    Parameters
    ----------
    n : float
        Units in the control group; treatment has ``ratio * n``.
    alpha : float
        Significance level.
    power : float
        Target power.
    p_control : float, optional
        None for means: the result is Cohen's d (as
        ``TTestIndPower().solve_power(None, n, alpha, power, ratio)``). A
        baseline rate for proportions: the result is the absolute increase
        ``p_treatment - p_control`` detectable by the arcsine test.
    ratio : float
        Treatment-to-control size ratio.

    Returns
    -------
    float
        The minimum detectable effect (positive).

    Raises
    ------
    ValueError
        If no increase from ``p_control`` is detectable (rate too close to 1).

    Examples
    --------
    >>> round(minimum_detectable_effect(64), 4)
    0.4991
    >>> round(minimum_detectable_effect(3841, p_control=0.10), 4)
    0.02
    """
    alpha = _check_alpha(alpha)
    power = _check_power(power)
    ratio = _check_ratio(ratio)
    if p_control is None:
        if not (math.isfinite(n) and n >= 2):
            raise ValueError(f"n must be at least 2, got {n!r}")
        if _t_power(50.0, float(n), alpha, ratio) < power:
            raise ValueError(f"n={n!r} is too small to reach power {power}")
        return float(
            optimize.brentq(
                lambda d: _t_power(d, float(n), alpha, ratio) - power, 1e-10, 50.0, xtol=1e-14
            )
        )
    pc = _check_rate(p_control, "p_control")
    if not (math.isfinite(n) and n > 0):
        raise ValueError(f"n must be positive, got {n!r}")
    h_max = math.pi - 2.0 * math.asin(math.sqrt(pc))  # h of the jump to a rate of 1
    if h_max <= 0 or _z_power(h_max, float(n), alpha, ratio) < power:
        raise ValueError(f"no increase from p_control={pc!r} reaches power {power} with n={n!r}")
    h = float(
        optimize.brentq(
            lambda x: _z_power(x, float(n), alpha, ratio) - power, 1e-12, h_max, xtol=1e-15
        )
    )
    p_t = math.sin(math.asin(math.sqrt(pc)) + h / 2.0) ** 2
    return float(np.clip(p_t, 0.0, 1.0) - pc)
