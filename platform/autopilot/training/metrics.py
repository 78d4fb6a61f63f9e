"""Metrics by name, with their direction, plus custom metrics registered at run time.

A metric is a pure function of ``(y_true, y_pred)`` where ``y_pred`` is what
the metric needs: predicted labels (``needs="label"``), class probabilities of
shape ``(n, n_classes)`` in the order of ``classes`` (``needs="proba"``), or
predicted values (``needs="value"``, regression). :func:`score` dispatches on
that, so callers hand over whatever the model produced and never special-case
ROC-AUC or log loss.

Built-ins: classification ``accuracy``, ``f1``, ``precision``, ``recall``
(binary: of the positive class, the last of ``classes``; multiclass:
macro-averaged), ``roc_auc`` (multiclass: one-vs-rest macro), ``log_loss``;
regression ``r2``, ``mae``, ``rmse``; trading examples ``sharpe_ratio``,
``win_rate``, ``max_drawdown`` for a regression model that predicts the next
period's return (the position is the sign of the prediction).

Example
-------
>>> import numpy as np
>>> score("accuracy", np.array([0, 1, 1]), labels=np.array([0, 1, 0]))
0.6666666666666666
>>> direction("log_loss"), direction("r2")
('min', 'max')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "Metric",
    "accuracy",
    "default_metric",
    "direction",
    "f1",
    "get_metric",
    "is_better",
    "log_loss",
    "mae",
    "max_drawdown",
    "metric_names",
    "precision",
    "r2",
    "recall",
    "register_metric",
    "rmse",
    "roc_auc",
    "score",
    "sharpe_ratio",
    "unregister_metric",
    "win_rate",
]

Needs = Literal["label", "proba", "value"]
Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Metric:
    """A named metric: the function, its direction, what it consumes and for which task."""

    name: str
    fn: Callable[..., float]
    greater_is_better: bool
    needs: Needs
    task: Task

    @property
    def mode(self) -> Literal["max", "min"]:
        return "max" if self.greater_is_better else "min"


# ------------------------------------------------------------ built-in functions


def _arr(y: Any, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim == 0 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty array, got shape {a.shape}")
    return a


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _arr(y_true, "y_true"), _arr(y_pred, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {t.shape[0]} rows but y_pred has {p.shape[0]}")
    return t, p


def _avg_kwargs(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[Any] | None) -> dict:
    labels = np.asarray(classes) if classes is not None else np.unique(np.r_[y_true, y_pred])
    if len(labels) <= 2:
        return {"average": "binary", "pos_label": labels[-1], "zero_division": 0}
    return {"average": "macro", "labels": labels, "zero_division": 0}


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of labels predicted exactly."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def f1(y_true: Any, y_pred: Any, classes: Sequence[Any] | None = None) -> float:
    """F1 of the positive class (binary) or macro F1 (multiclass)."""
    t, p = _pair(y_true, y_pred)
    return float(skm.f1_score(t, p, **_avg_kwargs(t, p, classes)))


def precision(y_true: Any, y_pred: Any, classes: Sequence[Any] | None = None) -> float:
    """Precision of the positive class (binary) or macro precision (multiclass)."""
    t, p = _pair(y_true, y_pred)
    return float(skm.precision_score(t, p, **_avg_kwargs(t, p, classes)))


def recall(y_true: Any, y_pred: Any, classes: Sequence[Any] | None = None) -> float:
    """Recall of the positive class (binary) or macro recall (multiclass)."""
    t, p = _pair(y_true, y_pred)
    return float(skm.recall_score(t, p, **_avg_kwargs(t, p, classes)))


def _classes_for(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any] | None
) -> np.ndarray:
    labels = np.asarray(classes) if classes is not None else np.unique(y_true)
    if proba.ndim != 2 or proba.shape[1] != len(labels):
        raise ValueError(
            f"probabilities must have shape (n, {len(labels)}) for classes {labels.tolist()}, "
            f"got {proba.shape}"
        )
    return labels


def roc_auc(y_true: Any, y_proba: Any, classes: Sequence[Any] | None = None) -> float:
    """Area under the ROC curve; multiclass: one-vs-rest, macro-averaged.

    ``y_proba`` has one column per class, in the order of ``classes``.
    """
    t, proba = _pair(y_true, y_proba)
    labels = _classes_for(t, proba, classes)
    if len(np.unique(t)) < 2:
        raise ValueError("roc_auc needs both classes in y_true")
    if len(labels) == 2:
        return float(skm.roc_auc_score(t == labels[1], proba[:, 1]))
    present = np.isin(labels, t)
    if not present.all():
        # ROC-AUC is undefined for a class absent from y_true: score the present ones.
        proba = proba[:, present] / np.clip(
            proba[:, present].sum(axis=1, keepdims=True), 1e-15, None
        )
        labels = labels[present]
    return float(skm.roc_auc_score(t, proba, multi_class="ovr", average="macro", labels=labels))


def log_loss(y_true: Any, y_proba: Any, classes: Sequence[Any] | None = None) -> float:
    """Mean negative log-likelihood of the true class (natural log)."""
    t, proba = _pair(y_true, y_proba)
    labels = _classes_for(t, proba, classes)
    return float(skm.log_loss(t, proba, labels=labels))


def r2(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination."""
    t, p = _pair(y_true, y_pred)
    return float(skm.r2_score(t, p))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t.astype(float) - p.astype(float))))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t.astype(float) - p.astype(float)) ** 2)))


