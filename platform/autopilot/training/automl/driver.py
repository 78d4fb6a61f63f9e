"""The driver of a search: :func:`run_automl` and the Ray connection it needs.

:func:`run_automl` validates the inputs, fixes the folds, runs the Tune
search, picks the winner (single trial or ensemble), refits it on all rows
and logs the whole search to MLflow. :func:`ensure_ray` connects to Ray.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autopilot.config import CLASSIFICATION_FAMILIES, REGRESSION_FAMILIES, TrainingConfig
from autopilot.errors import ConfigError, DataError, TrainingError
from autopilot.schema import FeatureSchema
from autopilot.training.automl.ensemble import build_ensemble, ensemble_candidate
from autopilot.training.automl.folds import make_folds
from autopilot.training.automl.mlflow_logging import (
    experiment_id,
    log_ensemble,
    log_leaderboard,
    log_summary,
    log_trials,
    log_winner_model,
    parent_run,
)
from autopilot.training.automl.results import (
    AutoMLResult,
    EnsembleInfo,
    leaderboard_row,
    rank_leaderboard,
)
from autopilot.training.automl.search import FamilySearcher, protecting_asha, warm_points
from autopilot.training.automl.trials import Trial, collect_trials, cv_trial, objective_sign
from autopilot.training.families import build_pipeline, family_names
from autopilot.training.metrics import default_metric, get_metric

__all__ = ["ensure_ray", "run_automl"]


def ensure_ray(num_cpus: int = 2) -> None:
    """Connect to Ray: the cluster in ``RAY_ADDRESS`` if set (``ray job submit`` sets it),
    else a private local instance with ``num_cpus`` CPUs. A no-op when already connected."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address="auto", log_to_driver=False)
    else:
        # address="local": never attach to some other cluster that happens to run here.
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def run_automl(
    X: pd.DataFrame,
    y: Any,
    schema: FeatureSchema,
    training_cfg: TrainingConfig,
    *,
    task: str,
    tracking_uri: str,
    experiment: str,
    run_name: str,
    warm_start: Mapping[str, Any] | None = None,
    time_ordered: bool = False,
    storage_path: str | os.PathLike[str] | None = None,
    parent_tags: Mapping[str, str] | None = None,
    log_model: bool = True,
) -> AutoMLResult:
    """Search model families with Ray Tune and return the CV winner refit on all rows.

    Parameters
    ----------
    X, y
        Features (DataFrame with the schema's columns, as ``data.split_xy`` makes
        them) and target.
    schema
        Feature kinds, for each family's preprocessing.
    training_cfg
        Families, metric, trial and time budgets, folds, CPUs per trial,
        ensemble size and seed. ``time_budget_s`` bounds the whole call: the
        search gets what is left after setup, less a tenth kept for refitting
        the winner, scoring the ensemble and logging.
    task
        ``"classification"`` or ``"regression"``.
    tracking_uri, experiment, run_name
        Where the parent run and its nested trial runs go.
    warm_start
        ``{"family": ..., "params": {...}}`` evaluated first (the champion's).
    time_ordered
        Rows are in time order: ``TimeSeriesSplit`` instead of shuffled K-fold.
    storage_path
        Tune's folder (absolute); a temporary folder, removed afterwards, if None.
    parent_tags
        Extra tags for the parent run (e.g. the trigger of a retrain).
    log_model
        Log the refit winner (signature, input example) into its run. The training
        pipeline turns this off because the registry logs the model it registers
        into that same run.

    Raises
    ------
    ConfigError
        Unknown family or metric, or a metric for the other task.
    DataError
        Too few rows for the folds, or X and y of different lengths.
    TrainingError
        No trial completed (every configuration failed or the budget was too short).
    """
    import mlflow  # before the clock starts: its first import is not the search's time

    t_start = time.perf_counter()
    problem = _prepare(X, y, schema, training_cfg, task=task, time_ordered=time_ordered)
    _connect_ray(training_cfg.cpus_per_trial)
    # time_budget_s bounds the whole call: what setup used and a tenth for the refit,
    # the ensemble and logging come off the search's share.
    budget_s = max(1.0, 0.9 * training_cfg.time_budget_s - (time.perf_counter() - t_start))
    trials, tune_duration = _run_search(
        problem, training_cfg, warm_start=warm_start, budget_s=budget_s, storage_path=storage_path
    )
    best_single = _best_single(trials, problem, training_cfg)
    ensemble = _ensemble(trials, best_single, problem, training_cfg)
    selected = ensemble if ensemble is not None and ensemble.info.selected else None
    winner = selected.trial if selected is not None else best_single
    best_model = _fit_winner(winner, selected, problem, training_cfg)

    # MLflow: parent run, one nested run per trial, the winner holds model + leaderboard.
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp_id = experiment_id(client, tracking_uri, experiment)
    with parent_run(client, exp_id, run_name, parent_tags) as parent_id:
        leaderboard = _log_candidates(client, exp_id, parent_id, problem, trials, ensemble, winner)
        if log_model:
            log_winner_model(client, winner.run_id, best_model, problem.X, task)
        client.set_tag(winner.run_id, "autopilot.winner", "true")
        _log_parent_summary(
            client,
            parent_id,
            problem,
            training_cfg,
            trials,
            winner,
            warm_start=warm_start,
            time_ordered=time_ordered,
            tune_duration=tune_duration,
            t_start=t_start,
        )

    return AutoMLResult(
        leaderboard=leaderboard,
        best_model=best_model,
        best_family=winner.family,
        best_params=dict(winner.params),
        best_score=winner.cv_mean,
        best_std=winner.cv_std,
        metric=problem.metric,
        mode="max" if problem.sign > 0 else "min",
        parent_run_id=parent_id,
        best_run_id=winner.run_id,
        ensemble=ensemble.info if ensemble is not None else None,
        n_trials=len(trials),
        duration_s=time.perf_counter() - t_start,
        classes=tuple(problem.classes.tolist()),
        tune_duration_s=tune_duration,
    )


