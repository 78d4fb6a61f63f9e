"""Univariate drift checks: one reference sample against one current sample.

Every function takes two 1-D samples (numpy arrays, lists or pandas Series) and
returns a :class:`~autopilot.stats.results.DriftResult`. Tests (``ks``,
``chi2``) carry a p-value and ``drifted = p_value < alpha``; distances carry
``p_value=None`` and ``drifted = statistic >= threshold``.

Input rules, shared by every function:

* A sample is *numeric* if its dtype is integer or float (or an object array
  holding only real numbers), *categorical* if it holds strings, booleans,
  pandas categories or other objects. Both samples must be of the same kind;
  otherwise a ``ValueError`` says which is which.
* Numeric samples: NaN and +/-inf are missing and are dropped before testing
  (the profile and the report count them as the missing share).
  Categorical samples: ``None``/NaN are missing and are dropped likewise.
  A sample that is empty, or has nothing left after dropping, is a
  ``ValueError`` naming it.
* Categories are compared by a string key; numbers are normalised first so
  that ``1``, ``1.0`` and ``True`` are the same category. Categories seen in
  only one sample are part of the comparison (reference share 0 for unseen
  current categories), never an error.
* Binned measures (PSI, Jensen-Shannon, KL, Hellinger) on numeric samples use
  ``bins`` bins cut at the reference's quantiles ``1/bins, ..., (bins-1)/bins``
  (``numpy.quantile``'s default linear interpolation; deciles by default), the
  outer bins open to -inf and +inf. Bins are ``[e_{i-1}, e_i)``. Duplicate
  edges (ties in the reference) are merged, so a discrete feature may get
  fewer bins. Categorical samples are binned by category.
* Smoothing: PSI and KL divide by bin shares, so an empty bin would make them
  infinite. For those two only, a share of exactly 0 is replaced by
  ``1e-4`` and the shares are renormalised to sum to one (so PSI and KL stay
  finite, non-negative and exactly 0 on identical inputs). Jensen-Shannon and
  Hellinger are finite with empty bins and use the raw shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special
from scipy.stats import chi2_contingency, distributions

# scipy's own exact-distribution helper for the two-sample KS test. It is
# private, but scipy is pinned and re-deriving it in Python would be slow (its
# inner loop is compiled with Pythran); tests pin our p-values to ks_2samp's.
from scipy.stats._stats_py import _attempt_exact_2kssamp

from autopilot.stats.results import DriftResult

__all__ = [
    "DRIFT_METHODS",
    "chi2_test",
    "hellinger",
    "jensen_shannon",
    "kl_divergence",
    "ks_test",
    "psi",
    "wasserstein",
]

#: Names used in ``DriftResult.method`` by the functions of this module.
DRIFT_METHODS = (
    "ks",
    "chi2",
    "psi",
    "jensen_shannon",
    "wasserstein",
    "kl_divergence",
    "hellinger",
)

FloatArray = npt.NDArray[np.float64]
Kind = Literal["numeric", "categorical"]

_SMOOTHING = 1e-4  # share given to an empty bin by PSI and KL
_KS_MAX_AUTO_N = 10_000  # scipy.stats.ks_2samp(method="auto"): exact up to this n


# --------------------------------------------------------------------------
# Input coercion
# --------------------------------------------------------------------------


def _category_key(value: Any) -> str:
    """String key of one category value (numbers normalised: 1 == 1.0 == True)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(value)


def _is_real_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_
    )


def _sample_kind(arr: Any) -> Kind:
    """Kind of a 1-D array or Series (raises TypeError on unsupported dtypes)."""
    dtype = arr.dtype
    if isinstance(arr, pd.Series):
        if pd.api.types.is_bool_dtype(dtype):
            return "categorical"
        if pd.api.types.is_numeric_dtype(dtype):
            return "numeric"
        if pd.api.types.is_object_dtype(dtype):  # before the string check, which says yes
            return _object_kind(arr.to_numpy())
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
            return "categorical"
        raise TypeError(f"unsupported dtype {dtype} for a drift check")
    kind = dtype.kind
    if kind in "iuf":
        return "numeric"
    if kind in "bUS":
        return "categorical"
    if kind == "O":
        return _object_kind(arr)
    raise TypeError(f"unsupported dtype {dtype} for a drift check")


