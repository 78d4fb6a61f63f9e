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

Modules
-------
store
    :class:`MonitorStore`: set-up, ingest, label joins, windows, detector feeds, replay.
questions
    What the store answers (drift, performance, estimates, series, traffic, ...).
detectors
    :class:`DetectorState`, :class:`FeatureWatch` and the default error-stream detectors.
rows
    The in-memory row, per-model info, :class:`SeriesPoint` and value canonicalisation.
schema_sql
    The SQLite tables.
actor
    :func:`start_monitor`, :func:`get_monitor`, :class:`MonitorProxy` and the actor class.
"""

from autopilot.monitor.actor import (
    MONITOR_ACTOR,
    NAMESPACE,
    MonitorProxy,
    get_monitor,
    start_monitor,
)
from autopilot.monitor.actor import _MonitorActorImpl as _MonitorActorImpl
from autopilot.monitor.detectors import DetectorState, FeatureWatch
from autopilot.monitor.rows import SeriesPoint
from autopilot.monitor.store import MonitorStore

# Imported `as` themselves: importable from here as before the split, though not in __all__.
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