def _strategy_returns(y_true: Any, y_pred: Any) -> np.ndarray:
    t, p = _pair(y_true, y_pred)
    return np.sign(p.astype(float)) * t.astype(float)


def sharpe_ratio(y_true: Any, y_pred: Any, periods_per_year: float = 252.0) -> float:
    """Annualised Sharpe ratio of trading the sign of the predicted return.

    ``y_true`` are realised per-period returns; the strategy holds ``sign(y_pred)``
    (long, flat or short) each period. Zero-variance returns give 0.

    >>> round(sharpe_ratio([0.01, -0.02, 0.03], [1.0, -1.0, 1.0]), 3)
    31.749
    """
    r = _strategy_returns(y_true, y_pred)
    sd = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
    if sd == 0.0:
        return 0.0
    return float(np.mean(r) / sd * np.sqrt(periods_per_year))


def win_rate(y_true: Any, y_pred: Any) -> float:
    """Share of periods with a position (``sign(y_pred) != 0``) that made money.

    >>> win_rate([0.01, -0.02, 0.03, 0.01], [1.0, 1.0, 1.0, 0.0])
    0.6666666666666666
    """
    t, p = _pair(y_true, y_pred)
    traded = np.sign(p.astype(float)) != 0
    if not traded.any():
        return 0.0
    return float(np.mean(_strategy_returns(t, p)[traded] > 0))


def max_drawdown(y_true: Any, y_pred: Any) -> float:
    """Largest peak-to-trough fall of the strategy's compounded equity, as a fraction.

    Lower is better; 0 means the equity curve never fell.

    >>> max_drawdown([0.1, -0.5, 0.2], [1.0, 1.0, 1.0])
    0.5
    """
    r = _strategy_returns(y_true, y_pred)
    equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak))


# -------------------------------------------------------------------- registry

_BUILTIN: tuple[Metric, ...] = (
    Metric("accuracy", accuracy, True, "label", "classification"),
    Metric("f1", f1, True, "label", "classification"),
    Metric("precision", precision, True, "label", "classification"),
    Metric("recall", recall, True, "label", "classification"),
    Metric("roc_auc", roc_auc, True, "proba", "classification"),
    Metric("log_loss", log_loss, False, "proba", "classification"),
    Metric("r2", r2, True, "value", "regression"),
    Metric("mae", mae, False, "value", "regression"),
    Metric("rmse", rmse, False, "value", "regression"),
    Metric("sharpe_ratio", sharpe_ratio, True, "value", "regression"),
    Metric("win_rate", win_rate, True, "value", "regression"),
    Metric("max_drawdown", max_drawdown, False, "value", "regression"),
)
_BUILTIN_NAMES = frozenset(m.name for m in _BUILTIN)
_REGISTRY: dict[str, Metric] = {m.name: m for m in _BUILTIN}


