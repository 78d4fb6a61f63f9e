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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autopilot.config import CLASSIFICATION_FAMILIES, REGRESSION_FAMILIES, TrainingConfig
from autopilot.errors import ConfigError, DataError, TrainingError
from autopilot.schema import FeatureSchema
from autopilot.training.automl.ensemble import build_ensemble, ensemble_candidate
from autopilot.training.automl.folds import make_folds
from autopilot.training.automl.mlflow_logging import experiment_id, log_trials, log_winner_model
from autopilot.training.automl.results import AutoMLResult, EnsembleInfo, rank_leaderboard
from autopilot.training.automl.search import FamilySearcher, protecting_asha, warm_points
from autopilot.training.automl.trials import Trial, collect_trials, cv_trial, objective_sign
from autopilot.training.families import build_pipeline, family_names
from autopilot.training.metrics import default_metric, get_metric

__all__ = ["ensure_ray", "run_automl"]


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
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from ray import tune
    from threadpoolctl import threadpool_limits

    t_start = time.perf_counter()
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
    sign = objective_sign(metric)
    folds = make_folds(
        y_arr, training_cfg.cv_folds, task, time_ordered=time_ordered, seed=training_cfg.seed
    )
    n_folds = len(folds)
    rng = np.random.default_rng(training_cfg.seed)

    ensure_ray()
    import ray

    total_cpus = float(ray.cluster_resources().get("CPU", 0.0))
    if total_cpus < training_cfg.cpus_per_trial:
        raise TrainingError(
            f"training.cpus_per_trial={training_cfg.cpus_per_trial} exceeds the cluster's "
            f"{total_cpus:g} CPUs"
        )
    # Tune's per-trial JSON/CSV/TensorBoard loggers are not needed (MLflow holds the
    # record) and cost time per result on a small machine.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", "1")
    # The legacy reporter honours verbose=0; the new one prints a config box per run.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

    searcher = FamilySearcher(
        task,
        families,
        rng,
        points_to_evaluate=warm_points(warm_start, families, task),
        n_rows=len(X),
    )
    threads = max(1, int(training_cfg.cpus_per_trial))
    # time_budget_s bounds the whole call: what setup used and a tenth for the refit,
    # the ensemble and logging come off the search's share.
    tune_budget = max(1.0, 0.9 * training_cfg.time_budget_s - (time.perf_counter() - t_start))
    grace = max(1, n_folds // 2)
    scheduler = protecting_asha(
        time_attr="fold", max_t=n_folds, grace_period=grace, reduction_factor=2
    )
    trainable = tune.with_resources(
        tune.with_parameters(
            cv_trial,
            X=X,
            y=y_arr,
            folds=folds,
            schema=schema,
            task=task,
            metric=metric,
            classes=classes,
            seed=training_cfg.seed,
            threads=threads,
        ),
        {"cpu": training_cfg.cpus_per_trial},
    )
    tmp_ctx = (
        tempfile.TemporaryDirectory(prefix="autopilot-tune-") if storage_path is None else None
    )
    storage = str(Path(tmp_ctx.name if tmp_ctx else storage_path).resolve())
    try:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric="objective",
                mode="max",
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=training_cfg.num_trials,
                time_budget_s=tune_budget,
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
        trials = collect_trials(grid, n_folds)
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()

    complete = [t for t in trials if t.status == "complete"]
    if not complete:
        errors = sorted({t.error for t in trials if t.error})
        raise TrainingError(
            f"no trial completed {n_folds}-fold CV within {training_cfg.time_budget_s:g}s and "
            f"{training_cfg.num_trials} trials"
            + (f"; errors: {'; '.join(errors[:3])}" if errors else "")
        )
    best_single = max(complete, key=lambda t: sign * t.cv_mean)

    ens = ensemble_candidate(
        trials,
        k=training_cfg.ensemble_top_k,
        metric=metric,
        y=y_arr,
        folds=folds,
        task=task,
        classes=classes,
    )
    ensemble_wins = ens is not None and sign * float(np.mean(ens[1])) > sign * best_single.cv_mean

    with warnings.catch_warnings(), threadpool_limits(limits=threads):
        warnings.simplefilter("ignore")
        if ens is not None and ensemble_wins:
            best_model = build_ensemble(ens[0], schema, task, training_cfg.seed)
        else:
            best_model = build_pipeline(
                best_single.family, best_single.params, schema, task, random_state=training_cfg.seed
            )
        best_model.fit(X, y_arr)

    # ---- MLflow: parent run, one nested run per trial, the winner holds model + leaderboard.
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp_id = experiment_id(client, tracking_uri, experiment)
    parent = client.create_run(
        exp_id,
        run_name=run_name,
        tags={"autopilot.kind": "training", **dict(parent_tags or {})},
    )
    parent_id = parent.info.run_id
    try:
        log_trials(client, exp_id, parent_id, trials, metric)
        ensemble_info: EnsembleInfo | None = None
        rows = [
            {
                "trial_id": t.trial_id,
                "family": t.family,
                "params": json.dumps(t.params, sort_keys=True),
                "cv_mean": t.cv_mean,
                "cv_std": t.cv_std,
                "folds_done": len(t.fold_scores),
                "fit_time_s": float(np.mean(t.fit_times)) if t.fit_times else float("nan"),
                "status": t.status,
                "error": t.error,
                "run_id": t.run_id,
            }
            for t in trials
        ]
        if ens is not None:
            members, ens_scores = ens
            ens_trial = Trial(
                trial_id="ensemble",
                family="ensemble",
                params={
                    "members": [{"family": m.family, "params": m.params} for m in members],
                    "voting": "soft" if task == "classification" else "mean",
                },
                fold_scores=ens_scores,
                fit_times=[sum(float(np.mean(m.fit_times)) for m in members)],
                status="complete",
                error="",
                oof=None,
            )
            log_trials(client, exp_id, parent_id, [ens_trial], metric)
            client.set_tag(
                ens_trial.run_id, "autopilot.members", ",".join(m.run_id for m in members)
            )
            rows.append(
                {
                    "trial_id": "ensemble",
                    "family": "ensemble",
                    "params": json.dumps(ens_trial.params, sort_keys=True),
                    "cv_mean": ens_trial.cv_mean,
                    "cv_std": ens_trial.cv_std,
                    "folds_done": n_folds,
                    "fit_time_s": ens_trial.fit_times[0],
                    "status": "complete",
                    "error": "",
                    "run_id": ens_trial.run_id,
                }
            )
            ensemble_info = EnsembleInfo(
                members=tuple((m.trial_id, m.family) for m in members),
                member_params=tuple(dict(m.params) for m in members),
                cv_mean=ens_trial.cv_mean,
                cv_std=ens_trial.cv_std,
                selected=bool(ensemble_wins),
                kind="soft_voting" if task == "classification" else "averaging",
            )
            winner = ens_trial if ensemble_wins else best_single
        else:
            winner = best_single
        leaderboard = rank_leaderboard(rows, sign)

        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "leaderboard.csv"
            leaderboard.to_csv(csv, index=False)
            client.log_artifact(winner.run_id, str(csv))
            client.log_artifact(parent_id, str(csv))
        if log_model:
            log_winner_model(client, winner.run_id, best_model, X, task)
        client.set_tag(winner.run_id, "autopilot.winner", "true")

        now = int(time.time() * 1000)
        duration = time.perf_counter() - t_start
        client.log_batch(
            parent_id,
            metrics=[
                Metric(f"best_cv_{metric}", winner.cv_mean, now, 0),
                Metric("n_trials", float(len(trials)), now, 0),
                Metric("n_complete", float(len(complete)), now, 0),
                Metric("tune_duration_s", tune_duration, now, 0),
                Metric("duration_s", duration, now, 0),
            ],
            params=[
                Param("task", task),
                Param("metric", metric),
                Param("families", ",".join(families)),
                Param("num_trials", str(training_cfg.num_trials)),
                Param("time_budget_s", str(training_cfg.time_budget_s)),
                Param("cv_folds", str(n_folds)),
                Param("cv_kind", "time_series" if time_ordered else "kfold"),
                Param("cpus_per_trial", str(training_cfg.cpus_per_trial)),
                Param("ensemble_top_k", str(training_cfg.ensemble_top_k)),
                Param("seed", str(training_cfg.seed)),
                Param("n_rows", str(len(X))),
                Param("n_features", str(X.shape[1])),
                Param("warm_start", json.dumps(warm_start, sort_keys=True, default=str)[:6000]),
            ],
            tags=[
                RunTag("autopilot.best_run_id", winner.run_id),
                RunTag("autopilot.best_family", winner.family),
            ],
        )
        client.set_terminated(parent_id, "FINISHED")
    except Exception:
        client.set_terminated(parent_id, "FAILED")
        raise

    return AutoMLResult(
        leaderboard=leaderboard,
        best_model=best_model,
        best_family=winner.family,
        best_params=dict(winner.params),
        best_score=winner.cv_mean,
        best_std=winner.cv_std,
        metric=metric,
        mode="max" if sign > 0 else "min",
        parent_run_id=parent_id,
        best_run_id=winner.run_id,
        ensemble=ensemble_info,
        n_trials=len(trials),
        duration_s=time.perf_counter() - t_start,
        classes=tuple(classes.tolist()),
        tune_duration_s=tune_duration,
    )
