"""Online learning for families with ``partial_fit``: SGD, naive Bayes, MLP.

An :class:`OnlineLearner` consumes labelled rows as they arrive
(:meth:`~OnlineLearner.observe`) and decides, per :class:`~autopilot.config.OnlineConfig`,
when to update its model:

``incremental``
    every call updates with the rows just given;
``mini_batch``
    rows are buffered and the model updates when ``batch_size`` rows are waiting;
``periodic``
    the model updates with whatever is buffered once ``interval_s`` has passed
    since the last update;
``adaptive``
    whichever comes first: the buffer fills, ``interval_s`` passes, or the
    prequential accuracy (each row is predicted *before* it is learned) falls
    ``accuracy_drop`` below its best since the last update. For regression the
    same rule applies to the mean absolute error, relatively: an update fires
    when it rises by the fraction ``accuracy_drop`` above its best.

Time is passed in (``now``, seconds), so schedules are testable without a clock.
:meth:`~OnlineLearner.snapshot` returns an independent fitted
``Pipeline([("prep", ...), ("model", ...)])`` with ``predict`` (and
``predict_proba`` for classification): a candidate that goes through the same
registry and gates as an AutoML winner (``pipeline.register_candidate``).

Preprocessing (impute, scale, one-hot) is fitted once, on the first batch the
learner trains on (:meth:`~OnlineLearner.warm_start` or the first full buffer),
and then held fixed, because a transformer that moves under an incremental
model would silently change the meaning of its weights.

Example
-------
>>> import numpy as np, pandas as pd
>>> from autopilot.config import OnlineConfig
>>> from autopilot.schema import Column, FeatureSchema
>>> schema = FeatureSchema((Column("x", "numeric"),), "y", "classification", ("0", "1"))
>>> rng = np.random.default_rng(0)
>>> learner = OnlineLearner(OnlineConfig(strategy="mini_batch", batch_size=50), schema,
...                         classes=[0, 1], rng=rng)
>>> x = rng.normal(size=200)
>>> X, y = pd.DataFrame({"x": x}), (x > 0).astype(int)
>>> [learner.observe(X[i:i + 25], y[i:i + 25], now=float(i)) for i in range(0, 200, 25)]
[False, True, False, True, False, True, False, True]
>>> learner.snapshot().predict(pd.DataFrame({"x": [-2.0, 2.0]})).tolist()
[0, 1]
"""

from __future__ import annotations

import copy
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline

from autopilot.config import OnlineConfig
from autopilot.schema import FeatureSchema
from autopilot.training.families import build_preprocessor

__all__ = ["OnlineLearner", "OnlineState", "ScaledTargetRegressor", "make_online_estimator"]


class ScaledTargetRegressor(RegressorMixin, BaseEstimator):
    """A ``partial_fit`` regressor on a standardised target.

    SGD and MLP regressors diverge or crawl when the target is far from unit
    scale; the mean and spread are taken from the first batch and then fixed
    (like the feature preprocessing), so later updates share one scale.
    """

    def __init__(self, regressor: Any) -> None:
        self.regressor = regressor

    def partial_fit(self, X: Any, y: Any) -> ScaledTargetRegressor:
        y = np.asarray(y, dtype=float)
        if not hasattr(self, "regressor_"):
            self.regressor_ = copy.deepcopy(self.regressor)
            self.mean_ = float(np.mean(y))
            sd = float(np.std(y))
            self.scale_ = sd if sd > 0 else 1.0
        self.regressor_.partial_fit(X, (y - self.mean_) / self.scale_)
        return self

    def fit(self, X: Any, y: Any) -> ScaledTargetRegressor:
        for attr in ("regressor_", "mean_", "scale_"):
            self.__dict__.pop(attr, None)
        return self.partial_fit(X, y)

    def predict(self, X: Any) -> np.ndarray:
        return self.regressor_.predict(X) * self.scale_ + self.mean_

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "regressor_")


