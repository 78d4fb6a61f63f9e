"""What one AutoML search returns: the result, the ensemble that competed, the leaderboard.

:class:`AutoMLResult` is what :func:`~autopilot.training.automl.run_automl`
returns; :func:`leaderboard_row` turns a logged trial into a leaderboard row and
:func:`rank_leaderboard` orders the rows (complete trials first, best score first).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from autopilot.training.automl.trials import Trial

__all__ = [
    "LEADERBOARD_COLUMNS",
    "AutoMLResult",
    "EnsembleInfo",
    "leaderboard_row",
    "rank_leaderboard",
]

LEADERBOARD_COLUMNS = [
    "rank",
    "trial_id",
    "family",
    "params",
    "cv_mean",
    "cv_std",
    "folds_done",
    "fit_time_s",
    "status",
    "error",
    "run_id",
]


@dataclass(frozen=True)
class EnsembleInfo:
    """The top-k ensemble that competed: its members, CV score and whether it won."""

    members: tuple[tuple[str, str], ...]  # (trial_id, family)
    member_params: tuple[dict[str, Any], ...]
    cv_mean: float
    cv_std: float
    selected: bool
    kind: str  # "soft_voting" or "averaging"


@dataclass(frozen=True)
class AutoMLResult:
    """What one AutoML search produced.

    Attributes
    ----------
    leaderboard
        One row per trial plus the ensemble, best first: rank, trial_id, family,
        params (JSON), cv_mean, cv_std, folds_done, fit_time_s (mean per fold),
        status (complete, stopped, error), error, run_id (MLflow).
    best_model
        The winner refit on all rows (a ``Pipeline`` or a voting ensemble of them).
    best_family, best_params
        The winner's configuration (``"ensemble"`` and its members for an ensemble).
    best_score, best_std
        Its CV mean and standard deviation of ``metric``.
    metric, mode
        The optimised metric and whether higher (``max``) or lower is better.
    parent_run_id, best_run_id
        MLflow runs: the training and the winner's nested run.
    ensemble
        The ensemble that competed, if at least two complete trials existed.
    n_trials, duration_s
        Trials run and wall time of the whole call.
    classes
        Class labels (classification), in ``predict_proba`` column order.
    """

    leaderboard: pd.DataFrame
    best_model: Any
    best_family: str
    best_params: dict[str, Any]
    best_score: float
    best_std: float
    metric: str
    mode: Literal["max", "min"]
    parent_run_id: str
    best_run_id: str
    ensemble: EnsembleInfo | None
    n_trials: int
    duration_s: float
    classes: tuple[Any, ...] = ()
    tune_duration_s: float = 0.0


def leaderboard_row(t: Trial) -> dict[str, Any]:
    """The leaderboard row of a trial (or the ensemble's record) once it is logged."""
    return {
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


def rank_leaderboard(rows: list[dict[str, Any]], sign: float) -> pd.DataFrame:
    """Rows ranked: complete, then stopped, then error; best objective first within each."""
    lb = pd.DataFrame(rows, columns=[c for c in LEADERBOARD_COLUMNS if c != "rank"])
    status_order = {"complete": 0, "stopped": 1, "error": 2}
    key = lb["cv_mean"].map(lambda v: -sign * v if np.isfinite(v) else math.inf)
    lb = (
        lb.assign(_s=lb["status"].map(status_order), _k=key)
        .sort_values(["_s", "_k"], kind="stable")
        .drop(columns=["_s", "_k"])
        .reset_index(drop=True)
    )
    lb.insert(0, "rank", np.arange(1, len(lb) + 1))
    return lb
