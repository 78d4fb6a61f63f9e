"""ReferenceProfile: fitted once, compared without touching the reference, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from autopilot.stats import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    drift_report,
    infer_kind,
)
from autopilot.stats import profile as profile_module


def _frames(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({
        "num": rng.normal(size=n),
        "skew": rng.lognormal(size=n),
        "cat": rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1]),
        "flag": rng.integers(0, 2, size=n),
        "ok": rng.random(n) < 0.3,
    })
    ref.loc[::50, "num"] = np.nan
    cur = pd.DataFrame({
        "num": rng.normal(0.3, 1.0, size=n),
        "skew": rng.lognormal(size=n),
        "cat": rng.choice(["a", "b", "c", "z"], size=n, p=[0.5, 0.3, 0.1, 0.1]),
        "flag": rng.integers(0, 2, size=n),
        "ok": rng.random(n) < 0.3,
    })
    return ref, cur


def test_kinds_inferred_and_overridable() -> None:
    ref, _ = _frames()
    prof = ReferenceProfile.fit(ref)
    assert [(f.name, f.kind) for f in prof.features] == [
        ("num", "numeric"), ("skew", "numeric"), ("cat", "categorical"),
        ("flag", "binary"), ("ok", "binary"),
    ]
    prof2 = ReferenceProfile.fit(ref, kinds={"flag": "categorical"})
    assert prof2.feature("flag").kind == "categorical"
    assert infer_kind(pd.Series([0.0, 1.0, np.nan])) == "binary"


def test_profile_stores_what_the_checks_need() -> None:
    ref, _ = _frames()
    prof = ReferenceProfile.fit(ref)
    num = prof.feature("num")
    assert isinstance(num, NumericProfile)
    values = ref["num"].dropna().to_numpy()
    assert num.n == values.size and num.n_missing == 60
    assert num.missing_share == pytest.approx(60 / 3000)
    np.testing.assert_array_equal(num.values, np.sort(values))
    np.testing.assert_allclose(num.edges, np.quantile(values, np.arange(1, 10) / 10))
    assert num.proportions.sum() == pytest.approx(1.0)
    assert num.mean == pytest.approx(values.mean()) and num.std == pytest.approx(values.std())
    cat = prof.feature("cat")
    assert isinstance(cat, CategoricalProfile)
    assert cat.categories == ("a", "b", "c")
    assert cat.counts.tolist() == [int((ref["cat"] == k).sum()) for k in "abc"]
    with pytest.raises(ValueError):
        num.values[0] = 1.0  # stored arrays are read-only


def test_compare_does_not_refit_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    ref, cur = _frames()
    fits = []
    real_fit = profile_module._fit_feature
    monkeypatch.setattr(profile_module, "_fit_feature",
                        lambda *a, **k: fits.append(a[1]) or real_fit(*a, **k))
    prof = ReferenceProfile.fit(ref)
    assert fits == list(ref.columns)  # each reference column read exactly once
    fits.clear()

    def no_quantiles(*args: object, **kwargs: object) -> None:
        raise AssertionError("compare must not recompute reference quantiles")

    monkeypatch.setattr(profile_module, "_quantile_edges", no_quantiles)
    for _ in range(3):
        prof.compare(cur)
    assert fits == []


def test_compare_reads_only_the_stored_summary() -> None:
    # A profile rebuilt from a dict whose stored reference was edited gives the
    # edited answer: compare reads the stored summary, not some hidden copy of the data.
    ref, cur = _frames()
    d = ReferenceProfile.fit(ref[["num"]]).to_dict()
    shifted = json.loads(json.dumps(d))
    shifted["features"][0]["values"] = [v + 0.3 for v in d["features"][0]["values"]]
    base = ReferenceProfile.from_dict(d).compare(cur[["num"]])
    moved = ReferenceProfile.from_dict(shifted).compare(cur[["num"]])
    assert base.feature("num").check("ks").drifted
    assert moved.feature("num").check("ks").statistic < base.feature("num").check("ks").statistic
    assert moved.feature("num").check("psi").statistic == base.feature("num").check("psi").statistic


def test_json_round_trip_is_exact() -> None:
    ref, cur = _frames()
    prof = ReferenceProfile.fit(ref, max_sorted=500)
    text = json.dumps(prof.to_dict(), allow_nan=False)
    back = ReferenceProfile.from_dict(json.loads(text))
    assert back.to_dict() == prof.to_dict()
    assert back.compare(cur).to_dict() == prof.compare(cur).to_dict()


def test_sketch_bounds_storage_and_keeps_ks_close() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=50_000)})
    cur = pd.DataFrame({"x": rng.normal(0.02, 1.0, size=20_000)})
    prof = ReferenceProfile.fit(ref, max_sorted=2_000)
    f = prof.feature("x")
    assert isinstance(f, NumericProfile) and f.values.size == 2_000 and f.n == 50_000
    ks = prof.compare(cur).feature("x").check("ks")
    exact = stats.ks_2samp(ref["x"], cur["x"])
    assert abs(ks.statistic - exact.statistic) <= 0.5 / 2_000 + 1e-12
    # without the bound the profile's KS is scipy's, number for number
    full = ReferenceProfile.fit(ref, max_sorted=None).compare(cur).feature("x").check("ks")
    assert full.statistic == pytest.approx(exact.statistic, rel=1e-9)
    assert full.p_value == pytest.approx(exact.pvalue, rel=1e-9)


def test_compare_handles_unseen_categories_and_missing_values() -> None:
    ref, cur = _frames()
    cur.loc[::4, "num"] = np.nan
    report = ReferenceProfile.fit(ref).compare(cur)
    cat = report.feature("cat")
    assert cat.check("chi2").drifted  # the new category "z" drives it
    num = report.feature("num")
    assert num.missing_reference == pytest.approx(0.02)
    assert num.missing_current == pytest.approx(0.25)
    assert num.n_current == 2250
    assert "missing share rose" in num.recommendation


def test_fit_errors_name_the_problem() -> None:
    ref, _ = _frames()
    with pytest.raises(ValueError, match="no rows"):
        ReferenceProfile.fit(ref.iloc[:0])
    with pytest.raises(ValueError, match="'cat'.*has dtype"):
        ReferenceProfile.fit(ref, kinds={"cat": "numeric"})
    with pytest.raises(ValueError, match="not in the reference frame"):
        ReferenceProfile.fit(ref, kinds={"nope": "numeric"})
    with pytest.raises(ValueError, match="kind of 'num'"):
        ReferenceProfile.fit(ref, kinds={"num": "ordinal"})
    with pytest.raises(ValueError, match="'num' has no finite values"):
        ReferenceProfile.fit(pd.DataFrame({"num": [np.nan, np.nan]}))
    with pytest.raises(ValueError, match="unsupported dtype"):
        ReferenceProfile.fit(pd.DataFrame({"t": pd.date_range("2026-01-01", periods=3)}))
    with pytest.raises(TypeError, match="DataFrame"):
        ReferenceProfile.fit(ref["num"])  # type: ignore[arg-type]


def test_compare_errors_name_the_problem() -> None:
    ref, cur = _frames()
    prof = ReferenceProfile.fit(ref)
    with pytest.raises(ValueError, match=r"lacks profiled columns \['cat'\]"):
        prof.compare(cur.drop(columns="cat"))
    with pytest.raises(ValueError, match="'num' is numeric in the profile"):
        prof.compare(cur.assign(num="text"))
    with pytest.raises(ValueError, match="no rows"):
        prof.compare(cur.iloc[:0])


def test_from_dict_rejects_damaged_profiles() -> None:
    ref, _ = _frames(n=200)
    good = ReferenceProfile.fit(ref).to_dict()

    def damaged(edit) -> dict:
        d = json.loads(json.dumps(good))
        edit(d)
        return d

    cases = [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(features=[]), "features"),
        (lambda d: d["features"][0].update(values=[3.0, 1.0]), "'values'"),
        (lambda d: d["features"][0].update(edges=[1.0, 1.0]), "'edges'"),
        (lambda d: d["features"][0].update(proportions=[1.0]), "'proportions'"),
        (lambda d: d["features"][0].pop("std"), "'std'"),
        (lambda d: d["features"][2].update(counts=[1, 2]), "'counts'"),
        (lambda d: d["features"][2].update(kind="weird"), "'kind'"),
    ]
    for edit, message in cases:
        with pytest.raises(ValueError, match=message):
            ReferenceProfile.from_dict(damaged(edit))


def test_drift_report_equals_compare_of_exact_profile() -> None:
    ref, cur = _frames(n=800)
    a = drift_report(ref, cur)
    b = ReferenceProfile.fit(ref, max_sorted=None).compare(cur)
    assert a == b


def test_feature_missing_in_every_current_row_is_reported_critical() -> None:
    ref, cur = _frames(n=500)
    prof = ReferenceProfile.fit(ref)
    report = prof.compare(cur.assign(num=np.nan, cat=None))
    for name in ("num", "cat"):
        f = report.feature(name)
        assert f.method == "missing" and f.drifted and f.severity == "critical"
        assert f.missing_current == 1.0 and f.n_current == 0
        assert f"{name} is missing in all 500 current rows" in f.recommendation
    assert report.severity == "critical" and report.drifted
    # the other features are still tested, their p-values corrected among themselves
    assert report.feature("skew").method == "ks"
    assert report.to_dict()["features"][0]["checks"] == []


def test_object_columns_of_numbers_from_json_records() -> None:
    ref, _ = _frames(n=300)
    prof = ReferenceProfile.fit(ref[["num"]])
    records = [{"num": None}] + [{"num": float(v)} for v in ref["num"].dropna()[:99]]
    cur = pd.DataFrame(records).astype(object)
    f = prof.compare(cur).feature("num")
    assert f.n_current == 99 and f.missing_current == pytest.approx(0.01)
