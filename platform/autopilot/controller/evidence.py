"""Gathering a model's :class:`~autopilot.policy.Evidence` from the monitor, registry and launcher.

:class:`EvidenceGathering` is the *gather* step of
:class:`~autopilot.controller.ControllerCore`'s tick, mixed into it: drift of
the champion's window against its reference, labelled performance, the
label-free estimate, the performance baseline, the located error-stream
change, canary arm counts, breaker states, the retrain's status and, while
validating, the offline gate's held-out predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from autopilot.config import AutopilotConfig
from autopilot.controller.launchers import Launcher
from autopilot.controller.managed import Managed
from autopilot.journal import Journal
from autopilot.policy.gate import HIGHER_IS_BETTER
from autopilot.policy.types import ArmStats, Evidence, GateEvidence, StreamAlarm

__all__ = ["EvidenceGathering"]


def _default_metric(cfg: AutopilotConfig, task: str, n_classes: int) -> str:
    from autopilot.training.metrics import default_metric

    return cfg.training.metric or default_metric(task, n_classes)


def _higher_is_better(metric: str) -> bool:
    from autopilot.training.metrics import direction

    try:
        return direction(metric) == "max"
    except (KeyError, ValueError):
        return HIGHER_IS_BETTER.get(metric, True)


def _norm(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _drift_fields(report: Any) -> dict[str, Any]:
    """Evidence fields from a ``stats.DriftReport`` (per-feature: its effect size)."""
    return {
        "drift_severity": str(report.severity),
        "drift_share": float(report.share_drifted),
        "drift_rows": int(report.n_current),
        "drift_features": {str(f.feature): float(f.effect_size) for f in report.features},
    }


class EvidenceGathering:
    """The gather step of :class:`~autopilot.controller.ControllerCore` (mixed into it)."""

    monitor: Any
    journal: Journal
    launcher: Launcher
    _breakers: Callable[[AutopilotConfig], Mapping[str, str]] | None
    _models: dict[str, Managed]

    if TYPE_CHECKING:  # the core's own helper, which gathering uses
        def _load(self, model: str, version: str) -> Any: ...

    def gather(self, m: Managed, now: float) -> Evidence:
        """Evidence for one model at ``now`` (monitor, registry, launcher)."""
        cfg, st, name = m.cfg, m.state, m.cfg.name
        kw: dict[str, Any] = {}
        champ = st.champion
        if champ is not None:
            loaded = self._load(name, champ)
            schema = loaded.schema
            metric = _default_metric(cfg, schema.task, len(schema.classes))
            kw["metric_name"] = metric
            kw["higher_is_better"] = _higher_is_better(metric)
            drift = self.monitor.drift_report(name, champ,
                                              min_rows=cfg.policy.triggers.drift.min_rows)
            if drift is not None:
                kw.update(_drift_fields(drift))
            perf = self.monitor.performance(name, champ, [metric])
            kw["metric_labels"] = int(perf.get("n_labels", 0))
            if metric in perf and math.isfinite(perf[metric]):
                kw["metric_value"] = float(perf[metric])
            if metric == "accuracy":
                est = self.monitor.estimated_accuracy(name, champ)
                if est is not None:
                    kw["estimated_value"] = float(est["estimated_accuracy"])
            mv = loaded.version
            kw["baseline_value"] = self._baseline(name, champ, mv.lineage.metrics.get(metric),
                                                  kw["higher_is_better"])
            kw["error_change"] = self._error_change(name, champ)
            kw["window_changes"] = self._window_changes(m)
            if st.retry_since is not None:
                kw["rows_since_retry"] = int(self.monitor.labelled_rows_since(name,
                                                                              st.retry_since))
            kw["model_age_s"] = max(0.0, now - float(mv.created_at))
            kw["new_labels"] = int(self.monitor.label_count(name, since=float(mv.created_at)))
            kw["labels_per_day"] = float(self.monitor.label_count(name, since=now - 86400.0))
        kw["arms"] = self._arms(m, now)
        if self._breakers is not None:
            kw["breakers"] = dict(self._breakers(cfg))
        kw["running_trainings"] = sum(1 for x in self._models.values() if x.training is not None)
        if m.training is not None:
            status = m.training.status or self.launcher.poll(m.training.handle,
                                                             m.training.request)
            kw["training_status"] = status.status
            if status.status == "succeeded":
                kw["candidate"] = status.version
            elif status.status == "failed":
                kw["training_error"] = status.error
        if st.phase == "validating" and st.challenger is not None and champ is not None:
            kw["gate"] = self._gate_evidence(m, champ, st.challenger)
        if m.commands:  # taken last, so a failure above does not lose the command
            kw["command"] = m.commands.popleft()
        return Evidence(model=name, now=now, **kw)

    def _baseline(self, name: str, champ: str, holdout: Any, higher_is_better: bool
                  ) -> float | None:
        """The champion's performance baseline (see ``Decision.baseline``): the worse of its
        holdout score and its offline-gate score, raised to the floor it inherited on
        promotion, unless a re-baseline anchored it to a live measurement."""
        anchored = self.journal.load_state(name, f"baseline:{champ}")
        if anchored is not None:
            return float(anchored)
        better, worse = (max, min) if higher_is_better else (min, max)
        own = [float(v) for v in (holdout, self.journal.load_state(name, f"gate_value:{champ}"))
               if v is not None]
        floor = self.journal.load_state(name, f"baseline_floor:{champ}")
        values = ([worse(own)] if own else []) + ([float(floor)] if floor is not None else [])
        return better(values) if values else None

    def _error_change(self, name: str, champ: str) -> StreamAlarm | None:
        """The located change in the champion's error stream, unless already acted on."""
        found = self.monitor.error_change(name, champ)
        if found is None:
            return None
        # after a restart the monitor re-reads the stream and finds acted-on changes again
        acted = self.journal.load_state(name, f"change_acted:{champ}")
        if acted is not None and float(found["at"]) <= float(acted):
            return None
        return StreamAlarm(str(found["detector"]), float(found["at"]), int(found["rows_since"]),
                           float(found["before"]), float(found["after"]))

    def _window_changes(self, m: Managed) -> tuple[StreamAlarm, ...]:
        """The served labelled rows of the monitor's window, then of the retrain window,
        each tested for a change (shortest first: the newest regime wins)."""
        if m.cfg.policy.triggers.performance.window_change_alpha is None:
            return ()
        out = []
        sizes = dict.fromkeys((m.cfg.monitor.window_rows, m.cfg.controller.retrain_rows))
        for rows in sizes:
            found = self.monitor.window_change(m.cfg.name, rows)
            if found is not None:
                out.append(StreamAlarm("cusum", float(found["at"]), int(found["rows_since"]),
                                       float(found["before"]), float(found["after"]),
                                       float(found["p_value"])))
        return tuple(out)

    def _arms(self, m: Managed, now: float) -> dict[str, ArmStats]:
        st = m.state
        if st.phase == "canary" and st.canary_started_at is not None:
            since = st.canary_started_at
        else:
            # Outside a canary the champion's health is judged on recent traffic only, so an
            # old burst of errors does not keep it "failing" forever.
            since = now - max(60.0, 6 * m.cfg.controller.tick_interval_s)
        arms = {}
        for v in (st.champion, st.challenger):
            if v is not None:
                arms[v] = ArmStats(**self.monitor.arm_stats(m.cfg.name, v, since))
        return arms

    def _gate_evidence(self, m: Managed, champ: str, cand: str) -> GateEvidence | None:
        name = m.cfg.name
        frame = self.monitor.labelled_frame(name, since=m.gate_since,
                                            limit=max(m.cfg.policy.gate.min_rows * 5, 1000))
        if len(frame) == 0:
            return None
        champion, candidate = self._load(name, champ), self._load(name, cand)
        schema = champion.schema
        from autopilot.training.data import coerce_features

        # The same coercion the endpoint applies to requests before predicting.
        X = coerce_features(frame[list(schema.names)], schema)
        y = frame[schema.target].to_numpy()
        a = np.asarray(champion.model.predict(X))
        b = np.asarray(candidate.model.predict(X))
        if schema.task == "classification":
            y, a, b = (np.asarray([_norm(v) for v in arr]) for arr in (y, a, b))
            gm = m.cfg.training.metric if m.cfg.training.metric in (
                "accuracy", "balanced_accuracy", "f1") else "accuracy"
        else:
            y, a, b = (np.asarray(arr, dtype=float) for arr in (y, a, b))
            gm = m.cfg.training.metric if m.cfg.training.metric in HIGHER_IS_BETTER else "rmse"
        return GateEvidence(y, a, b, gm)