@dataclass(frozen=True)
class _Problem:
    """The validated inputs every step of a search shares."""

    X: pd.DataFrame  # the schema's columns in schema order, index 0..n-1
    y: np.ndarray
    schema: FeatureSchema
    task: str
    classes: np.ndarray  # sorted labels; empty for regression
    families: tuple[str, ...]
    metric: str
    sign: float  # objective_sign(metric)
    folds: list[tuple[np.ndarray, np.ndarray]]


def _prepare(
    X: pd.DataFrame,
    y: Any,
    schema: FeatureSchema,
    training_cfg: TrainingConfig,
    *,
    task: str,
    time_ordered: bool,
) -> _Problem:
    """Validate the inputs, resolve the families and the metric, and fix the folds.

    Raises
    ------
    ConfigError
        Unknown task, family or metric, or a metric for the other task.
    DataError
        X is no DataFrame, lacks schema columns or differs from y in length, the
        target has a single class, or the rows are too few for the folds.
    """
    if task not in ("classification", "regression"):
        raise ConfigError(f"task must be 'classification' or 'regression', got {task!r}")
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    y_arr = np.asarray(y)
    if len(X) != len(y_arr):
        raise DataError(f"X has {len(X)} rows but y has {len(y_arr)}")
    missing = [c for c in schema.names if c not in X.columns]
    if missing:
        raise DataError(f"X lacks schema column(s) {missing}")
    X = X.loc[:, list(schema.names)].reset_index(drop=True)
    classes = np.unique(y_arr) if task == "classification" else np.array([])
    if task == "classification" and len(classes) < 2:
        raise DataError(f"target {schema.target!r} has a single class {classes.tolist()}")
    families = _resolve_families(training_cfg, task)
    metric = _resolve_metric(training_cfg, task, len(classes))
    folds = make_folds(
        y_arr, training_cfg.cv_folds, task, time_ordered=time_ordered, seed=training_cfg.seed
    )
    return _Problem(
        X=X,
        y=y_arr,
        schema=schema,
        task=task,
        classes=classes,
        families=families,
        metric=metric,
        sign=objective_sign(metric),
        folds=folds,
    )


def _resolve_families(training_cfg: TrainingConfig, task: str) -> tuple[str, ...]:
    known = CLASSIFICATION_FAMILIES if task == "classification" else REGRESSION_FAMILIES
    if training_cfg.families is None:
        return family_names(task)
    bad = [f for f in training_cfg.families if f not in known]
    if bad:
        raise ConfigError(
            f"training.families: unknown {task} famil{'y' if len(bad) == 1 else 'ies'} "
            f"{', '.join(map(repr, bad))}; known: {', '.join(known)}"
        )
    if not training_cfg.families:
        raise ConfigError("training.families: give at least one family (or omit the key)")
    return tuple(dict.fromkeys(training_cfg.families))


def _resolve_metric(training_cfg: TrainingConfig, task: str, n_classes: int) -> str:
    name = training_cfg.metric or default_metric(task, n_classes)
    try:
        m = get_metric(name)
    except ValueError as exc:
        raise ConfigError(f"training.metric: {exc}") from None
    if m.task != task:
        raise ConfigError(f"training.metric: {name!r} is a {m.task} metric but the task is {task}")
    return name


