"""The :class:`MonitorStore`: durable prediction log, label joins, windows and detector feeds.

Set-up (task, classes, reference profiles), the restart rebuild from SQLite,
ingest of records and labels (written before they are acknowledged), the
in-memory windows and the feeds of the error-stream and feature detectors, and
replay of the endpoint's fallback files. The questions it answers are in
:mod:`autopilot.monitor.questions` (:class:`WindowQuestions`, mixed in).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from autopilot.monitor.detectors import FeatureWatch, default_detectors
from autopilot.monitor.questions import WindowQuestions
from autopilot.monitor.rows import ModelInfo, Row, as_float, norm
from autopilot.monitor.schema_sql import SCHEMA

__all__ = ["MonitorStore"]

_RECORD_KEYS = ("request_id", "model", "version", "features", "latency_ms", "ts")


class MonitorStore(WindowQuestions):
    """Durable prediction log with per-version windows, label joins and window questions.

    Parameters
    ----------
    path
        SQLite file (its folder is created) or ``":memory:"``.
    window_rows
        Rows kept in memory per (model, version), unless :meth:`configure` sets
        a model's own.
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
        self._detector_factory = detector_factory or default_detectors
        self._clock = clock
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of this process (an actor restart): committed
        # transactions are in the WAL file before commit returns.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(models)")}
        if "window_rows" not in columns:  # a store written before models had their own
            self._conn.execute("ALTER TABLE models ADD COLUMN window_rows INTEGER")
        self._conn.commit()
        self._windows: dict[tuple[str, str], deque[Row]] = {}
        self._index: dict[tuple[str, str], list[Row]] = {}  # (model, request_id) -> rows
        self._models: dict[str, ModelInfo] = {}
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
        window_rows: int | None = None,
    ) -> None:
        """Tell the store a model's task, class order (of ``proba``), target column name
        and, when it is not the store's default, how many rows a version's window keeps
        (several models with their own ``monitor.window_rows`` share one monitor)."""
        if task not in (None, "classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        if window_rows is not None and window_rows < 1:
            raise ValueError(f"window_rows must be >= 1, got {window_rows}")
        info = ModelInfo(task, tuple(norm(c) for c in classes), target, window_rows)
        with self._lock:
            self._models[model] = info
            self._conn.execute(
                "INSERT OR REPLACE INTO models (model, task, classes, target, window_rows)"
                " VALUES (?,?,?,?,?)",
                (model, task, json.dumps(list(info.classes)), target, window_rows),
            )
            self._conn.commit()
            size = self._window_size(model)
            for (m, _), win in self._windows.items():
                if m == model:
                    self._trim(model, win, size)

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
        for model, task, classes, target, window in self._conn.execute(
                "SELECT model, task, classes, target, window_rows FROM models"):
            self._models[model] = ModelInfo(task, tuple(json.loads(classes)), target, window)
        for model, version, since in self._conn.execute("SELECT * FROM ref_since"):
            self._ref_since[(model, version)] = float(since)
        pairs = self._conn.execute("SELECT DISTINCT model, version FROM predictions").fetchall()
        for model, version in pairs:
            rows = self._conn.execute(
                "SELECT request_id, ts, features, prediction, proba, latency_ms, error, shadow,"
                " label, score FROM predictions WHERE model = ? AND version = ?"
                " ORDER BY id DESC LIMIT ?",
                (model, version, self._window_size(model)),
            ).fetchall()
            for r in reversed(rows):
                row = Row(
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
            (model, since, self._window_size(model))).fetchall()
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
            mem: list[tuple[str, str, Row]] = []
            for rec in good:
                model, version, rid = str(rec["model"]), str(rec["version"]), str(rec["request_id"])
                error = rec.get("error")
                row = Row(
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
            fresh_mem: list[tuple[str, str, Row]] = []
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
            ts = as_float(lab.get("ts"))
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

    def _window_size(self, model: str) -> int:
        info = self._models.get(model)
        return info.window_rows if info is not None and info.window_rows else self.window_rows

    def _trim(self, model: str, win: deque[Row], size: int) -> None:
        """Drop a window's oldest rows (and their index entries) until it holds ``size``."""
        while len(win) > size:
            old = win.popleft()
            lst = self._index.get((model, old.request_id))
            if lst is not None:
                lst[:] = [r for r in lst if r is not old]
                if not lst:
                    del self._index[(model, old.request_id)]

    def _append(self, model: str, version: str, row: Row) -> None:
        key = (model, version)
        win = self._windows.get(key)
        if win is None:
            win = self._windows[key] = deque()
        self._trim(model, win, self._window_size(model) - 1)
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
            return 1.0 if norm(prediction) == norm(label) else 0.0
        p, y = as_float(prediction), as_float(label)
        return None if p is None or y is None else -abs(p - y)

    def _feed_detectors(self, model: str, version: str, row: Row) -> None:
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
        from autopilot.stats import locate_shift

        scored = [(r.ts, r.score) for r in self._windows.get(key, ()) if r.score is not None
                  and not r.shadow and not r.error]
        scored = scored[-fed:]  # the stream this detector judged since its last reset
        if len(scored) < 2:
            return
        cp = locate_shift([score for _, score in scored])
        # latest wins: a second alarm is a change after the first one
        self._det_change[key] = {"detector": "adwin", "at": float(scored[cp.index][0]),
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

    def _watch_features(self, model: str, version: str, row: Row) -> None:
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

    def _rows(self, model: str, version: str, *, include_shadow: bool = True) -> list[Row]:
        win = self._windows.get((model, str(version)), deque())
        return [r for r in win if include_shadow or not r.shadow]

    # ---------------------------------------------------------------- questions

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