def _object_kind(arr: np.ndarray) -> Kind:
    present = [v for v in arr if not _is_missing(v)]
    if present and all(_is_real_number(v) for v in present):
        return "numeric"
    return "categorical"


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float | np.floating):
        return bool(np.isnan(v))
    return v is pd.NA or v is pd.NaT


def _to_1d(x: Any, name: str) -> Any:
    if isinstance(x, pd.Series):
        return x
    if isinstance(x, pd.DataFrame):
        raise TypeError(f"{name} must be 1-D, got a DataFrame")
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _numeric_values(x: Any, name: str) -> tuple[FloatArray, int]:
    """Finite float64 values of a numeric sample and the number dropped."""
    if isinstance(x, pd.Series):
        raw = x.to_numpy(dtype=np.float64, na_value=np.nan)
    elif x.dtype.kind == "O":
        raw = np.array([np.nan if _is_missing(v) else float(v) for v in x], dtype=np.float64)
    else:
        raw = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(raw)
    if finite.all():
        return raw, 0
    kept = raw[finite]
    if kept.size == 0:
        raise ValueError(f"{name} has no finite values (all {raw.size} are NaN or infinite)")
    return kept, int(raw.size - kept.size)


def _category_counts(x: Any, name: str) -> tuple[dict[str, int], int]:
    """Counts per category key of a sample, and its number of missing values."""
    series = x if isinstance(x, pd.Series) else pd.Series(x, dtype=object)
    n_total = len(series)
    counts_raw = series.value_counts(dropna=True, sort=False)
    counts: dict[str, int] = {}
    for value, count in counts_raw.items():
        if count == 0:  # unused levels of a pandas Categorical
            continue
        key = _category_key(value)
        counts[key] = counts.get(key, 0) + int(count)
    n_present = sum(counts.values())
    if n_present == 0:
        raise ValueError(f"{name} has no non-missing values (all {n_total} are missing)")
    return counts, n_total - n_present


def _coerce_pair(reference: Any, current: Any) -> tuple[Any, Any, Kind]:
    ref = _to_1d(reference, "reference")
    cur = _to_1d(current, "current")
    if len(ref) == 0:
        raise ValueError("reference is empty")
    if len(cur) == 0:
        raise ValueError("current is empty")
    kind_ref = _sample_kind(ref)
    kind_cur = _sample_kind(cur)
    if kind_ref != kind_cur:
        raise ValueError(
            f"reference is {kind_ref} (dtype {ref.dtype}) but current is {kind_cur} "
            f"(dtype {cur.dtype}); both samples must be of the same kind"
        )
    return ref, cur, kind_ref


def _require_numeric(kind: Kind, method: str) -> None:
    if kind != "numeric":
        raise ValueError(f"{method} needs numeric samples, got categorical ones")


# --------------------------------------------------------------------------
# Kernels shared with the reference profile (inputs already prepared)
# --------------------------------------------------------------------------


def _sketch(sorted_values: FloatArray, max_size: int | None) -> FloatArray:
    """Bounded summary of a sorted sample: the order statistics at mid-ranks.

    With ``k = max_size < n`` the kept values are those of rank
    ``floor((i + 1/2) n / k)`` for ``i = 0..k-1``; the empirical CDF of the
    sketch is then within ``1/(2k)`` of the full sample's everywhere.
    """
    n = sorted_values.size
    if max_size is None or n <= max_size:
        return sorted_values
    idx = np.floor((np.arange(max_size) + 0.5) * (n / max_size)).astype(np.int64)
    return sorted_values[idx]


