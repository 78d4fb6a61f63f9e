"""AutoML on Ray Tune: a conditional search over model families, CV-scored, logged to MLflow.

How one training runs
---------------------
1. Folds are fixed once in the driver (stratified K-fold for classification,
   K-fold for regression, ``TimeSeriesSplit`` when rows are time-ordered) and
   shipped with the data through the object store (``tune.with_parameters``),
   so every configuration is scored on exactly the same splits.
2. :class:`FamilySearcher` proposes configurations: the warm-start point (the
   champion's configuration) first, then each family's defaults, then a mix of
   fresh samples and perturbations of the best configuration of well-ranked
   families. Randomness comes from a seeded ``numpy.random.Generator``.
3. Each trial is a function trainable that fits fold after fold and reports
   the running CV mean after each one, so ASHA stops sampled configurations
   that are behind at a rung (fold ``grace``, ``2*grace``...) without finishing
   their folds. The warm-start point and the family defaults are *protected*:
   they set the rung cut-offs but always finish, so even a small search ends
   with complete candidates for the leaderboard and the ensemble. Trials take
   ``cpus_per_trial`` CPUs (and as many BLAS/OpenMP threads, at least one) and
   actors are reused, which removes most per-trial worker start-up.
4. A soft-voting (regression: averaging) ensemble of the top-k complete trials
   of distinct families competes as one more candidate. Its CV score comes
   from the members' out-of-fold predictions, which is exactly the score of the
   fold-wise voting ensemble, so no extra fitting is needed to score it.
5. The winner is refit on all rows in the driver. MLflow logging happens in the
   driver after the search (workers stay fast): one parent run per training and
   one nested run per trial (params, per-fold and mean/std metric, fit time,
   status); the winner's run holds the leaderboard CSV and the model with its
   signature and an input example.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pickle
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from autopilot.config import CLASSIFICATION_FAMILIES, REGRESSION_FAMILIES, TrainingConfig
from autopilot.errors import ConfigError, DataError, TrainingError
from autopilot.schema import FeatureSchema
from autopilot.training.families import (
    build_pipeline,
    default_params,
    family_names,
    get_family,
    perturb_params,
    sample_params,
)
from autopilot.training.metrics import default_metric, get_metric, score

__all__ = [
    "AutoMLResult",
    "EnsembleInfo",
    "FamilySearcher",
    "ensure_ray",
    "make_folds",
    "run_automl",
]

Task = Literal["classification", "regression"]

# The order in which family defaults are tried: strong, cheap families first so a
# short budget still sees them. Kernel SVMs are cheap and strong on small data and
# scale quadratically, so they move to the back on large tables.
_SMALL_DATA_ROWS = 5_000
_DEFAULT_ORDER_SMALL = (
    "logistic",
    "linear",
    "svm",
    "hist_gb",
    "extra_trees",
    "random_forest",
    "knn",
    "mlp",
)
_DEFAULT_ORDER_LARGE = (
    "hist_gb",
    "logistic",
    "linear",
    "random_forest",
    "extra_trees",
    "mlp",
    "knn",
    "svm",
)
_FAILED_OBJECTIVE = -1e12  # finite: ASHA takes percentiles over reported objectives
_LEADERBOARD_COLUMNS = [
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


# ------------------------------------------------------------------------- folds


def make_folds(
    y: np.ndarray, n_folds: int, task: str, *, time_ordered: bool = False, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test row indices for each fold.

    >>> folds = make_folds(np.array([0, 1] * 10), 5, "classification", seed=0)
    >>> len(folds), sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(20))
    (5, True)
    """
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    n = len(y)
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    if n < 2 * n_folds:
        raise DataError(f"{n} rows are too few for {n_folds}-fold cross-validation")
    if time_ordered:
        splitter: Any = TimeSeriesSplit(n_splits=n_folds)
        split = splitter.split(np.zeros(n))
    elif task == "classification":
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= n_folds:
            splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
            split = splitter.split(np.zeros(n), y)
        else:  # a class rarer than the fold count cannot be stratified
            splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
            split = splitter.split(np.zeros(n))
    else:
        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
        split = splitter.split(np.zeros(n))
    return [(np.asarray(tr), np.asarray(te)) for tr, te in split]


# ---------------------------------------------------------------------- searcher


def _searcher_base() -> type:
    from ray.tune.search import Searcher

    return Searcher