def register_metric(
    name: str,
    fn: Callable[..., float],
    greater_is_better: bool,
    *,
    needs: Needs | None = None,
    task: Task = "regression",
) -> Metric:
    """Register a custom metric under ``name`` so configs can optimise it.

    Parameters
    ----------
    name
        The name used in ``training.metric``; built-in names cannot be replaced.
    fn
        ``fn(y_true, y_pred) -> float``, pure.
    greater_is_better
        Direction of improvement.
    needs
        ``"label"``, ``"proba"`` or ``"value"``; default ``"value"`` for regression
        and ``"label"`` for classification.
    task
        Which task the metric applies to.

    Examples
    --------
    >>> import numpy as np
    >>> m = register_metric("median_ae", lambda t, p: float(np.median(np.abs(t - p))), False)
    >>> score("median_ae", np.array([1.0, 2.0, 4.0]), values=np.array([1.0, 3.0, 4.0]))
    0.0
    >>> unregister_metric("median_ae")
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"metric name must be a non-empty string, got {name!r}")
    if name in _BUILTIN_NAMES:
        raise ValueError(f"metric {name!r} is built in and cannot be replaced")
    if not callable(fn):
        raise TypeError(f"metric {name!r}: fn must be callable, got {type(fn).__name__}")
    if task not in ("classification", "regression"):
        raise ValueError(
            f"metric {name!r}: task must be classification or regression, got {task!r}"
        )
    needs = needs or ("label" if task == "classification" else "value")
    if needs not in ("label", "proba", "value"):
        raise ValueError(f"metric {name!r}: needs must be label, proba or value, got {needs!r}")
    metric = Metric(name, fn, bool(greater_is_better), needs, task)
    _REGISTRY[name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a custom metric (built-ins stay)."""
    if name in _BUILTIN_NAMES:
        raise ValueError(f"metric {name!r} is built in and cannot be removed")
    _REGISTRY.pop(name, None)


def get_metric(name: str) -> Metric:
    """Look a metric up by name; unknown names raise ``ValueError`` listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown metric {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


def metric_names(task: str | None = None) -> tuple[str, ...]:
    """Registered metric names, optionally only those for ``task``."""
    return tuple(sorted(n for n, m in _REGISTRY.items() if task is None or m.task == task))


def direction(name: str) -> Literal["max", "min"]:
    """``"max"`` when higher is better, else ``"min"``."""
    return get_metric(name).mode


def is_better(name: str, a: float, b: float) -> bool:
    """Whether score ``a`` beats score ``b`` under ``name``'s direction.

    >>> is_better("rmse", 1.0, 2.0), is_better("accuracy", 0.8, 0.9)
    (True, False)
    """
    return a > b if get_metric(name).greater_is_better else a < b


def default_metric(task: str, n_classes: int = 0) -> str:
    """``roc_auc`` for binary classification, ``accuracy`` for multiclass, ``r2`` for regression.

    >>> default_metric("classification", 2), default_metric("classification", 3)
    ('roc_auc', 'accuracy')
    """
    if task == "regression":
        return "r2"
    if task != "classification":
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return "roc_auc" if n_classes <= 2 else "accuracy"


def score(
    name: str,
    y_true: Any,
    *,
    labels: Any = None,
    proba: Any = None,
    values: Any = None,
    classes: Sequence[Any] | None = None,
) -> float:
    """Compute metric ``name`` from whichever predictions it needs.

    Parameters
    ----------
    name
        A registered metric.
    y_true
        True labels or values, shape ``(n,)``.
    labels, proba, values
        Predicted labels ``(n,)``, class probabilities ``(n, n_classes)`` or
        predicted values ``(n,)``. Only the one the metric needs is required;
        labels are derived from ``proba`` and ``classes`` when absent.
    classes
        Class labels in the column order of ``proba``.
    """
    m = get_metric(name)
    if m.needs == "proba":
        if proba is None:
            raise ValueError(f"metric {name!r} needs class probabilities (proba=...)")
        if m.name in ("roc_auc", "log_loss"):
            return float(m.fn(y_true, proba, classes=classes))
        return float(m.fn(y_true, proba))
    if m.needs == "label":
        if labels is None:
            if proba is None or classes is None:
                raise ValueError(f"metric {name!r} needs predicted labels (labels=...)")
            labels = np.asarray(classes)[np.argmax(np.asarray(proba), axis=1)]
        if m.name in ("f1", "precision", "recall"):
            return float(m.fn(y_true, labels, classes=classes))
        return float(m.fn(y_true, labels))
    if values is None:
        raise ValueError(f"metric {name!r} needs predicted values (values=...)")
    return float(m.fn(y_true, values))
