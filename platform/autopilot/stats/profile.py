"""Reference profile: everything the drift checks need from the reference, computed once.

A monitor compares many current windows against one reference (the training
data of the serving model). :meth:`ReferenceProfile.fit` summarises the
reference once per feature; :meth:`ReferenceProfile.compare` then only works
on the current window: it sorts the window's values and merges them into the
stored sorted reference (no re-sort, no re-binning of the reference).

Stored per feature:

* numeric: the sorted non-missing values (or, above ``max_sorted`` values, a
  sketch of ``max_sorted`` order statistics at mid-ranks, whose empirical CDF
  is within ``1 / (2 max_sorted)`` of the full one; KS p-values still use the
  full reference size), the inner bin edges at the reference quantiles, the
  reference share of each bin, mean, standard deviation (``ddof=0``), the
  number of values ``n`` and of missing ones (NaN, +/-inf);
* categorical and binary: the category keys (see :mod:`autopilot.stats.drift`)
  with their counts, ``n`` and the number missing.

:meth:`ReferenceProfile.to_dict` gives plain JSON types (numbers as lists) and
:meth:`ReferenceProfile.from_dict` rebuilds an identical profile: the model
registry stores the dict as a JSON artifact with every model version and the
monitor reloads it, so this round trip is a contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from autopilot.stats.drift import (
    _bin_counts,
    _category_counts,
    _category_shares,
    _chi2_value,
    _hellinger_value,
    _js_value,
    _kl_value,
    _ks_pvalue,
    _merged_ecdf,
    _object_kind,
    _psi_value,
    _quantile_edges,
    _shares,
    _sketch,
)
from autopilot.stats.results import DriftResult

if TYPE_CHECKING:  # runtime import is local to compare(): report imports this module
    from autopilot.stats.report import DriftReport

__all__ = [
    "FEATURE_KINDS",
    "CategoricalProfile",
    "FeatureProfile",
    "NumericProfile",
    "ReferenceProfile",
    "infer_kind",
]

#: Feature kinds a profile knows; each picks its own drift checks.
FEATURE_KINDS = ("numeric", "categorical", "binary")

PROFILE_FORMAT = "autopilot.reference_profile"
PROFILE_VERSION = 1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _frozen(arr: npt.ArrayLike, dtype: Any) -> Any:
    out = np.array(arr, dtype=dtype)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """Reference summary of one numeric feature (see the module notes)."""

    name: str
    n: int
    n_missing: int
    values: FloatArray  # sorted values, or the mid-rank sketch of them
    edges: FloatArray  # inner bin edges: unique reference quantiles
    proportions: FloatArray  # reference share of each of len(edges) + 1 bins
    mean: float
    std: float

    kind = "numeric"

    @property
    def missing_share(self) -> float:
        """Share of the reference's rows missing for this feature."""
        return self.n_missing / (self.n + self.n_missing)

    def checks(self, current: FloatArray, thresholds: Mapping[str, float]
               ) -> dict[str, DriftResult]:
        """KS, PSI, Jensen-Shannon, Wasserstein, KL and Hellinger against ``current``.

        ``current`` holds finite values (any order); ``thresholds`` maps each
        method name to its alpha or distance threshold (see
        :data:`autopilot.stats.report.DEFAULT_THRESHOLDS`).

        Examples
        --------
        >>> from autopilot.stats.report import DEFAULT_THRESHOLDS
        >>> rng = np.random.default_rng(0)
        >>> prof = ReferenceProfile.fit(pd.DataFrame({"x": rng.normal(size=500)}))
        >>> res = prof.feature("x").checks(rng.normal(1.0, 1.0, size=300), DEFAULT_THRESHOLDS)
        >>> sorted(res), res["ks"].drifted
        (['hellinger', 'jensen_shannon', 'kl_divergence', 'ks', 'psi', 'wasserstein'], True)
        """
        cur = np.sort(current)
        d, w = _merged_ecdf(self.values, cur)
        d, p = _ks_pvalue(d, self.n, cur.size)
        p_cur = _shares(_bin_counts(cur, self.edges))
        p_ref = self.proportions
        w_norm = w / self.std if self.std > 0 else w
        a = thresholds["ks"]
        return {
            "ks": DriftResult("ks", d, p, a, bool(p < a)),
            **_distances(p_ref, p_cur, thresholds),
            "wasserstein": _distance("wasserstein", w_norm, thresholds),
        }


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """Reference summary of one categorical or binary feature."""

    name: str
    kind: str  # "categorical" or "binary"
    n: int
    n_missing: int
    categories: tuple[str, ...]
    counts: IntArray

    @property
    def missing_share(self) -> float:
        """Share of the reference's rows missing for this feature."""
        return self.n_missing / (self.n + self.n_missing)

    def checks(self, current: Mapping[str, int], thresholds: Mapping[str, float]
               ) -> dict[str, DriftResult]:
        """Chi-square, PSI, Jensen-Shannon, KL and Hellinger against ``current`` counts.

        ``current`` maps category keys to counts (unseen categories allowed).

        Examples
        --------
        >>> from autopilot.stats.report import DEFAULT_THRESHOLDS
        >>> prof = ReferenceProfile.fit(pd.DataFrame({"c": ["a"] * 60 + ["b"] * 40}))
        >>> res = prof.feature("c").checks({"a": 30, "b": 40, "new": 30}, DEFAULT_THRESHOLDS)
        >>> res["chi2"].drifted, res["psi"].drifted
        (True, True)
        """
        ref_counts = dict(zip(self.categories, (int(c) for c in self.counts), strict=True))
        _, r, c = _category_shares(ref_counts, dict(current))
        stat, p = _chi2_value(r, c)
        a = thresholds["chi2"]
        return {
            "chi2": DriftResult("chi2", stat, p, a, bool(p < a)),
            **_distances(_shares(r), _shares(c), thresholds),
        }


