"""The Monitor: prediction log, late labels, recent windows, and the questions the controller asks.

Two layers, as everywhere in Autopilot:

:class:`MonitorStore`
    Plain Python, unit-testable without Ray. Every record and label is
    written to SQLite (WAL mode) *before* it is acknowledged, so a restart
    loses nothing that was acknowledged; recent rows per model version are
    also kept in memory (bounded deques) for fast window questions.
:class:`MonitorActor` / :func:`start_monitor`
    The Ray actor, named ``"autopilot-monitor"`` in namespace ``"autopilot"``,
    a thin wrapper that forwards to a store.

Records and labels arrive as plain dicts (:class:`autopilot.records.PredictionRecord`
and :class:`autopilot.records.Label` ``to_dict()``), one record per predicted
row. Labels join predictions by ``(model, request_id)`` whichever arrives
first: a label waits in the ``labels`` table until its prediction shows up.
A record's per-row *score* (1/0 correct for classifiers, minus the absolute
error for regressors) is stored when the join happens, so per-arm canary
statistics are one SQL aggregate.

What the store answers
----------------------
- :meth:`~MonitorStore.drift_report`: the current feature window of a version
  against its stored reference profile (``stats.ReferenceProfile``);
  :meth:`~MonitorStore.rebaseline` re-fits that profile on the recent window
  (the drift is accepted).
- :meth:`~MonitorStore.performance`: labelled metrics of a version's window
  (the task's built-ins and any registered custom metric).
- :meth:`~MonitorStore.estimated_accuracy`: CBPE-style accuracy estimate from
  the calibrated probabilities of rows still waiting for labels.
- :meth:`~MonitorStore.prediction_distribution`, :meth:`~MonitorStore.series`
  (latency and error series per time bucket), :meth:`~MonitorStore.traffic`,
  :meth:`~MonitorStore.arm_stats` (cumulative canary counts since a time),
  :meth:`~MonitorStore.detectors` (Page-Hinkley, ADWIN and DDM on each
  version's error stream), :meth:`~MonitorStore.feature_alarms` (ADWIN on each
  numeric input feature of a model's served rows, :class:`FeatureWatch`) and
  :meth:`~MonitorStore.anomalies` (latency and error-rate anomalies).
- :meth:`~MonitorStore.labelled_frame`: labelled rows as a DataFrame, for
  retraining data windows and the offline gate.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autopilot.errors import ControlError

__all__ = [
    "MONITOR_ACTOR",
    "NAMESPACE",
    "DetectorState",
    "FeatureWatch",
    "MonitorProxy",
    "MonitorStore",
    "SeriesPoint",
    "get_monitor",
    "start_monitor",
]

NAMESPACE = "autopilot"
MONITOR_ACTOR = "autopilot-monitor"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    ts REAL NOT NULL,
    features TEXT NOT NULL,
    prediction TEXT,
    proba TEXT,
    latency_ms REAL NOT NULL,
    error TEXT,
    cache_hit INTEGER NOT NULL,
    caller_key TEXT,
    shadow INTEGER NOT NULL,
    label TEXT,
    score REAL
);
CREATE INDEX IF NOT EXISTS predictions_mvt ON predictions (model, version, ts);
CREATE INDEX IF NOT EXISTS predictions_req ON predictions (model, request_id);
CREATE TABLE IF NOT EXISTS labels (
    model TEXT NOT NULL,
    request_id TEXT NOT NULL,
    label TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (model, request_id)
);
CREATE TABLE IF NOT EXISTS refs (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS ref_since (
    model TEXT NOT NULL, version TEXT NOT NULL, since REAL NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS replayed (
    path TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    model TEXT PRIMARY KEY,
    task TEXT,
    classes TEXT NOT NULL,
    target TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feature_watch (
    model TEXT PRIMARY KEY,
    since_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feature_alarms (
    model TEXT NOT NULL,
    feature TEXT NOT NULL,
    detector TEXT NOT NULL,
    version TEXT NOT NULL,
    ts REAL NOT NULL,
    n INTEGER NOT NULL,
    rows_after INTEGER NOT NULL,
    mean_before REAL NOT NULL,
    mean_after REAL NOT NULL,
    PRIMARY KEY (model, feature, detector)
);
"""

_RECORD_KEYS = ("request_id", "model", "version", "features", "latency_ms", "ts")


def _norm(value: Any) -> Any:
    """Canonical form for label/prediction comparison: 1, 1.0 and '1' all match."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass
class _Row:
    """One prediction held in a version's in-memory window (mutable: labels join later)."""

    request_id: str
    version: str
    ts: float
    features: dict[str, Any]
    prediction: Any
    proba: list[float] | None
    latency_ms: float
    error: bool
    shadow: bool
    label: Any = None
    score: float | None = None


@dataclass
class _ModelInfo:
    task: str | None = None  # None: inferred from the first labelled rows
    classes: tuple[str, ...] = ()
    target: str = "label"


@dataclass(frozen=True)
class SeriesPoint:
    """Requests, errors and latency in one time bucket of a version's window."""

    start: float
    requests: int
    errors: int
    error_rate: float
    p50_latency_ms: float
    p95_latency_ms: float


@dataclass(frozen=True)
class DetectorState:
    """Streaming detectors on one version's error stream (1 = wrong, 0 = right).

    ``fired`` names the detectors that signalled a change since the last
    :meth:`MonitorStore.reset_detectors`; ``first_at`` is the count of labelled
    rows at each first signal.
    """

    version: str
    n: int
    fired: tuple[str, ...]
    first_at: Mapping[str, int] = field(default_factory=dict)


