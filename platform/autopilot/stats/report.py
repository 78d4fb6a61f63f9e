"""Dataset drift report: every feature checked, corrected, graded and explained.

:func:`drift_report` (or :meth:`ReferenceProfile.compare
<autopilot.stats.profile.ReferenceProfile.compare>` against a stored profile)
runs, for every feature, every check its kind allows:

* numeric: KS, PSI, Jensen-Shannon, Wasserstein (in reference standard
  deviations), KL and Hellinger;
* categorical and binary: chi-square, PSI, Jensen-Shannon, KL and Hellinger.

Primary method. One check decides the feature's ``drifted`` flag, chosen by
kind and sample size: while the smaller sample has at most ``large_sample``
values (5,000 by default) a test (KS for numeric, chi-square otherwise), above
it a distance (normalised Wasserstein for numeric, Jensen-Shannon otherwise),
because with large samples any harmless shift becomes significant.
``methods`` forces a primary method per feature.

p-values. Every feature's test p-value (KS or chi-square) is adjusted over
the features with :func:`autopilot.stats.experiments.adjust_pvalues` (Holm by
default; ``"bonferroni"``, ``"bh"``, or ``"none"``). When a test is the
primary method, its ``drifted`` flag uses the adjusted p-value.

Severity (:data:`SEVERITIES`) weighs the effect size, not only the p-value.
The effect size is the normalised Wasserstein distance for numeric features
and the Jensen-Shannon distance otherwise, read against the feature's effect
threshold ``t`` (0.1 for both by default): below ``t/2`` negligible, from
``t/2`` low, from ``t`` medium, from ``2.5 t`` high, from ``5 t`` critical.
A feature whose adjusted test p-value is not significant is at most "low"
(the effect may be noise), and a significant one at least "low". So a
0.01-sd shift on a million rows is significant but only "low" (watch; not
drifted, since the primary method is then the distance), while a one-sd shift
is "critical".

Missing values are dropped per feature and their shares reported. A feature
with no value at all in the current window cannot be tested: it is reported
with method ``"missing"`` (statistic: the current missing share, 1.0),
drifted, severity "critical", effect size 1.0 and adjusted p-value 0.0, and
is left out of the p-value correction.

Dataset level: ``share_drifted`` is the share of features flagged drifted;
the dataset ``drifted`` flag is set when that share reaches
``share_threshold`` (0.5 by default) or any feature is critical;
``severity`` is the highest feature severity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from autopilot.stats.drift import _category_counts
from autopilot.stats.experiments import adjust_pvalues
from autopilot.stats.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    _numeric_column,
)
from autopilot.stats.results import DriftResult

__all__ = [
    "CORRECTIONS",
    "DEFAULT_THRESHOLDS",
    "SEVERITIES",
    "DriftReport",
    "FeatureDrift",
    "drift_report",
    "severity_rank",
]

#: Severity grades, mildest first; compare with :func:`severity_rank`.
SEVERITIES = ("none", "low", "medium", "high", "critical")

#: Multiple-testing corrections accepted by ``correction``.
CORRECTIONS = ("holm", "bonferroni", "bh", "none")

#: Default alpha (tests) or threshold (distances) per method.
DEFAULT_THRESHOLDS: Mapping[str, float] = {
    "ks": 0.05,
    "chi2": 0.05,
    "psi": 0.2,
    "jensen_shannon": 0.1,
    "wasserstein": 0.1,
    "kl_divergence": 0.1,
    "hellinger": 0.1,
}

_TESTS = ("ks", "chi2")
_LOW, _MEDIUM, _HIGH, _CRITICAL = 0.5, 1.0, 2.5, 5.0  # multiples of the effect threshold


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (0 for "none" .. 4 for "critical").

    Examples
    --------
    >>> severity_rank("high") > severity_rank("low")
    True
    """
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}") from None


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature.

    Attributes
    ----------
    feature, kind : str
        Feature name and kind ("numeric", "categorical" or "binary").
    method : str
        The primary method, whose ``result`` sets ``drifted``.
    result : DriftResult
        The primary result; for a test its ``drifted`` uses the adjusted p-value.
    p_value_adjusted : float
        The feature's test p-value (KS or chi-square) after the correction.
    effect_size : float
        Normalised Wasserstein (numeric) or Jensen-Shannon distance (others).
    severity : str
        One of :data:`SEVERITIES`.
    recommendation : str
        One line saying what to do.
    checks : tuple of DriftResult
        Every check run on the feature (the primary one included).
    n_reference, n_current : int
        Non-missing values compared.
    missing_reference, missing_current : float
        Share of missing values (dropped before the checks).
    """

    feature: str
    kind: str
    method: str
    result: DriftResult
    p_value_adjusted: float
    effect_size: float
    severity: str
    recommendation: str
    checks: tuple[DriftResult, ...] = ()
    n_reference: int = 0
    n_current: int = 0
    missing_reference: float = 0.0
    missing_current: float = 0.0

    @property
    def drifted(self) -> bool:
        """The primary method's decision."""
        return self.result.drifted

    def check(self, method: str) -> DriftResult:
        """The result of ``method`` on this feature (KeyError naming it if not run).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"x": rng.normal(size=200)})
        >>> f = drift_report(ref, ref + 2.0).feature("x")
        >>> f.check("psi").drifted, f.check("wasserstein").p_value is None
        (True, True)
        """
        for r in self.checks:
            if r.method == method:
                return r
        raise KeyError(f"{method!r} was not run on {self.feature!r}; ran "
                       f"{[r.method for r in self.checks]}")