def _merged_ecdf(ref_sorted: FloatArray, cur_sorted: FloatArray) -> tuple[float, float]:
    """KS statistic and (raw) Wasserstein-1 distance of two sorted samples.

    Both are a supremum or an integral of ``F_ref - F_cur`` over the merged
    sample. The merge order comes from one ``searchsorted`` of the current
    values into the sorted reference (no sort of the union), ties placing
    reference values first. At the last copy of each tied value both counts
    equal the right-continuous CDFs and the other copies have zero width, so
    the maximum over points of positive width is exactly
    ``scipy.stats.ks_2samp``'s statistic and the sum is exactly
    ``scipy.stats.wasserstein_distance``.
    """
    n = ref_sorted.size
    m = cur_sorted.size
    below_cur = np.searchsorted(ref_sorted, cur_sorted, side="right")  # #ref <= c_j
    # #cur < r_i equals #{j: below_cur_j <= i}: a cumulative count, not a search.
    below_ref = np.cumsum(np.bincount(below_cur, minlength=n + 1)[:n])
    pos_ref = np.arange(n) + below_ref
    pos_cur = np.arange(m) + below_cur
    merged = np.empty(n + m)
    merged[pos_ref] = ref_sorted
    merged[pos_cur] = cur_sorted
    # F_ref - F_cur at each merged point, with the same divisions as scipy.
    diff = np.empty(n + m)
    diff[pos_ref] = np.arange(1, n + 1) / n - below_ref / m
    diff[pos_cur] = below_cur / n - np.arange(1, m + 1) / m
    gap = np.abs(diff[:-1])
    widths = np.diff(merged)
    d = float(np.max(gap, where=widths > 0, initial=0.0))
    w = float(np.sum(np.multiply(gap, widths)))
    return d, w


def _ks_pvalue(d: float, n1: int, n2: int) -> tuple[float, float]:
    """Statistic and p-value exactly as ``scipy.stats.ks_2samp(method="auto")``.

    Exact distribution when ``max(n1, n2) <= 10000`` (the statistic is then
    rounded to the lattice ``h / lcm(n1, n2)`` as scipy does), falling back to
    ``kstwo.sf(d, round(n1 n2 / (n1 + n2)))`` when the exact computation fails
    or the samples are larger.
    """
    if max(n1, n2) <= _KS_MAX_AUTO_N:
        g = math.gcd(n1, n2)
        success, d, prob = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
        if success:
            return float(d), float(np.clip(prob, 0.0, 1.0))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    prob = distributions.kstwo.sf(d, np.round(en))
    return float(d), float(np.clip(prob, 0.0, 1.0))


def _quantile_edges(sorted_values: FloatArray, bins: int) -> FloatArray:
    """Inner bin edges: the unique reference quantiles 1/bins .. (bins-1)/bins."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    levels = np.arange(1, bins) / bins
    return np.unique(np.quantile(sorted_values, levels))


def _bin_counts(sorted_values: FloatArray, edges: FloatArray) -> npt.NDArray[np.int64]:
    """Counts in the bins ``(-inf, e_1), [e_1, e_2), ..., [e_k, inf)`` of a sorted sample."""
    cuts = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(np.concatenate(([0], cuts, [sorted_values.size]))).astype(np.int64)


def _smooth(shares: FloatArray) -> FloatArray:
    smoothed = np.where(shares == 0, _SMOOTHING, shares)
    return np.asarray(smoothed / smoothed.sum(), dtype=np.float64)


def _psi_value(p_ref: FloatArray, p_cur: FloatArray) -> float:
    r = _smooth(p_ref)
    c = _smooth(p_cur)
    return float(np.sum((c - r) * np.log(c / r)))


def _kl_value(p_ref: FloatArray, p_cur: FloatArray) -> float:
    return float(np.sum(special.rel_entr(_smooth(p_ref), _smooth(p_cur))))


def _js_value(p: FloatArray, q: FloatArray) -> float:
    """Jensen-Shannon distance in base 2, the formula of scipy's ``jensenshannon``."""
    p = p / np.sum(p)
    q = q / np.sum(q)
    m = (p + q) / 2.0
    js = np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m))
    js /= np.log(2.0)
    return float(np.sqrt(max(js, 0.0) / 2.0))


def _hellinger_value(p: FloatArray, q: FloatArray) -> float:
    """Hellinger distance ``||sqrt(p) - sqrt(q)||_2 / sqrt(2)``, in [0, 1]."""
    return float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2.0))


