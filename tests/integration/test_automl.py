"""AutoML on a real Ray and a real SQLite MLflow: leaderboard, nested runs, registered lineage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from autopilot.config import AutopilotConfig
from autopilot.errors import TrainingError
from autopilot.registry import MlflowRegistry
from autopilot.training.pipeline import champion_config, train_and_register

pytestmark = pytest.mark.integration

NAME = "bc"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    d = load_breast_cancer(as_frame=True)
    df = d.frame.copy()
    df.columns = [c.replace(" ", "_") for c in df.columns]
    return df


def _cfg(tmp_path: Path, tracking_uri: str, **training) -> AutopilotConfig:
    csv = tmp_path / "bc.csv"  # the config needs a source; the frame is passed directly
    csv.write_text("x,target\n1,0\n")
    return AutopilotConfig.model_validate(
        {
            "name": NAME,
            "task": "classification",
            "data": {"path": str(csv), "target": "target"},
            "training": {
                "families": ["logistic", "random_forest", "hist_gb", "knn", "svm", "extra_trees"],
                "num_trials": 6,
                "cv_folds": 3,
                "time_budget_s": 60,
                "cpus_per_trial": 0.5,
                "ensemble_top_k": 3,
                "seed": 0,
                **training,
            },
            "state_dir": str(tmp_path / "state"),
            "tracking_uri": tracking_uri,
        }
    )


def _runs(tracking_uri: str, experiment: str) -> pd.DataFrame:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], max_results=500)
    return pd.DataFrame(
        {
            "run_id": r.info.run_id,
            "parent": r.data.tags.get("mlflow.parentRunId"),
            "kind": r.data.tags.get("autopilot.kind"),
            "family": r.data.params.get("family"),
            "params": r.data.params,
            "metrics": r.data.metrics,
            "status": r.info.status,
        }
        for r in runs
    )


def test_training_logs_nested_trials_and_registers_a_version_with_lineage(
    ray_session, tracking_uri, tmp_path, frame
):
    import mlflow

    cfg = _cfg(tmp_path, tracking_uri)
    registry = MlflowRegistry(tracking_uri)
    out = train_and_register(cfg, frame, registry, trigger="initial", data_window="rows 0:569")

    # Leaderboard: several families, CV scores, the ensemble as one more candidate.
    lb = out.leaderboard
    trials = lb[lb["family"] != "ensemble"]
    assert len(trials) == 6
    assert trials["family"].nunique() >= 4
    assert set(lb["status"]) <= {"complete", "stopped", "error"}
    assert (lb["status"] == "complete").sum() >= 2
    assert "ensemble" in set(lb["family"])
    best = lb.iloc[0]
    assert best["status"] == "complete" and 0.95 < best["cv_mean"] <= 1.0
    assert out.metric == "roc_auc" and out.metrics["roc_auc"] > 0.95

    # MLflow: one parent run, one nested run per trial (+ the ensemble), all FINISHED.
    runs = _runs(tracking_uri, f"autopilot-{NAME}")
    parents = runs[runs["kind"] == "training"]
    assert len(parents) == 1
    parent_id = parents["run_id"].iloc[0]
    assert parent_id == out.parent_run_id
    nested = runs[runs["parent"] == parent_id]
    assert len(nested) == len(lb) == 7
    assert set(nested["run_id"]) == set(lb["run_id"])
    for _, run in nested.iterrows():
        assert run["family"] in {*cfg.training.families, "ensemble"}
        assert "fit_time_s" in run["metrics"] and "folds_done" in run["metrics"]
        if run["metrics"]["folds_done"] > 0:
            assert "cv_roc_auc_mean" in run["metrics"] and "cv_roc_auc_std" in run["metrics"]
    complete = nested[nested["metrics"].map(lambda m: m["folds_done"] == 3)]
    assert all("fold_roc_auc" in m for m in complete["metrics"])

    # The winner's run holds the leaderboard and the registered model.
    version = out.version
    winner_run = version.lineage.training_run_id
    assert winner_run in set(nested["run_id"])
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    assert "leaderboard.csv" in {a.path for a in client.list_artifacts(winner_run)}
    assert version.run_id == winner_run

    # The registered version: draft, hashed, with lineage and the holdout baseline.
    assert version.version == "1" and version.status == "draft"
    assert len(version.sha256) == 64
    lin = version.lineage
    assert lin.trigger == "initial" and lin.parent_version is None
    assert lin.data_window == "rows 0:569" and len(lin.data_fingerprint) == 64
    assert lin.family == out.family and lin.metrics["roc_auc"] == pytest.approx(
        out.metrics["roc_auc"]
    )
    assert "cv_roc_auc" in lin.metrics
    loaded = registry.load(NAME, "1")
    X = frame.drop(columns="target").head(20)
    proba = loaded.model.predict_proba(X)
    assert proba.shape == (20, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert loaded.reference_profile is not None and loaded.schema.target == "target"

    # A retrain warm-starts from the champion: its configuration is among the trials.
    registry.promote(NAME, "1")
    warm = champion_config(registry, NAME)
    assert warm == {"family": lin.family, "params": json.loads(json.dumps(dict(lin.params)))}
    cfg2 = _cfg(tmp_path, tracking_uri, num_trials=2, ensemble_top_k=0)
    out2 = train_and_register(
        cfg2,
        frame.iloc[100:],
        registry,
        trigger="drift",
        parent_version="1",
        data_window="rows 100:569",
        warm_start=warm,
    )
    evaluated = [(r.family, json.loads(r.params)) for r in out2.leaderboard.itertuples()]
    if warm["family"] == "ensemble":
        members = warm["params"]["members"]
        assert any((m["family"], m["params"]) in evaluated for m in members)
    else:
        assert (warm["family"], warm["params"]) in evaluated
    assert out2.version.version == "2" and out2.version.lineage.parent_version == "1"
    assert out2.version.lineage.trigger == "drift"
    assert registry.alias(NAME, "champion").version == "1"  # a retrain does not promote
    assert len(_runs(tracking_uri, f"autopilot-{NAME}").query("kind == 'training'")) == 2


def test_a_training_that_produces_no_candidate_changes_nothing(
    ray_session, tracking_uri, tmp_path, frame
):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from autopilot.registry import Lineage
    from autopilot.training.data import infer_schema, split_xy

    registry = MlflowRegistry(tracking_uri)
    schema = infer_schema(frame, "target", task="classification")
    X, y = split_xy(frame, schema)
    registry.register(
        NAME,
        make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        schema=schema,
        lineage=Lineage("initial", None, "f" * 64, "all", {"roc_auc": 0.99}, None, "logistic"),
    )
    registry.promote(NAME, "1")
    before = [(v.version, v.status, v.aliases, v.sha256) for v in registry.list_versions(NAME)]

    # Infinite values pass schema checks but make every fit fail: each trial ends as an
    # "error" row, no trial completes, and the training raises without registering.
    broken = frame.copy()
    broken.loc[broken.index[:5], "mean_radius"] = np.inf
    cfg = _cfg(tmp_path, tracking_uri, families=["logistic", "knn"], num_trials=2)
    with pytest.raises(TrainingError, match="no trial completed.*infinity"):
        train_and_register(cfg, broken, registry, trigger="drift", parent_version="1")
    after = [(v.version, v.status, v.aliases, v.sha256) for v in registry.list_versions(NAME)]
    assert after == before
    assert registry.alias(NAME, "champion").version == "1"