@dataclass(frozen=True)
class DriftReport:
    """Drift of a current frame against a reference, feature by feature.

    Attributes
    ----------
    features : tuple of FeatureDrift
        In the reference's column order.
    share_drifted : float
        Share of features whose primary method flags drift.
    drifted : bool
        ``share_drifted >= share_threshold`` or any feature critical.
    severity : str
        Highest feature severity.
    correction, alpha, share_threshold
        The settings used.
    n_reference, n_current : int
        Rows in the reference and current frames.
    """

    features: tuple[FeatureDrift, ...]
    share_drifted: float
    drifted: bool
    severity: str
    correction: str
    alpha: float
    share_threshold: float
    n_reference: int
    n_current: int

    def feature(self, name: str) -> FeatureDrift:
        """The drift of feature ``name`` (KeyError naming it if absent).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
        >>> report = drift_report(ref, ref.assign(b=ref["b"] * 3))
        >>> report.feature("b").drifted, report.drifted_features
        (True, ('b',))
        """
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(f"no feature {name!r} in the report")

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Names of the features flagged drifted."""
        return tuple(f.feature for f in self.features if f.drifted)

    def to_frame(self) -> pd.DataFrame:
        """One row per feature: primary result, correction, severity and every check.

        Each check adds a column named after its method holding its statistic
        (``ks_p_value`` and ``chi2_p_value`` hold the raw test p-values).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"x": rng.normal(size=300)})
        >>> frame = drift_report(ref, ref).to_frame()
        >>> frame.loc[0, ["feature", "method", "severity"]].tolist()
        ['x', 'ks', 'none']
        >>> {"ks", "psi", "jensen_shannon", "wasserstein"} <= set(frame.columns)
        True
        """
        rows = []
        for f in self.features:
            row: dict[str, Any] = {
                "feature": f.feature,
                "kind": f.kind,
                "method": f.method,
                "statistic": f.result.statistic,
                "p_value": f.result.p_value,
                "p_value_adjusted": f.p_value_adjusted,
                "threshold": f.result.threshold,
                "drifted": f.drifted,
                "effect_size": f.effect_size,
                "severity": f.severity,
                "recommendation": f.recommendation,
                "n_reference": f.n_reference,
                "n_current": f.n_current,
                "missing_reference": f.missing_reference,
                "missing_current": f.missing_current,
            }
            for r in f.checks:
                row[r.method] = r.statistic
                if r.p_value is not None:
                    row[f"{r.method}_p_value"] = r.p_value
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form (dataclasses as dicts).

        Examples
        --------
        >>> import json
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"x": rng.normal(size=100)})
        >>> d = drift_report(ref, ref).to_dict()
        >>> d["severity"], d["features"][0]["result"]["method"]
        ('none', 'ks')
        >>> isinstance(json.dumps(d), str)
        True
        """
        out = asdict(self)
        out["features"] = [
            {**fd, "checks": [asdict(r) for r in f.checks], "drifted": f.drifted}
            for f, fd in zip(self.features, out["features"], strict=True)
        ]
        return out