class FamilySearcher(_searcher_base()):  # type: ignore[misc]
    """Conditional search over families: warm start, defaults, then explore/exploit.

    Parameters
    ----------
    task
        ``"classification"`` or ``"regression"``.
    families
        Families to search.
    rng
        Source of randomness.
    points_to_evaluate
        Configurations ``{"family": ..., "params": {...}}`` tried first (warm start).
    explore
        Probability of sampling a family uniformly instead of by rank.
    n_rows
        Training rows; decides the order in which family defaults are tried.
    """

    def __init__(
        self,
        task: str,
        families: Sequence[str],
        rng: np.random.Generator,
        *,
        points_to_evaluate: Sequence[Mapping[str, Any]] = (),
        explore: float = 0.3,
        metric: str = "objective",
        mode: str = "max",
        n_rows: int = 0,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self._task = task
        self._families = tuple(families)
        self._rng = rng
        self._explore = explore
        preferred = _DEFAULT_ORDER_SMALL if n_rows <= _SMALL_DATA_ROWS else _DEFAULT_ORDER_LARGE
        order = [f for f in preferred if f in self._families]
        order += [f for f in self._families if f not in order]
        self._queue: deque[dict[str, Any]] = deque(
            [{"family": p["family"], "params": dict(p["params"])} for p in points_to_evaluate]
            + [{"family": f, "params": default_params(f, task)} for f in order]
        )
        self.n_protected = len(self._queue)
        self._live: dict[str, dict[str, Any]] = {}
        self._done: list[tuple[dict[str, Any], float]] = []
        self._seen: set[str] = set()

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True

    @staticmethod
    def _key(cfg: Mapping[str, Any]) -> str:
        return json.dumps(cfg, sort_keys=True, default=str)

    def _best_by_family(self) -> dict[str, tuple[float, dict[str, Any]]]:
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        for cfg, obj in self._done:
            f = cfg["family"]
            if f not in best or obj > best[f][0]:
                best[f] = (obj, cfg["params"])
        return best

    def _sample(self) -> dict[str, Any]:
        best = self._best_by_family()
        ranked = sorted(best, key=lambda f: -best[f][0])
        if not ranked or self._rng.random() < self._explore:
            family = self._families[int(self._rng.integers(len(self._families)))]
        else:
            # Rank weights 1, 1/2, 1/3...: keep refining the leaders, still visit the rest.
            w = np.array([1.0 / (i + 1) for i in range(len(ranked))])
            family = ranked[int(self._rng.choice(len(ranked), p=w / w.sum()))]
        if family in best and self._rng.random() < 0.6:
            params = perturb_params(family, self._task, best[family][1], self._rng)
        else:
            params = sample_params(family, self._task, self._rng)
        return {"family": family, "params": params}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        cfg = None
        protected = False
        while self._queue:
            cand = self._queue.popleft()
            if self._key(cand) not in self._seen:
                cfg, protected = cand, True
                break
        if cfg is None:
            for _ in range(20):  # small discrete spaces can repeat: avoid duplicates
                cfg = self._sample()
                if self._key(cfg) not in self._seen:
                    break
        assert cfg is not None
        self._seen.add(self._key(cfg))
        self._live[trial_id] = cfg
        return {"family": cfg["family"], "params": dict(cfg["params"]), "protected": protected}

    def save(self, checkpoint_path: str) -> None:
        # Tune checkpoints searcher state with the experiment; the state is small.
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        cfg = self._live.pop(trial_id, None)
        if cfg is None or error or not result or "objective" not in result:
            return
        obj = float(result["objective"])
        if obj > _FAILED_OBJECTIVE:
            self._done.append((cfg, obj))


def _protecting_asha(**kwargs: Any) -> Any:
    """ASHA that records every trial at its rungs but never stops a protected one.

    The warm-start point and each family's defaults are what a small search
    mostly consists of; stopping them after one fold would only leave the
    leaderboard (and the ensemble) without complete candidates. Their scores
    still set the rung cut-offs that sampled configurations must beat.
    """
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    class _ProtectingASHA(ASHAScheduler):
        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            action = super().on_trial_result(tune_controller, trial, result)
            if (
                action == TrialScheduler.STOP
                and (trial.config or {}).get("protected")
                and result.get(self._time_attr, 0) < self._max_t
            ):
                self._num_stopped -= 1
                return TrialScheduler.CONTINUE
            return action

    return _ProtectingASHA(**kwargs)


# ------------------------------------------------------------------------ trials


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


def _cv_trial(
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

    sign = 1.0 if get_metric(metric).greater_is_better else -1.0
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
                    "objective": _FAILED_OBJECTIVE,
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


# ------------------------------------------------------------------------ driver


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


def _warm_points(
    warm_start: Mapping[str, Any] | None, families: Sequence[str], task: str
) -> list[dict]:
    if not warm_start:
        return []
    family = warm_start.get("family")
    params = warm_start.get("params") or {}
    if family == "ensemble":
        # An ensemble champion: warm-start each of its members instead.
        return [
            p for member in params.get("members", []) for p in _warm_points(member, families, task)
        ]
    if family not in families:
        return []
    space = get_family(family, task).space
    # Drop stale keys (a champion from an older search space) rather than fail.
    return [{"family": family, "params": {k: v for k, v in params.items() if k in space}}]


def _objective_sign(metric: str) -> float:
    return 1.0 if get_metric(metric).greater_is_better else -1.0


@dataclass
class _Trial:
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


def _collect(result_grid: Any, n_folds: int) -> list[_Trial]:
    trials: list[_Trial] = []
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
            _Trial(
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


def _ensemble_candidate(
    trials: list[_Trial],
    *,
    k: int,
    metric: str,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    task: str,
    classes: np.ndarray,
) -> tuple[list[_Trial], list[float]] | None:
    if k < 2:
        return None
    sign = _objective_sign(metric)
    complete = sorted(
        (t for t in trials if t.status == "complete" and t.oof is not None),
        key=lambda t: -sign * t.cv_mean,
    )
    members: list[_Trial] = []
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
    avg = np.mean([m.oof for m in members], axis=0)
    scores = []
    for _, te in folds:
        if task == "classification":
            proba = avg[te]
            labels = classes[np.argmax(proba, axis=1)]
            scores.append(score(metric, y[te], proba=proba, labels=labels, classes=list(classes)))
        else:
            scores.append(score(metric, y[te], values=avg[te, 0]))
    return members, scores


def _build_ensemble(members: list[_Trial], schema: FeatureSchema, task: str, seed: int) -> Any:
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    estimators = [
        (f"{i}_{m.family}", build_pipeline(m.family, m.params, schema, task, random_state=seed))
        for i, m in enumerate(members)
    ]
    if task == "classification":
        return VotingClassifier(estimators, voting="soft")
    return VotingRegressor(estimators)


def _artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """An absolute artifact folder beside a SQLite store (MLflow would use the cwd)."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    db = Path(unquote(tracking_uri[len("sqlite:///") :]))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
    return (db.parent / "mlartifacts" / safe).resolve().as_uri()


def _experiment_id(client: Any, tracking_uri: str, experiment: str) -> str:
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


def _log_trials(
    client: Any,
    exp_id: str,
    parent_id: str,
    trials: list[_Trial],
    metric: str,
) -> None:
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


def _log_model(client: Any, run_id: str, model: Any, X: pd.DataFrame, task: str) -> None:
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


def _leaderboard(rows: list[dict[str, Any]], sign: float) -> pd.DataFrame:
    lb = pd.DataFrame(rows, columns=[c for c in _LEADERBOARD_COLUMNS if c != "rank"])
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
    sign = _objective_sign(metric)
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
        points_to_evaluate=_warm_points(warm_start, families, task),
        n_rows=len(X),
    )
    threads = max(1, int(training_cfg.cpus_per_trial))
    # time_budget_s bounds the whole call: what setup used and a tenth for the refit,
    # the ensemble and logging come off the search's share.
    tune_budget = max(1.0, 0.9 * training_cfg.time_budget_s - (time.perf_counter() - t_start))
    grace = max(1, n_folds // 2)
    scheduler = _protecting_asha(
        time_attr="fold", max_t=n_folds, grace_period=grace, reduction_factor=2
    )
    trainable = tune.with_resources(
        tune.with_parameters(
            _cv_trial,
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
        trials = _collect(grid, n_folds)
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

    ens = _ensemble_candidate(
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
            best_model = _build_ensemble(ens[0], schema, task, training_cfg.seed)
        else:
            best_model = build_pipeline(
                best_single.family, best_single.params, schema, task, random_state=training_cfg.seed
            )
        best_model.fit(X, y_arr)

    # ---- MLflow: parent run, one nested run per trial, the winner holds model + leaderboard.
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp_id = _experiment_id(client, tracking_uri, experiment)
    parent = client.create_run(
        exp_id,
        run_name=run_name,
        tags={"autopilot.kind": "training", **dict(parent_tags or {})},
    )
    parent_id = parent.info.run_id
    try:
        _log_trials(client, exp_id, parent_id, trials, metric)
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
            ens_trial = _Trial(
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
            _log_trials(client, exp_id, parent_id, [ens_trial], metric)
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
        leaderboard = _leaderboard(rows, sign)

        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "leaderboard.csv"
            leaderboard.to_csv(csv, index=False)
            client.log_artifact(winner.run_id, str(csv))
            client.log_artifact(parent_id, str(csv))
        if log_model:
            _log_model(client, winner.run_id, best_model, X, task)
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
