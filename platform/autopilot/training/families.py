"""Model families and their conditional search spaces.

Each family is a scikit-learn :class:`~sklearn.pipeline.Pipeline` of two steps:
``prep`` (a :class:`~sklearn.compose.ColumnTransformer` built from the
:class:`~autopilot.schema.FeatureSchema`: impute, scale when the family needs
it, one-hot encode categorical and binary columns) and ``model``.

The search space is conditional: a configuration is a family name plus the
hyperparameters *of that family*, so ``C`` is only ever sampled for families
that have it. Spaces are small frozen dataclasses (:class:`Float`, :class:`Int`,
:class:`Choice`) sampled with a :class:`numpy.random.Generator`; the AutoML
searcher (``autopilot.training.automl.search``) draws fresh points with
:func:`sample_params` and refines good ones with :func:`perturb_params`.
Every value is a JSON scalar (hidden-layer sizes are strings such as
``"64-32"``), so configurations log to MLflow and round-trip through JSON.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> params = sample_params("random_forest", "classification", rng)
>>> sorted(params)
['criterion', 'max_features', 'min_samples_leaf', 'n_estimators']
>>> family_names("regression")[0]
'linear'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR

from autopilot.schema import FeatureSchema

__all__ = [
    "Choice",
    "Family",
    "Float",
    "Int",
    "build_estimator",
    "build_pipeline",
    "build_preprocessor",
    "default_params",
    "family_names",
    "get_family",
    "perturb_params",
    "sample_params",
]

Task = Literal["classification", "regression"]
Scalar = float | int | str | bool | None


# ------------------------------------------------------------------ parameter types


@dataclass(frozen=True)
class Float:
    """A real hyperparameter in ``[low, high]``, sampled uniformly or log-uniformly."""

    low: float
    high: float
    log: bool = False

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def perturb(self, value: Any, rng: np.random.Generator, scale: float) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return self.sample(rng)  # e.g. the default gamma="scale": no neighbourhood
        if self.log:
            span = math.log(self.high) - math.log(self.low)
            v = math.log(max(float(value), self.low)) + rng.normal(0.0, scale * span)
            return float(min(self.high, max(self.low, math.exp(v))))
        span = self.high - self.low
        return float(min(self.high, max(self.low, float(value) + rng.normal(0.0, scale * span))))


@dataclass(frozen=True)
class Int:
    """An integer hyperparameter in ``[low, high]`` (inclusive)."""

    low: int
    high: int
    log: bool = False

    def sample(self, rng: np.random.Generator) -> int:
        return int(round(Float(self.low, self.high, self.log).sample(rng)))

    def perturb(self, value: Any, rng: np.random.Generator, scale: float) -> int:
        return int(round(Float(self.low, self.high, self.log).perturb(value, rng, scale)))


@dataclass(frozen=True)
class Choice:
    """One of a few options; a perturbation keeps the value or jumps to another option."""

    options: tuple[Scalar, ...]

    def sample(self, rng: np.random.Generator) -> Scalar:
        return self.options[int(rng.integers(len(self.options)))]

    def perturb(self, value: Any, rng: np.random.Generator, scale: float) -> Scalar:
        return self.sample(rng) if rng.random() < max(scale, 0.25) else value


Param = Float | Int | Choice


@dataclass(frozen=True)
class Family:
    """A model family: its search space, default configuration and needs.

    Attributes
    ----------
    name, task
        Identity: ``("svm", "classification")`` is SVC, ``("svm", "regression")`` SVR.
    space
        Hyperparameter name to its range.
    defaults
        A configuration known to be good on ordinary tabular data; evaluated first.
    scale
        Whether numeric features are standardised (distance/gradient based models).
    impute
        Whether numeric NaNs are imputed (histogram boosting handles them natively).
    scale_target
        Regression only: standardise the target (SVR's epsilon, MLP initialisation).
    """

    name: str
    task: Task
    space: Mapping[str, Param]
    defaults: Mapping[str, Scalar]
    scale: bool = False
    impute: bool = True
    scale_target: bool = False


_TREE_SPACE: dict[str, Param] = {
    "n_estimators": Int(50, 400, log=True),
    "max_features": Choice(("sqrt", "log2", 0.5, 0.8, 1.0)),
    "min_samples_leaf": Int(1, 16, log=True),
}
_HGB_SPACE: dict[str, Param] = {
    "learning_rate": Float(0.01, 0.3, log=True),
    "max_iter": Int(50, 500, log=True),
    "max_leaf_nodes": Int(4, 64, log=True),
    "min_samples_leaf": Int(2, 60, log=True),
    "l2_regularization": Float(1e-6, 10.0, log=True),
}
_HGB_DEFAULTS: dict[str, Scalar] = {
    "learning_rate": 0.1,
    "max_iter": 100,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 1e-6,
}
_KNN_SPACE: dict[str, Param] = {
    "n_neighbors": Int(1, 50, log=True),
    "weights": Choice(("uniform", "distance")),
    "p": Choice((1, 2)),
}
_MLP_SPACE: dict[str, Param] = {
    "hidden_layer_sizes": Choice(("32", "64", "128", "64-32", "128-64")),
    "alpha": Float(1e-6, 1e-1, log=True),
    "learning_rate_init": Float(1e-4, 1e-2, log=True),
}
_MLP_DEFAULTS: dict[str, Scalar] = {
    "hidden_layer_sizes": "64",
    "alpha": 1e-4,
    "learning_rate_init": 1e-3,
}

_FAMILIES: dict[Task, dict[str, Family]] = {
    "classification": {
        f.name: f
        for f in (
            Family(
                "logistic",
                "classification",
                {"C": Float(1e-3, 1e3, log=True), "class_weight": Choice((None, "balanced"))},
                {"C": 1.0, "class_weight": None},
                scale=True,
            ),
            Family(
                "random_forest",
                "classification",
                {**_TREE_SPACE, "criterion": Choice(("gini", "entropy"))},
                {
                    "n_estimators": 200,
                    "max_features": "sqrt",
                    "min_samples_leaf": 1,
                    "criterion": "gini",
                },
            ),
            Family(
                "extra_trees",
                "classification",
                {**_TREE_SPACE, "criterion": Choice(("gini", "entropy"))},
                {
                    "n_estimators": 200,
                    "max_features": "sqrt",
                    "min_samples_leaf": 1,
                    "criterion": "gini",
                },
            ),
            Family("hist_gb", "classification", _HGB_SPACE, _HGB_DEFAULTS, impute=False),
            Family(
                "svm",
                "classification",
                {"C": Float(1e-2, 1e3, log=True), "gamma": Float(1e-4, 1.0, log=True)},
                {"C": 1.0, "gamma": "scale"},
                scale=True,
            ),
            Family(
                "knn",
                "classification",
                _KNN_SPACE,
                {"n_neighbors": 10, "weights": "distance", "p": 2},
                scale=True,
            ),
            Family("mlp", "classification", _MLP_SPACE, _MLP_DEFAULTS, scale=True),
        )
    },
    "regression": {
        f.name: f
        for f in (
            Family(
                "linear",
                "regression",
                {"alpha": Float(1e-4, 1e3, log=True)},
                {"alpha": 1.0},
                scale=True,
            ),
            Family(
                "random_forest",
                "regression",
                _TREE_SPACE,
                {"n_estimators": 200, "max_features": 0.5, "min_samples_leaf": 2},
            ),
            Family(
                "extra_trees",
                "regression",
                _TREE_SPACE,
                {"n_estimators": 200, "max_features": 0.8, "min_samples_leaf": 2},
            ),
            Family("hist_gb", "regression", _HGB_SPACE, _HGB_DEFAULTS, impute=False),
            Family(
                "svm",
                "regression",
                {
                    "C": Float(1e-2, 1e3, log=True),
                    "gamma": Float(1e-4, 1.0, log=True),
                    "epsilon": Float(1e-3, 1.0, log=True),
                },
                {"C": 1.0, "gamma": "scale", "epsilon": 0.1},
                scale=True,
                scale_target=True,
            ),
            Family(
                "knn",
                "regression",
                _KNN_SPACE,
                {"n_neighbors": 10, "weights": "distance", "p": 2},
                scale=True,
            ),
            Family("mlp", "regression", _MLP_SPACE, _MLP_DEFAULTS, scale=True, scale_target=True),
        )
    },
}


def _check_task(task: str) -> Task:
    if task not in _FAMILIES:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return task  # type: ignore[return-value]


def family_names(task: str) -> tuple[str, ...]:
    """Every family available for ``task``, in the order defaults are tried.

    >>> family_names("classification")
    ('logistic', 'random_forest', 'extra_trees', 'hist_gb', 'svm', 'knn', 'mlp')
    """
    return tuple(_FAMILIES[_check_task(task)])


def get_family(name: str, task: str) -> Family:
    """Look a family up; an unknown name raises ``ValueError`` listing the known ones."""
    families = _FAMILIES[_check_task(task)]
    if name not in families:
        raise ValueError(f"unknown {task} family {name!r}; known: {', '.join(families)}")
    return families[name]


def default_params(family: str, task: str) -> dict[str, Scalar]:
    """The family's default configuration (a fresh dict)."""
    return dict(get_family(family, task).defaults)


def sample_params(family: str, task: str, rng: np.random.Generator) -> dict[str, Scalar]:
    """Draw one configuration of ``family`` from its space."""
    fam = get_family(family, task)
    return {name: p.sample(rng) for name, p in fam.space.items()}


def perturb_params(
    family: str,
    task: str,
    params: Mapping[str, Any],
    rng: np.random.Generator,
    scale: float = 0.15,
) -> dict[str, Scalar]:
    """A neighbour of ``params``: each value moved by about ``scale`` of its range.

    >>> rng = np.random.default_rng(1)
    >>> p = perturb_params("logistic", "classification", {"C": 1.0, "class_weight": None}, rng)
    >>> 1e-3 <= p["C"] <= 1e3
    True
    """
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    fam = get_family(family, task)
    out: dict[str, Scalar] = {}
    for name, p in fam.space.items():
        out[name] = p.perturb(params[name], rng, scale) if name in params else p.sample(rng)
    return out


# ---------------------------------------------------------------------- building


def build_preprocessor(
    schema: FeatureSchema, *, scale: bool, impute: bool = True
) -> ColumnTransformer:
    """Column-wise preprocessing for ``schema``: numeric impute/scale, one-hot for the rest.

    Categorical and binary columns are imputed with their most frequent level and
    one-hot encoded; levels unseen in training are ignored at prediction time, so
    a new category at serving time does not fail the request.
    """
    numeric = [c.name for c in schema.columns if c.kind == "numeric"]
    discrete = [c.name for c in schema.columns if c.kind in ("categorical", "binary")]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = []
        if impute:
            steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
        if scale:
            steps.append(("scale", StandardScaler()))
        transformers.append(("num", Pipeline(steps) if steps else "passthrough", numeric))
    if discrete:
        transformers.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                max_categories=32,
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                discrete,
            )
        )
    if not transformers:
        raise ValueError("schema has no feature columns")
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def _hidden(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        return tuple(int(v) for v in value.split("-"))
    if isinstance(value, Sequence):
        return tuple(int(v) for v in value)
    return (int(value),)


def build_estimator(
    family: str, params: Mapping[str, Any], task: str, random_state: int = 0
) -> BaseEstimator:
    """The bare estimator of ``family`` with ``params`` (no preprocessing).

    Unknown parameter names raise ``ValueError`` naming them, so a stale
    warm-start configuration cannot silently fall back to defaults.
    """
    fam = get_family(family, task)
    unknown = sorted(set(params) - set(fam.space))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for family {family!r}")
    p = {**fam.defaults, **params}
    rs = int(random_state)
    clf = task == "classification"
    est: BaseEstimator
    if family == "logistic":
        est = LogisticRegression(C=float(p["C"]), class_weight=p["class_weight"], max_iter=2000)
    elif family == "linear":
        est = Ridge(alpha=float(p["alpha"]))
    elif family in ("random_forest", "extra_trees"):
        cls = {
            ("random_forest", True): RandomForestClassifier,
            ("random_forest", False): RandomForestRegressor,
            ("extra_trees", True): ExtraTreesClassifier,
            ("extra_trees", False): ExtraTreesRegressor,
        }[(family, clf)]
        kw: dict[str, Any] = {
            "n_estimators": int(p["n_estimators"]),
            "max_features": p["max_features"],
            "min_samples_leaf": int(p["min_samples_leaf"]),
            "n_jobs": 1,  # trials get fractional CPUs; parallelism comes from Tune
            "random_state": rs,
        }
        if clf:
            kw["criterion"] = p["criterion"]
        est = cls(**kw)
    elif family == "hist_gb":
        cls = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
        est = cls(
            learning_rate=float(p["learning_rate"]),
            max_iter=int(p["max_iter"]),
            max_leaf_nodes=int(p["max_leaf_nodes"]),
            min_samples_leaf=int(p["min_samples_leaf"]),
            l2_regularization=float(p["l2_regularization"]),
            early_stopping="auto",
            random_state=rs,
        )
    elif family == "svm":
        gamma = p["gamma"] if isinstance(p["gamma"], str) else float(p["gamma"])
        if clf:
            # Soft voting and ROC-AUC need probabilities: Platt scaling on 3-fold
            # out-of-fold decision values (sklearn 1.9 deprecates probability=True).
            est = CalibratedClassifierCV(
                SVC(C=float(p["C"]), gamma=gamma), method="sigmoid", cv=3, ensemble=False
            )
        else:
            est = SVR(C=float(p["C"]), gamma=gamma, epsilon=float(p["epsilon"]))
    elif family == "knn":
        cls = KNeighborsClassifier if clf else KNeighborsRegressor
        est = cls(n_neighbors=int(p["n_neighbors"]), weights=p["weights"], p=int(p["p"]))
    elif family == "mlp":
        cls = MLPClassifier if clf else MLPRegressor
        est = cls(
            hidden_layer_sizes=_hidden(p["hidden_layer_sizes"]),
            alpha=float(p["alpha"]),
            learning_rate_init=float(p["learning_rate_init"]),
            max_iter=400,
            early_stopping=True,
            n_iter_no_change=15,
            random_state=rs,
        )
    else:  # pragma: no cover - get_family already rejected it
        raise ValueError(f"unknown family {family!r}")
    if fam.scale_target:
        # SVR's epsilon and the MLP's initialisation assume a unit-scale target.
        est = TransformedTargetRegressor(regressor=est, transformer=StandardScaler())
    return est


def build_pipeline(
    family: str,
    params: Mapping[str, Any],
    schema: FeatureSchema,
    task: str | None = None,
    random_state: int = 0,
) -> Pipeline:
    """``Pipeline([("prep", ColumnTransformer), ("model", estimator)])`` for one configuration.

    Parameters
    ----------
    family
        A name from :func:`family_names`.
    params
        That family's hyperparameters; missing ones take the family default.
    schema
        Feature columns and their kinds; the pipeline expects a DataFrame with them.
    task
        ``"classification"`` or ``"regression"``; defaults to ``schema.task``.
    random_state
        Seed for estimators that randomise.

    Examples
    --------
    >>> import pandas as pd
    >>> from autopilot.schema import Column
    >>> schema = FeatureSchema((Column("x", "numeric"), Column("c", "categorical")),
    ...                        target="y", task="classification")
    >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "c": ["a", "b", "a", "b"]})
    >>> pipe = build_pipeline("logistic", {}, schema).fit(X, [0, 0, 1, 1])
    >>> pipe.predict(X).tolist()
    [0, 0, 1, 1]
    """
    task = task or schema.task
    fam = get_family(family, task)
    return Pipeline(
        [
            ("prep", build_preprocessor(schema, scale=fam.scale, impute=fam.impute)),
            ("model", build_estimator(family, params, task, random_state)),
        ]
    )