def _connect_ray(cpus_per_trial: float) -> None:
    """Connect to Ray and check that one trial fits on the cluster.

    Raises
    ------
    TrainingError
        ``cpus_per_trial`` exceeds the cluster's CPUs.
    """
    ensure_ray()
    import ray

    total_cpus = float(ray.cluster_resources().get("CPU", 0.0))
    if total_cpus < cpus_per_trial:
        raise TrainingError(
            f"training.cpus_per_trial={cpus_per_trial} exceeds the cluster's {total_cpus:g} CPUs"
        )
    # Tune's per-trial JSON/CSV/TensorBoard loggers are not needed (MLflow holds the
    # record) and cost time per result on a small machine.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", "1")
    # The legacy reporter honours verbose=0; the new one prints a config box per run.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def _threads(cpus_per_trial: float) -> int:
    """BLAS/OpenMP threads for one fit: the trial's whole CPUs, at least one."""
    return max(1, int(cpus_per_trial))


@contextlib.contextmanager
def _tune_storage(storage_path: str | os.PathLike[str] | None) -> Iterator[str]:
    """Tune's folder as an absolute path: ``storage_path``, else a temporary folder
    that is removed on exit."""
    if storage_path is not None:
        yield str(Path(storage_path).resolve())
        return
    with tempfile.TemporaryDirectory(prefix="autopilot-tune-") as tmp:
        yield str(Path(tmp).resolve())


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


@contextlib.contextmanager
def _quiet_result_fetch() -> Any:
    """Tune's ResultGrid looks for per-trial result files, which the disabled
    file loggers never write; the metrics come from memory regardless, so its
    warning about them is noise."""
    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _run_search(
    problem: _Problem,
    training_cfg: TrainingConfig,
    *,
    warm_start: Mapping[str, Any] | None,
    budget_s: float,
    storage_path: str | os.PathLike[str] | None,
) -> tuple[list[Trial], float]:
    """Run the Tune search: the family searcher, ASHA over folds, ``cv_trial`` per configuration.

    Returns
    -------
    trials
        Every trial Tune ran: complete, stopped early or failed.
    tune_duration
        Wall time of ``Tuner.fit`` in seconds.
    """
    from ray import tune

    n_folds = len(problem.folds)
    searcher = FamilySearcher(
        problem.task,
        problem.families,
        np.random.default_rng(training_cfg.seed),
        points_to_evaluate=warm_points(warm_start, problem.families, problem.task),
        n_rows=len(problem.X),
    )
    scheduler = protecting_asha(
        time_attr="fold", max_t=n_folds, grace_period=max(1, n_folds // 2), reduction_factor=2
    )
    trainable = tune.with_resources(
        tune.with_parameters(
            cv_trial,
            X=problem.X,
            y=problem.y,
            folds=problem.folds,
            schema=problem.schema,
            task=problem.task,
            metric=problem.metric,
            classes=problem.classes,
            seed=training_cfg.seed,
            threads=_threads(training_cfg.cpus_per_trial),
        ),
        {"cpu": training_cfg.cpus_per_trial},
    )
    with _tune_storage(storage_path) as storage:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric="objective",
                mode="max",
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=training_cfg.num_trials,
                time_budget_s=budget_s,
                reuse_actors=True,
                trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=f"automl-{int(time.time() * 1000)}",
                storage_path=storage,
                verbose=0,
                log_to_file=False,
            ),
        )
        t_tune = time.perf_counter()
        with _quiet_result_fetch():
            grid = tuner.fit()
        tune_duration = time.perf_counter() - t_tune
        return collect_trials(grid, n_folds), tune_duration


def _best_single(trials: list[Trial], problem: _Problem, training_cfg: TrainingConfig) -> Trial:
    """The complete trial with the best CV score.

    Raises
    ------
    TrainingError
        No trial completed every fold (names up to three of the trials' errors).
    """
    complete = [t for t in trials if t.status == "complete"]
    if not complete:
        errors = sorted({t.error for t in trials if t.error})
        raise TrainingError(
            f"no trial completed {len(problem.folds)}-fold CV within "
            f"{training_cfg.time_budget_s:g}s and {training_cfg.num_trials} trials"
            + (f"; errors: {'; '.join(errors[:3])}" if errors else "")
        )
    return max(complete, key=lambda t: problem.sign * t.cv_mean)


@dataclass(frozen=True)
class _Ensemble:
    """The top-k ensemble as a candidate: its members, its trial record and its summary."""

    members: list[Trial]
    trial: Trial
    info: EnsembleInfo  # info.selected: it beat the best single trial


