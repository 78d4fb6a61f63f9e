"""Where did the mean of a stream change? A least-squares single change point.

Streaming detectors (:class:`autopilot.stats.ADWIN`) say *that* a stream changed,
with a false-alarm guarantee; to retrain on the rows after a change the
controller also needs *where*. :func:`mean_shift_point` gives the
least-squares estimate: the split of ``x`` into a before and an after segment
that minimises the within-segment sum of squares, which is the split
maximising ``k (n - k) / n * (mean_before - mean_after) ** 2`` (the CUSUM form,
the same answer as a one-break search with an ``l2`` cost, e.g. ``ruptures``'
``Dynp(model="l2")``). For a 0/1 error stream this is the maximum-likelihood
change point under a Gaussian approximation; it is O(n) with cumulative sums.

:func:`cusum_test` says whether a finished window holds a change at all (no
streaming detector needed): the OLS-CUSUM test of Ploberger and Krämer (1992)
for a constant mean, the same number as ``statsmodels``'
``breaks_cusumolsresid(x - x.mean(), ddof=1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from autopilot.stats._checks import float_series

__all__ = ["ChangePoint", "CusumTest", "cusum_test", "locate_shift", "mean_shift_point"]


@dataclass(frozen=True)
class ChangePoint:
    """A split of a series into a before and an after segment.

    Attributes
    ----------
    index : int
        First position of the after segment (``x[index:]`` is after the change).
    mean_before, mean_after : float
        Segment means.
    statistic : float
        ``k (n - k) / n * (mean_before - mean_after) ** 2``: the reduction in the
        sum of squares the split buys (0 when the segments have the same mean).
    """

    index: int
    mean_before: float
    mean_after: float
    statistic: float


def mean_shift_point(x: ArrayLike, min_size: int = 1) -> ChangePoint:
    """Least-squares location of a single change in the mean of ``x``.

    Parameters
    ----------
    x : array-like of float
        The stream, oldest first (finite values).
    min_size : int
        Fewest observations allowed in each segment.

    Returns
    -------
    ChangePoint

    Raises
    ------
    ValueError
        If ``x`` has NaN or fewer than ``2 * min_size`` values, or ``min_size < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> errors = np.concatenate([rng.random(800) < 0.1, rng.random(200) < 0.4])
    >>> cp = mean_shift_point(errors, min_size=20)
    >>> cp.index, round(cp.mean_before, 3), round(cp.mean_after, 3)
    (802, 0.087, 0.359)
    """
    if int(min_size) != min_size or min_size < 1:
        raise ValueError(f"min_size must be a positive integer, got {min_size!r}")
    values = float_series(x, "x")
    if np.isnan(values).any():
        raise ValueError("x contains NaN values; drop unlabelled rows first")
    n = len(values)
    if n < 2 * min_size:
        raise ValueError(f"x has {n} values; need at least 2 * min_size = {2 * min_size}")
    csum = np.cumsum(values)
    total = csum[-1]
    k = np.arange(min_size, n - min_size + 1)  # candidate sizes of the before segment
    left = csum[k - 1]
    mean_l = left / k
    mean_r = (total - left) / (n - k)
    stat = k * (n - k) / n * (mean_l - mean_r) ** 2
    best = int(np.argmax(stat))  # first maximum: the earliest of equally good splits
    return ChangePoint(
        index=int(k[best]),
        mean_before=float(mean_l[best]),
        mean_after=float(mean_r[best]),
        statistic=float(stat[best]),
    )


def locate_shift(x: ArrayLike, min_size: int = 20) -> ChangePoint:
    """Where a detector's stream changed: :func:`mean_shift_point` with segments of at
    least ``min_size`` values, or half the series when it is shorter than ``2 * min_size``.

    Used on the stream a streaming detector judged since its last reset, right
    after it fired (the monitor, the simulator and the detection benchmark).

    Raises
    ------
    ValueError
        If ``x`` has fewer than 2 values (or NaN).

    Examples
    --------
    >>> locate_shift([0, 0, 0, 1, 1]).index
    3
    """
    n = len(np.asarray(x))
    if n < 2:
        raise ValueError(f"x has {n} values; a change needs at least 2")
    return mean_shift_point(x, min_size=min(int(min_size), n // 2))


@dataclass(frozen=True)
class CusumTest:
    """The OLS-CUSUM test of a constant mean.

    Attributes
    ----------
    statistic : float
        ``max_k |sum_{i<=k} (x_i - mean)| / (s sqrt(n))`` with ``s`` the sample
        standard deviation (``ddof=1``): under no change, asymptotically the
        supremum of a standard Brownian bridge.
    p_value : float
        ``P(sup |B| >= statistic)`` from the Kolmogorov distribution
        (``scipy.stats.kstwobign``); 1 for a constant series.
    """

    statistic: float
    p_value: float


def cusum_test(x: ArrayLike) -> CusumTest:
    """Test whether the mean of ``x`` changed anywhere in it (OLS-CUSUM).

    The window-level companion of :func:`mean_shift_point`: that one says where
    a change would be, this one whether there is one. Asymptotic (Brownian
    bridge) p-values: fine for the hundreds of rows a monitor window holds,
    conservative when the series has a large change (``s`` then includes it).

    Parameters
    ----------
    x : array-like of float
        The series, oldest first (finite values, at least 2).

    Returns
    -------
    CusumTest

    Raises
    ------
    ValueError
        If ``x`` has NaN or fewer than 2 values.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> same = (rng.random(1000) < 0.2).astype(float)
    >>> shifted = np.concatenate([rng.random(600) < 0.1, rng.random(400) < 0.3]).astype(float)
    >>> round(cusum_test(same).p_value, 3), cusum_test(shifted).p_value < 1e-6
    (0.351, True)
    """
    from scipy.stats import kstwobign

    values = float_series(x, "x")
    if np.isnan(values).any():
        raise ValueError("x contains NaN values; drop unlabelled rows first")
    n = len(values)
    if n < 2:
        raise ValueError(f"x has {n} values; a test needs at least 2")
    resid = values - values.mean()
    ss = float((resid**2).sum())
    if ss <= 0.0:
        return CusumTest(0.0, 1.0)
    stat = float(np.abs(np.cumsum(resid)).max() / np.sqrt(ss / (n - 1) * n))
    return CusumTest(stat, float(kstwobign.sf(stat)))