class FeatureWatch:
    """ADWIN on each numeric input feature of one model's served rows, fed in arrival order.

    The monitor keeps one per model (:meth:`MonitorStore.feature_alarms`); the
    drift benchmark runs the same class. Inputs drift before labels arrive, so a
    change in a feature's mean is an early warning that needs no labels. Each
    detector is ``stats.ADWIN`` with its defaults (River 0.26's); after a
    detection it starts afresh by itself. Memory is O(features * log rows).

    Attributes
    ----------
    n : int
        Rows fed so far (a row missing some feature still counts).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> watch = FeatureWatch()
    >>> xs = np.concatenate([rng.normal(0, 1, 2000), rng.normal(2, 1, 500)])
    >>> hits = [(watch.n, f, c.rows_after, round(c.mean_before, 2), round(c.mean_after, 2))
    ...         for x in xs for f, c in watch.update({"x": x, "k": "a"}, ["x"])]
    >>> hits  # 48 rows after x's mean moved from 0 to 2; the kept 64 rows straddle the change
    [(2048, 'x', 64, -0.03, 1.51)]
    """

    detector = "adwin"

    def __init__(self) -> None:
        self.n = 0
        self._detectors: dict[str, Any] = {}

    def update(self, features: Mapping[str, Any], numeric: Iterable[str]
               ) -> list[tuple[str, Any]]:
        """Feed one row; returns ``(feature, stats.StreamChange)`` for each detector that fired.

        Features named in ``numeric`` whose value is missing, not a number or not
        finite are skipped (that detector sees no observation for this row).
        """
        from autopilot.stats import ADWIN

        self.n += 1
        fired = []
        for name in numeric:
            x = _as_float(features.get(name))
            if x is None:
                continue
            det = self._detectors.get(name)
            if det is None:
                det = self._detectors[name] = ADWIN()
            # last_change_ is read now: the detector's next update starts it afresh.
            if det.update(x):
                fired.append((name, det.last_change_))
        return fired


def _default_detectors() -> dict[str, Any]:
    from autopilot.stats import ADWIN, DDM, PageHinkley

    return {"page_hinkley": PageHinkley(), "adwin": ADWIN(), "ddm": DDM()}


