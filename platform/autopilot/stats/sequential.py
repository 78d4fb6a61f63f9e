r"""Always-valid sequential tests: the mixture SPRT (mSPRT).

Johari, Koomen, Pekelis & Walsh (2017), "Peeking at A/B tests: why it matters,
and what to do about it" (KDD; Operations Research 2022). With per-observation
variance :math:`\sigma^2` known, the difference of arm means after
:math:`n_a, n_b` observations is :math:`\hat\theta \sim N(\theta, V)` with
:math:`V = \sigma^2 (1/n_a + 1/n_b)` (:math:`2\sigma^2/n` for ``n`` pairs).
Mixing the likelihood ratio of :math:`\theta` against :math:`0` over
:math:`\theta \sim N(0, \tau^2)` gives

.. math::

    \Lambda_n = \sqrt{\frac{V}{V + \tau^2}}
                \exp\left(\frac{\tau^2 \hat\theta^2}{2 V (V + \tau^2)}\right),

a nonnegative martingale with mean 1 under :math:`\theta = 0`. By Ville's
inequality :math:`P(\exists n: \Lambda_n \ge 1/\alpha) \le \alpha`, so the
always-valid p-value :math:`p_n = \min(1, \min_{k \le n} 1/\Lambda_k)` may be
checked after every observation without inflating false positives.

Inverting the same bound around any :math:`\theta` gives the confidence
sequence :math:`\hat\theta_n \pm w_n` with

.. math::

    w_n^2 = \frac{2 V (V + \tau^2)}{\tau^2}
            \left(\log\frac{1}{\alpha} + \frac12 \log\frac{V + \tau^2}{V}\right),

covering :math:`\theta` at every ``n`` simultaneously with probability
:math:`\ge 1 - \alpha`; the running intersection of these intervals is
reported (also a confidence sequence), and :math:`0` leaves it exactly when
:math:`p_n` drops to :math:`\le \alpha`.

Choosing ``tau2``: the mixing variance sets which effects the test is fastest
at; take it on the scale of the squared effects you expect (e.g. the squared
minimum effect worth detecting). Validity holds for any ``tau2 > 0``.

Exactness: for Gaussian data with known ``sigma2`` the guarantee is exact for
paired arrivals or a fixed allocation ratio; with ``sigma2`` estimated, with
Bernoulli outcomes (:func:`msprt_proportions`) or with a drifting allocation it
holds approximately (a CLT argument), as in the paper's deployment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autopilot.stats.experiments import _check_alpha, _sample

__all__ = [
    "MsprtStep",
    "SequentialResult",
    "estimate_sigma2",
    "mean_confidence_sequence",
    "msprt",
    "msprt_from_sums",
    "msprt_proportions",
    "msprt_proportions_from_counts",
]


@dataclass(frozen=True, eq=False)
class SequentialResult:
    """Outcome of an mSPRT run over paired observations.

    Attributes
    ----------
    method : str
        ``"msprt"`` or ``"msprt_proportions"``.
    p_values : ndarray, shape (n,)
        Always-valid p-value after each pair (``p_values[i]`` after ``i + 1``
        pairs); non-increasing; read-only.
    p_value : float
        Final always-valid p-value.
    n : int
        Number of pairs.
    estimate : float
        ``mean(treatment) - mean(control)``.
    ci_low, ci_high : float
        Final confidence-sequence interval for the difference.
    ci_lows, ci_highs : ndarray, shape (n,)
        The running (intersected) confidence sequence; read-only.
    alpha : float
        Level of the test and of the confidence sequence.
    rejected : bool
        ``p_value <= alpha`` (Ville's bound is for ``Lambda >= 1/alpha``).
    first_rejection : int or None
        Index into ``p_values`` of the first ``p <= alpha``, None if never.
    """

    method: str
    p_values: NDArray[np.float64]
    p_value: float
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    ci_lows: NDArray[np.float64]
    ci_highs: NDArray[np.float64]
    alpha: float
    rejected: bool
    first_rejection: int | None


@dataclass(frozen=True)
class MsprtStep:
    """One incremental mSPRT update from running counts and means.

    Attributes
    ----------
    p_value : float
        Always-valid p-value: ``min(prev_min_p, 1 / Lambda_now, 1)``; pass it
        back as ``prev_min_p`` on the next tick.
    log_lr : float
        ``log Lambda`` at this step (``-inf`` when there is no information yet).
    estimate : float
        ``mean_b - mean_a`` (NaN while an arm is empty).
    ci_low, ci_high : float
        This step's confidence-sequence interval at ``1 - alpha``; intersect
        it with earlier steps' intervals for the running sequence.
    n_a, n_b : int
        Observations per arm.
    alpha : float
        Level.
    rejected : bool
        ``p_value <= alpha``.
    """

    p_value: float
    log_lr: float
    estimate: float
    ci_low: float
    ci_high: float
    n_a: int
    n_b: int
    alpha: float
    rejected: bool


# --------------------------------------------------------------------------- core maths


def _log_lr(diff: NDArray[np.float64], v: NDArray[np.float64], tau2: float) -> NDArray[np.float64]:
    """``log Lambda`` of the normal mixture for ``diff ~ N(theta, v)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 0.5 * np.log(v / (v + tau2)) + tau2 * diff**2 / (2.0 * v * (v + tau2))
    # No variance information (v == 0 from a zero pooled rate, or inf from an
    # empty arm) means no evidence: Lambda = 0, p stays where it was.
    return np.where(np.isfinite(v) & (v > 0), out, -np.inf)


def _half_width(v: NDArray[np.float64], tau2: float, alpha: float) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        w2 = 2.0 * v * (v + tau2) / tau2 * (np.log(1.0 / alpha) + 0.5 * np.log((v + tau2) / v))
    return np.where(np.isfinite(v) & (v > 0), np.sqrt(w2), np.inf)


def _check_positive(value: float, name: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def _paired(control: ArrayLike, treatment: ArrayLike) -> tuple[NDArray[np.float64], ...]:
    a = np.asarray(control, dtype=np.float64)
    b = np.asarray(treatment, dtype=np.float64)
    for name, arr in (("control", a), ("treatment", b)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{name} is empty")
        if not np.isfinite(arr).all():
            # A NaN would silently break the pairing of arrivals.
            raise ValueError(f"{name} contains NaN or infinite values")
    if a.size != b.size:
        raise ValueError(
            f"control and treatment must be paired arrivals of equal length, "
            f"got {a.size} and {b.size}"
        )
    return a, b


def _result(
    method: str,
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    v: NDArray[np.float64],
    tau2: float,
    alpha: float,
) -> SequentialResult:
    k = np.arange(1, a.size + 1, dtype=np.float64)
    diff = np.cumsum(b) / k - np.cumsum(a) / k
    log_lr = _log_lr(diff, v, tau2)
    p = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lr)))
    w = _half_width(v, tau2, alpha)
    lows = np.maximum.accumulate(diff - w)
    highs = np.minimum.accumulate(diff + w)
    for arr in (p, lows, highs):
        arr.flags.writeable = False
    hits = np.flatnonzero(p <= alpha)
    return SequentialResult(
        method=method,
        p_values=p,
        p_value=float(p[-1]),
        n=int(a.size),
        estimate=float(diff[-1]),
        ci_low=float(lows[-1]),
        ci_high=float(highs[-1]),
        ci_lows=lows,
        ci_highs=highs,
        alpha=alpha,
        rejected=bool(p[-1] <= alpha),
        first_rejection=int(hits[0]) if hits.size else None,
    )


