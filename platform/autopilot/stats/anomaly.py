"""Anomaly detection for metric series: z-scores, MAD, EWMA chart, Welford, isolation forest.

The detectors score points of a series (latency per minute, error rate per
window, ...) and flag the unusual ones. Results are frozen dataclasses with
read-only arrays.

- :func:`zscore_anomalies`: ``|x - mean| / sd > threshold``; simple but the
  outliers inflate the very sd they are judged by.
- :func:`modified_zscore_anomalies`: Iglewicz & Hoaglin's
  ``0.6745 (x - median) / MAD``, robust to the outliers themselves.
- :func:`ewma_control_limits`: an EWMA control chart (Roberts 1959), sensitive
  to small persistent shifts a point-wise test misses.
- :class:`Welford`: streaming mean and variance, mergeable across workers.
- :func:`isolation_forest_anomalies`: multivariate, wraps scikit-learn's
  :class:`~sklearn.ensemble.IsolationForest`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autopilot.stats._checks import float_series

__all__ = [
    "AnomalyResult",
    "EwmaChart",
    "Welford",
    "ewma_control_limits",
    "isolation_forest_anomalies",
    "modified_zscore_anomalies",
    "zscore_anomalies",
]

_MAD_CONSTANT = 0.6745  # Phi^{-1}(0.75): makes MAD estimate the sd for normal data
_MEANAD_CONSTANT = 1.253314  # sqrt(pi/2): the same for the mean absolute deviation


@dataclass(frozen=True, eq=False)
class AnomalyResult:
    """Per-point anomaly scores and flags.

    Attributes
    ----------
    method : str
        Detector name.
    scores : ndarray, shape (n,)
        Score per point (larger magnitude = more unusual; NaN where the input
        was NaN).
    is_anomaly : ndarray of bool, shape (n,)
        Flag per point (False where the input was NaN).
    threshold : float
        Cut-off applied to ``|scores|`` (NaN when the detector chooses it).
    """

    method: str
    scores: NDArray[np.float64]
    is_anomaly: NDArray[np.bool_]
    threshold: float

    @property
    def indices(self) -> NDArray[np.intp]:
        """Positions of the flagged points."""
        return np.flatnonzero(self.is_anomaly)


@dataclass(frozen=True, eq=False)
class EwmaChart:
    """An EWMA control chart over a series.

    Attributes
    ----------
    ewma : ndarray, shape (n,)
        The smoothed statistic ``z_t``.
    lower, upper : ndarray, shape (n,)
        Time-varying control limits.
    out_of_control : ndarray of bool, shape (n,)
        ``z_t`` outside the limits.
    target, sigma : float
        In-control mean and per-point standard deviation used.
    first_signal : int or None
        First out-of-control index, None if none.
    """

    ewma: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    out_of_control: NDArray[np.bool_]
    target: float
    sigma: float
    first_signal: int | None


def _series(x: ArrayLike, name: str = "x") -> NDArray[np.float64]:
    """1-D float series keeping NaN positions; errors name the problem."""
    return float_series(x, name)


def _frozen(*arrays: NDArray[np.generic]) -> None:
    for arr in arrays:
        arr.flags.writeable = False


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be positive and finite, got {threshold!r}")
    return threshold


def _flag(method: str, scores: NDArray[np.float64], threshold: float) -> AnomalyResult:
    flags = np.zeros(scores.shape, dtype=np.bool_)
    ok = ~np.isnan(scores)
    flags[ok] = np.abs(scores[ok]) > threshold
    _frozen(scores, flags)
    return AnomalyResult(method, scores, flags, threshold)


def zscore_anomalies(x: ArrayLike, threshold: float = 3.0) -> AnomalyResult:
    """Flag points more than ``threshold`` standard deviations from the mean.

    Parameters
    ----------
    x : array_like, shape (n,)
        The series; NaN points are ignored in the fit and never flagged.
    threshold : float
        Cut-off on ``|z|``.

    Returns
    -------
    AnomalyResult
        ``scores`` equal ``scipy.stats.zscore(x, nan_policy="omit")``
        (population sd, ddof=0); a constant series scores 0 everywhere.

    Examples
    --------
    >>> x = np.r_[np.random.default_rng(0).normal(10, 1, 200), 25.0]
    >>> zscore_anomalies(x).indices.tolist()
    [200]
    """
    arr = _series(x)
    threshold = _check_threshold(threshold)
    mean = np.nanmean(arr)
    sd = np.nanstd(arr)
    scores = np.zeros_like(arr) if sd == 0 else (arr - mean) / sd
    scores[np.isnan(arr)] = np.nan
    return _flag("zscore", scores, threshold)


def modified_zscore_anomalies(x: ArrayLike, threshold: float = 3.5) -> AnomalyResult:
    """Flag points by the modified z-score ``0.6745 (x - median) / MAD``.

    Parameters
    ----------
    x : array_like, shape (n,)
        The series; NaN points are ignored in the fit and never flagged.
    threshold : float
        Cut-off on ``|M|``; 3.5 is Iglewicz & Hoaglin's recommendation.

    Returns
    -------
    AnomalyResult
        When more than half the points equal the median (MAD = 0), the score
        uses the mean absolute deviation instead,
        ``(x - median) / (1.253314 * MeanAD)``; if that is 0 too the series is
        constant and scores 0.

    Examples
    --------
    >>> x = np.r_[np.random.default_rng(1).normal(10, 1, 200), 16.0, 4.0]
    >>> modified_zscore_anomalies(x).indices.tolist()
    [200, 201]
    """
    arr = _series(x)
    threshold = _check_threshold(threshold)
    med = np.nanmedian(arr)
    dev = arr - med
    mad = np.nanmedian(np.abs(dev))
    if mad > 0:
        scores = _MAD_CONSTANT * dev / mad
    else:
        mean_ad = np.nanmean(np.abs(dev))
        scores = np.zeros_like(arr) if mean_ad == 0 else dev / (_MEANAD_CONSTANT * mean_ad)
    scores[np.isnan(arr)] = np.nan
    return _flag("modified_zscore", scores, threshold)


def ewma_control_limits(
    x: ArrayLike,
    lam: float = 0.2,
    width: float = 3.0,
    target: float | None = None,
    sigma: float | None = None,
) -> EwmaChart:
    """EWMA control chart with exact time-varying limits.

    ``z_t = lam x_t + (1 - lam) z_{t-1}``, ``z_0 = target``; the limits are
    ``target +/- width * sigma * sqrt(lam / (2 - lam) * (1 - (1 - lam)^(2t)))``
    (Montgomery, *Introduction to Statistical Quality Control*, 9.2). NaN
    points carry the previous ``z`` forward.

    Parameters
    ----------
    x : array_like, shape (n,)
        The monitored series.
    lam : float
        Smoothing weight in (0, 1]; small values catch small shifts.
    width : float
        Limit width ``L`` in standard deviations of ``z``.
    target, sigma : float, optional
        In-control mean and per-point sd. Pass them from a reference period
        when monitoring; when omitted they are estimated from ``x`` itself
        (mean and sd, ddof=1), which suits a retrospective look only.

    Returns
    -------
    EwmaChart
        The statistic, limits and out-of-control flags.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> x = np.r_[rng.normal(0, 1, 100), rng.normal(1.0, 1, 50)]
    >>> chart = ewma_control_limits(x, target=0.0, sigma=1.0)
    >>> chart.first_signal
    105
    """
    arr = _series(x)
    lam = float(lam)
    if not 0.0 < lam <= 1.0:
        raise ValueError(f"lam must lie in (0, 1], got {lam!r}")
    width = _check_threshold(width)
    mu = float(np.nanmean(arr)) if target is None else float(target)
    if sigma is None:
        if np.count_nonzero(~np.isnan(arr)) < 2:
            raise ValueError("x needs two non-NaN values to estimate sigma")
        sd = float(np.nanstd(arr, ddof=1))
    else:
        sd = float(sigma)
    if not math.isfinite(mu):
        raise ValueError(f"target must be finite, got {target!r}")
    if not (math.isfinite(sd) and sd > 0):
        raise ValueError(f"sigma must be positive and finite, got {sd!r}")
    z = np.empty_like(arr)
    prev = mu
    for i, value in enumerate(arr):
        if not np.isnan(value):
            prev = lam * value + (1.0 - lam) * prev
        z[i] = prev
    t = np.arange(1, arr.size + 1, dtype=np.float64)
    half = width * sd * np.sqrt(lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** (2.0 * t)))
    lower, upper = mu - half, mu + half
    out = (z < lower) | (z > upper)
    hits = np.flatnonzero(out)
    _frozen(z, lower, upper, out)
    return EwmaChart(z, lower, upper, out, mu, sd, int(hits[0]) if hits.size else None)


class Welford:
    """Streaming mean and variance (Welford 1962), mergeable (Chan et al. 1979).

    Numerically stable in one pass; :meth:`merge` combines summaries computed
    on separate shards exactly as if all values had been seen by one.

    Examples
    --------
    >>> w = Welford()
    >>> for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]:
    ...     w.update(v)
    >>> w.n, w.mean, round(w.variance, 4), w.std_population
    (8, 5.0, 4.5714, 2.0)
    >>> a, b = Welford(), Welford()
    >>> a.update_many([1.0, 2.0]); b.update_many([3.0, 4.0])
    >>> a.merge(b).mean
    2.5
    """

    __slots__ = ("_m2", "mean", "n")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self._m2 = 0.0

    def update(self, x: float) -> None:
        """Add one finite value."""
        value = float(x)
        if not math.isfinite(value):
            raise ValueError(f"x must be finite, got {x!r}")
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self._m2 += delta * (value - self.mean)

    def update_many(self, xs: ArrayLike) -> None:
        """Add a batch of values (merged in one step, same result)."""
        arr = np.asarray(xs, dtype=np.float64).ravel()
        if arr.size == 0:
            return
        if not np.isfinite(arr).all():
            raise ValueError("xs contains NaN or infinite values")
        batch = Welford()
        batch.n = int(arr.size)
        batch.mean = float(arr.mean())
        batch._m2 = float(np.sum((arr - batch.mean) ** 2))
        merged = self.merge(batch)
        self.n, self.mean, self._m2 = merged.n, merged.mean, merged._m2

    def merge(self, other: Welford) -> Welford:
        """A new summary of both streams (neither input is changed)."""
        if not isinstance(other, Welford):
            raise TypeError(f"can only merge a Welford, got {type(other).__name__}")
        out = Welford()
        n = self.n + other.n
        if n == 0:
            return out
        delta = other.mean - self.mean
        out.n = n
        out.mean = self.mean + delta * other.n / n
        out._m2 = self._m2 + other._m2 + delta * delta * self.n * other.n / n
        return out

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); NaN below two values."""
        return self._m2 / (self.n - 1) if self.n > 1 else float("nan")

    @property
    def variance_population(self) -> float:
        """Population variance (ddof=0); NaN when empty."""
        return self._m2 / self.n if self.n > 0 else float("nan")

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1)."""
        return math.sqrt(self.variance) if self.n > 1 else float("nan")

    @property
    def std_population(self) -> float:
        """Population standard deviation (ddof=0)."""
        return math.sqrt(self.variance_population) if self.n > 0 else float("nan")

    def __repr__(self) -> str:
        return f"Welford(n={self.n}, mean={self.mean!r}, variance={self.variance!r})"


def isolation_forest_anomalies(
    X: ArrayLike,
    rng: np.random.Generator,
    contamination: float | str = "auto",
    n_estimators: int = 100,
) -> AnomalyResult:
    """Multivariate anomalies by scikit-learn's IsolationForest.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_features)
        Points (a 1-D series is treated as one feature). NaN not allowed.
    rng : numpy.random.Generator
        Seeds the forest (``random_state`` is drawn from it).
    contamination : float or "auto"
        Expected share of anomalies, as scikit-learn.
    n_estimators : int
        Trees in the forest.

    Returns
    -------
    AnomalyResult
        ``scores`` = ``-score_samples(X)`` (higher = more anomalous, about
        0.5 for ordinary points); ``is_anomaly`` = ``predict(X) == -1``;
        ``threshold`` is the score cut-off (``-offset_``).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> X = np.r_[rng.normal(0, 1, (300, 2)), [[6.0, 6.0], [-7.0, 5.0]]]
    >>> r = isolation_forest_anomalies(X, np.random.default_rng(0), contamination=0.01)
    >>> sorted(r.indices.tolist())[-2:]
    [300, 301]
    """
    from sklearn.ensemble import IsolationForest  # heavy import, only when used

    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"X must be 1-D or 2-D, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"X needs at least 2 rows, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError("X contains NaN or infinite values")
    forest = IsolationForest(
        n_estimators=n_estimators,
        contamination=contamination,
        random_state=int(rng.integers(0, 2**31 - 1)),
    ).fit(arr)
    scores = -forest.score_samples(arr)
    flags = forest.predict(arr) == -1
    _frozen(scores, flags)
    return AnomalyResult("isolation_forest", scores, flags, float(-forest.offset_))
