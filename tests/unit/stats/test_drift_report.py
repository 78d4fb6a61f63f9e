"""drift_report / DriftReport: method choice, correction, effect-weighted severity, outputs.

(Named test_drift_report.py: tests/unit/test_report.py already exists and pytest
needs unique basenames without __init__.py files.)
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from autopilot.stats import (
    SEVERITIES,
    DriftReport,
    FeatureDrift,
    ReferenceProfile,
    drift_report,
    severity_rank,
)


def _normal_frame(rng: np.random.Generator, n: int, shifts: dict[str, float],
                  k: int = 4) -> pd.DataFrame:
    return pd.DataFrame({f"x{j}": rng.normal(shifts.get(f"x{j}", 0.0), 1.0, size=n)
                         for j in range(k)})


def test_severities_are_ordered_constants() -> None:
    assert SEVERITIES == ("none", "low", "medium", "high", "critical")
    assert [severity_rank(s) for s in SEVERITIES] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="'severe'"):
        severity_rank("severe")


def test_method_chosen_by_kind_and_sample_size() -> None:
    rng = np.random.default_rng(0)

    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame({
            "num": rng.normal(size=n),
            "cat": rng.choice(["a", "b", "c"], size=n),
            "bin": rng.integers(0, 2, size=n),
        })

    small = drift_report(frame(1000), frame(800))
    assert [(f.feature, f.kind, f.method) for f in small.features] == [
        ("num", "numeric", "ks"), ("cat", "categorical", "chi2"), ("bin", "binary", "chi2")]
    large = drift_report(frame(6000), frame(6000))
    assert [f.method for f in large.features] == ["wasserstein", "jensen_shannon",
                                                  "jensen_shannon"]
    # the threshold between the two regimes is a parameter
    assert drift_report(frame(1000), frame(800), large_sample=500).features[0].method == \
        "wasserstein"


def test_every_numeric_feature_gets_ks_psi_js_wasserstein() -> None:
    rng = np.random.default_rng(1)
    report = drift_report(_normal_frame(rng, 500, {}), _normal_frame(rng, 500, {"x1": 0.5}))
    for f in report.features:
        assert {"ks", "psi", "jensen_shannon", "wasserstein", "kl_divergence", "hellinger"} == {
            r.method for r in f.checks}
        assert f.check("ks").p_value is not None and f.check("psi").p_value is None


@pytest.mark.parametrize(("correction", "sm_method"),
                         [("holm", "holm"), ("bonferroni", "bonferroni"), ("bh", "fdr_bh")])
def test_p_values_adjusted_as_statsmodels(correction: str, sm_method: str) -> None:
    rng = np.random.default_rng(2)
    ref = _normal_frame(rng, 300, {}, k=8)
    cur = _normal_frame(rng, 300, {"x0": 0.25, "x3": 0.15, "x5": 0.1}, k=8)
    report = drift_report(ref, cur, correction=correction)
    raw = np.array([f.check("ks").p_value for f in report.features])
    expected = multipletests(raw, method=sm_method)[1]
    got = np.array([f.p_value_adjusted for f in report.features])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    for f in report.features:  # a test's flag uses the adjusted p-value
        assert f.drifted == (f.p_value_adjusted < 0.05)
    unadjusted = drift_report(ref, cur, correction="none")
    np.testing.assert_array_equal([f.p_value_adjusted for f in unadjusted.features], raw)


def test_holm_keeps_family_wise_error_near_alpha_under_no_change() -> None:
    rng = np.random.default_rng(20260103)
    reps, k = 120, 10
    any_holm = any_raw = 0
    for _ in range(reps):
        ref, cur = _normal_frame(rng, 150, {}, k), _normal_frame(rng, 150, {}, k)
        report = ReferenceProfile.fit(ref).compare(cur)
        any_holm += report.share_drifted > 0
        any_raw += any(f.check("ks").p_value < 0.05 for f in report.features)
    se = np.sqrt(0.05 * 0.95 / reps)
    assert any_holm / reps <= 0.05 + 3 * se
    assert any_raw / reps > 0.2  # ~1 - 0.95**10 = 0.40 without correction


def test_tiny_shift_on_a_million_rows_is_significant_but_not_severe() -> None:
    rng = np.random.default_rng(3)
    n = 1_000_000
    ref = pd.DataFrame({"x": rng.normal(size=n)})
    cur = pd.DataFrame({"x": rng.normal(0.01, 1.0, size=n)})
    f = drift_report(ref, cur).feature("x")
    assert f.p_value_adjusted < 1e-3  # KS sees it
    assert f.method == "wasserstein" and not f.drifted
    assert f.severity == "low"  # detectable, negligible: watch, do not act
    assert f.effect_size == pytest.approx(0.01, abs=0.005)


@pytest.mark.parametrize(("shift", "severity"), [(0.0, "none"), (0.07, "low"), (0.15, "medium"),
                                                  (0.3, "high"), (1.0, "critical")])
def test_severity_follows_effect_size(shift: float, severity: str) -> None:
    # Seed chosen so the no-shift case is not a chance KS rejection (which happens 5% of
    # the time and would rightly grade it "low": significant, negligible effect).
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(size=20_000)})
    cur = pd.DataFrame({"x": rng.normal(shift, 1.0, size=20_000)})
    f = drift_report(ref, cur).feature("x")
    assert f.severity == severity
    assert f.recommendation
    assert f.drifted == (severity_rank(severity) >= severity_rank("medium"))


def test_not_significant_is_at_most_low() -> None:
    rng = np.random.default_rng(5)
    # 8 vs 8 rows: the effect estimate is noisy and the test cannot be significant
    ref = pd.DataFrame({"x": rng.normal(size=8)})
    cur = pd.DataFrame({"x": rng.normal(0.6, 1.0, size=8)})
    f = drift_report(ref, cur).feature("x")
    assert f.p_value_adjusted >= 0.05
    assert severity_rank(f.severity) <= severity_rank("low")


def test_per_feature_thresholds_override_defaults() -> None:
    rng = np.random.default_rng(6)
    ref = _normal_frame(rng, 20_000, {}, k=2)
    cur = _normal_frame(rng, 20_000, {"x0": 0.3, "x1": 0.3}, k=2)
    report = drift_report(ref, cur, thresholds={"x1": 0.5})
    assert report.feature("x0").drifted and report.feature("x0").severity == "high"
    x1 = report.feature("x1")
    assert not x1.drifted and x1.result.threshold == 0.5 and x1.severity == "low"
    by_method = drift_report(ref, cur, thresholds={"x0": {"psi": 0.01, "ks": 0.001}})
    x0 = by_method.feature("x0")
    assert x0.check("psi").threshold == 0.01 and x0.check("ks").threshold == 0.001
    glob = drift_report(ref, cur, method_thresholds={"wasserstein": 1.0})
    assert not glob.drifted and glob.share_drifted == 0.0
    with pytest.raises(ValueError, match="unknown methods"):
        drift_report(ref, cur, thresholds={"x0": {"pvalue": 0.1}})
    with pytest.raises(ValueError, match="unknown features"):
        drift_report(ref, cur, thresholds={"nope": 0.1})
    with pytest.raises(ValueError, match="'ks' for feature 'x0'"):
        drift_report(ref, cur, thresholds={"x0": {"ks": 2.0}})


def test_methods_override_and_bad_settings() -> None:
    rng = np.random.default_rng(7)
    ref, cur = _normal_frame(rng, 300, {}, k=2), _normal_frame(rng, 300, {"x0": 1.0}, k=2)
    report = drift_report(ref, cur, methods={"x0": "psi"})
    assert report.feature("x0").method == "psi" and report.feature("x0").drifted
    with pytest.raises(ValueError, match="'chi2' cannot be run on numeric"):
        drift_report(ref, cur, methods={"x0": "chi2"})
    with pytest.raises(ValueError, match="correction"):
        drift_report(ref, cur, correction="sidak")
    with pytest.raises(ValueError, match="alpha"):
        drift_report(ref, cur, alpha=0.0)


def test_dataset_level_flags() -> None:
    rng = np.random.default_rng(8)
    ref = _normal_frame(rng, 2000, {}, k=4)
    mild = drift_report(ref, _normal_frame(rng, 2000, {"x0": 0.15}, k=4))
    assert mild.share_drifted == 0.25 and not mild.drifted and mild.severity == "medium"
    wide = drift_report(ref, _normal_frame(rng, 2000, {f"x{j}": 0.15 for j in range(2)}, k=4))
    assert wide.share_drifted == 0.5 and wide.drifted
    critical = drift_report(ref, _normal_frame(rng, 2000, {"x3": 2.0}, k=4))
    assert critical.share_drifted == 0.25 and critical.drifted
    assert critical.severity == "critical"
    assert critical.drifted_features == ("x3",)


def test_to_frame_and_to_dict() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(["a", "b"], size=400)})
    cur = pd.DataFrame({"x": rng.normal(1.0, 1.0, size=400), "c": rng.choice(["a", "b"], 400)})
    report = drift_report(ref, cur)
    assert isinstance(report, DriftReport) and isinstance(report.features[0], FeatureDrift)
    frame = report.to_frame()
    assert list(frame["feature"]) == ["x", "c"]
    for col in ("method", "p_value_adjusted", "effect_size", "severity", "recommendation",
                "ks", "ks_p_value", "psi", "jensen_shannon", "wasserstein", "chi2"):
        assert col in frame.columns
    assert frame.loc[0, "severity"] == "critical" and bool(frame.loc[0, "drifted"])
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["features"][0]["feature"] == "x" and d["features"][0]["drifted"] is True
    assert {c["method"] for c in d["features"][1]["checks"]} == {
        "chi2", "psi", "jensen_shannon", "kl_divergence", "hellinger"}
    with pytest.raises(KeyError, match="'y'"):
        report.feature("y")
