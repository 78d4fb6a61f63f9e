"""Replay a labelled history through Autopilot's policy, offline, and compare strategies.

``autopilot simulate`` answers the question a user has before trusting the
autopilot with production: *on my own history, would it have done better than
what I do now, and at what cost?* It replays the rows in time order and, in
one run, scores three strategies on the same rows:

``never``
    The first model, trained on the warm-up rows, serves everything.
``periodic``
    Retrain every ``every`` rows on the most recent rows and swap the new
    model in at once (no gate, no canary): the usual cron job.
``autopilot``
    Each tick (``tick_rows`` rows) the drift report of the recent window
    against the champion's reference profile and the champion's labelled
    performance go into :func:`autopilot.policy.decide`, exactly as the
    controller does it; its decisions are applied: retrain, offline gate on
    fresh labelled rows, canary with weighted routing of rows between
    champion and challenger, ramp, promote, roll back.

Scores are *prequential*: each row is predicted by the model that would have
served it before its label is used for anything, so no strategy sees the
future. For each strategy the result holds the prequential metric (accuracy
for classification, R² for regression), the number of retrains, the seconds
spent training, and the rows it took to recover after each detected change.

Training path
-------------
The live system trains with AutoML on Ray Tune (``autopilot.training.pipeline``).
Replaying a long history with a Tune search per retrain would take hours, so
the simulator trains in process through the *same family builder*
(:func:`autopilot.training.families.build_pipeline`, with the same
preprocessing): every family in ``families`` is fitted with its default
hyperparameters on the first 80 % of the training window (time order), the
best on the last 20 % wins and is refitted on the whole window. Periodic and
Autopilot use the same trainer, so their compute is compared like for like.

Time
----
With a time column, the policy's clock (guards, canary durations, schedules)
is the column's time in seconds; without one, row ``i`` happens at
``i * seconds_per_row`` seconds.

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=3000)
>>> frame = pd.DataFrame({"x": x, "y": (x > 0).astype(int)})
>>> res = simulate(frame, "y", SimulationSettings(every=1000, strategies=("never", "periodic")))
>>> [s.name for s in res.strategies], res.strategies[1].retrains
(['never', 'periodic'], 2)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from autopilot.config import AutopilotConfig, PolicyConfig, load_config
from autopilot.errors import AutopilotError, DataError
from autopilot.schema import FeatureSchema
from autopilot.training.data import coerce_features, infer_schema

__all__ = [
    "Recovery",
    "SimulationResult",
    "SimulationSettings",
    "StrategyResult",
    "add_arguments",
    "format_table",
    "main",
    "run_cli",
    "simulate",
]

STRATEGIES = ("never", "periodic", "autopilot")
#: Actions that change nothing and are not listed as decisions.
_QUIET = frozenset({"none", "hold"})


@dataclass(frozen=True)
class SimulationSettings:
    """Knobs of the replay (the policy itself comes from ``PolicyConfig``).

    Attributes
    ----------
    warmup_rows : int or None
        Rows the first model trains on (never scored). None: 20 % of the rows,
        between 200 and 5,000.
    tick_rows : int
        Rows between two controller ticks.
    train_rows : int
        Retrains use the most recent ``train_rows`` labelled rows.
    window_rows : int
        Rows in the drift and performance window the policy looks at.
    every : int or None
        Periodic strategy's interval in rows. None: a tenth of the scored rows.
    label_delay : int
        Labels arrive this many rows after their prediction.
    seconds_per_row : float
        Clock without a time column.
    families : tuple of str
        Model families the trainer tries (see module docstring).
    recover_rows : int
        Window used to judge recovery after a change.
    recover_tolerance : float
        A strategy has recovered when its metric over a ``recover_rows`` window
        is within this of its level before the change.
    strategies : tuple of str
        Which of ``never``, ``periodic``, ``autopilot`` to run.
    seed : int
        Seeds routing and model randomness.
    """

    warmup_rows: int | None = None
    tick_rows: int = 200
    train_rows: int = 2000
    window_rows: int = 1000
    every: int | None = None
    label_delay: int = 0
    seconds_per_row: float = 1.0
    families: tuple[str, ...] = ("logistic", "hist_gb")
    recover_rows: int = 500
    recover_tolerance: float = 0.02
    strategies: tuple[str, ...] = STRATEGIES
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("tick_rows", "train_rows", "window_rows", "recover_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.every is not None and self.every < 1:
            raise ValueError(f"every must be >= 1 row, got {self.every!r}")
        if self.label_delay < 0:
            raise ValueError(f"label_delay must be >= 0, got {self.label_delay!r}")
        if self.seconds_per_row <= 0:
            raise ValueError(f"seconds_per_row must be > 0, got {self.seconds_per_row!r}")
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise ValueError(f"strategies {list(self.strategies)!r}: choose from {STRATEGIES}")
        if not self.families:
            raise ValueError("families must name at least one model family")


@dataclass(frozen=True)
class Recovery:
    """How a strategy fared after one detected change.

    ``rows_to_recover`` counts from the change to the end of the first
    ``recover_rows`` window (wholly after it) whose metric is back within the
    tolerance of the level before the change; None if it never got back.
    """

    change_row: int
    before: float
    rows_to_recover: int | None
    seconds_to_recover: float | None


@dataclass(frozen=True)
class StrategyResult:
    """One strategy's outcome over the replay."""

    name: str
    metric: str
    score: float
    retrains: int
    train_seconds: float
    recoveries: tuple[Recovery, ...]
    decisions: tuple[dict[str, Any], ...]
    curve: tuple[tuple[int, float], ...]  # (row, metric over the tick ending there)
    promotions: int = 0
    rollbacks: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["recoveries"] = [asdict(r) for r in self.recoveries]
        out["curve"] = [list(p) for p in self.curve]
        out["decisions"] = list(self.decisions)
        return out


