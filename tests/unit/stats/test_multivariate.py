"""Domain-classifier test: finds joint drift that per-feature checks miss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from autopilot.stats import DomainClassifierResult, domain_classifier_test, drift_report


def _correlated(rng: np.random.Generator, rho: float, n: int) -> pd.DataFrame:
    x = rng.normal(size=n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": y})


def test_correlation_flip_with_identical_marginals_is_found() -> None:
    rng = np.random.default_rng(0)
    ref, cur = _correlated(rng, 0.8, 2000), _correlated(rng, -0.8, 2000)
    per_feature = drift_report(ref, cur)
    assert per_feature.share_drifted == 0.0  # no marginal moved
    assert all(f.severity in ("none", "low") for f in per_feature.features)
    res = domain_classifier_test(ref, cur, rng=rng)
    assert isinstance(res, DomainClassifierResult)
    assert res.drifted and res.auc > 0.8 and res.p_value < 1e-10
    assert res.p_value_method == "mannwhitney" and res.n_test == 2000


def test_no_drift_is_not_flagged() -> None:
    rng = np.random.default_rng(1)
    res = domain_classifier_test(_correlated(rng, 0.8, 1500), _correlated(rng, 0.8, 1500),
                                 rng=rng)
    assert not res.drifted and 0.4 < res.auc < 0.6 and res.p_value > 0.01


def test_mann_whitney_p_value_is_calibrated_under_no_change() -> None:
    # held-out scores are exchangeable under no drift: rejections at alpha ~ 5%
    rng = np.random.default_rng(20260104)
    reps = 150
    clf = LogisticRegression()
    rejected = [
        domain_classifier_test(_correlated(rng, 0.5, 100), _correlated(rng, 0.5, 100), rng=rng,
                               classifier=clf, min_auc=0.5).drifted
        for _ in range(reps)
    ]
    se = np.sqrt(0.05 * 0.95 / reps)
    assert abs(np.mean(rejected) - 0.05) <= 3 * se


def test_permutation_p_value() -> None:
    rng = np.random.default_rng(2)
    ref, cur = _correlated(rng, 0.8, 300), _correlated(rng, -0.8, 300)
    res = domain_classifier_test(ref, cur, rng=rng, n_permutations=9)
    assert res.p_value_method == "permutation"
    assert res.p_value == pytest.approx(0.1)  # the smallest possible with 9 permutations
    assert not res.drifted  # 0.1 is not < 0.05: too few permutations to decide


def test_categorical_and_missing_values_are_handled() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    ref = pd.DataFrame({"c": rng.choice(["a", "b"], size=n), "v": rng.normal(size=n)})
    # category and value jointly drift: "a" now goes with high values
    c = rng.choice(["a", "b"], size=n)
    cur = pd.DataFrame({"c": c, "v": rng.normal(size=n) + np.where(c == "a", 1.0, -1.0)})
    cur.loc[::10, "v"] = np.nan
    res = domain_classifier_test(ref, cur, rng=rng, max_rows=800)
    assert res.drifted and res.n_reference == 800 and res.n_current == 800


def test_seeded_results_are_reproducible() -> None:
    ref, cur = _correlated(np.random.default_rng(4), 0.3, 400), _correlated(
        np.random.default_rng(5), 0.3, 400)
    a = domain_classifier_test(ref, cur, rng=np.random.default_rng(9))
    b = domain_classifier_test(ref, cur, rng=np.random.default_rng(9))
    assert a == b


def test_bad_input_is_named() -> None:
    rng = np.random.default_rng(6)
    ref = _correlated(rng, 0.0, 50)
    with pytest.raises(ValueError, match=r"lacks reference columns \['y'\]"):
        domain_classifier_test(ref, ref[["x"]], rng=rng)
    with pytest.raises(ValueError, match="current_frame needs at least 4 rows"):
        domain_classifier_test(ref, ref.iloc[:2], rng=rng)
    with pytest.raises(TypeError, match="rng"):
        domain_classifier_test(ref, ref, rng=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="test_size"):
        domain_classifier_test(ref, ref, rng=rng, test_size=1.0)