FeatureProfile = NumericProfile | CategoricalProfile


def _distance(method: str, value: float, thresholds: Mapping[str, float]) -> DriftResult:
    t = thresholds[method]
    return DriftResult(method, float(value), None, t, bool(value >= t))


def _distances(p_ref: FloatArray, p_cur: FloatArray, thresholds: Mapping[str, float]
               ) -> dict[str, DriftResult]:
    return {
        "psi": _distance("psi", _psi_value(p_ref, p_cur), thresholds),
        "jensen_shannon": _distance("jensen_shannon", _js_value(p_ref, p_cur), thresholds),
        "kl_divergence": _distance("kl_divergence", _kl_value(p_ref, p_cur), thresholds),
        "hellinger": _distance("hellinger", _hellinger_value(p_ref, p_cur), thresholds),
    }


def infer_kind(column: pd.Series) -> str:
    """Feature kind of a column: ``"numeric"``, ``"categorical"`` or ``"binary"``.

    Booleans, and numbers whose non-missing values are all 0 or 1, are
    binary; other numbers are numeric; strings, categories and objects are
    categorical. Dates, timedeltas and complex numbers are a ``ValueError``.

    Examples
    --------
    >>> infer_kind(pd.Series([0.5, 1.5])), infer_kind(pd.Series([0, 1, 1]))
    ('numeric', 'binary')
    >>> infer_kind(pd.Series(["a", "b"])), infer_kind(pd.Series([2.5, None], dtype=object))
    ('categorical', 'numeric')
    """
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "binary"
    if (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or pd.api.types.is_complex_dtype(dtype)
    ):
        raise ValueError(f"column {column.name!r} has unsupported dtype {dtype} for drift checks")
    if pd.api.types.is_object_dtype(dtype) and _object_kind(column.to_numpy()) == "numeric":
        column = column.astype(np.float64)  # numbers and None, as rows from JSON records give
        dtype = column.dtype
    if pd.api.types.is_numeric_dtype(dtype):
        values = column.dropna().unique()
        if len(values) > 0 and np.isin(values, [0, 1]).all():
            return "binary"
        return "numeric"
    return "categorical"


