"""Metrics by name: cross-checked against scikit-learn, directions, custom registration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from autopilot.training import metrics as M


@pytest.fixture()
def binary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p1 = np.clip(0.6 * y + rng.normal(0.2, 0.25, 300), 0.01, 0.99)
    proba = np.column_stack([1 - p1, p1])
    return y, (p1 > 0.5).astype(int), proba


@pytest.fixture()
def multiclass() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3)) + 2.0 * np.eye(3)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba.argmax(axis=1), proba


def test_binary_label_metrics_match_sklearn(binary):
    y, pred, _ = binary
    assert M.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    assert M.f1(y, pred) == pytest.approx(skm.f1_score(y, pred))
    assert M.precision(y, pred) == pytest.approx(skm.precision_score(y, pred))
    assert M.recall(y, pred) == pytest.approx(skm.recall_score(y, pred))


def test_binary_positive_class_is_last_of_classes():
    y = np.array(["no", "yes", "yes", "no", "yes"])
    pred = np.array(["no", "yes", "no", "no", "yes"])
    assert M.recall(y, pred, classes=["no", "yes"]) == pytest.approx(
        skm.recall_score(y, pred, pos_label="yes")
    )
    assert M.recall(y, pred, classes=["yes", "no"]) == pytest.approx(
        skm.recall_score(y, pred, pos_label="no")
    )


def test_multiclass_metrics_are_macro(multiclass):
    y, pred, proba = multiclass
    assert M.f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert M.precision(y, pred) == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert M.recall(y, pred) == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert M.roc_auc(y, proba) == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert M.log_loss(y, proba) == pytest.approx(skm.log_loss(y, proba))


def test_probability_metrics_match_sklearn(binary):
    y, _, proba = binary
    assert M.roc_auc(y, proba) == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert M.log_loss(y, proba) == pytest.approx(skm.log_loss(y, proba))


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(5)
    y = rng.normal(size=200)
    p = y + rng.normal(scale=0.5, size=200)
    assert M.r2(y, p) == pytest.approx(skm.r2_score(y, p))
    assert M.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert M.rmse(y, p) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))


def test_trading_metrics_by_hand():
    r = np.array([0.02, -0.01, 0.03, -0.04, 0.01])
    pos = np.array([1.0, -1.0, 1.0, 1.0, 0.0])
    strat = np.sign(pos) * r
    assert M.sharpe_ratio(r, pos) == pytest.approx(strat.mean() / strat.std(ddof=1) * np.sqrt(252))
    assert M.win_rate(r, pos) == pytest.approx(3 / 4)  # the flat period is not a trade
    equity = np.cumprod(1 + strat)
    peak = np.maximum.accumulate(np.r_[1.0, equity])
    assert M.max_drawdown(r, pos) == pytest.approx(np.max(1 - np.r_[1.0, equity] / peak))
    assert M.max_drawdown(np.array([0.01, 0.02]), np.array([1.0, 1.0])) == 0.0
    assert M.sharpe_ratio(np.zeros(4), np.ones(4)) == 0.0


def test_directions():
    assert [M.direction(n) for n in ("accuracy", "roc_auc", "r2", "sharpe_ratio")] == ["max"] * 4
    assert [M.direction(n) for n in ("log_loss", "mae", "rmse", "max_drawdown")] == ["min"] * 4
    assert M.is_better("mae", 0.1, 0.2) and not M.is_better("r2", 0.1, 0.2)


def test_score_dispatches_on_what_the_metric_needs(binary):
    y, pred, proba = binary
    assert M.score("roc_auc", y, proba=proba, classes=[0, 1]) == pytest.approx(M.roc_auc(y, proba))
    # Labels derive from probabilities when only those are given.
    assert M.score("accuracy", y, proba=proba, classes=[0, 1]) == pytest.approx(
        M.accuracy(y, proba.argmax(axis=1))
    )
    with pytest.raises(ValueError, match="roc_auc.*probabilities"):
        M.score("roc_auc", y, labels=pred)
    with pytest.raises(ValueError, match="r2.*values"):
        M.score("r2", y, labels=pred)


def test_register_custom_metric_by_name():
    def hit_rate(t, p):
        return float(np.mean(np.abs(np.asarray(t) - np.asarray(p)) < 0.5))

    try:
        m = M.register_metric("hit_rate", hit_rate, greater_is_better=True)
        assert m.needs == "value" and M.direction("hit_rate") == "max"
        assert "hit_rate" in M.metric_names("regression")
        assert M.score("hit_rate", [1.0, 2.0], values=[1.1, 3.0]) == 0.5
    finally:
        M.unregister_metric("hit_rate")
    with pytest.raises(ValueError, match="unknown metric 'hit_rate'"):
        M.get_metric("hit_rate")


def test_register_rejects_bad_input():
    with pytest.raises(ValueError, match="'accuracy' is built in"):
        M.register_metric("accuracy", M.accuracy, True)
    with pytest.raises(TypeError, match="must be callable"):
        M.register_metric("x", 3, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs must be"):
        M.register_metric("x", M.mae, False, needs="rows")  # type: ignore[arg-type]


def test_shape_errors_name_the_problem():
    with pytest.raises(ValueError, match="3 rows but y_pred has 2"):
        M.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        M.roc_auc([0, 1], np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]), classes=[0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        M.mae([], [])


def test_default_metric():
    assert M.default_metric("classification", 2) == "roc_auc"
    assert M.default_metric("classification", 5) == "accuracy"
    assert M.default_metric("regression") == "r2"
    with pytest.raises(ValueError, match="'ranking'"):
        M.default_metric("ranking")
