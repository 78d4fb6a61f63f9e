"""Online learning: each strategy updates exactly when it should; snapshots are independent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from autopilot.config import OnlineConfig
from autopilot.schema import Column, FeatureSchema
from autopilot.training.online import OnlineLearner, ScaledTargetRegressor

SCHEMA = FeatureSchema(
    (Column("x1", "numeric"), Column("x2", "numeric"), Column("c", "categorical")),
    target="y",
    task="classification",
    classes=("0", "1"),
)


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(limits=1):
        yield


def _stream(n: int, seed: int, flip: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    c = rng.choice(["a", "b"], size=n)
    y = (x1 + 0.5 * x2 > 0).astype(int)
    if flip:  # concept drift: the same features now mean the opposite label
        y = 1 - y
    return pd.DataFrame({"x1": x1, "x2": x2, "c": c}), y


def _learner(rng_seed: int = 0, **cfg) -> OnlineLearner:
    return OnlineLearner(
        OnlineConfig(**cfg), SCHEMA, classes=[0, 1], rng=np.random.default_rng(rng_seed)
    )


def _feed(learner, X, y, step: int, t0: float = 0.0, dt: float = 1.0) -> list[bool]:
    return [
        learner.observe(X.iloc[i : i + step], y[i : i + step], now=t0 + dt * (i // step))
        for i in range(0, len(X), step)
    ]


def test_first_update_waits_for_a_full_batch_then_incremental_updates_every_call():
    X, y = _stream(400, 1)
    learner = _learner(strategy="incremental", batch_size=100)
    flags = _feed(learner, X, y, step=25)
    assert flags[:3] == [False, False, False] and flags[3] is True
    assert all(flags[3:])
    assert learner.state().n_updates == len(flags) - 3


def test_mini_batch_updates_when_the_buffer_fills():
    X, y = _stream(600, 2)
    learner = _learner(strategy="mini_batch", batch_size=100)
    flags = _feed(learner, X, y, step=40)
    # 40-row calls: the buffer reaches 100 on calls 3, 6 (120 -> 0 -> 120), ...
    assert [i for i, f in enumerate(flags) if f] == [2, 5, 8, 11, 14]
    assert learner.state().n_trained == 600


def test_periodic_updates_on_the_interval_only():
    X, y = _stream(1000, 3)
    learner = _learner(strategy="periodic", batch_size=100, interval_s=10.0)
    learner.warm_start(X.iloc[:100], y[:100], now=0.0)
    flags = [
        learner.observe(X.iloc[i : i + 10], y[i : i + 10], now=float(t))
        for t, i in enumerate(range(100, 1000, 10), start=1)
    ]
    # now = 1, 2, ...: due at 10, 20, 30, ...
    assert [t for t, f in enumerate(flags, start=1) if f] == list(range(10, 91, 10))
    assert learner.state().last_reason == "interval"


def test_adaptive_updates_on_accuracy_drop_before_the_buffer_fills():
    X, y = _stream(2000, 4)
    Xd, yd = _stream(400, 5, flip=True)
    learner = _learner(strategy="adaptive", batch_size=10_000, interval_s=1e9, accuracy_drop=0.1)
    learner.warm_start(X, y, now=0.0)
    Xs, ys = _stream(300, 6)
    assert not any(_feed(learner, Xs, ys, step=20, t0=1.0))  # stable: no reason to update
    assert learner.state().recent_score > 0.8
    flags = _feed(learner, Xd, yd, step=20, t0=100.0)
    assert any(flags)
    assert learner.state().last_reason == "accuracy_drop"


def test_adaptive_also_updates_when_the_buffer_fills_or_the_interval_passes():
    X, y = _stream(600, 7)
    learner = _learner(strategy="adaptive", batch_size=200, interval_s=50.0, accuracy_drop=0.5)
    learner.warm_start(X.iloc[:200], y[:200], now=0.0)
    assert learner.observe(X.iloc[200:400], y[200:400], now=1.0)
    assert learner.state().last_reason == "batch_full"
    assert not learner.observe(X.iloc[400:410], y[400:410], now=2.0)
    assert learner.observe(X.iloc[410:420], y[410:420], now=60.0)
    assert learner.state().last_reason == "interval"


@pytest.mark.parametrize("family", ["sgd", "naive_bayes", "mlp"])
def test_snapshot_is_a_fitted_independent_pipeline(family):
    X, y = _stream(800, 8)
    learner = _learner(family=family, strategy="mini_batch", batch_size=200)
    _feed(learner, X.iloc[:400], y[:400], step=200)
    snap = learner.snapshot()
    Xt, yt = _stream(400, 9)
    before = snap.predict_proba(Xt)
    assert before.shape == (400, 2)
    assert (
        np.mean(snap.predict(Xt) == yt) > 0.65
    )  # learned (chance is 0.5); one-pass MLP is weakest
    _feed(learner, *_stream(400, 10, flip=True), step=200, t0=10.0)  # later updates...
    np.testing.assert_array_equal(snap.predict_proba(Xt), before)  # ...do not touch it


def test_regression_learner_scales_the_target():
    schema = FeatureSchema((Column("x", "numeric"),), "y", "regression")
    rng = np.random.default_rng(11)
    x = rng.normal(size=3000)
    X, y = pd.DataFrame({"x": x}), 500.0 + 100.0 * x + rng.normal(scale=5.0, size=3000)
    learner = OnlineLearner(
        OnlineConfig(strategy="mini_batch", batch_size=250), schema, rng=np.random.default_rng(0)
    )
    for i in range(0, 3000, 250):
        learner.observe(X.iloc[i : i + 250], y[i : i + 250], now=float(i))
    pred = learner.snapshot().predict(pd.DataFrame({"x": [0.0, 1.0]}))
    np.testing.assert_allclose(pred, [500.0, 600.0], rtol=0.05)
    assert isinstance(learner.snapshot().named_steps["model"], ScaledTargetRegressor)


def test_bad_input_is_named():
    learner = _learner(strategy="mini_batch", batch_size=10)
    X, y = _stream(20, 12)
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['c'\]"):
        learner.observe(X.drop(columns="c"), y, now=0.0)
    with pytest.raises(TypeError, match="DataFrame"):
        learner.observe(X.to_numpy(), y, now=0.0)
    with pytest.raises(ValueError, match="not trained yet"):
        learner.snapshot()
    learner.observe(X, y, now=5.0)
    with pytest.raises(ValueError, match="now=1.0 is before"):
        learner.observe(X, y, now=1.0)
    with pytest.raises(ValueError, match=r"label\(s\) \[7\]"):
        learner.observe(X.iloc[:10], np.full(10, 7), now=6.0)
    with pytest.raises(ValueError, match="naive_bayes.*classification only"):
        OnlineLearner(
            OnlineConfig(family="naive_bayes"),
            FeatureSchema((Column("x", "numeric"),), "y", "regression"),
            rng=np.random.default_rng(0),
        )