def _ensemble(
    trials: list[Trial], best_single: Trial, problem: _Problem, training_cfg: TrainingConfig
) -> _Ensemble | None:
    """The ensemble of the top complete trials, scored from their out-of-fold predictions
    and selected if it beats ``best_single``; None when it has fewer than two members."""
    candidate = ensemble_candidate(
        trials,
        k=training_cfg.ensemble_top_k,
        metric=problem.metric,
        y=problem.y,
        folds=problem.folds,
        task=problem.task,
        classes=problem.classes,
    )
    if candidate is None:
        return None
    members, scores = candidate
    classification = problem.task == "classification"
    trial = Trial(
        trial_id="ensemble",
        family="ensemble",
        params={
            "members": [{"family": m.family, "params": m.params} for m in members],
            "voting": "soft" if classification else "mean",
        },
        fold_scores=scores,
        fit_times=[sum(float(np.mean(m.fit_times)) for m in members)],
        status="complete",
        error="",
        oof=None,
    )
    info = EnsembleInfo(
        members=tuple((m.trial_id, m.family) for m in members),
        member_params=tuple(dict(m.params) for m in members),
        cv_mean=trial.cv_mean,
        cv_std=trial.cv_std,
        selected=problem.sign * trial.cv_mean > problem.sign * best_single.cv_mean,
        kind="soft_voting" if classification else "averaging",
    )
    return _Ensemble(members=members, trial=trial, info=info)


def _fit_winner(
    winner: Trial,
    selected: _Ensemble | None,
    problem: _Problem,
    training_cfg: TrainingConfig,
) -> Any:
    """The winner refit on all rows: the ``selected`` ensemble, or else ``winner``'s pipeline."""
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=_threads(training_cfg.cpus_per_trial)):
        warnings.simplefilter("ignore")
        if selected is not None:
            model = build_ensemble(
                selected.members, problem.schema, problem.task, training_cfg.seed
            )
        else:
            model = build_pipeline(
                winner.family,
                winner.params,
                problem.schema,
                problem.task,
                random_state=training_cfg.seed,
            )
        model.fit(problem.X, problem.y)
    return model


def _log_candidates(
    client: Any,
    exp_id: str,
    parent_id: str,
    problem: _Problem,
    trials: list[Trial],
    ensemble: _Ensemble | None,
    winner: Trial,
) -> pd.DataFrame:
    """Log each trial, then the ensemble, as a nested run of ``parent_id``; rank them into
    the leaderboard, which goes into the winner's run and the parent run."""
    log_trials(client, exp_id, parent_id, trials, problem.metric)
    candidates = list(trials)
    if ensemble is not None:
        log_ensemble(client, exp_id, parent_id, ensemble.trial, ensemble.members, problem.metric)
        candidates.append(ensemble.trial)
    leaderboard = rank_leaderboard([leaderboard_row(t) for t in candidates], problem.sign)
    log_leaderboard(client, leaderboard, [winner.run_id, parent_id])
    return leaderboard


def _log_parent_summary(
    client: Any,
    parent_id: str,
    problem: _Problem,
    training_cfg: TrainingConfig,
    trials: list[Trial],
    winner: Trial,
    *,
    warm_start: Mapping[str, Any] | None,
    time_ordered: bool,
    tune_duration: float,
    t_start: float,
) -> None:
    """The parent run's summary: the winner's score, counts and durations, the search's
    settings, and which run won."""
    log_summary(
        client,
        parent_id,
        metrics={
            f"best_cv_{problem.metric}": winner.cv_mean,
            "n_trials": float(len(trials)),
            "n_complete": float(sum(t.status == "complete" for t in trials)),
            "tune_duration_s": tune_duration,
            "duration_s": time.perf_counter() - t_start,
        },
        params={
            "task": problem.task,
            "metric": problem.metric,
            "families": ",".join(problem.families),
            "num_trials": str(training_cfg.num_trials),
            "time_budget_s": str(training_cfg.time_budget_s),
            "cv_folds": str(len(problem.folds)),
            "cv_kind": "time_series" if time_ordered else "kfold",
            "cpus_per_trial": str(training_cfg.cpus_per_trial),
            "ensemble_top_k": str(training_cfg.ensemble_top_k),
            "seed": str(training_cfg.seed),
            "n_rows": str(len(problem.X)),
            "n_features": str(problem.X.shape[1]),
            "warm_start": json.dumps(warm_start, sort_keys=True, default=str)[:6000],
        },
        tags={"autopilot.best_run_id": winner.run_id, "autopilot.best_family": winner.family},
    )
