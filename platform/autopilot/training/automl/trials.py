"""One trial: the Tune trainable that CV-scores a configuration, and the trial records.

:func:`cv_trial` runs in a Ray worker: it fits fold after fold and reports the
running CV mean (and, once complete, its out-of-fold predictions, which score
the ensemble). :func:`collect_trials` turns Tune's result grid into
:class:`Trial` records for the driver.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from autopilot.schema import FeatureSchema
from autopilot.training.families import build_pipeline
from autopilot.training.metrics import get_metric, score

__all__ = ["FAILED_OBJECTIVE", "Trial", "collect_trials", "cv_trial", "objective_sign"]

FAILED_OBJECTIVE = -1e12  # finite: ASHA takes percentiles over reported objectives


def objective_sign(metric: str) -> float:
    """+1 when higher ``metric`` is better, -1 when lower is: Tune always maximises."""
    return 1.0 if get_metric(metric).greater_is_better else -1.0


def _predictions(
    model: Any, X: pd.DataFrame, task: str, classes: np.ndarray
) -> dict[str, np.ndarray]:
    if task == "regression":
        return {"values": np.asarray(model.predict(X), dtype=float)}
    proba = np.asarray(model.predict_proba(X), dtype=float)
    fitted = list(model.classes_)
    if fitted != list(classes):
        # A fold may miss a rare class: place columns by label, zeros elsewhere.
        full = np.zeros((len(X), len(classes)))
        index = {c: i for i, c in enumerate(classes)}
        for j, c in enumerate(fitted):
            full[:, index[c]] = proba[:, j]
        proba = full
    return {"proba": proba, "labels": np.asarray(model.predict(X))}


def cv_trial(
    config: dict[str, Any],
    *,
    X: pd.DataFrame,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    schema: FeatureSchema,
    task: str,
    metric: str,
    classes: np.ndarray,
    seed: int,
    threads: int = 1,
) -> None:
    """Tune function trainable: fit fold after fold, report the running CV mean."""
    from ray import tune
    from threadpoolctl import threadpool_limits

    sign = objective_sign(metric)
    family, params = config["family"], config["params"]
    width = len(classes) if task == "classification" else 1
    oof = np.full((len(y), width), np.nan, dtype=np.float64)
    scores: list[float] = []
    fit_times: list[float] = []
    for k, (tr, te) in enumerate(folds):
        try:
            # OpenMP/BLAS pools sized to the trial's CPUs: oversubscribed pools on a
            # shared 2-core machine made histogram boosting 40x slower.
            with warnings.catch_warnings(), threadpool_limits(limits=threads):
                warnings.simplefilter("ignore")  # convergence chatter from small folds
                model = build_pipeline(family, params, schema, task, random_state=seed)
                t0 = time.perf_counter()
                model.fit(X.iloc[tr], y[tr])
                fit_times.append(time.perf_counter() - t0)
                preds = _predictions(model, X.iloc[te], task, classes)
                s = score(metric, y[te], classes=list(classes) if width > 1 else None, **preds)
            if not math.isfinite(s):
                raise ValueError(f"metric {metric} is not finite ({s})")
        except Exception as exc:  # noqa: BLE001 - a bad configuration is a result, not a crash
            tune.report(
                {
                    "objective": FAILED_OBJECTIVE,
                    "fold": k + 1,
                    "fold_scores": scores,
                    "fit_times": fit_times,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                }
            )
            return
        scores.append(s)
        oof[te] = preds["proba"] if task == "classification" else preds["values"][:, None]
        last = k == len(folds) - 1
        tune.report(
            {
                "objective": sign * float(np.mean(scores)),
                "fold": k + 1,
                "fold_scores": list(scores),
                "fit_times": list(fit_times),
                "error": "",
                # Out-of-fold predictions only once complete: they score the ensemble.
                **({"oof": oof} if last else {}),
            }
        )


@dataclass
class Trial:
    """One finished trial as the driver sees it (``run_id`` is set once it is logged)."""

    trial_id: str
    family: str
    params: dict[str, Any]
    fold_scores: list[float]
    fit_times: list[float]
    status: str
    error: str
    oof: np.ndarray | None
    run_id: str = ""

    @property
    def cv_mean(self) -> float:
        return float(np.mean(self.fold_scores)) if self.fold_scores else float("nan")

    @property
    def cv_std(self) -> float:
        return float(np.std(self.fold_scores)) if self.fold_scores else float("nan")


def collect_trials(result_grid: Any, n_folds: int) -> list[Trial]:
    """Trials from Tune's result grid: complete (all folds), stopped early, or error."""
    trials: list[Trial] = []
    for res in result_grid:
        cfg = res.config or {}
        m = res.metrics or {}
        if "family" not in cfg:
            continue
        scores = [float(s) for s in m.get("fold_scores", [])]
        err = m.get("error") or (repr(res.error)[:500] if res.error else "")
        if err:
            status = "error"
        elif len(scores) == n_folds:
            status = "complete"
        else:
            status = "stopped"
        trials.append(
            Trial(
                trial_id=str(m.get("trial_id") or getattr(res, "path", "") or len(trials)),
                family=cfg["family"],
                params=dict(cfg["params"]),
                fold_scores=scores,
                fit_times=[float(t) for t in m.get("fit_times", [])],
                status=status,
                error=str(err),
                oof=m.get("oof") if status == "complete" else None,
            )
        )
    return trials