# --------------------------------------------------------------------------- public API


def mean_confidence_sequence(
    total: float, n: int, sigma2: float, tau2: float, alpha: float = 0.05
) -> tuple[float, float]:
    """Always-valid interval for one mean: ``total / n`` plus or minus the mixture width.

    The module's normal-mixture boundary with :math:`V = \\sigma^2 / n`. For
    observations that are :math:`\\sigma^2`-sub-Gaussian about their mean it covers
    the mean at every ``n`` simultaneously with probability at least ``1 - alpha``
    (Howard, Ramdas, McAuliffe & Sekhon 2021, the normal mixture), so it may be
    checked after every observation. 0/1 outcomes are sub-Gaussian with
    :math:`\\sigma^2 = 1/4`, which makes the guarantee exact for them, not a CLT one.

    Parameters
    ----------
    total : float
        Sum of the ``n`` observations.
    n : int
        Observations so far (0: the whole real line).
    sigma2 : float
        Variance proxy of one observation.
    tau2 : float
        Mixing variance: the scale of the squared deviations to be seen soonest.
    alpha : float
        Miscoverage allowed over the whole sequence.

    Returns
    -------
    tuple of float
        ``(low, high)``.

    Examples
    --------
    >>> low, high = mean_confidence_sequence(80, 100, sigma2=0.25, tau2=0.01)
    >>> round(low, 3), round(high, 3)
    (0.646, 0.954)
    """
    alpha = _check_alpha(alpha)
    sigma2 = _check_positive(sigma2, "sigma2")
    tau2 = _check_positive(tau2, "tau2")
    n = _check_count(n, "n")
    if n == 0:
        return -np.inf, np.inf
    w = float(_half_width(np.array([sigma2 / n]), tau2, alpha)[0])
    mean = float(total) / n
    return mean - w, mean + w


