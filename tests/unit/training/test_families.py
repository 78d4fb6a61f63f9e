"""Model families: every family builds, fits and predicts; spaces are conditional and seeded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from autopilot.schema import Column, FeatureSchema
from autopilot.training import families as F


@pytest.fixture(autouse=True)
def _one_thread():
    # OpenMP pools oversubscribed on a busy 2-core box slow histogram boosting ~40x.
    with threadpool_limits(limits=1):
        yield


def _frame(
    task: str, n: int = 160, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, FeatureSchema]:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    x1[rng.random(n) < 0.05] = np.nan  # imputation must handle missing values
    cat = rng.choice(["a", "b", "c"], size=n).astype(object)
    cat[rng.random(n) < 0.05] = np.nan
    binary = rng.choice(["yes", "no"], size=n).astype(object)
    X = pd.DataFrame({"x1": x1, "x2": x2, "cat": cat, "flag": binary})
    signal = np.nan_to_num(x1) + x2 + (cat == "a") * 1.5
    y = (signal > 0.5).astype(int) if task == "classification" else 50.0 * signal + 200.0
    schema = FeatureSchema(
        (
            Column("x1", "numeric"),
            Column("x2", "numeric"),
            Column("cat", "categorical", categories=("a", "b", "c")),
            Column("flag", "binary", categories=("no", "yes")),
        ),
        target="y",
        task=task,  # type: ignore[arg-type]
        classes=("0", "1") if task == "classification" else (),
    )
    return X, y, schema


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_family_fits_and_predicts_with_defaults_and_samples(task):
    X, y, schema = _frame(task)
    rng = np.random.default_rng(0)
    for family in F.family_names(task):
        for params in (F.default_params(family, task), F.sample_params(family, task, rng)):
            pipe = F.build_pipeline(family, params, schema, task, random_state=0)
            assert isinstance(pipe, Pipeline) and [s for s, _ in pipe.steps] == ["prep", "model"]
            pipe.fit(X, y)
            pred = pipe.predict(X)
            assert pred.shape == (len(X),)
            if task == "classification":
                proba = pipe.predict_proba(X)
                assert proba.shape == (len(X), 2)
                np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_unseen_category_at_prediction_time_does_not_fail():
    X, y, schema = _frame("classification")
    pipe = F.build_pipeline("logistic", {}, schema).fit(X, y)
    new = X.head(3).assign(cat=["zzz", "a", np.nan])
    assert pipe.predict(new).shape == (3,)


def test_family_sets_and_names():
    assert F.family_names("classification") == (
        "logistic",
        "random_forest",
        "extra_trees",
        "hist_gb",
        "svm",
        "knn",
        "mlp",
    )
    assert F.family_names("regression") == (
        "linear",
        "random_forest",
        "extra_trees",
        "hist_gb",
        "svm",
        "knn",
        "mlp",
    )
    with pytest.raises(ValueError, match="unknown classification family 'linear'"):
        F.get_family("linear", "classification")
    with pytest.raises(ValueError, match="'ranking'"):
        F.family_names("ranking")


def test_spaces_are_conditional_on_the_family():
    rng = np.random.default_rng(1)
    assert set(F.sample_params("svm", "classification", rng)) == {"C", "gamma"}
    assert set(F.sample_params("svm", "regression", rng)) == {"C", "gamma", "epsilon"}
    assert set(F.sample_params("knn", "regression", rng)) == {"n_neighbors", "weights", "p"}
    assert "C" not in F.sample_params("random_forest", "classification", rng)


def test_samples_stay_in_range_are_json_and_seeded():
    fam = F.get_family("hist_gb", "classification")
    a = [F.sample_params("hist_gb", "classification", np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]  # same seed, same draw
    rng = np.random.default_rng(2)
    for _ in range(200):
        p = F.sample_params("hist_gb", "classification", rng)
        json.dumps(p)
        for name, spec in fam.space.items():
            assert spec.low <= p[name] <= spec.high  # type: ignore[union-attr]
    for _ in range(50):
        p = F.sample_params("mlp", "regression", rng)
        assert p["hidden_layer_sizes"] in ("32", "64", "128", "64-32", "128-64")


def test_perturbation_is_local_and_clipped():
    rng = np.random.default_rng(3)
    base = {"C": 1.0, "class_weight": None}
    moved = [F.perturb_params("logistic", "classification", base, rng)["C"] for _ in range(300)]
    logs = np.log10(moved)
    assert np.all((logs >= -3) & (logs <= 3))
    assert abs(np.median(logs)) < 0.5  # centred on the base value, not uniform over the range
    # A non-numeric default (gamma="scale") has no neighbourhood: resampled in range.
    p = F.perturb_params("svm", "classification", {"C": 1.0, "gamma": "scale"}, rng)
    assert isinstance(p["gamma"], float) and 1e-4 <= p["gamma"] <= 1.0
    with pytest.raises(ValueError, match="scale"):
        F.perturb_params("logistic", "classification", base, rng, scale=0.0)


def test_build_rejects_unknown_params_and_wraps_regression_targets():
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_estimators'\]"):
        F.build_estimator("logistic", {"n_estimators": 10}, "classification")
    assert isinstance(F.build_estimator("svm", {}, "regression"), TransformedTargetRegressor)
    mlp = F.build_estimator("mlp", {"hidden_layer_sizes": "64-32"}, "classification")
    assert mlp.hidden_layer_sizes == (64, 32)


def test_preprocessing_depends_on_family_and_schema():
    _, _, schema = _frame("classification")
    scaled = F.build_pipeline("svm", {}, schema).named_steps["prep"]
    trees = F.build_pipeline("hist_gb", {}, schema).named_steps["prep"]
    num_scaled = dict((n, t) for n, t, _ in scaled.transformers)["num"]
    num_trees = dict((n, t) for n, t, _ in trees.transformers)["num"]
    assert "scale" in num_scaled.named_steps
    assert num_trees == "passthrough"  # histogram boosting: native NaN, no scaling needed
    only_numeric = FeatureSchema((Column("x", "numeric"),), "y", "regression")
    assert [n for n, _, _ in F.build_preprocessor(only_numeric, scale=True).transformers] == ["num"]
    with pytest.raises(ValueError, match="no feature columns"):
        F.build_preprocessor(FeatureSchema((), "y", "regression"), scale=True)
