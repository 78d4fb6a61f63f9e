"""The training pipeline the controller and the jobs call: data in, registered version out.

:func:`train_and_register` runs, in order: schema inference and validation,
a holdout split (the latest rows when the config names a time column, else a
seeded stratified split), AutoML on the rest, holdout metrics of the winner,
a refit of the winner on every row, a reference profile of the features for
drift monitoring, and registration with lineage. Registration is the last
step, so a failure anywhere before it leaves the registry exactly as it was.

The holdout metrics become the version's validation baseline
(``lineage.metrics``, next to the CV score as ``cv_<metric>``); the registered
model is the winning configuration refit on all rows, because the newest rows
(the holdout of a time-ordered retrain) are the ones a retrain exists for.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from autopilot.config import AutopilotConfig
from autopilot.errors import AutopilotError, DataError, TrainingError
from autopilot.registry import Lineage, ModelVersion, Registry
from autopilot.schema import FeatureSchema
from autopilot.training import data as tdata
from autopilot.training.metrics import metric_names, score

__all__ = [
    "HOLDOUT_FRACTION",
    "TrainOutcome",
    "champion_config",
    "evaluate",
    "register_candidate",
    "train_and_register",
]

HOLDOUT_FRACTION = 0.2


@dataclass(frozen=True)
class TrainOutcome:
    """A registered training result.

    Attributes
    ----------
    version
        The new registered version (status ``draft``).
    leaderboard
        AutoML's leaderboard (empty for candidates that did not come from AutoML).
    metrics
        Holdout metrics of the winner, the version's validation baseline.
    reference_profile
        ``ReferenceProfile.to_dict()`` of the training features.
    duration_s
        Wall time of the whole call.
    family, params
        The winning configuration.
    metric, cv_score
        The optimised metric and the winner's CV score (NaN without AutoML).
    parent_run_id
        The MLflow run of the training (None without AutoML).
    """

    version: ModelVersion
    leaderboard: pd.DataFrame
    metrics: dict[str, float]
    reference_profile: dict | None
    duration_s: float
    family: str = ""
    params: dict[str, Any] | None = None
    metric: str = ""
    cv_score: float = float("nan")
    parent_run_id: str | None = None


def _schema(cfg: AutopilotConfig, frame: pd.DataFrame) -> FeatureSchema:
    schema = tdata.infer_schema(
        frame,
        cfg.data.target,
        features=cfg.data.features,
        task=cfg.task,
        time_column=cfg.data.time_column,
    )
    tdata.validate_training_data(frame, schema, cfg.training.cv_folds)
    return schema


def _holdout_split(
    frame: pd.DataFrame, schema: FeatureSchema, cfg: AutopilotConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    labelled = frame[frame[schema.target].notna()]
    if cfg.data.time_column:
        return tdata.time_split(labelled, cfg.data.time_column, HOLDOUT_FRACTION)
    from sklearn.model_selection import train_test_split

    stratify = None
    if schema.task == "classification":
        counts = labelled[schema.target].value_counts()
        # Stratify when every class can appear on both sides.
        stratify = labelled[schema.target] if counts.min() >= 2 else None
    train, test = train_test_split(
        labelled,
        test_size=HOLDOUT_FRACTION,
        random_state=cfg.training.seed,
        stratify=stratify,
    )
    return train, test


def evaluate(
    model: Any, X: pd.DataFrame, y: np.ndarray, task: str, extra: tuple[str, ...] = ()
) -> dict[str, float]:
    """Every built-in metric of ``task`` (plus ``extra`` names) of ``model`` on ``(X, y)``.

    Metrics that are undefined on this sample (ROC-AUC with one class present)
    are left out rather than reported as NaN.

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    >>> m = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> evaluate(m, X, np.array([0, 0, 1, 1]), "classification")["accuracy"]
    1.0
    """
    builtin = {
        "classification": ("accuracy", "f1", "precision", "recall", "roc_auc", "log_loss"),
        "regression": ("r2", "mae", "rmse"),
    }[task]
    names = list(dict.fromkeys([*builtin, *extra]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "classification":
            classes = list(model.classes_)
            preds: dict[str, Any] = {
                "labels": np.asarray(model.predict(X)),
                "proba": np.asarray(model.predict_proba(X), dtype=float),
                "classes": classes,
            }
        else:
            preds = {"values": np.asarray(model.predict(X), dtype=float)}
    out: dict[str, float] = {}
    for name in names:
        if name not in metric_names(task):
            continue
        try:
            value = score(name, y, **preds)
        except ValueError:
            continue  # e.g. ROC-AUC on a holdout with a single class
        if np.isfinite(value):
            out[name] = float(value)
    return out


def _profile(X: pd.DataFrame, schema: FeatureSchema) -> dict:
    from autopilot.stats.profile import ReferenceProfile

    return ReferenceProfile.fit(X, {c.name: c.kind for c in schema.columns}).to_dict()


def _register(
    cfg: AutopilotConfig,
    model: Any,
    frame: pd.DataFrame,
    registry: Registry,
    *,
    schema: FeatureSchema,
    metrics: dict[str, float],
    trigger: str,
    family: str,
    params: dict[str, Any],
    parent_version: str | None,
    data_window: str,
    training_run_id: str | None,
) -> tuple[ModelVersion, dict]:
    """Profile the training features and register ``model`` with its lineage (last step)."""
    X_all, _ = tdata.split_xy(frame, schema)
    profile = _profile(X_all, schema)
    lineage = Lineage(
        trigger=trigger,
        parent_version=None if parent_version is None else str(parent_version),
        data_fingerprint=tdata.fingerprint(frame),
        data_window=data_window,
        metrics=metrics,
        training_run_id=training_run_id,
        family=family,
        params=params,
    )
    version = registry.register(
        cfg.name,
        model,
        schema=schema,
        lineage=lineage,
        reference_profile=profile,
        input_example=X_all.head(5),
        run_id=training_run_id,
    )
    return version, profile


def register_candidate(
    cfg: AutopilotConfig,
    model: Any,
    frame: pd.DataFrame,
    registry: Registry,
    *,
    holdout: pd.DataFrame,
    trigger: str,
    family: str,
    params: dict[str, Any],
    parent_version: str | None = None,
    data_window: str = "",
    training_run_id: str | None = None,
    extra_metrics: dict[str, float] | None = None,
    schema: FeatureSchema | None = None,
) -> tuple[ModelVersion, dict[str, float], dict | None]:
    """Evaluate a fitted candidate on ``holdout``, profile ``frame`` and register it.

    The same path serves AutoML winners and online-learning snapshots, so both
    reach the registry with the same lineage, metrics and profile.

    Returns
    -------
    (version, holdout_metrics, reference_profile)
    """
    schema = schema or _schema(cfg, frame)
    X_hold, y_hold = tdata.split_xy(holdout, schema)
    if len(y_hold) == 0:
        raise DataError("the holdout has no labelled rows to evaluate the candidate on")
    metric = cfg.training.metric
    extra = (metric,) if metric else ()
    metrics = evaluate(model, X_hold, y_hold, schema.task, extra)
    version, profile = _register(
        cfg,
        model,
        frame,
        registry,
        schema=schema,
        metrics={**metrics, **(extra_metrics or {})},
        trigger=trigger,
        family=family,
        params=params,
        parent_version=parent_version,
        data_window=data_window,
        training_run_id=training_run_id,
    )
    return version, metrics, profile


def train_and_register(
    cfg: AutopilotConfig,
    frame: pd.DataFrame,
    registry: Registry,
    *,
    trigger: str = "initial",
    parent_version: str | None = None,
    data_window: str = "",
    warm_start: dict | None = None,
) -> TrainOutcome:
    """Train on ``frame`` with AutoML and register the winner as a new draft version.

    Parameters
    ----------
    cfg
        The managed model's config (data, training, tracking URI).
    frame
        The training window, target included.
    registry
        Where the version goes (``MlflowRegistry`` or ``InMemoryRegistry``).
    trigger, parent_version, data_window
        Lineage: why this training ran, the champion it would replace, which rows.
    warm_start
        ``{"family", "params"}`` evaluated first; see :func:`champion_config`.

    Raises
    ------
    DataError
        The frame cannot be trained on (names the column or problem).
    ConfigError
        Unknown family or metric in ``cfg.training``.
    TrainingError
        AutoML produced no candidate, or something unexpected failed.
    RegistryError
        Registration failed (nothing else was changed).
    """
    t0 = time.perf_counter()
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    try:
        from autopilot.training.automl import run_automl

        schema = _schema(cfg, frame)
        train, holdout = _holdout_split(frame, schema, cfg)
        tdata.validate_training_data(train, schema, cfg.training.cv_folds)
        X_train, y_train = tdata.split_xy(train, schema)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        result = run_automl(
            X_train,
            y_train,
            schema,
            cfg.training,
            task=schema.task,
            tracking_uri=cfg.resolved_tracking_uri(),
            experiment=f"autopilot-{cfg.name}",
            run_name=f"{trigger}-{stamp}",
            warm_start=warm_start,
            time_ordered=bool(cfg.data.time_column),
            parent_tags={
                "autopilot.model": cfg.name,
                "autopilot.trigger": trigger,
                "autopilot.parent_version": "" if parent_version is None else str(parent_version),
                "autopilot.data_window": data_window,
            },
            log_model=False,  # the registry logs the registered model into the winner's run
        )
        # Holdout metrics of the model trained without the holdout...
        holdout_model = result.best_model
        X_hold, y_hold = tdata.split_xy(holdout, schema)
        extra = (result.metric,)
        metrics = evaluate(holdout_model, X_hold, y_hold, schema.task, extra)
        # ...then the same configuration refit on every labelled row is what ships.
        from sklearn.base import clone

        X_all, y_all = tdata.split_xy(frame, schema)
        threads = max(1, int(cfg.training.cpus_per_trial))
        from threadpoolctl import threadpool_limits

        with warnings.catch_warnings(), threadpool_limits(limits=threads):
            warnings.simplefilter("ignore")
            final = clone(result.best_model).fit(X_all, y_all)
        _log_holdout(cfg, result.parent_run_id, result.best_run_id, metrics)
    except AutopilotError:
        raise
    except Exception as exc:
        raise TrainingError(
            f"training of {cfg.name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc

    version, profile = _register(
        cfg,
        final,
        frame,
        registry,
        schema=schema,
        metrics={**metrics, f"cv_{result.metric}": float(result.best_score)},
        trigger=trigger,
        family=result.best_family,
        params=result.best_params,
        parent_version=parent_version,
        data_window=data_window,
        training_run_id=result.best_run_id,
    )
    return TrainOutcome(
        version=version,
        leaderboard=result.leaderboard,
        metrics=metrics,
        reference_profile=profile,
        duration_s=time.perf_counter() - t0,
        family=result.best_family,
        params=dict(result.best_params),
        metric=result.metric,
        cv_score=float(result.best_score),
        parent_run_id=result.parent_run_id,
    )


def _log_holdout(cfg: AutopilotConfig, parent_id: str, best_id: str, metrics: dict) -> None:
    """Holdout metrics on the parent and winner runs, so the MLflow UI shows them."""
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri=cfg.resolved_tracking_uri())
    now = int(time.time() * 1000)
    batch = [Metric(f"holdout_{k}", float(v), now, 0) for k, v in metrics.items()]
    for run_id in (parent_id, best_id):
        client.log_batch(run_id, metrics=batch)


def champion_config(registry: Registry, name: str) -> dict | None:
    """The champion's ``{"family", "params"}`` for warm-starting a retrain, or None.

    >>> from autopilot.registry import InMemoryRegistry
    >>> champion_config(InMemoryRegistry(), "absent") is None
    True
    """
    try:
        champion = registry.alias(name, "champion")
    except AutopilotError:
        return None
    if champion is None or not champion.lineage.family:
        return None
    return {"family": champion.lineage.family, "params": dict(champion.lineage.params)}