@dataclass(frozen=True)
class SimulationResult:
    """All strategies on one history."""

    rows: int
    scored_rows: int
    warmup_rows: int
    target: str
    task: str
    metric: str
    change_rows: tuple[int, ...]
    change_source: str  # "given" (known change points) or "detected" (by the autopilot)
    strategies: tuple[StrategyResult, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def by_name(self, name: str) -> StrategyResult:
        for s in self.strategies:
            if s.name == name:
                return s
        raise KeyError(f"no strategy {name!r}; ran {[s.name for s in self.strategies]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "scored_rows": self.scored_rows,
            "warmup_rows": self.warmup_rows,
            "target": self.target,
            "task": self.task,
            "metric": self.metric,
            "change_rows": list(self.change_rows),
            "change_source": self.change_source,
            "settings": self.settings,
            "strategies": [s.to_dict() for s in self.strategies],
        }


# --------------------------------------------------------------------------- models


@dataclass
class _Model:
    version: str
    pipe: Any
    family: str
    baseline: float  # validation metric at training time
    train_end: int  # first row after its training window
    reference: Any  # stats.ReferenceProfile of its training features, or None
    reference_from: int = 0  # first row of a re-baselined reference's window


class _Trainer:
    """The documented cheap training path: default configs of a few families, time holdout."""

    def __init__(self, schema: FeatureSchema, families: Sequence[str], metric: str, seed: int):
        from autopilot.training.families import build_pipeline

        self.schema = schema
        self.families = tuple(families)
        self.metric = metric
        self.seed = seed
        self._build = build_pipeline
        self.seconds = 0.0

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> tuple[Any, str, float]:
        """Return (fitted pipeline, family, validation score); adds to ``seconds``."""
        t0 = time.perf_counter()
        # one BLAS/OpenMP thread: a replay is sequential, and on a shared box extra
        # threads only contend (hist_gb's fit was 50x slower unpinned under load)
        with threadpool_limits(1):
            out = self._fit(X, y)
        self.seconds += time.perf_counter() - t0
        return out

    def _fit(self, X: pd.DataFrame, y: np.ndarray) -> tuple[Any, str, float]:
        n = len(y)
        cut = max(1, int(n * 0.8))
        best: tuple[float, str] | None = None
        fits_ok = False
        if len(self.families) > 1 and n - cut >= 20 and _fittable(y[:cut], self.schema):
            for fam in self.families:
                pipe = self._build(fam, {}, self.schema, random_state=self.seed)
                try:
                    pipe.fit(X.iloc[:cut], y[:cut])
                except ValueError:
                    continue  # a family that cannot fit this window is skipped
                fits_ok = True
                s = _metric(self.metric, y[cut:], pipe.predict(X.iloc[cut:]))
                if best is None or s > best[0]:
                    best = (s, fam)
        family = best[1] if best is not None and fits_ok else self.families[0]
        pipe = self._build(family, {}, self.schema, random_state=self.seed)
        pipe.fit(X, y)
        if best is not None:
            baseline = best[0]
        else:
            baseline = _metric(self.metric, y, pipe.predict(X))
        return pipe, family, baseline


def _fittable(y: np.ndarray, schema: FeatureSchema) -> bool:
    return schema.task == "regression" or len(pd.unique(y)) >= 2


def _metric(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if len(y_true) == 0:
        return float("nan")
    if name == "accuracy":
        return float(np.mean(_correct(y_true, y_pred)))
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _correct(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    # labels may come back as numbers from one model and strings from another source;
    # compare as text so "1" and 1 agree
    return np.asarray([str(a) == str(b) for a, b in zip(y_true, y_pred, strict=True)], dtype=float)


# ------------------------------------------------------------------------ data prep


def _prepare(
    frame: pd.DataFrame, target: str, time_column: str | None, cfg: AutopilotConfig | None
) -> tuple[pd.DataFrame, np.ndarray, FeatureSchema, np.ndarray]:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is missing; columns are {list(frame.columns)}")
    if time_column is not None:
        if time_column not in frame.columns:
            raise DataError(f"time column {time_column!r} is missing")
        t_raw = frame[time_column]
        if pd.api.types.is_numeric_dtype(t_raw):
            t = pd.to_numeric(t_raw).to_numpy(dtype=float)
        else:
            try:
                parsed = pd.to_datetime(t_raw, utc=True)
            except (ValueError, TypeError) as exc:
                raise DataError(
                    f"time column {time_column!r} is neither numbers nor dates"
                ) from exc
            t = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
        if np.isnan(t).any():
            raise DataError(f"time column {time_column!r} has missing values")
        order = np.argsort(t, kind="stable")
        frame = frame.iloc[order].reset_index(drop=True)
        t = t[order]
    else:
        t = np.arange(len(frame), dtype=float)
    labelled = frame[target].notna().to_numpy()
    if not labelled.all():
        # an unlabelled row cannot be scored or learned from in a replay
        frame = frame[labelled].reset_index(drop=True)
        t = t[labelled]
    if len(frame) == 0:
        raise DataError(f"target column {target!r} has no labels")
    features = cfg.data.features if cfg is not None else None
    task = cfg.task if cfg is not None else None
    schema = infer_schema(frame, target, features=features, task=task, time_column=time_column)
    y_series = frame[target]
    if schema.task == "classification":
        if len(schema.classes) < 2:
            raise DataError(
                f"target {target!r} has a single class {list(schema.classes)}: nothing to predict"
            )
        y = y_series.to_numpy()
    else:
        y_num = pd.to_numeric(y_series, errors="coerce")
        if y_num.isna().any():
            bad = y_series[y_num.isna()].astype(str).tolist()[:3]
            raise DataError(f"regression target {target!r} has unparseable values, e.g. {bad}")
        y = y_num.to_numpy(dtype=float)
        if np.nanstd(y) == 0:
            raise DataError(f"regression target {target!r} is constant: nothing to predict")
    X = coerce_features(frame, schema)
    return X, y, schema, t


# --------------------------------------------------------------------------- replay


class _Replay:
    """Shared state of one replay: data, trainer, and the scoring of served rows."""

    def __init__(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        t: np.ndarray,
        schema: FeatureSchema,
        settings: SimulationSettings,
        policy: PolicyConfig,
        warmup: int,
        model_name: str,
    ) -> None:
        self.X, self.y, self.t = X, y, t
        self.schema = schema
        self.s = settings
        self.policy = policy
        self.warmup = warmup
        self.model_name = model_name
        self.metric = "accuracy" if schema.task == "classification" else "r2"

    def clock(self, row: int) -> float:
        return float(self.t[min(row, len(self.t) - 1)])

    def train(self, trainer: _Trainer, end: int, version: str, since: int = 0) -> _Model:
        start = max(0, since, end - self.s.train_rows)
        Xw, yw = self.X.iloc[start:end], self.y[start:end]
        if not _fittable(yw, self.schema):
            # a window holding one class only: widen it back to the start of history
            start = 0
            Xw, yw = self.X.iloc[:end], self.y[:end]
        pipe, family, baseline = trainer.fit(Xw, yw)
        return _Model(version, pipe, family, baseline, end, _profile(Xw, self.schema))

    def first_row_at(self, t: float) -> int:
        """Index of the first row whose clock is at or after ``t``."""
        return int(np.searchsorted(self.t, t, side="left"))

    def per_row(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Per-row online score: 1/0 correct, or minus squared error for regression."""
        if self.metric == "accuracy":
            return _correct(y_true, y_pred)
        return -((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2)

    def summarise(self, preds: np.ndarray) -> tuple[float, tuple[tuple[int, float], ...]]:
        ys = self.y[self.warmup:]
        ps = preds[self.warmup:]
        total = _metric(self.metric, ys, ps)
        curve = []
        for start in range(self.warmup, len(self.y), self.s.tick_rows):
            stop = min(start + self.s.tick_rows, len(self.y))
            curve.append((stop, _metric(self.metric, self.y[start:stop], preds[start:stop])))
        return total, tuple(curve)


def _profile(X: pd.DataFrame, schema: FeatureSchema) -> Any:
    from autopilot.stats import ReferenceProfile

    return ReferenceProfile.fit(X, {c.name: c.kind for c in schema.columns})


def _run_static(replay: _Replay, every: int | None, name: str) -> StrategyResult:
    trainer = _Trainer(replay.schema, replay.s.families, replay.metric, replay.s.seed)
    n = len(replay.y)
    model = replay.train(trainer, replay.warmup, "1")
    initial_seconds = trainer.seconds
    preds = np.empty(n, dtype=object if replay.metric == "accuracy" else float)
    retrains = 0
    decisions: list[dict[str, Any]] = []
    row = replay.warmup
    while row < n:
        stop = min(n, row + every) if every else n
        preds[row:stop] = model.pipe.predict(replay.X.iloc[row:stop])
        row = stop
        if every and row < n:
            # labels up to row - label_delay are known; train on the most recent of them
            end = max(1, row - replay.s.label_delay)
            model = replay.train(trainer, end, str(retrains + 2))
            retrains += 1
            decisions.append({"row": row, "t": replay.clock(row), "action": "retrain",
                              "reasons": [f"schedule: every {every} rows"],
                              "version": model.version})
    score, curve = replay.summarise(preds)
    return StrategyResult(
        name=name, metric=replay.metric, score=score, retrains=retrains,
        train_seconds=trainer.seconds - initial_seconds, recoveries=(),
        decisions=tuple(decisions), curve=curve,
    )


class _ErrorWatch:
    """The monitor's ADWIN on the champion's labelled error stream, replayed.

    ``alarm`` gives where the last change it found was located, as the
    controller reads it (``Evidence.error_change``); ``reset`` starts afresh, for
    a new champion or once a retrain acted on the change.
    """

    def __init__(self, version: str, start: int, *, keep: int, regression: bool) -> None:
        self.fed = start  # rows before this one were fed (or were not the champion's)
        self.keep = keep  # the change is recent: locate it among the newest rows only
        self.regression = regression
        self.reset(version)

    def reset(self, version: str | None = None) -> None:
        from autopilot.stats import ADWIN

        if version is not None:
            self.version = version
        self.adwin = ADWIN()
        self.rows: list[int] = []  # the champion's rows fed since the last reset
        self.change: tuple[int, float, float] | None = None  # (first row after, before, after)

    def feed(self, served_by: np.ndarray, row_score: np.ndarray, upto: int) -> None:
        """Feed the champion's labelled rows up to ``upto`` (scores: higher is better)."""
        from autopilot.stats import locate_shift

        for i in range(self.fed, upto):
            if served_by[i] != self.version:
                continue
            self.rows.append(i)
            error = -row_score[i] if self.regression else 1.0 - row_score[i]
            if self.adwin.update(error):
                rows = np.asarray(self.rows[-self.keep:])
                cp = locate_shift(row_score[rows])
                self.change = (int(rows[cp.index]), cp.mean_before, cp.mean_after)
                self.rows.clear()
        self.fed = max(self.fed, upto)

    def alarm(self, clock: Callable[[int], float], known: int) -> Any:
        """The located change as a ``StreamAlarm`` (``known`` rows labelled), or None."""
        from autopilot.policy.types import StreamAlarm

        if self.change is None:
            return None
        row, before, after = self.change
        return StreamAlarm("adwin", clock(row), known - row, before, after)


def _run_autopilot(replay: _Replay) -> StrategyResult:
    from autopilot.policy import decide, next_state
    from autopilot.policy.triggers import locate_window_change
    from autopilot.policy.types import ArmStats, Evidence, GateEvidence, ModelState

    s = replay.s
    n = len(replay.y)
    rng = np.random.default_rng(s.seed)
    trainer = _Trainer(replay.schema, s.families, replay.metric, s.seed)
    models: dict[str, _Model] = {"1": replay.train(trainer, replay.warmup, "1")}
    initial_seconds = trainer.seconds
    state = ModelState(model=replay.model_name, champion="1", weights={"1": 1.0},
                       mode=replay.policy.canary.mode)
    preds = np.empty(n, dtype=object if replay.metric == "accuracy" else float)
    served_by = np.empty(n, dtype=object)
    row_score = np.zeros(n, dtype=float)
    retrains = promotions = rollbacks = 0
    decisions: list[dict[str, Any]] = []
    pending: dict[str, Any] = {}  # training outcome to report at the next tick
    canary_start_row = 0
    next_version = 2

    shadow_score: dict[str, np.ndarray] = {}  # per-row score of mirrored (shadow) traffic
    watch = _ErrorWatch("1", replay.warmup, keep=5 * s.window_rows,
                        regression=replay.metric != "accuracy")

    def arm_stats(version: str, upto: int) -> ArmStats:
        lo = canary_start_row
        labelled_upto = max(lo, upto - s.label_delay)
        if version in state.shadow and version in shadow_score:
            mirrored = shadow_score[version]
            served = ~np.isnan(mirrored[lo:upto])
            lab = ~np.isnan(mirrored[lo:labelled_upto])
            sc = mirrored[lo:labelled_upto][lab]
        else:
            served = served_by[lo:upto] == version
            lab = served_by[lo:labelled_upto] == version
            sc = row_score[lo:labelled_upto][lab]
        return ArmStats(
            version=version, requests=int(served.sum()), successes=float(sc.sum()),
            labelled=int(lab.sum()), errors=0,
            score_sumsq=None if replay.metric == "accuracy" else float((sc ** 2).sum()),
        )

    row = replay.warmup
    while row < n:
        stop = min(n, row + s.tick_rows)
        # -- serve this tick's rows by the current weights (a row is one request)
        versions = [v for v, w in state.weights.items() if w > 0 and v in models]
        if not versions:
            versions = [state.champion or "1"]
        w = np.array([state.weights.get(v, 0.0) for v in versions], dtype=float)
        w = w / w.sum() if w.sum() > 0 else np.full(len(versions), 1.0 / len(versions))
        choice = rng.choice(len(versions), size=stop - row, p=w)
        Xt = replay.X.iloc[row:stop]
        for k, v in enumerate(versions):
            mask = choice == k
            if mask.any():
                preds[row:stop][mask] = models[v].pipe.predict(Xt[mask])
        served_by[row:stop] = np.asarray(versions, dtype=object)[choice]
        # shadow arms see a copy of every request but never answer
        for v in state.shadow:
            if v in models:
                mirrored = shadow_score.setdefault(v, np.full(n, np.nan))
                p = models[v].pipe.predict(Xt)
                mirrored[row:stop] = replay.per_row(replay.y[row:stop], p)
        row_score[row:stop] = replay.per_row(replay.y[row:stop], preds[row:stop])
        row = stop
        now = replay.clock(row - 1)

        # -- evidence, as the controller gathers it
        champ = models[state.champion or "1"]
        known = max(0, row - s.label_delay)
        lo = max(replay.warmup, known - s.window_rows)
        mine = served_by[lo:known] == champ.version
        metric_value = None
        if mine.sum() > 0:
            metric_value = _metric(replay.metric, replay.y[lo:known][mine],
                                   preds[lo:known][mine])
        # after a re-baseline only rows from the new reference's own window on are compared
        dlo = max(replay.warmup, row - s.window_rows, champ.reference_from)
        drift = champ.reference.compare(replay.X.iloc[dlo:row])
        if watch.version != champ.version:  # a new champion: its own detector, from scratch
            watch.reset(champ.version)
        watch.feed(served_by, row_score, known)
        error_change = watch.alarm(replay.clock, known)

        def labelled_since(at: float, known: int = known) -> int:
            return known - replay.first_row_at(at)

        # the score users got (whichever version answered) over the monitor's window, then
        # over the retrain window
        window_changes = []
        for wlo in (lo, max(replay.warmup, known - s.train_rows)):
            found = locate_window_change(row_score[wlo:known], replay.t[wlo:known],
                                         labelled_since)
            if found is not None:
                window_changes.append(found)
        ev_kwargs: dict[str, Any] = {
            "model": replay.model_name, "now": now,
            "drift_severity": drift.severity,
            "drift_share": float(getattr(drift, "share_drifted", 0.0)),
            "drift_rows": int(row - dlo),
            "drift_features": _drift_scores(drift),
            "metric_name": replay.metric,
            "metric_value": metric_value,
            "metric_labels": int(mine.sum()),
            "baseline_value": champ.baseline,
            "error_change": error_change,
            "window_changes": tuple(window_changes),
            "rows_since_retry": None if state.retry_since is None else labelled_since(
                state.retry_since),
            "new_labels": int(max(0, known - champ.train_end)),
            "model_age_s": now - replay.clock(champ.train_end - 1),
            "running_trainings": 1 if state.phase == "training" else 0,
        }
        if state.phase == "training" and pending:
            ev_kwargs.update(pending)
            pending = {}
        if state.phase == "validating" and state.challenger in models:
            cand = models[state.challenger]
            glo = cand.train_end
            if known > glo:
                Xg = replay.X.iloc[glo:known]
                ev_kwargs["gate"] = GateEvidence(
                    y_true=np.asarray(replay.y[glo:known]),
                    champion_pred=np.asarray(champ.pipe.predict(Xg)),
                    candidate_pred=np.asarray(cand.pipe.predict(Xg)),
                    metric=replay.metric,
                )
        if state.phase == "canary":
            arms = {v: arm_stats(v, row) for v in {state.champion, state.challenger} if v}
            ev_kwargs["arms"] = arms
        evidence = Evidence(**ev_kwargs)

        decision = decide(state, evidence, replay.policy)
        prev = state
        state = next_state(state, decision, evidence)
        act = decision.action
        # -- apply
        if act == "retrain":
            version = str(next_version)
            next_version += 1
            since = 0 if decision.train_since is None else replay.first_row_at(
                decision.train_since)
            watch.reset()  # acted on: the controller resets the detectors when it retrains
            try:
                models[version] = replay.train(trainer, known, version, since)
                retrains += 1
                pending = {"training_status": "succeeded", "candidate": version}
            except (ValueError, AutopilotError) as exc:
                pending = {"training_status": "failed", "training_error": str(exc)}
        elif act in ("archive_candidate", "accept_drift") and decision.rebaseline:
            # The champion held up on the drifted window: accept the drift (the controller's
            # MonitorStore.rebaseline), on the same window the drift report just compared.
            # Newest drift.min_rows rows only: the window behind the drift report still holds
            # rows from before the shift, and a reference fitted on them fires again.
            rlo = max(dlo, row - replay.policy.triggers.drift.min_rows)
            champ.reference = _profile(replay.X.iloc[rlo:row], replay.schema)
            champ.reference_from = rlo
            if decision.baseline is not None:
                champ.baseline = decision.baseline
        elif act == "start_canary":
            canary_start_row = row
            gate_value = decision.numbers.get("gate_candidate_value")
            if gate_value is not None and decision.version in models:
                # its level on rows it never saw caps its own baseline (Decision.baseline)
                cand = models[decision.version]
                cand.baseline = min(cand.baseline, gate_value)  # accuracy and r2: higher is better
        elif act == "promote":
            promotions += 1
            if decision.baseline is not None and decision.version in models:
                new_champ = models[decision.version]
                new_champ.baseline = max(new_champ.baseline, decision.baseline)
        elif act == "rollback":
            rollbacks += 1
        if act not in _QUIET:
            decisions.append({
                "row": row, "t": now, "action": act, "reasons": list(decision.reasons),
                "version": decision.version, "trigger": decision.trigger,
                "rebaseline": decision.rebaseline,
                "weights": None if decision.weights is None else dict(decision.weights),
                "phase_before": prev.phase, "phase_after": state.phase,
            })
        # forget models nobody routes to any more, so memory stays flat on long histories
        live = {state.champion, state.challenger, state.fallback, *state.weights,
                pending.get("candidate")}
        for v in [v for v in models if v not in live]:
            del models[v]

    score, curve = replay.summarise(preds)
    return StrategyResult(
        name="autopilot", metric=replay.metric, score=score, retrains=retrains,
        train_seconds=trainer.seconds - initial_seconds, recoveries=(),
        decisions=tuple(decisions), curve=curve, promotions=promotions, rollbacks=rollbacks,
    )


def _drift_scores(report: Any) -> dict[str, float]:
    try:
        frame = report.to_frame()
    except AttributeError:
        return {}
    if "feature" not in frame.columns or "statistic" not in frame.columns:
        return {}
    return {str(f): float(v) for f, v in zip(frame["feature"], frame["statistic"], strict=True)}


def _recoveries(
    result: StrategyResult, changes: Sequence[int], replay: _Replay
) -> tuple[Recovery, ...]:
    return tuple(_recovery_at(result, c, replay) for c in changes)


def _recovery_at(result: StrategyResult, change: int, replay: _Replay) -> Recovery:
    curve = np.array(result.curve, dtype=float)  # (row_end, metric)
    win = replay.s.recover_rows
    before_mask = (curve[:, 0] <= change) & (curve[:, 0] > change - win)
    if not before_mask.any():
        before_mask = curve[:, 0] <= change
    before = float(np.nanmean(curve[before_mask, 1])) if before_mask.any() else float("nan")
    if math.isnan(before):
        return Recovery(change, before, None, None)
    ticks = max(1, int(round(win / replay.s.tick_rows)))
    after = curve[curve[:, 0] > change]
    for i in range(len(after) - ticks + 1):
        window = after[i:i + ticks]
        start_row = window[0, 0] - replay.s.tick_rows
        if start_row < change:
            continue  # the window must lie wholly after the change
        if float(np.nanmean(window[:, 1])) >= before - replay.s.recover_tolerance:
            end = int(window[-1, 0])
            return Recovery(change, before, end - change,
                            replay.clock(end - 1) - replay.clock(change))
    return Recovery(change, before, None, None)


# ------------------------------------------------------------------------------ API


def simulate(
    frame: pd.DataFrame,
    target: str,
    settings: SimulationSettings | None = None,
    *,
    time_column: str | None = None,
    config: AutopilotConfig | None = None,
    policy: PolicyConfig | None = None,
    change_rows: Sequence[int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Replay ``frame`` in time order and compare never / periodic / autopilot.

    Parameters
    ----------
    frame : pandas.DataFrame
        Labelled history: features, ``target`` and optionally ``time_column``.
        Column kinds are inferred (numeric, categorical, binary); missing
        feature values are imputed by the pipelines; rows without a label are
        dropped.
    target : str
        Target column.
    settings : SimulationSettings, optional
        Replay knobs.
    time_column : str, optional
        Rows are sorted by it and it drives the policy's clock.
    config : AutopilotConfig, optional
        A user's config: its feature lists, task and policy are used.
    policy : PolicyConfig, optional
        Overrides ``config.policy`` (defaults when neither is given).
    change_rows : sequence of int, optional
        Known change points (row positions after sorting). Recovery is
        measured after these; when absent, after each retrain the autopilot
        decided.
    progress : callable, optional
        Called with a short message as each strategy starts.

    Returns
    -------
    SimulationResult

    Raises
    ------
    DataError
        The target is missing, has one class or is constant, a numeric
        feature holds unparseable values, or there are too few rows.
    """
    settings = settings or SimulationSettings()
    if policy is None:
        policy = config.policy if config is not None else PolicyConfig()
    X, y, schema, t = _prepare(frame, target, time_column, config)
    if time_column is None:
        t = t * settings.seconds_per_row
    n = len(y)
    warmup = settings.warmup_rows
    if warmup is None:
        warmup = int(min(5000, max(200, 0.2 * n)))
    if n < warmup + settings.tick_rows:
        raise DataError(
            f"{n} labelled rows are too few: need warm-up ({warmup}) plus one tick "
            f"({settings.tick_rows})"
        )
    if not _fittable(y[:warmup], schema):
        raise DataError(
            f"the first {warmup} rows of target {target!r} hold a single class; "
            "lower warmup_rows cannot help, raise it"
        )
    every = settings.every or max(settings.tick_rows, (n - warmup) // 10)
    settings = replace(settings, every=every, warmup_rows=warmup)
    name = config.name if config is not None else "simulated"
    replay = _Replay(X, y, t, schema, settings, policy, warmup, name)

    results: list[StrategyResult] = []
    for strat in settings.strategies:
        if progress is not None:
            progress(f"replaying {n - warmup} rows with strategy {strat!r}")
        if strat == "never":
            results.append(_run_static(replay, None, "never"))
        elif strat == "periodic":
            results.append(_run_static(replay, every, "periodic"))
        else:
            results.append(_run_autopilot(replay))

    if change_rows is not None:
        changes = tuple(int(c) for c in change_rows if warmup <= int(c) < n)
        source = "given"
    else:
        auto = next((r for r in results if r.name == "autopilot"), None)
        changes = tuple(
            int(d["row"]) for d in (auto.decisions if auto else ()) if d["action"] == "retrain"
        )
        source = "detected"
    results = [replace(r, recoveries=_recoveries(r, changes, replay)) for r in results]
    return SimulationResult(
        rows=n, scored_rows=n - warmup, warmup_rows=warmup, target=target, task=schema.task,
        metric=replay.metric, change_rows=changes, change_source=source,
        strategies=tuple(results), settings=asdict(settings),
    )


def format_table(result: SimulationResult) -> str:
    """The terminal table: one line per strategy."""
    head = (f"{'strategy':<10} {result.metric:>10} {'retrains':>8} {'train s':>8} "
            f"{'promoted':>8} {'rolled back':>11} {'recovery rows (per change)':<30}")
    lines = [
        f"{result.scored_rows} rows scored prequentially after {result.warmup_rows} warm-up rows; "
        f"task {result.task}; changes {result.change_source}: {list(result.change_rows)}",
        head,
        "-" * len(head),
    ]
    for s in result.strategies:
        rec = ", ".join("-" if r.rows_to_recover is None else str(r.rows_to_recover)
                        for r in s.recoveries) or "-"
        lines.append(
            f"{s.name:<10} {s.score:>10.4f} {s.retrains:>8d} {s.train_seconds:>8.2f} "
            f"{s.promotions:>8d} {s.rollbacks:>11d} {rec:<30}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``simulate``'s options to ``parser`` (used by ``autopilot simulate``)."""
    parser.add_argument("--data", required=True, help="labelled history (CSV or Parquet)")
    parser.add_argument("--target", required=True, help="target column")
    parser.add_argument("--time-column", default=None, help="time column (sorts and clocks)")
    parser.add_argument("--config", default=None, help="autopilot.yaml (policy, features, task)")
    parser.add_argument("--every", type=int, default=None,
                        help="periodic strategy's retrain interval in rows")
    parser.add_argument("--tick-rows", type=int, default=200, help="rows per controller tick")
    parser.add_argument("--train-rows", type=int, default=None,
                        help="rows each retrain uses (default: the config's "
                             "controller.retrain_rows, else 2000)")
    parser.add_argument("--warmup-rows", type=int, default=None, help="rows the first model uses")
    parser.add_argument("--label-delay", type=int, default=0, help="rows before a label arrives")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", default=None, help="write the result here")
    parser.add_argument("--report", default=None, help="write an HTML report (and PNG) here")
    return parser


def _read_table(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file {path!r} does not exist")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read data file {path!r}: {exc}") from exc


def simulation_report(result: SimulationResult, path: str | Path) -> Any:
    """Write the simulation as an HTML report (metric per strategy, decisions)."""
    from autopilot.report import ReportData, write_report

    metric_rows = [
        {"t": row, "version": s.name, "value": value}
        for s in result.strategies for row, value in s.curve
    ]
    auto = next((s for s in result.strategies if s.name == "autopilot"), None)
    decisions = [{"t": d["row"], "action": d["action"], "reasons": d["reasons"],
                  "version": d.get("version")} for d in (auto.decisions if auto else ())]
    weights = [
        {"t": d["row"], "version": v, "weight": w}
        for d in (auto.decisions if auto else ()) if d.get("weights")
        for v, w in d["weights"].items()
    ]
    summary = {f"{s.name}: {result.metric}": s.score for s in result.strategies}
    summary.update({f"{s.name}: retrains": s.retrains for s in result.strategies})
    data = ReportData.from_records(
        "simulation", metric=metric_rows, weights=weights, decisions=decisions,
        metric_name=result.metric, summary=summary,
    )
    return write_report(data, path)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``autopilot simulate`` from parsed arguments; returns the exit code."""
    cfg = load_config(args.config) if args.config else None
    frame = _read_table(args.data)
    train_rows = args.train_rows
    if train_rows is None:
        train_rows = cfg.controller.retrain_rows if cfg is not None else 2000
    settings = SimulationSettings(
        warmup_rows=args.warmup_rows, tick_rows=args.tick_rows, train_rows=train_rows,
        every=args.every, label_delay=args.label_delay, seed=args.seed,
    )
    result = simulate(
        frame, args.target, settings, time_column=args.time_column, config=cfg,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(format_table(result))
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_dict(), indent=2, default=_json_default))
        print(f"wrote {out}")
    if args.report:
        files = simulation_report(result, args.report)
        print(f"wrote {files.html} and {files.png}")
    return 0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return dict(obj)
    return str(obj)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m autopilot.simulate``: the same as ``autopilot simulate``."""
    parser = add_arguments(argparse.ArgumentParser(prog="autopilot simulate",
                                                   description=__doc__.split("\n")[0]))
    args = parser.parse_args(argv)
    try:
        return run_cli(args)
    except AutopilotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