def make_online_estimator(family: str, task: str, random_state: int = 0) -> Any:
    """A ``partial_fit`` estimator of ``family`` (``sgd``, ``naive_bayes``, ``mlp``).

    >>> type(make_online_estimator("sgd", "classification")).__name__
    'SGDClassifier'
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    clf = task == "classification"
    if family == "sgd":
        if clf:
            # log_loss: predict_proba for soft scores, ROC-AUC and the gates.
            return SGDClassifier(loss="log_loss", alpha=1e-4, random_state=random_state)
        return ScaledTargetRegressor(SGDRegressor(alpha=1e-4, random_state=random_state))
    if family == "naive_bayes":
        if not clf:
            raise ValueError("family 'naive_bayes' is for classification only")
        return GaussianNB()
    if family == "mlp":
        if clf:
            return MLPClassifier(hidden_layer_sizes=(64,), random_state=random_state)
        return ScaledTargetRegressor(
            MLPRegressor(hidden_layer_sizes=(64,), random_state=random_state)
        )
    raise ValueError(f"unknown online family {family!r}; known: sgd, naive_bayes, mlp")


@dataclass(frozen=True)
class OnlineState:
    """Counters of an online learner, for logs and the controller's journal."""

    n_seen: int
    n_trained: int
    n_updates: int
    buffered: int
    last_update_at: float | None
    recent_score: float | None  # prequential accuracy (classification) or MAE (regression)
    best_score: float | None
    last_reason: str