def _category_shares(
    ref_counts: dict[str, int], cur_counts: dict[str, int]
) -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Aligned count vectors over the union of categories (reference order first)."""
    categories = list(ref_counts)
    categories += sorted(k for k in cur_counts if k not in ref_counts)
    ref = np.array([ref_counts.get(k, 0) for k in categories], dtype=np.int64)
    cur = np.array([cur_counts.get(k, 0) for k in categories], dtype=np.int64)
    return categories, ref, cur


def _chi2_value(ref: npt.NDArray[np.int64], cur: npt.NDArray[np.int64]) -> tuple[float, float]:
    """Pearson chi-square of the 2 x K table (no Yates correction) and its p-value."""
    keep = (ref + cur) > 0
    table = np.vstack([ref[keep], cur[keep]])
    if table.shape[1] < 2:
        return 0.0, 1.0  # one category overall: the two samples cannot differ
    res = chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue)


def _shares(counts: npt.NDArray[np.int64]) -> FloatArray:
    return np.asarray(counts / counts.sum(), dtype=np.float64)


def _binned_shares(
    ref: Any, cur: Any, kind: Kind, bins: int
) -> tuple[FloatArray, FloatArray]:
    """Reference and current shares over reference-quantile bins or categories."""
    if kind == "numeric":
        ref_sorted = np.sort(_numeric_values(ref, "reference")[0])
        cur_sorted = np.sort(_numeric_values(cur, "current")[0])
        edges = _quantile_edges(ref_sorted, bins)
        return (
            _shares(_bin_counts(ref_sorted, edges)),
            _shares(_bin_counts(cur_sorted, edges)),
        )
    ref_counts, _ = _category_counts(ref, "reference")
    cur_counts, _ = _category_counts(cur, "current")
    _, r, c = _category_shares(ref_counts, cur_counts)
    return _shares(r), _shares(c)


def _check_level(value: float, name: str) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")


def _check_threshold(value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"threshold must be a finite number >= 0, got {value}")


def _distance_result(method: str, value: float, threshold: float) -> DriftResult:
    return DriftResult(method, value, None, threshold, bool(value >= threshold))


# --------------------------------------------------------------------------
# Public checks
# --------------------------------------------------------------------------


def ks_test(reference: Sequence[float] | Any, current: Sequence[float] | Any,
            alpha: float = 0.05) -> DriftResult:
    """Two-sample Kolmogorov-Smirnov test.

    Parameters
    ----------
    reference, current : array-like of shape (n,) and (m,)
        Numeric samples; NaN and +/-inf are dropped.
    alpha : float
        Significance level; ``drifted = p_value < alpha``.

    Returns
    -------
    DriftResult
        ``method="ks"``; statistic ``D = sup |F_ref - F_cur|`` and the
        two-sided p-value, both equal to ``scipy.stats.ks_2samp``'s default
        (``method="auto"``: exact distribution up to 10,000 per sample,
        Smirnov's asymptotic one beyond).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> res = ks_test(rng.normal(size=300), rng.normal(0.5, 1.0, size=300))
    >>> res.method, res.drifted
    ('ks', True)
    >>> ks_test(rng.normal(size=300), rng.normal(size=300)).p_value > 0.05
    True
    """
    _check_level(alpha, "alpha")
    ref, cur, kind = _coerce_pair(reference, current)
    _require_numeric(kind, "ks_test")
    r = np.sort(_numeric_values(ref, "reference")[0])
    c = np.sort(_numeric_values(cur, "current")[0])
    d, _ = _merged_ecdf(r, c)
    d, p = _ks_pvalue(d, r.size, c.size)
    return DriftResult("ks", d, p, alpha, bool(p < alpha))


def chi2_test(reference: Sequence[Any] | Any, current: Sequence[Any] | Any,
              alpha: float = 0.05) -> DriftResult:
    """Chi-square test of independence on the 2 x K table of category counts.

    Row 1 counts the reference's categories, row 2 the current's, over the
    union of categories (a category seen in one sample only is a column with a
    zero, not an error). Pearson's statistic without Yates' correction, the
    same numbers as ``scipy.stats.chi2_contingency(table, correction=False)``;
    the correction is left out because it makes the test conservative (it
    rejects less often than ``alpha`` under no change). Any sample is treated
    by category, numeric ones included (useful for binary 0/1 features).

    Parameters
    ----------
    reference, current : array-like
        Samples of category labels; missing values are dropped.
    alpha : float
        Significance level; ``drifted = p_value < alpha``.

    Returns
    -------
    DriftResult
        ``method="chi2"``. With one category overall the statistic is 0 and
        the p-value 1.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.choice(["a", "b", "c"], size=500, p=[0.5, 0.3, 0.2])
    >>> cur = rng.choice(["a", "b", "c", "d"], size=500, p=[0.3, 0.3, 0.2, 0.2])
    >>> res = chi2_test(ref, cur)
    >>> res.method, res.drifted
    ('chi2', True)
    """
    _check_level(alpha, "alpha")
    ref = _to_1d(reference, "reference")
    cur = _to_1d(current, "current")
    if len(ref) == 0:
        raise ValueError("reference is empty")
    if len(cur) == 0:
        raise ValueError("current is empty")
    kind_ref, kind_cur = _sample_kind(ref), _sample_kind(cur)
    if kind_ref != kind_cur:
        raise ValueError(
            f"reference is {kind_ref} (dtype {ref.dtype}) but current is {kind_cur} "
            f"(dtype {cur.dtype}); both samples must be of the same kind"
        )
    ref_counts, _ = _category_counts(ref, "reference")
    cur_counts, _ = _category_counts(cur, "current")
    _, r, c = _category_shares(ref_counts, cur_counts)
    stat, p = _chi2_value(r, c)
    return DriftResult("chi2", stat, p, alpha, bool(p < alpha))


def psi(reference: Sequence[Any] | Any, current: Sequence[Any] | Any, bins: int = 10,
        threshold: float = 0.2) -> DriftResult:
    """Population Stability Index.

    ``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` over bins with reference
    shares ``r_i`` and current shares ``c_i``. Numeric samples use ``bins``
    bins cut at the reference's quantiles (deciles by default) with the outer
    bins open to +/-inf; categorical samples use their categories. Empty bins
    get a share of ``1e-4`` and the shares are renormalised (module notes).
    Always >= 0, 0 on identical samples. Usual reading: < 0.1 stable,
    0.1-0.25 moderate shift, > 0.25 major shift.

    Parameters
    ----------
    reference, current : array-like
        Samples of the same kind.
    bins : int
        Number of reference-quantile bins for numeric samples.
    threshold : float
        ``drifted = statistic >= threshold``.

    Returns
    -------
    DriftResult
        ``method="psi"``, ``p_value=None``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=2000)
    >>> psi(ref, ref).statistic
    0.0
    >>> psi(ref, rng.normal(1.0, 1.0, size=2000)).drifted
    True
    """
    _check_threshold(threshold)
    ref, cur, kind = _coerce_pair(reference, current)
    p_ref, p_cur = _binned_shares(ref, cur, kind, bins)
    return _distance_result("psi", _psi_value(p_ref, p_cur), threshold)


def jensen_shannon(reference: Sequence[Any] | Any, current: Sequence[Any] | Any,
                   threshold: float = 0.1, bins: int = 10) -> DriftResult:
    """Jensen-Shannon distance in base 2 (the square root of the divergence).

    Over reference-quantile bins for numeric samples (as :func:`psi`) or over
    categories. Base 2 bounds the distance to [0, 1]. Same formula and
    numbers as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``; no
    smoothing (empty bins contribute 0). Symmetric in the two share vectors.

    Parameters
    ----------
    reference, current : array-like
        Samples of the same kind.
    threshold : float
        ``drifted = statistic >= threshold``.
    bins : int
        Number of reference-quantile bins for numeric samples.

    Returns
    -------
    DriftResult
        ``method="jensen_shannon"``, ``p_value=None``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.choice(["a", "b"], size=1000, p=[0.5, 0.5])
    >>> cur = rng.choice(["a", "b"], size=1000, p=[0.9, 0.1])
    >>> res = jensen_shannon(ref, cur)
    >>> res.drifted, 0.0 <= res.statistic <= 1.0
    (True, True)
    """
    _check_threshold(threshold)
    ref, cur, kind = _coerce_pair(reference, current)
    p_ref, p_cur = _binned_shares(ref, cur, kind, bins)
    return _distance_result("jensen_shannon", _js_value(p_ref, p_cur), threshold)


def wasserstein(reference: Sequence[float] | Any, current: Sequence[float] | Any,
                threshold: float = 0.1) -> DriftResult:
    """Wasserstein-1 (earth mover's) distance divided by the reference's std.

    ``W1 = integral |F_ref(x) - F_cur(x)| dx`` (the same number as
    ``scipy.stats.wasserstein_distance``) divided by the reference's
    population standard deviation (``ddof=0``), so the statistic is in
    reference standard deviations: a mean shift of 0.1 sd gives about 0.1.
    A constant reference (std 0) is not normalised (divisor 1).

    Parameters
    ----------
    reference, current : array-like
        Numeric samples; NaN and +/-inf are dropped.
    threshold : float
        ``drifted = statistic >= threshold``.

    Returns
    -------
    DriftResult
        ``method="wasserstein"``, ``p_value=None``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(10.0, 2.0, size=5000)
    >>> res = wasserstein(ref, ref + 1.0)  # a shift of half a std
    >>> round(res.statistic, 3), res.drifted
    (0.5, True)
    """
    _check_threshold(threshold)
    ref, cur, kind = _coerce_pair(reference, current)
    _require_numeric(kind, "wasserstein")
    r = np.sort(_numeric_values(ref, "reference")[0])
    c = np.sort(_numeric_values(cur, "current")[0])
    _, w = _merged_ecdf(r, c)
    std = float(np.std(r))
    value = w / std if std > 0 else w
    return _distance_result("wasserstein", value, threshold)


def kl_divergence(reference: Sequence[Any] | Any, current: Sequence[Any] | Any,
                  threshold: float = 0.1, bins: int = 10) -> DriftResult:
    """Kullback-Leibler divergence ``KL(reference || current)`` in nats.

    ``sum_i r_i ln(r_i / c_i)`` over reference-quantile bins (numeric) or
    categories, after the empty-bin smoothing described in the module notes
    (equal to ``scipy.special.rel_entr(r, c).sum()`` on the smoothed shares).
    Not symmetric; >= 0; 0 on identical samples.

    Parameters
    ----------
    reference, current : array-like
        Samples of the same kind.
    threshold : float
        ``drifted = statistic >= threshold``.
    bins : int
        Number of reference-quantile bins for numeric samples.

    Returns
    -------
    DriftResult
        ``method="kl_divergence"``, ``p_value=None``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> res = kl_divergence(rng.normal(size=2000), rng.normal(1.0, 1.0, size=2000))
    >>> res.method, res.drifted
    ('kl_divergence', True)
    """
    _check_threshold(threshold)
    ref, cur, kind = _coerce_pair(reference, current)
    p_ref, p_cur = _binned_shares(ref, cur, kind, bins)
    return _distance_result("kl_divergence", _kl_value(p_ref, p_cur), threshold)


def hellinger(reference: Sequence[Any] | Any, current: Sequence[Any] | Any,
              threshold: float = 0.1, bins: int = 10) -> DriftResult:
    """Hellinger distance ``sqrt(sum_i (sqrt r_i - sqrt c_i)^2 / 2)``, in [0, 1].

    Over reference-quantile bins (numeric) or categories; no smoothing.
    Symmetric in the two share vectors.

    Parameters
    ----------
    reference, current : array-like
        Samples of the same kind.
    threshold : float
        ``drifted = statistic >= threshold``.
    bins : int
        Number of reference-quantile bins for numeric samples.

    Returns
    -------
    DriftResult
        ``method="hellinger"``, ``p_value=None``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.choice(["x", "y", "z"], size=1000)
    >>> hellinger(ref, ref).statistic
    0.0
    >>> hellinger(ref, rng.choice(["x", "y"], size=1000)).drifted
    True
    """
    _check_threshold(threshold)
    ref, cur, kind = _coerce_pair(reference, current)
    p_ref, p_cur = _binned_shares(ref, cur, kind, bins)
    return _distance_result("hellinger", _hellinger_value(p_ref, p_cur), threshold)
