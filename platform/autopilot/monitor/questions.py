"""The questions a :class:`~autopilot.monitor.MonitorStore` answers about its windows and log.

:class:`WindowQuestions` is the half of the store the controller, the CLI and
the report read: versions and counts, feature windows and drift against the
reference (and re-baselining it), labelled performance, the label-free
accuracy estimate, latency/error series and anomalies, detector states and
alarms, traffic, canary arm counts and labelled frames for retraining. It is a
mixin: the state it reads (SQLite connection, lock, windows, references,
detectors) is set up and kept by :class:`~autopilot.monitor.MonitorStore`.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from autopilot.errors import ControlError
from autopilot.monitor.detectors import DetectorState, FeatureWatch
from autopilot.monitor.rows import ModelInfo, Row, SeriesPoint, as_float, norm, version_key

__all__ = ["WindowQuestions"]


class WindowQuestions:
    """Read (and reset) what a :class:`~autopilot.monitor.MonitorStore` has stored.

    Mixed into :class:`~autopilot.monitor.MonitorStore`, which sets these attributes.
    """

    _lock: threading.RLock
    _conn: sqlite3.Connection
    _models: dict[str, ModelInfo]
    _references: dict[tuple[str, str], Any]
    _detectors: dict[tuple[str, str], dict[str, Any]]
    _det_n: dict[tuple[str, str], int]
    _det_fired: dict[tuple[str, str], dict[str, int]]
    _det_change: dict[tuple[str, str], dict[str, Any]]
    _ref_since: dict[tuple[str, str], float]
    _watches: dict[str, FeatureWatch]
    _feature_alarms: dict[str, dict[str, dict[str, Any]]]
    _windows: dict[tuple[str, str], Any]

    if TYPE_CHECKING:  # the store's own helpers, which these questions use
        def _rows(self, model: str, version: str, *, include_shadow: bool = True
                  ) -> list[Row]: ...

        def _task(self, model: str, prediction: Any = None, label: Any = None) -> str: ...

        def _reference(self, model: str, version: str) -> Any | None: ...

        def set_reference(self, model: str, version: str, profile: Any) -> None: ...

    def versions(self, model: str) -> list[str]:
        """Versions with rows in memory for ``model``."""
        with self._lock:
            return sorted({v for (m, v) in self._windows if m == model}, key=version_key)

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
            values, counts = np.unique([norm(p) for p in preds], return_counts=True)
            return {"n": len(preds),
                    "shares": {str(v): float(c) / len(preds) for v, c in zip(values, counts,
                                                                              strict=True)}}
        arr = np.asarray([as_float(p) for p in preds if as_float(p) is not None])
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
            info = self._models.get(model, ModelInfo())
        out: dict[str, float] = {"n_labels": float(len(rows))}
        if not rows:
            return out
        task = self._task(model, rows[0].prediction, rows[0].label)
        if metrics is None:
            metrics = (("accuracy", "f1", "roc_auc", "log_loss") if task == "classification"
                       else ("r2", "mae", "rmse"))
        if task == "classification":
            y = np.asarray([norm(r.label) for r in rows])
            labels = np.asarray([norm(r.prediction) for r in rows])
            classes = list(info.classes) or sorted(set(y) | set(labels))
            have_proba = bool(info.classes) and all(
                r.proba is not None and len(r.proba) == len(info.classes) for r in rows)
            proba = np.asarray([r.proba for r in rows], dtype=float) if have_proba else None
            kw: dict[str, Any] = {"labels": labels, "proba": proba, "classes": classes}
        else:
            y = np.asarray([as_float(r.label) for r in rows], dtype=float)
            vals = np.asarray([as_float(r.prediction) for r in rows], dtype=float)
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
        # every row has proba (filtered above); the repeated test narrows its type
        top = np.asarray([max(r.proba) for r in pending if r.proba], dtype=float)
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
            return {**found, "rows_since": self.labelled_rows_since(model, found["at"])}

    def window_change(self, model: str, rows: int, min_rows: int = 40) -> dict[str, Any] | None:
        """The model's newest ``rows`` labelled requests tested for a change and split.

        The online score users got (whichever version answered; as
        :meth:`error_change` reads it: shadow copies and error records left out),
        oldest first, is tested for a change in its mean and split where it
        changed most (:func:`autopilot.policy.triggers.locate_window_change`, as
        the simulator does), whether or not the test rejects: the policy judges
        ``p_value``. None with fewer than ``min_rows`` rows. Keys as
        :meth:`error_change` (``detector`` "cusum") plus ``p_value`` and ``rows``
        (the scores tested).
        """
        from autopilot.policy.triggers import locate_window_change

        with self._lock:
            found = self._conn.execute(
                "SELECT ts, score FROM predictions WHERE model = ? AND shadow = 0"
                " AND error IS NULL AND score IS NOT NULL"
                f" ORDER BY ts DESC LIMIT {int(rows)}", (model,)).fetchall()
            found.reverse()
            alarm = locate_window_change(
                [r[1] for r in found], [r[0] for r in found],
                lambda at: self.labelled_rows_since(model, at), min_rows=min_rows)
        if alarm is None:
            return None
        return {"detector": alarm.detector, "at": alarm.at, "before": alarm.metric_before,
                "after": alarm.metric_after, "p_value": alarm.p_value, "rows": len(found),
                "rows_since": alarm.rows_since}

    def labelled_rows_since(self, model: str, at: float) -> int:
        """Labelled requests of any version served at or after ``at``: what a retrain on
        the rows from then on gets (:meth:`label_count` counts by label arrival instead)."""
        with self._lock:
            n = self._conn.execute(
                "SELECT COUNT(DISTINCT p.request_id) FROM predictions p JOIN labels l"
                " ON l.model = p.model AND l.request_id = p.request_id"
                " WHERE p.model = ? AND p.shadow = 0 AND p.error IS NULL AND p.ts >= ?",
                (model, at)).fetchone()[0]
        return int(n)

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
            target = self._models.get(model, ModelInfo()).target
        rows.reverse()
        frame = pd.DataFrame([json.loads(r[2]) for r in rows])
        frame[target] = [json.loads(r[3]) for r in rows]
        frame["_ts"] = [r[1] for r in rows]
        frame["_request_id"] = [r[0] for r in rows]
        return frame