def msprt(
    control: ArrayLike,
    treatment: ArrayLike,
    sigma2: float,
    tau2: float,
    alpha: float = 0.05,
) -> SequentialResult:
    """Mixture SPRT on the difference in means, p-value after every pair.

    Parameters
    ----------
    control, treatment : array_like, shape (n,)
        Observations in arrival order; ``control[i]`` and ``treatment[i]``
        form pair ``i``. No NaN (it would break the pairing).
    sigma2 : float
        Known per-observation variance (see :func:`estimate_sigma2`).
    tau2 : float
        Variance of the N(0, tau2) mixing distribution on the difference.
    alpha : float
        Level for ``rejected`` and the confidence sequence.

    Returns
    -------
    SequentialResult
        Always-valid p-values, the estimate ``mean(treatment) -
        mean(control)`` and its confidence sequence.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> r = msprt(rng.normal(0, 1, 2000), rng.normal(0.2, 1, 2000), sigma2=1.0, tau2=0.04)
    >>> r.rejected, r.first_rejection, round(r.estimate, 3)
    (True, 318, 0.226)
    >>> round(r.ci_low, 3), round(r.ci_high, 3)
    (0.128, 0.3)
    """
    alpha = _check_alpha(alpha)
    sigma2 = _check_positive(sigma2, "sigma2")
    tau2 = _check_positive(tau2, "tau2")
    a, b = _paired(control, treatment)
    k = np.arange(1, a.size + 1, dtype=np.float64)
    return _result("msprt", a, b, 2.0 * sigma2 / k, tau2, alpha)


def msprt_proportions(
    control: ArrayLike,
    treatment: ArrayLike,
    tau2: float,
    alpha: float = 0.05,
) -> SequentialResult:
    """Mixture SPRT for Bernoulli outcomes (conversion, error, correct flags).

    The per-observation variance after ``k`` pairs is the pooled Bernoulli
    variance ``p (1 - p)`` with ``p`` the success rate of both arms together
    up to ``k`` (the variance under the null of equal rates). While ``p`` is 0
    or 1 there is no information and the p-value stays at 1. This plug-in
    makes the guarantee approximate (CLT), accurate once each arm has a few
    dozen successes and failures.

    Parameters
    ----------
    control, treatment : array_like of bool or 0/1, shape (n,)
        Outcomes in arrival order, paired by index.
    tau2 : float
        Variance of the N(0, tau2) mixing distribution on the rate difference.
    alpha : float
        Level for ``rejected`` and the confidence sequence.

    Returns
    -------
    SequentialResult
        As :func:`msprt`, ``estimate`` being ``rate(treatment) - rate(control)``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> a, b = rng.random(5000) < 0.10, rng.random(5000) < 0.13
    >>> r = msprt_proportions(a, b, tau2=0.03**2)
    >>> r.rejected, r.first_rejection, round(r.estimate, 4)
    (True, 1098, 0.0308)
    """
    alpha = _check_alpha(alpha)
    tau2 = _check_positive(tau2, "tau2")
    a, b = _paired(control, treatment)
    for name, arr in (("control", a), ("treatment", b)):
        if not np.isin(arr, (0.0, 1.0)).all():
            raise ValueError(f"{name} must hold booleans or 0/1 values only")
    k = np.arange(1, a.size + 1, dtype=np.float64)
    pooled = (np.cumsum(a) + np.cumsum(b)) / (2.0 * k)
    v = 2.0 * pooled * (1.0 - pooled) / k
    return _result("msprt_proportions", a, b, v, tau2, alpha)