def _numeric_column(column: pd.Series, name: str) -> tuple[FloatArray, int]:
    """Finite values of a numeric column and the count dropped as missing."""
    if pd.api.types.is_object_dtype(column.dtype) and (
        column.isna().all() or _object_kind(column.to_numpy()) == "numeric"
    ):
        # Rows built from JSON records: numbers and None (all-None columns are object).
        column = column.astype(np.float64)
    if not (pd.api.types.is_numeric_dtype(column.dtype)
            and not pd.api.types.is_bool_dtype(column.dtype)):
        raise ValueError(f"feature {name!r} is numeric in the profile but has dtype {column.dtype}")
    raw = column.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(raw)
    if finite.all():
        return raw, 0
    return raw[finite], int(raw.size - finite.sum())


def _fit_feature(column: pd.Series, name: str, kind: str, bins: int,
                 max_sorted: int | None) -> FeatureProfile:
    """Summarise one reference column (the only place the reference is read)."""
    if kind == "numeric":
        values, n_missing = _numeric_column(column, name)
        if values.size == 0:
            raise ValueError(f"reference feature {name!r} has no finite values")
        ordered = np.sort(values)
        edges = _quantile_edges(ordered, bins)
        return NumericProfile(
            name=name,
            n=int(ordered.size),
            n_missing=n_missing,
            values=_frozen(_sketch(ordered, max_sorted), np.float64),
            edges=_frozen(edges, np.float64),
            proportions=_frozen(_shares(_bin_counts(ordered, edges)), np.float64),
            mean=float(np.mean(ordered)),
            std=float(np.std(ordered)),
        )
    try:
        counts, n_missing = _category_counts(column, f"reference feature {name!r}")
    except ValueError as exc:
        raise ValueError(f"reference feature {name!r} has no non-missing values") from exc
    categories = tuple(sorted(counts))
    return CategoricalProfile(
        name=name,
        kind=kind,
        n=sum(counts.values()),
        n_missing=n_missing,
        categories=categories,
        counts=_frozen([counts[c] for c in categories], np.int64),
    )


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """Per-feature summary of a reference frame, fitted once, compared many times.

    Attributes
    ----------
    features : tuple of NumericProfile or CategoricalProfile
        One summary per reference column, in column order.
    bins : int
        Number of reference-quantile bins of numeric features.
    max_sorted : int or None
        Bound on the stored sorted values per numeric feature (None: all).
    n_rows : int
        Rows in the reference frame.
    """

    features: tuple[FeatureProfile, ...]
    bins: int
    max_sorted: int | None
    n_rows: int

    @classmethod
    def fit(cls, frame: pd.DataFrame, kinds: Mapping[str, str] | None = None, *,
            bins: int = 10, max_sorted: int | None = 10_000) -> ReferenceProfile:
        """Summarise every column of ``frame``.

        Parameters
        ----------
        frame : pandas.DataFrame
            The reference data; one feature per column.
        kinds : mapping of column to kind, optional
            ``"numeric"``, ``"categorical"`` or ``"binary"`` per column;
            columns left out are inferred with :func:`infer_kind`.
        bins : int
            Reference-quantile bins for PSI, JS, KL and Hellinger (>= 2).
        max_sorted : int or None
            Keep at most this many sorted values per numeric feature (a
            mid-rank sketch beyond it, see the module notes); None keeps all,
            which makes KS and Wasserstein equal to scipy's on the full data.

        Returns
        -------
        ReferenceProfile

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"x": rng.normal(size=1000), "c": rng.choice(["a", "b"], 1000)})
        >>> profile = ReferenceProfile.fit(ref)
        >>> [(f.name, f.kind) for f in profile.features]
        [('x', 'numeric'), ('c', 'categorical')]
        >>> report = profile.compare(ref.assign(x=ref["x"] + 1.0))
        >>> report.feature("x").severity, report.feature("c").severity
        ('critical', 'none')
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
        if frame.shape[1] == 0:
            raise ValueError("reference frame has no columns")
        if len(frame) == 0:
            raise ValueError("reference frame has no rows")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
        if max_sorted is not None and (not isinstance(max_sorted, int) or max_sorted < 2):
            raise ValueError(f"max_sorted must be None or an integer >= 2, got {max_sorted!r}")
        kinds = dict(kinds or {})
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"reference frame has duplicate column names: {names}")
        unknown = sorted(set(kinds) - set(names))
        if unknown:
            raise ValueError(f"kinds names columns not in the reference frame: {unknown}")
        features = []
        for col, name in zip(frame.columns, names, strict=True):
            column = frame[col]
            kind = kinds.get(name) or infer_kind(column)
            if kind not in FEATURE_KINDS:
                raise ValueError(f"kind of {name!r} must be one of {FEATURE_KINDS}, got {kind!r}")
            features.append(_fit_feature(column, name, kind, bins, max_sorted))
        return cls(tuple(features), bins, max_sorted, len(frame))

    @property
    def columns(self) -> tuple[str, ...]:
        """Feature names, in the reference's column order."""
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> FeatureProfile:
        """The summary of feature ``name`` (KeyError naming it if absent).

        Examples
        --------
        >>> prof = ReferenceProfile.fit(pd.DataFrame({"x": [1.0, 2.0, np.nan]}))
        >>> prof.feature("x").n, prof.feature("x").n_missing, prof.columns
        (2, 1, ('x',))
        """
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature {name!r} in the profile; features: {list(self.columns)}")

    def compare(self, current_frame: pd.DataFrame, **options: Any) -> DriftReport:
        """Drift report of ``current_frame`` against this profile.

        Reads only the stored summaries (the reference is not recomputed).
        Columns of ``current_frame`` that the profile does not know are
        ignored; a profiled column missing from it is a ``ValueError``.

        Parameters
        ----------
        current_frame : pandas.DataFrame
            The current window.
        **options
            Passed to the report: ``alpha``, ``correction``, ``thresholds``,
            ``method_thresholds``, ``methods``, ``large_sample``,
            ``share_threshold`` (see :func:`autopilot.stats.report.drift_report`).

        Returns
        -------
        DriftReport

        Examples
        --------
        >>> rng = np.random.default_rng(1)
        >>> profile = ReferenceProfile.fit(pd.DataFrame({"x": rng.normal(size=500)}))
        >>> profile.compare(pd.DataFrame({"x": rng.normal(size=400)})).drifted
        False
        """
        from autopilot.stats.report import _report_from_profile

        return _report_from_profile(self, current_frame, **options)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form (numbers as lists); inverse of :meth:`from_dict`.

        Examples
        --------
        >>> import json
        >>> profile = ReferenceProfile.fit(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), bins=2)
        >>> d = profile.to_dict()
        >>> d["features"][0]["values"], d["features"][0]["edges"]
        ([1.0, 2.0, 3.0, 4.0], [2.5])
        >>> ReferenceProfile.from_dict(json.loads(json.dumps(d))).to_dict() == d
        True
        """
        feats: list[dict[str, Any]] = []
        for f in self.features:
            if isinstance(f, NumericProfile):
                feats.append({
                    "name": f.name,
                    "kind": f.kind,
                    "n": f.n,
                    "n_missing": f.n_missing,
                    "values": f.values.tolist(),
                    "edges": f.edges.tolist(),
                    "proportions": f.proportions.tolist(),
                    "mean": f.mean,
                    "std": f.std,
                })
            else:
                feats.append({
                    "name": f.name,
                    "kind": f.kind,
                    "n": f.n,
                    "n_missing": f.n_missing,
                    "categories": list(f.categories),
                    "counts": f.counts.tolist(),
                })
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "bins": self.bins,
            "max_sorted": self.max_sorted,
            "n_rows": self.n_rows,
            "features": feats,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Rebuild a profile from :meth:`to_dict`'s output (``ValueError`` naming a bad field).

        Examples
        --------
        >>> profile = ReferenceProfile.fit(pd.DataFrame({"c": ["a", "b", "b"]}))
        >>> ReferenceProfile.from_dict(profile.to_dict()).feature("c").categories
        ('a', 'b')
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"profile data must be a mapping, got {type(data).__name__}")
        if data.get("format") != PROFILE_FORMAT:
            raise ValueError(
                f"profile format must be {PROFILE_FORMAT!r}, got {data.get('format')!r}"
            )
        if data.get("version") != PROFILE_VERSION:
            raise ValueError(
                f"profile version {data.get('version')!r} is not supported (expected "
                f"{PROFILE_VERSION})"
            )
        bins = _get(data, "bins", int, "profile")
        max_sorted = data.get("max_sorted")
        if max_sorted is not None and not isinstance(max_sorted, int):
            raise ValueError(
                f"profile field 'max_sorted' must be an integer or null, got {max_sorted!r}"
            )
        n_rows = _get(data, "n_rows", int, "profile")
        raw_features = data.get("features")
        if not isinstance(raw_features, list) or not raw_features:
            raise ValueError("profile field 'features' must be a non-empty list")
        return cls(tuple(_feature_from_dict(f) for f in raw_features), bins, max_sorted, n_rows)


def _get(data: Mapping[str, Any], key: str, typ: type, where: str) -> Any:
    if key not in data:
        raise ValueError(f"{where} is missing field {key!r}")
    value = data[key]
    if typ is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise ValueError(f"{where} field {key!r} must be a finite number, got {value!r}")
        return float(value)
    if typ is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{where} field {key!r} must be a non-negative integer, got {value!r}")
    if not isinstance(value, typ):
        raise ValueError(f"{where} field {key!r} must be {typ.__name__}, got {value!r}")
    return value


def _float_list(data: Mapping[str, Any], key: str, where: str) -> FloatArray:
    value = data.get(key)
    if not isinstance(value, list):
        raise ValueError(f"{where} field {key!r} must be a list of numbers")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} field {key!r} must be a list of numbers") from exc
    if arr.ndim != 1 or not np.isfinite(arr).all():
        raise ValueError(f"{where} field {key!r} must be a flat list of finite numbers")
    return arr


def _feature_from_dict(data: Any) -> FeatureProfile:
    if not isinstance(data, Mapping):
        raise ValueError(f"each profile feature must be a mapping, got {data!r}")
    name = _get(data, "name", str, "profile feature")
    where = f"profile feature {name!r}"
    kind = _get(data, "kind", str, where)
    n = _get(data, "n", int, where)
    n_missing = _get(data, "n_missing", int, where)
    if n < 1:
        raise ValueError(f"{where} field 'n' must be >= 1, got {n}")
    if kind == "numeric":
        values = _float_list(data, "values", where)
        edges = _float_list(data, "edges", where)
        proportions = _float_list(data, "proportions", where)
        if values.size == 0 or values.size > n or np.any(np.diff(values) < 0):
            raise ValueError(f"{where} field 'values' must be 1..n sorted numbers")
        if np.any(np.diff(edges) <= 0):
            raise ValueError(f"{where} field 'edges' must be strictly increasing")
        if proportions.size != edges.size + 1 or np.any(proportions < 0):
            raise ValueError(f"{where} field 'proportions' must hold len(edges) + 1 shares >= 0")
        return NumericProfile(
            name=name,
            n=n,
            n_missing=n_missing,
            values=_frozen(values, np.float64),
            edges=_frozen(edges, np.float64),
            proportions=_frozen(proportions, np.float64),
            mean=_get(data, "mean", float, where),
            std=_get(data, "std", float, where),
        )
    if kind in ("categorical", "binary"):
        categories = data.get("categories")
        counts = data.get("counts")
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise ValueError(f"{where} field 'categories' must be a list of strings")
        if (
            not isinstance(counts, list)
            or len(counts) != len(categories)
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
        ):
            raise ValueError(f"{where} field 'counts' must hold one integer >= 0 per category")
        if sum(counts) != n:
            raise ValueError(f"{where} counts sum to {sum(counts)}, not n={n}")
        return CategoricalProfile(
            name=name,
            kind=kind,
            n=n,
            n_missing=n_missing,
            categories=tuple(categories),
            counts=_frozen(counts, np.int64),
        )
    raise ValueError(f"{where} field 'kind' must be one of {FEATURE_KINDS}, got {kind!r}")
