"""The drifting-stream generator: seeded, documented change points, learnable concepts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from autopilot.training import generator
from autopilot.training.data import infer_schema, split_xy
from autopilot.training.generator import SCENARIOS, ChangePoint, drifting_stream


def _model(schema, estimator):  # noqa: ANN001, ANN202 - test helper
    num = [c.name for c in schema.columns if c.kind == "numeric"]
    cat = [c.name for c in schema.columns if c.kind != "numeric"]
    pre = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), num),
        (make_pipeline(SimpleImputer(strategy="most_frequent"),
                       OneHotEncoder(handle_unknown="ignore")), cat),
    )
    return make_pipeline(pre, estimator)


def _acc(model, frame: pd.DataFrame, schema) -> float:  # noqa: ANN001
    X, y = split_xy(frame, schema)
    return float((model.predict(X) == y).mean())


def test_same_seed_same_stream_other_seed_differs() -> None:
    a, b = drifting_stream("gradual", 3000, seed=7), drifting_stream("gradual", 3000, seed=7)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.change_points == b.change_points
    assert not a.frame.equals(drifting_stream("gradual", 3000, seed=8).frame)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_has_the_promised_shape(scenario: str) -> None:
    s = drifting_stream(scenario, n_rows=2000, seed=1)
    f = s.frame
    assert f.columns.tolist() == ["t", "x1", "x2", "x3", "amount", "segment", "promo", "y"]
    assert len(f) == 2000 and f["t"].is_monotonic_increasing
    assert f["x3"].isna().any() and f["segment"].isna().any()  # some missing values
    schema = infer_schema(f, "y", time_column="t")
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds["segment"] == "categorical" and kinds["promo"] == "binary"
    assert schema.task == s.task
    if s.task == "classification":
        assert set(f["y"].unique()) == {0, 1}
    for cp in s.change_points:
        assert isinstance(cp, ChangePoint) and 0 < cp.row < len(f)
        assert cp.kind in ("covariate", "concept", "both")
        assert (cp.width == 0) == (cp.style == "abrupt")
        assert "unchanged" in cp.description or cp.kind == "both"


def test_scenario_plans() -> None:
    plan = {
        sc: [(c.row, c.kind, c.style, c.width) for c in drifting_stream(sc, 1000).change_points]
        for sc in SCENARIOS
    }
    assert plan["demo"] == [(300, "covariate", "abrupt", 0), (600, "concept", "abrupt", 0)]
    assert plan["gradual"] == [(300, "covariate", "gradual", 100), (600, "concept", "gradual", 100)]
    assert plan["both"] == [(500, "both", "abrupt", 0)]
    assert plan["stationary"] == []
    assert plan["regression"] == plan["demo"]
    for name in SCENARIOS:  # every scenario is documented in the module docstring
        assert f"``{name}``" in (generator.__doc__ or "")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        drifting_stream("nope")
    with pytest.raises(ValueError, match="n_rows"):
        drifting_stream("demo", n_rows=10)


def test_covariate_shift_moves_inputs_and_concept_drift_does_not() -> None:
    s = drifting_stream("demo", n_rows=12_000, seed=0)
    quiet, shifted, drifted = (s.segment(i) for i in range(3))
    # covariate shift: x2 and amount move, x1 does not
    assert stats.ks_2samp(quiet["x2"], shifted["x2"]).pvalue < 1e-10
    assert stats.ks_2samp(quiet["amount"], shifted["amount"]).pvalue < 1e-10
    assert stats.ks_2samp(quiet["x1"], shifted["x1"]).pvalue > 1e-3
    mix_q = quiet["segment"].value_counts(normalize=True)
    mix_s = shifted["segment"].value_counts(normalize=True)
    assert mix_q["a"] > 0.35 and mix_s["a"] < 0.15
    # concept drift: P(x) unchanged
    for col in ("x1", "x2", "x3", "amount"):
        assert stats.ks_2samp(shifted[col].dropna(), drifted[col].dropna()).pvalue > 1e-3, col
    counts = pd.crosstab(
        np.r_[np.zeros(len(shifted)), np.ones(len(drifted))],
        pd.concat([shifted["segment"], drifted["segment"]]).fillna("NA").to_numpy(),
    )
    assert stats.chi2_contingency(counts).pvalue > 1e-3


def test_concept_is_learnable_and_concept_drift_costs_the_old_model() -> None:
    s = drifting_stream("demo", n_rows=12_000, seed=0)
    schema = infer_schema(s.frame, "y", time_column="t")
    quiet, shifted, drifted = (s.segment(i) for i in range(3))
    old = _model(schema, LogisticRegression(max_iter=500)).fit(*split_xy(quiet.iloc[:2500], schema))
    acc_quiet = _acc(old, quiet.iloc[2500:], schema)
    acc_shifted = _acc(old, shifted, schema)
    acc_drifted = _acc(old, drifted.iloc[2500:], schema)
    new = _model(schema, LogisticRegression(max_iter=500)).fit(
        *split_xy(drifted.iloc[:2500], schema)
    )
    acc_new = _acc(new, drifted.iloc[2500:], schema)
    assert 0.83 <= acc_quiet <= 0.92
    assert acc_shifted > acc_quiet - 0.05  # P(y|x) unchanged: the old model still works
    assert acc_drifted <= acc_quiet - 0.10  # concept drift: the old model loses >= 10 points
    assert acc_new >= acc_quiet - 0.03  # a retrained model recovers


def test_gradual_change_mixes_regimes_over_its_width() -> None:
    s = drifting_stream("gradual", n_rows=20_000, seed=4)
    cov = s.change_points[0]
    x2 = s.frame["x2"]
    before = x2.iloc[cov.row - 1000 : cov.row].mean()
    first_half = x2.iloc[cov.row : cov.row + cov.width // 2].mean()
    second_half = x2.iloc[cov.row + cov.width // 2 : cov.row + cov.width].mean()
    after = x2.iloc[cov.row + cov.width : cov.row + cov.width + 1000].mean()
    assert before < first_half < second_half < after
    assert abs(before) < 0.15 and abs(after - 1.5) < 0.15


def test_regression_variant_is_learnable_and_drifts() -> None:
    s = drifting_stream("regression", n_rows=8000, seed=2)
    schema = infer_schema(s.frame, "y", time_column="t")
    assert schema.task == "regression"
    quiet, _, drifted = (s.segment(i) for i in range(3))
    model = _model(schema, Ridge()).fit(*split_xy(quiet.iloc[:1800], schema))
    Xq, yq = split_xy(quiet.iloc[1800:], schema)
    Xd, yd = split_xy(drifted, schema)
    assert r2_score(yq, model.predict(Xq)) > 0.8
    assert r2_score(yd, model.predict(Xd)) < 0.3


def test_reference_and_segments() -> None:
    s = drifting_stream("gradual", n_rows=1000, seed=0)
    assert len(s.reference()) == 300
    assert [len(s.segment(i)) for i in range(3)] == [300, 200, 300]  # transitions excluded
    with pytest.raises(ValueError, match="segment 3"):
        s.segment(3)
    assert len(drifting_stream("stationary", 500).reference()) == 500