def estimate_sigma2(control: ArrayLike, treatment: ArrayLike | None = None) -> float:
    """Pooled within-arm variance (ddof=1), for ``sigma2`` in :func:`msprt`.

    Estimate it from pre-experiment or burn-in data: estimating it from the
    very observations being tested makes the guarantee approximate.

    Parameters
    ----------
    control : array_like
        Observations of one arm (NaN dropped; at least 2).
    treatment : array_like, optional
        Observations of the other arm, pooled with ``control``.

    Returns
    -------
    float
        ``((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2)``.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> round(estimate_sigma2(rng.normal(0, 2, 5000), rng.normal(1, 2, 5000)), 2)
    4.0
    """
    a = _sample(control, "control", 2)
    if treatment is None:
        value = float(np.var(a, ddof=1))
    else:
        b = _sample(treatment, "treatment", 2)
        ss = np.var(a, ddof=1) * (a.size - 1) + np.var(b, ddof=1) * (b.size - 1)
        value = float(ss / (a.size + b.size - 2))
    if value == 0.0:
        raise ValueError("the observations are constant; sigma2 would be 0")
    return value


def _step(
    n_a: int,
    mean_a: float,
    n_b: int,
    mean_b: float,
    sigma2: float,
    tau2: float,
    prev_min_p: float,
    alpha: float,
) -> MsprtStep:
    if n_a == 0 or n_b == 0:
        return MsprtStep(
            p_value=prev_min_p,
            log_lr=float("-inf"),
            estimate=float("nan"),
            ci_low=float("-inf"),
            ci_high=float("inf"),
            n_a=n_a,
            n_b=n_b,
            alpha=alpha,
            rejected=bool(prev_min_p <= alpha),
        )
    diff = np.array([mean_b - mean_a])
    v = np.array([sigma2 * (1.0 / n_a + 1.0 / n_b)])
    log_lr = float(_log_lr(diff, v, tau2)[0])
    p = float(min(prev_min_p, 1.0, np.exp(-log_lr)))
    w = float(_half_width(v, tau2, alpha)[0])
    return MsprtStep(
        p_value=p,
        log_lr=log_lr,
        estimate=float(diff[0]),
        ci_low=float(diff[0] - w),
        ci_high=float(diff[0] + w),
        n_a=n_a,
        n_b=n_b,
        alpha=alpha,
        rejected=bool(p <= alpha),
    )


def _check_count(n: int, name: str) -> int:
    if int(n) != n or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


def _check_prev(prev_min_p: float) -> float:
    prev = float(prev_min_p)
    if not 0.0 <= prev <= 1.0:
        raise ValueError(f"prev_min_p must lie in [0, 1], got {prev_min_p!r}")
    return prev