class OnlineLearner:
    """Learn from a labelled stream with ``partial_fit``; see the module docstring.

    Parameters
    ----------
    config
        Family, strategy, ``batch_size``, ``interval_s`` and ``accuracy_drop``.
    schema
        Feature columns (the learner expects DataFrames with them).
    classes
        Every class label (classification): ``partial_fit`` must know them up
        front. Default: the labels of the first training batch.
    rng
        Seeds the estimator.
    window
        Rows in the prequential window (default ``batch_size`` clipped to 50..500).
    """

    def __init__(
        self,
        config: OnlineConfig,
        schema: FeatureSchema,
        *,
        classes: Sequence[Any] | None = None,
        rng: np.random.Generator,
        window: int | None = None,
    ) -> None:
        if not isinstance(config, OnlineConfig):
            raise TypeError(f"config must be an OnlineConfig, got {type(config).__name__}")
        if window is not None and window < 2:
            raise ValueError(f"window must be at least 2 rows, got {window}")
        self.config = config
        self.schema = schema
        self.task = schema.task
        self.classes_ = None if classes is None else np.asarray(list(classes))
        seed = int(rng.integers(0, 2**31 - 1))
        self._estimator = make_online_estimator(config.family, self.task, seed)
        self._prep: Any = None
        self._window_rows = window or min(max(config.batch_size, 50), 500)
        self._window: deque[float] = deque(maxlen=self._window_rows)
        self._buf_X: list[pd.DataFrame] = []
        self._buf_y: list[np.ndarray] = []
        self._buffered = 0
        self._n_seen = 0
        self._n_trained = 0
        self._n_updates = 0
        self._last_update_at: float | None = None
        self._started_at: float | None = None
        self._best: float | None = None
        self._last_reason = ""

    # ------------------------------------------------------------------ state

    @property
    def fitted(self) -> bool:
        return self._prep is not None

    def state(self) -> OnlineState:
        """Current counters and prequential score."""
        return OnlineState(
            n_seen=self._n_seen,
            n_trained=self._n_trained,
            n_updates=self._n_updates,
            buffered=self._buffered,
            last_update_at=self._last_update_at,
            recent_score=self._recent(),
            best_score=self._best,
            last_reason=self._last_reason,
        )

    def _recent(self) -> float | None:
        return float(np.mean(self._window)) if self._window else None

    # --------------------------------------------------------------- learning

    def _check(self, X: Any, y: Any) -> tuple[pd.DataFrame, np.ndarray]:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or len(y_arr) != len(X):
            raise ValueError(f"y must be 1-D with {len(X)} rows, got shape {y_arr.shape}")
        missing = [c for c in self.schema.names if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks feature column(s) {missing}")
        return X.loc[:, list(self.schema.names)], y_arr

    def warm_start(self, X: pd.DataFrame, y: Any, now: float) -> None:
        """Fit preprocessing and the first model on ``(X, y)`` (e.g. the training window)."""
        X, y = self._check(X, y)
        if len(X) == 0:
            raise ValueError("warm_start needs at least one row")
        self._n_seen += len(X)
        self._train(X, y, now, "warm_start")

    def _train(self, X: pd.DataFrame, y: np.ndarray, now: float, reason: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one-pass MLP "did not converge" chatter
            if self._prep is None:
                self._prep = build_preprocessor(self.schema, scale=True, impute=True).fit(X)
                if self.task == "classification" and self.classes_ is None:
                    self.classes_ = np.unique(y)
            Z = self._prep.transform(X)
            if self.task == "classification":
                assert self.classes_ is not None  # given, or set above with the preprocessor
                unknown = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
                if unknown:
                    raise ValueError(
                        f"label(s) {unknown} are not among the classes {self.classes_.tolist()}"
                    )
                self._estimator.partial_fit(Z, y, classes=self.classes_)
            else:
                self._estimator.partial_fit(Z, y.astype(float))
        self._n_trained += len(X)
        self._n_updates += 1
        self._last_update_at = now
        self._best = None  # the new model earns its own best score
        self._window.clear()
        self._last_reason = reason

    def _evaluate(self, X: pd.DataFrame, y: np.ndarray) -> None:
        """Prequential scoring: the current model predicts rows it has not learned."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = self._estimator.predict(self._prep.transform(X))
        if self.task == "classification":
            self._window.extend((pred == y).astype(float).tolist())
        else:
            self._window.extend(np.abs(pred - y.astype(float)).tolist())
        if len(self._window) >= max(2, self._window_rows // 2):
            cur = self._recent()
            assert cur is not None
            if self._best is None:
                self._best = cur
            elif self.task == "classification":
                self._best = max(self._best, cur)
            else:
                self._best = min(self._best, cur)

    def _dropped(self) -> bool:
        cur = self._recent()
        if self._best is None or cur is None or len(self._window) < self._window_rows // 2:
            return False
        drop = self.config.accuracy_drop
        if self.task == "classification":
            return self._best - cur >= drop
        return cur - self._best >= drop * max(self._best, 1e-12)

    def observe(self, X: pd.DataFrame, y: Any, now: float) -> bool:
        """Take labelled rows; return True when the model was updated by this call.

        Parameters
        ----------
        X, y
            New labelled rows (a DataFrame with the schema's columns, and labels).
        now
            The current time in seconds (any fixed origin, non-decreasing).
        """
        X, y = self._check(X, y)
        if len(X) == 0:
            return False
        if self._last_update_at is not None and now < self._last_update_at:
            raise ValueError(f"now={now} is before the last update at {self._last_update_at}")
        if self._started_at is None:
            self._started_at = now
        self._n_seen += len(X)
        if self.fitted:
            self._evaluate(X, y)
        self._buf_X.append(X)
        self._buf_y.append(y)
        self._buffered += len(X)

        reason = self._reason(now)
        if not reason:
            return False
        bx = pd.concat(self._buf_X, ignore_index=True)
        by = np.concatenate(self._buf_y)
        self._buf_X, self._buf_y, self._buffered = [], [], 0
        self._train(bx, by, now, reason)
        return True

    def _reason(self, now: float) -> str:
        cfg = self.config
        full = self._buffered >= cfg.batch_size
        if not self.fitted:
            # The first update fits preprocessing: wait for a full batch whatever the strategy.
            return "first_batch" if full else ""
        since = self._last_update_at if self._last_update_at is not None else self._started_at
        due = since is not None and now - since >= cfg.interval_s
        if cfg.strategy == "incremental":
            return "incremental"
        if cfg.strategy == "mini_batch":
            return "batch_full" if full else ""
        if cfg.strategy == "periodic":
            return "interval" if due else ""
        if full:
            return "batch_full"
        if self._dropped():
            return "accuracy_drop"
        return "interval" if due else ""

    def snapshot(self) -> Pipeline:
        """An independent fitted pipeline of the current model (later updates don't touch it)."""
        if not self.fitted:
            raise ValueError(
                f"the online learner has not trained yet ({self._buffered} row(s) buffered, "
                f"needs batch_size={self.config.batch_size} or warm_start)"
            )
        return Pipeline(
            [("prep", copy.deepcopy(self._prep)), ("model", copy.deepcopy(self._estimator))]
        )