def _resolve_thresholds(
    name: str,
    effect_method: str,
    alpha: float,
    thresholds: Mapping[str, float | Mapping[str, float]] | None,
    method_thresholds: Mapping[str, float] | None,
) -> dict[str, float]:
    out = dict(DEFAULT_THRESHOLDS)
    out["ks"] = out["chi2"] = alpha
    out.update(method_thresholds or {})
    override = (thresholds or {}).get(name)
    if override is None:
        pass
    elif isinstance(override, Mapping):
        unknown = sorted(set(override) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise ValueError(f"thresholds for {name!r} name unknown methods {unknown}; "
                             f"known: {sorted(DEFAULT_THRESHOLDS)}")
        out.update(override)
    else:
        out[effect_method] = float(override)
    for method, value in out.items():
        bad = not math.isfinite(value) or value < 0
        if method in _TESTS:
            bad = bad or not 0 < value < 1
        if bad:
            raise ValueError(f"threshold {method!r} for feature {name!r} is invalid: {value!r}")
    return out


def _grade(effect: float, threshold: float, significant: bool) -> str:
    ratio = effect / threshold if threshold > 0 else math.inf if effect > 0 else 0.0
    if ratio >= _CRITICAL:
        level = "critical"
    elif ratio >= _HIGH:
        level = "high"
    elif ratio >= _MEDIUM:
        level = "medium"
    elif ratio >= _LOW:
        level = "low"
    else:
        level = "none"
    if not significant:
        return level if severity_rank(level) <= 1 else "low"
    return level if severity_rank(level) >= 1 else "low"


def _recommend(name: str, severity: str, effect_method: str, effect: float, threshold: float,
               significant: bool, miss_ref: float, miss_cur: float) -> str:
    e = f"{effect_method} {effect:.3g} vs threshold {threshold:.3g}"
    if severity == "none":
        line = f"no action: {name} is stable ({e})"
    elif severity == "low" and not significant and effect >= threshold:
        line = f"watch {name}: shift looks large ({e}) but is not significant; collect more data"
    elif severity == "low":
        line = f"watch {name}: detectable but small shift ({e})"
    elif severity == "medium":
        line = f"investigate {name}: moderate shift ({e}); retrain if performance drops"
    elif severity == "high":
        line = f"retrain soon: large shift in {name} ({e})"
    else:
        line = f"retrain now and check the upstream data for {name}: severe shift ({e})"
    if miss_cur - miss_ref >= 0.05:
        line += f"; missing share rose from {miss_ref:.1%} to {miss_cur:.1%}"
    return line


def _all_missing(fp: NumericProfile | CategoricalProfile, n_rows: int) -> FeatureDrift:
    """The entry of a feature with no value in the current window."""
    return FeatureDrift(
        feature=fp.name,
        kind=fp.kind,
        method="missing",
        result=DriftResult("missing", 1.0, None, 1.0, True),
        p_value_adjusted=0.0,
        effect_size=1.0,
        severity="critical",
        recommendation=(f"check the upstream data now: {fp.name} is missing in all {n_rows} "
                        f"current rows (reference: {fp.missing_share:.1%} missing)"),
        checks=(),
        n_reference=fp.n,
        n_current=0,
        missing_reference=fp.missing_share,
        missing_current=1.0,
    )


def _report_from_profile(
    profile: ReferenceProfile,
    current_frame: pd.DataFrame,
    *,
    alpha: float = 0.05,
    correction: str = "holm",
    thresholds: Mapping[str, float | Mapping[str, float]] | None = None,
    method_thresholds: Mapping[str, float] | None = None,
    methods: Mapping[str, str] | None = None,
    large_sample: int = 5_000,
    share_threshold: float = 0.5,
) -> DriftReport:
    if not isinstance(current_frame, pd.DataFrame):
        raise TypeError(
            f"current_frame must be a pandas DataFrame, got {type(current_frame).__name__}"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    if not 0 < share_threshold <= 1:
        raise ValueError(f"share_threshold must be in (0, 1], got {share_threshold}")
    if large_sample < 1:
        raise ValueError(f"large_sample must be >= 1, got {large_sample}")
    if len(current_frame) == 0:
        raise ValueError("current frame has no rows")
    names = {str(c): c for c in current_frame.columns}
    missing = [f.name for f in profile.features if f.name not in names]
    if missing:
        raise ValueError(f"current frame lacks profiled columns {missing}")
    methods = dict(methods or {})
    for key in (thresholds or {}, methods):
        unknown = sorted(set(key) - set(profile.columns))
        if unknown:
            raise ValueError(f"per-feature settings name unknown features {unknown}")

    staged: list[Any] = []
    for fp in profile.features:
        column = current_frame[names[fp.name]]
        n_rows = len(column)
        if isinstance(fp, NumericProfile):
            values, n_miss = _numeric_column(column, fp.name)
            n_cur = int(values.size)
            effect_method, test = "wasserstein", "ks"
            large = min(fp.n, n_cur) > large_sample
            primary = methods.get(fp.name, "wasserstein" if large else "ks")
            limits = _resolve_thresholds(fp.name, effect_method, alpha, thresholds,
                                         method_thresholds)
            if n_cur == 0:
                staged.append(_all_missing(fp, n_rows))
                continue
            checks = fp.checks(values, limits)
        else:
            assert isinstance(fp, CategoricalProfile)
            effect_method, test = "jensen_shannon", "chi2"
            limits = _resolve_thresholds(fp.name, effect_method, alpha, thresholds,
                                         method_thresholds)
            if column.isna().all():
                staged.append(_all_missing(fp, n_rows))
                continue
            counts, n_miss = _category_counts(column, f"current feature {fp.name!r}")
            n_cur = n_rows - n_miss
            large = min(fp.n, n_cur) > large_sample
            primary = methods.get(fp.name, "jensen_shannon" if large else "chi2")
            checks = fp.checks(counts, limits)
        if primary not in checks:
            raise ValueError(f"method {primary!r} cannot be run on {fp.kind} feature "
                             f"{fp.name!r}; choose from {sorted(checks)}")
        staged.append((fp, n_cur, n_miss / n_rows, effect_method, test, primary, limits, checks))

    tested = [i for i, s in enumerate(staged) if isinstance(s, tuple)]
    raw_p = np.array([staged[i][7][staged[i][4]].p_value for i in tested], dtype=np.float64)
    adjusted = np.zeros(len(staged))
    if tested:
        adjusted[tested] = raw_p if correction == "none" else adjust_pvalues(raw_p, correction)

    features = []
    for stage, p_adj in zip(staged, adjusted.tolist(), strict=True):
        if isinstance(stage, FeatureDrift):
            features.append(stage)
            continue
        fp, n_cur, miss_cur, effect_method, test, primary, limits, checks = stage
        significant = p_adj < limits[test]
        result = checks[primary]
        if primary in _TESTS:
            result = DriftResult(result.method, result.statistic, result.p_value,
                                 result.threshold, bool(p_adj < result.threshold))
        effect = checks[effect_method].statistic
        severity = _grade(effect, limits[effect_method], significant)
        features.append(FeatureDrift(
            feature=fp.name,
            kind=fp.kind,
            method=primary,
            result=result,
            p_value_adjusted=p_adj,
            effect_size=effect,
            severity=severity,
            recommendation=_recommend(fp.name, severity, effect_method, effect,
                                      limits[effect_method], significant,
                                      fp.missing_share, miss_cur),
            checks=tuple(checks.values()),
            n_reference=fp.n,
            n_current=n_cur,
            missing_reference=fp.missing_share,
            missing_current=miss_cur,
        ))
    share = sum(f.drifted for f in features) / len(features)
    worst = max((f.severity for f in features), key=severity_rank)
    return DriftReport(
        features=tuple(features),
        share_drifted=share,
        drifted=bool(share >= share_threshold or worst == "critical"),
        severity=worst,
        correction=correction,
        alpha=alpha,
        share_threshold=share_threshold,
        n_reference=profile.n_rows,
        n_current=len(current_frame),
    )


def drift_report(
    reference_frame: pd.DataFrame,
    current_frame: pd.DataFrame,
    *,
    kinds: Mapping[str, str] | None = None,
    bins: int = 10,
    alpha: float = 0.05,
    correction: str = "holm",
    thresholds: Mapping[str, float | Mapping[str, float]] | None = None,
    method_thresholds: Mapping[str, float] | None = None,
    methods: Mapping[str, str] | None = None,
    large_sample: int = 5_000,
    share_threshold: float = 0.5,
) -> DriftReport:
    """Drift of every feature of ``current_frame`` against ``reference_frame``.

    Fits a :class:`~autopilot.stats.profile.ReferenceProfile` keeping every
    reference value (so KS and Wasserstein equal scipy's) and compares. To
    compare many windows, fit the profile once and call its ``compare``.

    Parameters
    ----------
    reference_frame, current_frame : pandas.DataFrame
        One feature per column; ``current_frame`` must hold every reference
        column (extra columns are ignored). Missing values are dropped per
        feature and reported as ``missing_reference``/``missing_current``.
    kinds : mapping, optional
        Column -> "numeric" | "categorical" | "binary"; inferred otherwise.
    bins : int
        Reference-quantile bins for the binned measures of numeric features.
    alpha : float
        Significance level of the tests, after correction.
    correction : {"holm", "bonferroni", "bh", "none"}
        Multiple-testing correction over features.
    thresholds : mapping, optional
        Per-feature overrides: a number replaces the feature's effect
        threshold (Wasserstein or Jensen-Shannon), a mapping
        ``{method: value}`` replaces any method's alpha or threshold.
    method_thresholds : mapping, optional
        ``{method: value}`` for every feature (see :data:`DEFAULT_THRESHOLDS`).
    methods : mapping, optional
        Per-feature primary method (any check of the feature's kind).
    large_sample : int
        Above this many values in the smaller sample the primary method is
        a distance instead of a test.
    share_threshold : float
        Share of drifted features that flags the dataset.

    Returns
    -------
    DriftReport

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.normal(size=2000)})
    >>> cur = pd.DataFrame({"x": rng.normal(0.5, 1.0, size=2000), "y": rng.normal(size=2000)})
    >>> report = drift_report(ref, cur)
    >>> report.drifted_features, report.share_drifted
    (('x',), 0.5)
    >>> report.feature("x").severity, report.feature("y").severity
    ('critical', 'none')
    """
    profile = ReferenceProfile.fit(reference_frame, kinds, bins=bins, max_sorted=None)
    return _report_from_profile(
        profile,
        current_frame,
        alpha=alpha,
        correction=correction,
        thresholds=thresholds,
        method_thresholds=method_thresholds,
        methods=methods,
        large_sample=large_sample,
        share_threshold=share_threshold,
    )
