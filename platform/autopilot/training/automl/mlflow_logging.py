"""The MLflow record of a search: the experiment, the parent run, one nested run per trial
(and the ensemble), the leaderboard, the winner's model and the parent's summary.

Logging happens in the driver after the search, so workers stay fast.
MLflow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from autopilot.training.automl.trials import Trial

__all__ = [
    "experiment_id",
    "log_ensemble",
    "log_leaderboard",
    "log_summary",
    "log_trials",
    "log_winner_model",
    "parent_run",
]


def _artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """An absolute artifact folder beside a SQLite store (MLflow would use the cwd)."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    db = Path(unquote(tracking_uri[len("sqlite:///") :]))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
    return (db.parent / "mlartifacts" / safe).resolve().as_uri()


def experiment_id(client: Any, tracking_uri: str, experiment: str) -> str:
    """The id of ``experiment``, created (artifacts beside a SQLite store) if absent."""
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return str(exp.experiment_id)
    try:
        return str(
            client.create_experiment(
                experiment, artifact_location=_artifact_location(tracking_uri, experiment)
            )
        )
    except Exception:  # noqa: BLE001 - another process created it in between
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise
        return str(exp.experiment_id)


@contextlib.contextmanager
def parent_run(
    client: Any, exp_id: str, run_name: str, extra_tags: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Create a training's parent run and yield its id; it ends FINISHED, or FAILED if the
    block raises."""
    tags = {"autopilot.kind": "training", **dict(extra_tags or {})}
    run_id = client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
    try:
        yield run_id
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise


def log_trials(
    client: Any,
    exp_id: str,
    parent_id: str,
    trials: list[Trial],
    metric: str,
) -> None:
    """One nested run per trial under ``parent_id``; sets each trial's ``run_id``."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    for t in trials:
        run = client.create_run(
            exp_id,
            run_name=f"{t.family}-{t.trial_id[-8:]}",
            tags={
                "mlflow.parentRunId": parent_id,
                "autopilot.kind": "trial",
                "autopilot.family": t.family,
                "autopilot.status": t.status,
                "autopilot.trial_id": t.trial_id,
            },
        )
        t.run_id = run.info.run_id
        params = [Param("family", t.family)] + [
            Param(k, (json.dumps(v) if isinstance(v, dict | list) else str(v))[:6000])
            for k, v in sorted(t.params.items())
        ]
        metrics = [Metric(f"fold_{metric}", s, now, i) for i, s in enumerate(t.fold_scores)]
        if t.fold_scores:
            metrics += [
                Metric(f"cv_{metric}_mean", t.cv_mean, now, 0),
                Metric(f"cv_{metric}_std", t.cv_std, now, 0),
            ]
        if t.fit_times:
            metrics += [
                Metric("fit_time_s", float(np.mean(t.fit_times)), now, 0),
                Metric("fit_time_total_s", float(np.sum(t.fit_times)), now, 0),
            ]
        metrics.append(Metric("folds_done", float(len(t.fold_scores)), now, 0))
        tags = [RunTag("autopilot.error", t.error[:5000])] if t.error else []
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run.info.run_id, "FAILED" if t.status == "error" else "FINISHED")


def log_ensemble(
    client: Any, exp_id: str, parent_id: str, ensemble: Trial, members: Sequence[Trial], metric: str
) -> None:
    """The ensemble's nested run, tagged with its members' runs (so log the members first)."""
    log_trials(client, exp_id, parent_id, [ensemble], metric)
    client.set_tag(ensemble.run_id, "autopilot.members", ",".join(m.run_id for m in members))


def log_leaderboard(client: Any, leaderboard: pd.DataFrame, run_ids: Sequence[str]) -> None:
    """``leaderboard.csv`` into each of ``run_ids``."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "leaderboard.csv"
        leaderboard.to_csv(csv, index=False)
        for run_id in run_ids:
            client.log_artifact(run_id, str(csv))


def log_summary(
    client: Any,
    run_id: str,
    *,
    metrics: Mapping[str, float],
    params: Mapping[str, str],
    tags: Mapping[str, str],
) -> None:
    """Metrics (step 0), params and tags into ``run_id`` in one batch."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )


def log_winner_model(client: Any, run_id: str, model: Any, X: pd.DataFrame, task: str) -> None:
    """Log ``model`` into ``run_id`` (sklearn flavour, signature, input example)."""
    import cloudpickle
    import mlflow.sklearn
    import sklearn
    from mlflow.models import infer_signature

    example = X.head(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model.predict_proba(example) if task == "classification" else model.predict(example)
        signature = infer_signature(example, np.asarray(out))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model"
            mlflow.sklearn.save_model(
                model,
                str(path),
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                signature=signature,
                input_example=example,
                # Explicit requirements: inferring them costs seconds per model.
                pip_requirements=[
                    f"scikit-learn=={sklearn.__version__}",
                    f"numpy=={np.__version__}",
                    f"pandas=={pd.__version__}",
                    f"cloudpickle=={cloudpickle.__version__}",
                ],
            )
            client.log_artifacts(run_id, str(path), "model")