def msprt_from_sums(
    n_a: int,
    mean_a: float,
    n_b: int,
    mean_b: float,
    sigma2: float,
    tau2: float,
    prev_min_p: float = 1.0,
    alpha: float = 0.05,
) -> MsprtStep:
    """Incremental mSPRT from running counts and means (one call per tick).

    The statistic depends on the data only through the counts and means, so
    a caller that receives counts per tick keeps ``n``, the running means and
    the previous p-value, and never needs the raw observations. With
    ``n_a == n_b`` this equals :func:`msprt` after the same pairs; with
    unequal arms ``V = sigma2 (1/n_a + 1/n_b)`` (exact for a fixed allocation
    ratio, see the module notes).

    Parameters
    ----------
    n_a, n_b : int
        Observations so far in control (a) and treatment (b).
    mean_a, mean_b : float
        Their running means.
    sigma2 : float
        Per-observation variance.
    tau2 : float
        Mixing variance on the difference.
    prev_min_p : float
        The ``p_value`` returned by the previous tick (1.0 at the start).
    alpha : float
        Level for ``rejected`` and the interval.

    Returns
    -------
    MsprtStep
        ``p_value`` is ``min(prev_min_p, 1 / Lambda)``. If an arm is still
        empty, nothing changes: ``p_value = prev_min_p`` and an infinite
        interval.

    Examples
    --------
    >>> step = msprt_from_sums(400, 10.0, 400, 10.25, sigma2=1.0, tau2=0.04)
    >>> round(step.p_value, 4), step.rejected
    (0.0116, True)
    >>> step = msprt_from_sums(500, 10.0, 500, 10.1, 1.0, 0.04, prev_min_p=step.p_value)
    >>> round(step.p_value, 4)
    0.0116
    """
    alpha = _check_alpha(alpha)
    n_a = _check_count(n_a, "n_a")
    n_b = _check_count(n_b, "n_b")
    sigma2 = _check_positive(sigma2, "sigma2")
    tau2 = _check_positive(tau2, "tau2")
    prev = _check_prev(prev_min_p)
    for name, n, value in (("mean_a", n_a, mean_a), ("mean_b", n_b, mean_b)):
        if n > 0 and not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    return _step(n_a, float(mean_a), n_b, float(mean_b), sigma2, tau2, prev, alpha)


def msprt_proportions_from_counts(
    n_a: int,
    successes_a: int,
    n_b: int,
    successes_b: int,
    tau2: float,
    prev_min_p: float = 1.0,
    alpha: float = 0.05,
) -> MsprtStep:
    """Incremental mSPRT for Bernoulli outcomes from running counts.

    ``sigma2`` is the pooled Bernoulli variance ``p (1 - p)`` with
    ``p = (successes_a + successes_b) / (n_a + n_b)``, as in
    :func:`msprt_proportions`; while ``p`` is 0 or 1 nothing changes.

    Parameters
    ----------
    n_a, successes_a : int
        Trials and successes of control so far.
    n_b, successes_b : int
        Trials and successes of treatment so far.
    tau2 : float
        Mixing variance on the rate difference.
    prev_min_p : float
        The previous tick's ``p_value`` (1.0 at the start).
    alpha : float
        Level for ``rejected`` and the interval.

    Returns
    -------
    MsprtStep
        ``estimate`` is ``rate_b - rate_a``.

    Examples
    --------
    >>> step = msprt_proportions_from_counts(3000, 300, 3000, 390, tau2=0.03**2)
    >>> round(step.p_value, 4), round(step.estimate, 3), step.rejected
    (0.0079, 0.03, True)
    """
    alpha = _check_alpha(alpha)
    n_a = _check_count(n_a, "n_a")
    n_b = _check_count(n_b, "n_b")
    sa = _check_count(successes_a, "successes_a")
    sb = _check_count(successes_b, "successes_b")
    if sa > n_a or sb > n_b:
        raise ValueError(
            f"successes exceed trials: successes_a={sa} of n_a={n_a}, successes_b={sb} of n_b={n_b}"
        )
    tau2 = _check_positive(tau2, "tau2")
    prev = _check_prev(prev_min_p)
    if n_a == 0 or n_b == 0:
        return _step(n_a, float("nan"), n_b, float("nan"), 1.0, tau2, prev, alpha)
    pooled = (sa + sb) / (n_a + n_b)
    sigma2 = pooled * (1.0 - pooled)
    ra, rb = sa / n_a, sb / n_b
    if sigma2 == 0.0:
        return MsprtStep(
            prev,
            float("-inf"),
            rb - ra,
            float("-inf"),
            float("inf"),
            n_a,
            n_b,
            alpha,
            bool(prev <= alpha),
        )
    return _step(n_a, ra, n_b, rb, sigma2, tau2, prev, alpha)