class MonitorStore:
    """Durable prediction log with per-version windows, label joins and window questions.

    Parameters
    ----------
    path
        SQLite file (its folder is created) or ``":memory:"``.
    window_rows
        Rows kept in memory per (model, version).
    detector_factory
        Returns fresh streaming detectors ``{name: obj with update(x) -> bool}``
        for a version's error stream; defaults to ``stats`` Page-Hinkley, ADWIN
        and DDM.
    clock
        Time source for label timestamps when a label has none.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        window_rows: int = 5000,
        detector_factory: Callable[[], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_rows < 1:
            raise ValueError(f"window_rows must be >= 1, got {window_rows}")
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.window_rows = int(window_rows)
        self._detector_factory = detector_factory or _default_detectors
        self._clock = clock
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of this process (an actor restart): committed
        # transactions are in the WAL file before commit returns.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._conn.commit()
        self._windows: dict[tuple[str, str], deque[_Row]] = {}
        self._index: dict[tuple[str, str], list[_Row]] = {}  # (model, request_id) -> rows
        self._models: dict[str, _ModelInfo] = {}
        self._references: dict[tuple[str, str], Any] = {}
        self._detectors: dict[tuple[str, str], dict[str, Any]] = {}
        self._det_n: dict[tuple[str, str], int] = {}
        self._det_fired: dict[tuple[str, str], dict[str, int]] = {}
        # where the last ADWIN alarm on a version's error stream located the change
        self._det_change: dict[tuple[str, str], dict[str, Any]] = {}
        # drift is judged on rows from here on after a re-baseline (the new reference's start)
        self._ref_since: dict[tuple[str, str], float] = {}
        self._watches: dict[str, FeatureWatch] = {}
        self._feature_alarms: dict[str, dict[str, dict[str, Any]]] = {}
        self._numeric: dict[tuple[str, str], tuple[str, ...]] = {}
        self.rejected = 0
        self._load()

    # ------------------------------------------------------------------ set-up

    def configure(
        self,
        model: str,
        *,
        task: str | None = None,
        classes: Sequence[Any] = (),
        target: str = "label",
    ) -> None:
        """Tell the store a model's task, class order (of ``proba``) and target column name."""
        if task not in (None, "classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        info = _ModelInfo(task, tuple(_norm(c) for c in classes), target)
        with self._lock:
            self._models[model] = info
            self._conn.execute(
                "INSERT OR REPLACE INTO models (model, task, classes, target) VALUES (?,?,?,?)",
                (model, task, json.dumps(list(info.classes)), target),
            )
            self._conn.commit()

    def set_reference(self, model: str, version: str, profile: Any) -> None:
        """Set a version's reference profile: a ``stats.ReferenceProfile`` or its dict.

        A dict (what the registry stores with each version) is also written to
        SQLite, so a restarted monitor still knows every version's reference.
        """
        key = (model, str(version))
        if isinstance(profile, Mapping):
            doc = json.dumps(dict(profile))
            profile = self._profile_from_dict(dict(profile))
            with self._lock:
                self._conn.execute(
                    "INSERT OR REPLACE INTO refs (model, version, profile) VALUES (?,?,?)",
                    (model, str(version), doc),
                )
                self._conn.commit()
        with self._lock:
            self._references[key] = profile
            # The numeric features of any version of the model may come from this profile.
            for k in [k for k in self._numeric if k[0] == model]:
                del self._numeric[k]

    @staticmethod
    def _profile_from_dict(raw: dict[str, Any]) -> Any:
        from autopilot.stats import ReferenceProfile

        return ReferenceProfile.from_dict(raw)

    def _reference(self, model: str, version: str) -> Any | None:
        key = (model, str(version))
        with self._lock:
            if key in self._references:
                return self._references[key]
            row = self._conn.execute(
                "SELECT profile FROM refs WHERE model = ? AND version = ?", key
            ).fetchone()
        if row is None:
            return None
        profile = self._profile_from_dict(json.loads(row[0]))
        with self._lock:
            self._references[key] = profile
        return profile

    def has_reference(self, model: str, version: str) -> bool:
        """Whether a reference profile is known for the version (in memory or stored)."""
        return self._reference(model, version) is not None

    def _load(self) -> None:
        """Rebuild models, windows and detectors from SQLite after a restart."""
        for model, task, classes, target in self._conn.execute("SELECT * FROM models"):
            self._models[model] = _ModelInfo(task, tuple(json.loads(classes)), target)
        for model, version, since in self._conn.execute("SELECT * FROM ref_since"):
            self._ref_since[(model, version)] = float(since)
        pairs = self._conn.execute("SELECT DISTINCT model, version FROM predictions").fetchall()
        for model, version in pairs:
            rows = self._conn.execute(
                "SELECT request_id, ts, features, prediction, proba, latency_ms, error, shadow,"
                " label, score FROM predictions WHERE model = ? AND version = ?"
                " ORDER BY id DESC LIMIT ?",
                (model, version, self.window_rows),
            ).fetchall()
            for r in reversed(rows):
                row = _Row(
                    request_id=r[0], version=version, ts=r[1], features=json.loads(r[2]),
                    prediction=None if r[3] is None else json.loads(r[3]),
                    proba=None if r[4] is None else json.loads(r[4]),
                    latency_ms=r[5], error=r[6] is not None, shadow=bool(r[7]),
                    label=None if r[8] is None else json.loads(r[8]), score=r[9],
                )
                self._append(model, version, row)
                if row.score is not None and not row.error:
                    self._feed_detectors(model, version, row)
        for (model,) in self._conn.execute("SELECT DISTINCT model FROM predictions").fetchall():
            self._load_feature_watch(model)

    def _load_feature_watch(self, model: str) -> None:
        """Rebuild a model's feature detectors and alarms after a restart.

        Alarms were written when they fired, so they come back exactly. The
        detectors are re-fed the newest ``window_rows`` served rows since their
        last reset (bounded restart cost, as for the error-stream detectors);
        that replay rebuilds their windows but records no alarm.
        """
        mark = self._conn.execute(
            "SELECT since_id FROM feature_watch WHERE model = ?", (model,)).fetchone()
        since = 0 if mark is None else int(mark[0])
        where = "model = ? AND id > ? AND shadow = 0 AND error IS NULL"
        total = int(self._conn.execute(
            f"SELECT COUNT(*) FROM predictions WHERE {where}", (model, since)).fetchone()[0])
        rows = self._conn.execute(
            f"SELECT version, features FROM predictions WHERE {where} ORDER BY id DESC LIMIT ?",
            (model, since, self.window_rows)).fetchall()
        watch = self._watches[model] = FeatureWatch()
        watch.n = total - len(rows)
        for version, feats in reversed(rows):
            watch.update(json.loads(feats), self._numeric_features(model, version))
        alarms = self._feature_alarms[model] = {}
        for feature, detector, version, ts, n, after, before_m, after_m in self._conn.execute(
                "SELECT feature, detector, version, ts, n, rows_after, mean_before, mean_after"
                " FROM feature_alarms WHERE model = ?", (model,)):
            alarms[feature] = {"feature": feature, "detector": detector, "version": version,
                               "at": ts, "n": n, "rows_after": after,
                               "mean_before": before_m, "mean_after": after_m}

    # ------------------------------------------------------------------- ingest

    def ingest(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Store prediction records; returns how many were durably stored (acknowledged).

        Malformed records (missing a required key) are rejected and counted in
        :attr:`rejected`; a record already stored (a retried batch) is
        acknowledged again without a second row.
        """
        good: list[dict[str, Any]] = []
        for rec in records:
            if not isinstance(rec, Mapping) or any(k not in rec for k in _RECORD_KEYS):
                self.rejected += 1
                continue
            if not isinstance(rec["features"], Mapping):
                self.rejected += 1
                continue
            good.append(dict(rec))
        if not good:
            return 0
        acknowledged = len(good)
        good = [part for rec in good for part in _split_fallback(rec)]
        with self._lock:
            by_model: dict[str, list[str]] = {}
            for rec in good:
                by_model.setdefault(str(rec["model"]), []).append(str(rec["request_id"]))
            waiting: dict[tuple[str, str], Any] = {}
            for model, ids in by_model.items():
                for chunk in _chunks(ids, 500):
                    q = ",".join("?" * len(chunk))
                    for rid, lab in self._conn.execute(
                        "SELECT request_id, label FROM labels"
                        f" WHERE model = ? AND request_id IN ({q})",
                        (model, *chunk),
                    ):
                        waiting[(model, rid)] = json.loads(lab)
            rows: list[tuple[Any, ...]] = []
            mem: list[tuple[str, str, _Row]] = []
            for rec in good:
                model, version, rid = str(rec["model"]), str(rec["version"]), str(rec["request_id"])
                error = rec.get("error")
                row = _Row(
                    request_id=rid, version=version, ts=float(rec["ts"]),
                    features=dict(rec["features"]),
                    prediction=rec.get("prediction"), proba=rec.get("proba"),
                    latency_ms=float(rec["latency_ms"]), error=error is not None,
                    shadow=bool(rec.get("shadow", False)),
                )
                if (model, rid) in waiting and not row.error:
                    row.label = waiting[(model, rid)]
                    row.score = self._score(model, row.prediction, row.label)
                rows.append((
                    rid, model, version, row.ts, json.dumps(row.features),
                    None if row.prediction is None else json.dumps(row.prediction),
                    None if row.proba is None else json.dumps(row.proba),
                    row.latency_ms, None if error is None else str(error),
                    int(bool(rec.get("cache_hit", False))), rec.get("caller_key"),
                    int(row.shadow), None if row.label is None else json.dumps(row.label),
                    row.score,
                ))
                mem.append((model, version, row))
            # A retried batch (the actor restarted after writing but before answering) must
            # not be stored twice: skip records whose (request, version, shadow, error) exists.
            fresh: list[tuple[Any, ...]] = []
            fresh_mem: list[tuple[str, str, _Row]] = []
            for tup, m in zip(rows, mem, strict=True):
                exists = self._conn.execute(
                    "SELECT 1 FROM predictions WHERE model = ? AND request_id = ? AND version = ?"
                    " AND shadow = ? AND (error IS ?)",
                    (tup[1], tup[0], tup[2], tup[11], tup[8]),
                ).fetchone()
                if exists is None:
                    fresh.append(tup)
                    fresh_mem.append(m)
            self._conn.executemany(
                "INSERT INTO predictions (request_id, model, version, ts, features, prediction,"
                " proba, latency_ms, error, cache_hit, caller_key, shadow, label, score)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                fresh,
            )
            self._conn.commit()  # durable before we acknowledge
            for model, version, row in fresh_mem:
                self._append(model, version, row)
                if row.score is not None:
                    self._feed_detectors(model, version, row)
                if not row.shadow and not row.error:
                    self._watch_features(model, version, row)
        return acknowledged

    def ingest_labels(self, labels: Iterable[Mapping[str, Any]]) -> int:
        """Store labels and join them to their predictions; returns how many were stored.

        A second label for the same request replaces the first (corrections happen).
        """
        good: list[tuple[str, str, Any, float]] = []
        for lab in labels:
            if not isinstance(lab, Mapping) or any(k not in lab for k in ("request_id", "model")):
                self.rejected += 1
                continue
            if lab.get("label") is None:
                self.rejected += 1
                continue
            ts = _as_float(lab.get("ts"))
            good.append((str(lab["model"]), str(lab["request_id"]), lab["label"],
                         self._clock() if ts is None else ts))
        if not good:
            return 0
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO labels (model, request_id, label, ts) VALUES (?,?,?,?)",
                [(m, r, json.dumps(lab), ts) for m, r, lab, ts in good],
            )
            updates: list[tuple[Any, ...]] = []
            for model, rid, lab, _ts in good:
                for pk, pred in self._conn.execute(
                    "SELECT id, prediction FROM predictions WHERE model = ? AND request_id = ?"
                    " AND error IS NULL",
                    (model, rid),
                ).fetchall():
                    p = None if pred is None else json.loads(pred)
                    updates.append((json.dumps(lab), self._score(model, p, lab), pk))
            self._conn.executemany("UPDATE predictions SET label = ?, score = ? WHERE id = ?",
                                   updates)
            self._conn.commit()
            for model, rid, lab, _ts in good:
                for row in self._index.get((model, rid), ()):
                    if row.error:
                        continue
                    first = row.score is None
                    row.label = lab
                    row.score = self._score(model, row.prediction, lab)
                    if first:
                        self._feed_detectors(model, row.version, row)
        return len(good)

    # ---------------------------------------------------------------- internals

    def _append(self, model: str, version: str, row: _Row) -> None:
        key = (model, version)
        win = self._windows.get(key)
        if win is None:
            win = self._windows[key] = deque()
        if len(win) >= self.window_rows:
            old = win.popleft()
            lst = self._index.get((model, old.request_id))
            if lst is not None:
                lst[:] = [r for r in lst if r is not old]
                if not lst:
                    del self._index[(model, old.request_id)]
        win.append(row)
        self._index.setdefault((model, row.request_id), []).append(row)

    def _task(self, model: str, prediction: Any = None, label: Any = None) -> str:
        info = self._models.get(model)
        if info is not None and info.task is not None:
            return info.task
        # Unconfigured model: a fractional number is a regression value, anything else a class.
        for v in (prediction, label):
            if isinstance(v, float) and not v.is_integer():
                return "regression"
        return "classification"

    def _score(self, model: str, prediction: Any, label: Any) -> float | None:
        if prediction is None or label is None:
            return None
        if self._task(model, prediction, label) == "classification":
            return 1.0 if _norm(prediction) == _norm(label) else 0.0
        p, y = _as_float(prediction), _as_float(label)
        return None if p is None or y is None else -abs(p - y)

    def _feed_detectors(self, model: str, version: str, row: _Row) -> None:
        """Feed the error stream: 1 - score for classifiers, the absolute error for regressors."""
        if row.score is None or row.shadow:
            return
        key = (model, version)
        dets = self._detectors.get(key)
        if dets is None:
            dets = self._detector_factory()
            if self._task(model) != "classification":
                # DDM models a 0/1 error stream; a regressor's absolute error is real-valued
                from autopilot.stats import DDM

                dets = {k: d for k, d in dets.items() if not isinstance(d, DDM)}
            self._detectors[key] = dets
            self._det_fired[key] = {}
            self._det_n[key] = 0
        x = 1.0 - row.score if self._task(model) == "classification" else -row.score
        self._det_n[key] += 1
        for name, det in dets.items():
            if not det.update(x):
                continue
            if name not in self._det_fired[key]:
                self._det_fired[key][name] = self._det_n[key]
            if name == "adwin":
                self._locate_change(key, self._det_n[key])

    def _locate_change(self, key: tuple[str, str], fed: int) -> None:
        """Where the error stream ADWIN just flagged changed (least squares on the scores)."""
        from autopilot.stats import mean_shift_point

        rows = [r for r in self._windows.get(key, ()) if r.score is not None
                and not r.shadow and not r.error]
        rows = rows[-fed:]  # the stream this detector judged since its last reset
        if len(rows) < 2:
            return
        cp = mean_shift_point([r.score for r in rows], min_size=min(20, len(rows) // 2))
        # latest wins: a second alarm is a change after the first one
        self._det_change[key] = {"detector": "adwin", "at": float(rows[cp.index].ts),
                                 "before": cp.mean_before, "after": cp.mean_after}

    def _numeric_features(self, model: str, version: str) -> tuple[str, ...]:
        """Numeric features of the version's reference profile (another version's if it has none).

        Empty while no reference is known for the model: without one the kinds
        are unknown (a category coded as numbers is not numeric).
        """
        key = (model, version)
        names = self._numeric.get(key)
        if names is not None:
            return names
        profile = self._reference(model, version)
        if profile is None:
            others = [v for (m, v) in self._references if m == model]
            if not others:
                others = [r[0] for r in self._conn.execute(
                    "SELECT version FROM refs WHERE model = ? ORDER BY rowid DESC LIMIT 1",
                    (model,))]
            profile = self._reference(model, others[-1]) if others else None
        if profile is None:
            return ()  # not cached: a reference may be set later
        # Any object with compare() may serve as a profile; one without features has no kinds.
        names = self._numeric[key] = tuple(
            str(f.name) for f in getattr(profile, "features", ())
            if getattr(f, "kind", None) == "numeric")
        return names

    def _watch_features(self, model: str, version: str, row: _Row) -> None:
        """Feed a served row to the model's feature detectors; store each feature's first alarm."""
        numeric = self._numeric_features(model, version)
        if not numeric:
            return
        watch = self._watches.get(model)
        if watch is None:
            watch = self._watches[model] = FeatureWatch()
        alarms = self._feature_alarms.setdefault(model, {})
        fresh = []
        for feature, change in watch.update(row.features, numeric):
            if feature in alarms:
                continue
            alarm = {"feature": feature, "detector": watch.detector, "version": version,
                     "at": row.ts, "n": watch.n, "rows_after": int(change.rows_after),
                     "mean_before": float(change.mean_before),
                     "mean_after": float(change.mean_after)}
            alarms[feature] = alarm
            fresh.append(alarm)
        if fresh:
            # Written when it fires, so a restart neither loses nor invents an alarm.
            self._conn.executemany(
                "INSERT OR REPLACE INTO feature_alarms (model, feature, detector, version, ts,"
                " n, rows_after, mean_before, mean_after) VALUES (?,?,?,?,?,?,?,?,?)",
                [(model, a["feature"], a["detector"], a["version"], a["at"], a["n"],
                  a["rows_after"], a["mean_before"], a["mean_after"]) for a in fresh])
            self._conn.commit()

    def _rows(self, model: str, version: str, *, include_shadow: bool = True) -> list[_Row]:
        win = self._windows.get((model, str(version)), deque())
        return [r for r in win if include_shadow or not r.shadow]

    # ---------------------------------------------------------------- questions

    def versions(self, model: str) -> list[str]:
        """Versions with rows in memory for ``model``."""
        with self._lock:
            return sorted({v for (m, v) in self._windows if m == model}, key=_version_key)

    def count(self, model: str | None = None, *, served_only: bool = False) -> int:
        """Stored prediction records (``served_only``: answers returned to callers).

        Served means not a shadow copy and not an error record (the caller of an
        erroring version got the fallback's answer, which is its own record).
        """
        sql = "SELECT COUNT(*) FROM predictions"
        clauses, params = [], []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if served_only:
            clauses.append("shadow = 0 AND error IS NULL")
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self._lock:
            return int(self._conn.execute(sql, params).fetchone()[0])

    def label_count(self, model: str, since: float | None = None) -> int:
        """Labels stored for ``model`` (optionally those that arrived at or after ``since``)."""
        with self._lock:
            if since is None:
                row = self._conn.execute("SELECT COUNT(*) FROM labels WHERE model = ?", (model,))
            else:
                row = self._conn.execute(
                    "SELECT COUNT(*) FROM labels WHERE model = ? AND ts >= ?", (model, since)
                )
            return int(row.fetchone()[0])

    def feature_frame(
        self, model: str, version: str, *, last: int | None = None, since: float | None = None
    ) -> pd.DataFrame:
        """Features of the version's in-memory window (served and shadow rows).

        ``since`` keeps rows at or after that time; ``last`` then the newest ``last``.
        """
        with self._lock:
            rows = self._rows(model, version)
        if since is not None:
            rows = [r for r in rows if r.ts >= since]
        if last is not None:
            rows = rows[-last:]
        return pd.DataFrame([r.features for r in rows])

    def drift_report(
        self, model: str, version: str, *, min_rows: int = 1, reference: Any = None
    ) -> Any | None:
        """The version's feature window compared with its reference profile.

        Returns the ``stats`` ``DriftReport``, or None when no reference is set
        or fewer than ``min_rows`` rows are in the window.
        """
        if reference is not None:
            self.set_reference(model, version, reference)
        profile = self._reference(model, version)
        if profile is None:
            return None
        frame = self.feature_frame(model, version, since=self._ref_since.get((model, version)))
        if len(frame) < min_rows or len(frame) == 0:
            return None
        return profile.compare(frame)

    def rebaseline(self, model: str, version: str, rows: int | None = None) -> dict[str, Any]:
        """Accept a lasting drift: re-fit the version's reference on its recent feature window.

        The new ``stats.ReferenceProfile`` keeps the current reference's feature
        columns, kinds, bins and sketch size, and is stored durably (SQLite), so
        the same shift no longer reads as drift while a new one still does.

        Parameters
        ----------
        model, version
            Whose reference to replace (it must have one).
        rows : int, optional
            Fit on the newest ``rows`` rows of the window (default: the whole
            window, the rows :meth:`drift_report` compares). From then on
            :meth:`drift_report` compares only rows from the first of these on:
            rows from before the shift would read as drift against the new reference.

        Returns
        -------
        dict
            ``model``, ``version``, ``rows`` used and ``previous_rows`` of the old reference.
        """
        from autopilot.stats import ReferenceProfile

        if rows is not None and (isinstance(rows, bool) or int(rows) < 1):
            raise ValueError(f"rows must be None or >= 1, got {rows!r}")
        old = self._reference(model, version)
        if old is None:
            raise ControlError(f"model {model!r} version {version!r} has no reference profile "
                               "to re-baseline")
        with self._lock:
            window = self._rows(model, version)
        window = window if rows is None else window[-int(rows):]
        frame = pd.DataFrame([r.features for r in window])
        cols = list(old.columns)
        missing = [c for c in cols if c not in frame.columns]
        if len(frame) == 0 or missing:
            raise ControlError(f"cannot re-baseline model {model!r} version {version!r}: "
                               f"window has {len(frame)} rows, missing features {missing}")
        profile = ReferenceProfile.fit(frame[cols], {f.name: f.kind for f in old.features},
                                       bins=old.bins, max_sorted=old.max_sorted)
        self.set_reference(model, version, profile.to_dict())  # the dict form is durable
        since = float(window[0].ts)
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO ref_since (model, version, since)"
                               " VALUES (?,?,?)", (model, str(version), since))
            self._conn.commit()
            self._ref_since[(model, str(version))] = since
        return {"model": model, "version": str(version), "rows": len(frame),
                "previous_rows": int(old.n_rows)}

    def prediction_distribution(self, model: str, version: str) -> dict[str, Any]:
        """Class shares (classifiers) or quantiles (regressors) of the window's predictions."""
        with self._lock:
            preds = [r.prediction for r in self._rows(model, version, include_shadow=False)
                     if not r.error and r.prediction is not None]
        if not preds:
            return {"n": 0}
        if self._task(model, preds[0]) == "classification":
            values, counts = np.unique([_norm(p) for p in preds], return_counts=True)
            return {"n": len(preds),
                    "shares": {str(v): float(c) / len(preds) for v, c in zip(values, counts,
                                                                              strict=True)}}
        arr = np.asarray([_as_float(p) for p in preds if _as_float(p) is not None])
        qs = np.quantile(arr, [0.05, 0.25, 0.5, 0.75, 0.95]) if arr.size else []
        return {"n": int(arr.size), "mean": float(arr.mean()) if arr.size else None,
                "quantiles": dict(zip(("p05", "p25", "p50", "p75", "p95"),
                                      map(float, qs), strict=False))}

    def performance(
        self, model: str, version: str, metrics: Sequence[str] | None = None
    ) -> dict[str, float]:
        """Labelled metrics of the version's served window rows, plus ``n_labels``.

        ``metrics`` are names known to ``autopilot.training.metrics`` (built-ins
        and custom registered ones); by default the task's standard set.
        Metrics that cannot be computed on these rows (e.g. ROC-AUC with one
        class present) are left out rather than guessed.
        """
        from autopilot.training import metrics as M

        with self._lock:
            rows = [r for r in self._rows(model, version, include_shadow=False)
                    if r.score is not None and not r.error]
            info = self._models.get(model, _ModelInfo())
        out: dict[str, float] = {"n_labels": float(len(rows))}
        if not rows:
            return out
        task = self._task(model, rows[0].prediction, rows[0].label)
        if metrics is None:
            metrics = (("accuracy", "f1", "roc_auc", "log_loss") if task == "classification"
                       else ("r2", "mae", "rmse"))
        if task == "classification":
            y = np.asarray([_norm(r.label) for r in rows])
            labels = np.asarray([_norm(r.prediction) for r in rows])
            classes = list(info.classes) or sorted(set(y) | set(labels))
            have_proba = bool(info.classes) and all(
                r.proba is not None and len(r.proba) == len(info.classes) for r in rows)
            proba = np.asarray([r.proba for r in rows], dtype=float) if have_proba else None
            kw: dict[str, Any] = {"labels": labels, "proba": proba, "classes": classes}
        else:
            y = np.asarray([_as_float(r.label) for r in rows], dtype=float)
            vals = np.asarray([_as_float(r.prediction) for r in rows], dtype=float)
            kw = {"values": vals}
        for name in metrics:
            try:
                out[name] = float(M.score(name, y, **kw))
            except (ValueError, KeyError, TypeError, IndexError):
                continue
        return out

    def estimated_accuracy(self, model: str, version: str) -> dict[str, float] | None:
        """CBPE-style accuracy estimate from calibrated probabilities, without labels.

        For a calibrated classifier the chance that a row's predicted class is
        right is its top probability, so the expected accuracy of a set of rows
        is the mean top probability (NannyML's CBPE, for accuracy). Computed on
        the window's rows still waiting for labels (all rows if every one has
        its label, for comparison with the realised accuracy).
        """
        with self._lock:
            rows = [r for r in self._rows(model, version, include_shadow=False)
                    if not r.error and r.proba]
        if not rows or self._task(model, rows[0].prediction) != "classification":
            return None
        pending = [r for r in rows if r.score is None] or rows
        top = np.asarray([max(r.proba) for r in pending], dtype=float)
        return {"estimated_accuracy": float(top.mean()), "n": float(top.size),
                "unlabelled": float(sum(r.score is None for r in rows))}

    def series(
        self, model: str, version: str, *, bucket_s: float = 60.0, since: float | None = None
    ) -> list[SeriesPoint]:
        """Requests, errors and latency percentiles per time bucket of the version's window."""
        if not bucket_s > 0:
            raise ValueError(f"bucket_s must be > 0, got {bucket_s}")
        with self._lock:
            rows = [r for r in self._rows(model, version, include_shadow=False)
                    if since is None or r.ts >= since]
        if not rows:
            return []
        ts = np.asarray([r.ts for r in rows])
        lat = np.asarray([r.latency_ms for r in rows])
        err = np.asarray([r.error for r in rows])
        b = np.floor(ts / bucket_s).astype(np.int64)
        out = []
        for k in np.unique(b):
            m = b == k
            n = int(m.sum())
            e = int(err[m].sum())
            out.append(SeriesPoint(float(k * bucket_s), n, e, e / n,
                                   float(np.percentile(lat[m], 50)),
                                   float(np.percentile(lat[m], 95))))
        return out

    def anomalies(
        self, model: str, version: str, *, bucket_s: float = 60.0, threshold: float = 3.5
    ) -> dict[str, list[float]]:
        """Buckets whose p95 latency or error rate is anomalous (modified z-score on the series).

        Returns the bucket start times flagged per series; needs at least 5 buckets.
        """
        from autopilot.stats import modified_zscore_anomalies

        pts = self.series(model, version, bucket_s=bucket_s)
        out: dict[str, list[float]] = {"latency": [], "error_rate": []}
        if len(pts) < 5:
            return out
        starts = np.asarray([p.start for p in pts])
        for name, values in (("latency", [p.p95_latency_ms for p in pts]),
                             ("error_rate", [p.error_rate for p in pts])):
            res = modified_zscore_anomalies(np.asarray(values, dtype=float), threshold)
            out[name] = [float(s) for s in starts[res.is_anomaly]]
        return out

    def detectors(self, model: str, version: str) -> DetectorState:
        """Which streaming detectors fired on the version's error stream."""
        key = (model, str(version))
        with self._lock:
            fired = dict(self._det_fired.get(key, {}))
            n = self._det_n.get(key, 0)
        return DetectorState(str(version), n, tuple(sorted(fired)), fired)

    def reset_detectors(self, model: str, version: str | None = None) -> None:
        """Start the detectors afresh (e.g. after the controller acted on a change)."""
        with self._lock:
            for key in [k for k in self._detectors if k[0] == model
                        and (version is None or k[1] == str(version))]:
                del self._detectors[key]
                self._det_fired.pop(key, None)
                self._det_n.pop(key, None)
                self._det_change.pop(key, None)

    def error_change(self, model: str, version: str) -> dict[str, Any] | None:
        """The last change ADWIN found in the version's labelled error stream, located.

        Returns None when none was found since :meth:`reset_detectors`, else a
        dict: ``detector``; ``at``, the time of the first labelled row after the
        change (least-squares location, :func:`autopilot.stats.mean_shift_point`);
        ``before`` / ``after``, the mean online score on each side (accuracy for
        classifiers, minus the absolute error for regressors); ``rows_since``,
        labelled requests of any version at or after ``at`` (what a retrain on
        the rows after the change would get).
        """
        with self._lock:
            found = self._det_change.get((model, str(version)))
            if found is None:
                return None
            n = self._conn.execute(
                "SELECT COUNT(DISTINCT p.request_id) FROM predictions p JOIN labels l"
                " ON l.model = p.model AND l.request_id = p.request_id"
                " WHERE p.model = ? AND p.shadow = 0 AND p.error IS NULL AND p.ts >= ?",
                (model, found["at"])).fetchone()[0]
        return {**found, "rows_since": int(n)}

    def feature_alarms(self, model: str) -> list[dict[str, Any]]:
        """First ADWIN alarm of each numeric input feature since the last reset, oldest first.

        Fed with the model's served rows (not shadow copies, not error records)
        in arrival order; the numeric features come from the reference profile.
        Each alarm: ``feature``, ``detector`` (``"adwin"``), ``version`` that
        served the row, ``at`` (that row's ``ts``), ``n`` (served rows fed since
        the reset, that row included), ``rows_after`` (rows the detector kept
        after its cut: an upper bound on the rows since the change),
        ``mean_before`` and ``mean_after`` (the feature's mean on each side of
        the cut).
        """
        with self._lock:
            alarms = [dict(a) for a in self._feature_alarms.get(model, {}).values()]
        return sorted(alarms, key=lambda a: (a["n"], a["feature"]))

    def reset_feature_detectors(self, model: str) -> None:
        """Start a model's feature detectors afresh and forget their alarms (durably).

        Rows stored so far no longer feed them, after a restart either.
        """
        with self._lock:
            last = self._conn.execute(
                "SELECT COALESCE(MAX(id), 0) FROM predictions WHERE model = ?",
                (model,)).fetchone()[0]
            self._conn.execute(
                "INSERT OR REPLACE INTO feature_watch (model, since_id) VALUES (?, ?)",
                (model, int(last)))
            self._conn.execute("DELETE FROM feature_alarms WHERE model = ?", (model,))
            self._conn.commit()
            self._watches.pop(model, None)
            self._feature_alarms.pop(model, None)

    def traffic(self, model: str, since: float | None = None) -> dict[str, dict[str, int]]:
        """Stored requests per version: ``{version: {"served", "shadow", "errors"}}``."""
        sql = ("SELECT version, SUM(shadow = 0 AND error IS NULL), SUM(shadow = 1),"
               " SUM(error IS NOT NULL) FROM predictions WHERE model = ?")
        params: list[Any] = [model]
        if since is not None:
            sql += " AND ts >= ?"
            params.append(since)
        sql += " GROUP BY version"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return {v: {"served": int(s or 0), "shadow": int(sh or 0), "errors": int(e or 0)}
                for v, s, sh, e in rows}

    def arm_stats(self, model: str, version: str, since: float | None = None) -> dict[str, Any]:
        """Cumulative canary counts of one version since ``since`` (fields of ``ArmStats``).

        Requests count rows the version answered, served or mirrored (shadow);
        errors count the version's failures; successes sum the per-row score
        over labelled rows.
        """
        where = "model = ? AND version = ?"
        params: list[Any] = [model, str(version)]
        if since is not None:
            where += " AND ts >= ?"
            params.append(since)
        with self._lock:
            n, errors, labelled, succ, sumsq = self._conn.execute(
                f"SELECT COUNT(*), SUM(error IS NOT NULL), SUM(score IS NOT NULL), SUM(score),"
                f" SUM(score * score) FROM predictions WHERE {where}",
                params,
            ).fetchone()
            p95 = float("nan")
            if n:
                off = int(math.floor(0.95 * (n - 1)))
                p95 = float(self._conn.execute(
                    f"SELECT latency_ms FROM predictions WHERE {where}"
                    f" ORDER BY latency_ms LIMIT 1 OFFSET {off}", params).fetchone()[0])
            regression = self._task(model) == "regression"
        return {
            "version": str(version),
            "requests": int(n or 0),
            "successes": float(succ or 0.0),
            "labelled": int(labelled or 0),
            "errors": int(errors or 0),
            "p95_latency_ms": p95,
            "score_sumsq": float(sumsq or 0.0) if regression else None,
        }

    def labelled_frame(
        self,
        model: str,
        *,
        since: float | None = None,
        until: float | None = None,
        version: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Labelled rows as features plus the target column (and ``_ts``, ``_request_id``).

        One row per request (shadow copies and error records are left out; a
        request answered by the fallback after an error appears once). With
        ``limit``, the newest ``limit`` rows, returned in time order.
        """
        clauses = ["p.model = ?", "p.shadow = 0", "p.error IS NULL"]
        params: list[Any] = [model]
        if since is not None:
            clauses.append("p.ts >= ?")
            params.append(since)
        if until is not None:
            clauses.append("p.ts <= ?")
            params.append(until)
        if version is not None:
            clauses.append("p.version = ?")
            params.append(str(version))
        sql = ("SELECT p.request_id, p.ts, p.features, l.label FROM predictions p"
               " JOIN labels l ON l.model = p.model AND l.request_id = p.request_id"
               f" WHERE {' AND '.join(clauses)} GROUP BY p.request_id ORDER BY p.ts DESC")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
            target = self._models.get(model, _ModelInfo()).target
        rows.reverse()
        frame = pd.DataFrame([json.loads(r[2]) for r in rows])
        frame[target] = [json.loads(r[3]) for r in rows]
        frame["_ts"] = [r[1] for r in rows]
        frame["_request_id"] = [r[0] for r in rows]
        return frame

    def replay(self, folder: str | Path) -> dict[str, int]:
        """Ingest the JSON-lines files the endpoint wrote while the monitor was away.

        The endpoint's fallback sink appends ``*-predictions-*.jsonl`` and
        ``*-labels-*.jsonl`` under ``<state_dir>/records``. Each file's read
        offset is kept in SQLite, so only complete new lines are read, and
        ingest is idempotent, so a line read twice is stored once.

        Returns
        -------
        dict
            Records and labels acknowledged by this call, and lines that were
            not valid JSON.
        """
        out = {"records": 0, "labels": 0, "bad_lines": 0}
        root = Path(folder)
        if not root.is_dir():
            return out
        for path in sorted(root.glob("*.jsonl")):
            key = str(path.resolve())
            with self._lock:
                row = self._conn.execute(
                    "SELECT offset FROM replayed WHERE path = ?", (key,)).fetchone()
            offset = 0 if row is None else int(row[0])
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
            end = data.rfind(b"\n") + 1  # a line still being written waits for next time
            if end == 0:
                continue
            items = []
            for line in data[:end].splitlines():
                if not line.strip():
                    continue
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError:
                    out["bad_lines"] += 1
            if "-labels-" in path.name:
                out["labels"] += self.ingest_labels(items)
            else:
                out["records"] += self.ingest(items)
            with self._lock:
                self._conn.execute(
                    "INSERT INTO replayed (path, offset) VALUES (?, ?) ON CONFLICT (path)"
                    " DO UPDATE SET offset = excluded.offset", (key, offset + end))
                self._conn.commit()
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_FAILED = re.compile(r"(?:^|;\s*)v([^:;\s]+):\s*")


def _split_fallback(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """Split an answer given after other versions failed into its parts.

    The endpoint records one row per answered request: the version that
    answered, and in ``error`` the failures before it (``"v3: boom; v2: ..."``).
    For per-version statistics each failing version gets its own error record
    (no prediction), and the answer is stored as a clean served record.
    """
    error = rec.get("error")
    if error is None or rec.get("prediction") is None or rec.get("shadow"):
        return [rec]
    text = str(error)
    marks = list(_FAILED.finditer(text))
    if not marks:
        return [rec]
    out = []
    for i, mk in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append({**rec, "version": mk.group(1), "prediction": None, "proba": None,
                    "error": text[mk.end():end].strip() or "failed", "cache_hit": False})
    out.append({**rec, "error": None})
    return out


def _chunks(items: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _version_key(v: str) -> tuple[int, str]:
    return (int(v), v) if v.isdigit() else (1 << 62, v)


# ------------------------------------------------------------------- Ray actor


class _MonitorActorImpl:
    """Ray actor wrapper: every method forwards to a :class:`MonitorStore`."""

    def __init__(self, path: str, window_rows: int = 5000) -> None:
        self.store = MonitorStore(path, window_rows=window_rows)

    def ready(self) -> bool:
        return True

    def ingest(self, records: list[dict[str, Any]]) -> int:
        return self.store.ingest(records)

    def ingest_labels(self, labels: list[dict[str, Any]]) -> int:
        return self.store.ingest_labels(labels)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Any public method of the store by name (keeps the actor surface small)."""
        if method.startswith("_") or not hasattr(self.store, method):
            raise ControlError(f"monitor has no method {method!r}")
        return getattr(self.store, method)(*args, **kwargs)


def start_monitor(path: str | Path, *, window_rows: int = 5000, detached: bool = True,
                  num_cpus: float = 0.1) -> Any:
    """Start (or find) the named Monitor actor; returns its handle.

    The actor restarts on failure (``max_restarts=-1``) and reopens the same
    SQLite file, so nothing acknowledged is lost. Calls are retried across a
    restart (``max_task_retries``); ingest is idempotent per record, so a
    retried batch is not stored twice.
    """
    import ray

    cls = ray.remote(_MonitorActorImpl)
    opts: dict[str, Any] = dict(
        name=MONITOR_ACTOR, namespace=NAMESPACE, get_if_exists=True,
        max_restarts=-1, max_task_retries=3, num_cpus=num_cpus,
        max_concurrency=1,
    )
    if detached:
        opts["lifetime"] = "detached"
    handle = cls.options(**opts).remote(str(path), window_rows)
    ray.get(handle.ready.remote())
    return handle


def get_monitor() -> Any:
    """The running Monitor actor, or :class:`ControlError` if there is none."""
    import ray

    try:
        return ray.get_actor(MONITOR_ACTOR, namespace=NAMESPACE)
    except ValueError as exc:
        raise ControlError(
            f"no monitor actor {MONITOR_ACTOR!r} in namespace {NAMESPACE!r}; start it first"
        ) from exc


class MonitorProxy:
    """Call a Monitor actor with the :class:`MonitorStore` interface (blocking ``ray.get``)."""

    def __init__(self, handle: Any, timeout_s: float = 60.0) -> None:
        self._handle = handle
        self._timeout = timeout_s

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        import ray

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in ("ingest", "ingest_labels"):
                ref = getattr(self._handle, name).remote(*args, **kwargs)
            else:
                ref = self._handle.call.remote(name, *args, **kwargs)
            return ray.get(ref, timeout=self._timeout)

        return call
