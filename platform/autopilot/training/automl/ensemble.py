"""The top-k ensemble: picking its members, scoring it from out-of-fold predictions, building it.

The members are the best complete trials, one per family first. Their
averaged out-of-fold predictions give exactly the fold-wise CV score of the
soft-voting (regression: averaging) ensemble, so scoring it fits nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autopilot.schema import FeatureSchema
from autopilot.training.automl.trials import Trial, objective_sign
from autopilot.training.families import build_pipeline
from autopilot.training.metrics import score

__all__ = ["build_ensemble", "ensemble_candidate"]


def ensemble_candidate(
    trials: list[Trial],
    *,
    k: int,
    metric: str,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    task: str,
    classes: np.ndarray,
) -> tuple[list[Trial], list[float]] | None:
    """Up to ``k`` members and the ensemble's per-fold scores; None with fewer than two."""
    if k < 2:
        return None
    sign = objective_sign(metric)
    complete = sorted(
        (t for t in trials if t.status == "complete" and t.oof is not None),
        key=lambda t: -sign * t.cv_mean,
    )
    members: list[Trial] = []
    for t in complete:  # one per family first: diversity is what a vote gains from
        if t.family not in {m.family for m in members}:
            members.append(t)
        if len(members) == k:
            break
    for t in complete:
        if len(members) == k:
            break
        if t not in members:
            members.append(t)
    if len(members) < 2:
        return None
    # every member has oof (``complete`` keeps only those); the test narrows its type
    avg = np.mean([m.oof for m in members if m.oof is not None], axis=0)
    scores = []
    for _, te in folds:
        if task == "classification":
            proba = avg[te]
            labels = classes[np.argmax(proba, axis=1)]
            scores.append(score(metric, y[te], proba=proba, labels=labels, classes=list(classes)))
        else:
            scores.append(score(metric, y[te], values=avg[te, 0]))
    return members, scores


def build_ensemble(members: list[Trial], schema: FeatureSchema, task: str, seed: int) -> Any:
    """An unfitted soft-voting classifier or averaging regressor of the members."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    estimators = [
        (f"{i}_{m.family}", build_pipeline(m.family, m.params, schema, task, random_state=seed))
        for i, m in enumerate(members)
    ]
    if task == "classification":
        return VotingClassifier(estimators, voting="soft")
    return VotingRegressor(estimators)
