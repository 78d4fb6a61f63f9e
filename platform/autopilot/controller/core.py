"""The :class:`ControllerCore`: the control loop for many models, without Ray.

Tenants (add and recover models), the tick (gather, decide, apply, record),
applying decisions to the registry and the launcher, journalling the
detectors' early warnings, recording and notifying, the routing table,
manual commands and status. Gathering evidence is
:class:`~autopilot.controller.evidence.EvidenceGathering`, mixed in.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import yaml

from autopilot.config import AutopilotConfig
from autopilot.controller.evidence import EvidenceGathering
from autopilot.controller.launchers import Launcher, LaunchStatus, RetrainRequest
from autopilot.controller.managed import Managed, Training
from autopilot.controller.tables import build_table, table_key
from autopilot.errors import ControlError, RegistryError, TrainingError
from autopilot.journal import Journal, jsonable
from autopilot.notify import Notifier
from autopilot.policy import decide, next_state
from autopilot.policy.types import Decision, Evidence, ManualCommand, ModelState
from autopilot.routing import RoutingTable

__all__ = ["COMMANDS", "ControllerCore"]

# The package's logger, named as before the split.
log = logging.getLogger("autopilot.controller")

COMMANDS = ("promote", "rollback", "pause", "resume", "retrain", "set_weights")
_NOTIFY_QUIET = frozenset({"none", "hold"})



class ControllerCore(EvidenceGathering):
    """The control loop for many models, without Ray.

    Parameters
    ----------
    registry
        A :class:`~autopilot.registry.Registry`, or a callable giving the
        registry for a model's config (tenants may use different tracking URIs).
    monitor
        A :class:`~autopilot.monitor.MonitorStore` or anything with its
        interface (:class:`~autopilot.monitor.MonitorProxy` for the actor).
    journal
        Where decisions and recovery state go.
    launcher
        Starts retrains (:class:`Launcher`).
    notifier
        Webhooks; by default one per model from ``controller.webhooks``.
    clock
        Time source (a fake one in tests).
    breakers
        Circuit-breaker state per version as the endpoint sees it
        (:func:`endpoint_breakers` over HTTP in the actor); None: unknown.
    """

    def __init__(
        self,
        *,
        registry: Any,
        monitor: Any,
        journal: Journal,
        launcher: Launcher,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        breakers: Callable[[AutopilotConfig], Mapping[str, str]] | None = None,
    ) -> None:
        self._registry = registry
        self.monitor = monitor
        self.journal = journal
        self.launcher = launcher
        self._notifier = notifier
        self._notifiers: dict[str, Notifier] = {}
        self.clock = clock
        self._breakers = breakers
        self._models: dict[str, Managed] = {}
        self._loaded: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ tenants

    def registry(self, model: str) -> Any:
        reg = self._registry
        if callable(reg) and not hasattr(reg, "list_versions"):
            return reg(self._models[model].cfg)
        return reg

    def models(self) -> list[str]:
        return sorted(self._models)

    def config(self, model: str) -> AutopilotConfig:
        return self._managed(model).cfg

    def _managed(self, model: str) -> Managed:
        try:
            return self._models[model]
        except KeyError:
            raise ControlError(
                f"model {model!r} is not managed by this controller; managed: {self.models()}"
            ) from None

    def add_model(self, cfg: AutopilotConfig) -> ModelState:
        """Manage ``cfg``'s model; recover its state if the journal knows it."""
        with self._lock:
            name = cfg.name
            m = Managed(cfg, ModelState(model=name, mode=cfg.policy.canary.mode))
            self._models[name] = m
            reg = self.registry(name)
            champ_v = reg.alias(name, "champion")
            champion = None if champ_v is None else champ_v.version
            saved = self.journal.load_state(name, "state")
            state = ModelState.from_dict(saved) if saved else ModelState(
                model=name, champion=champion, mode=cfg.policy.canary.mode,
                weights={champion: 1.0} if champion else {},
            )
            m.state = self._reconcile(state, champion)
            table = self.journal.load_state(name, "routing")
            m.table = RoutingTable.from_dict(table) if table else None
            training = self.journal.load_state(name, "training")
            if training and m.state.phase == "training":
                m.training = Training(training["handle"], RetrainRequest(**training["request"]),
                                       training.get("journal_id"))
            m.gate_since = self.journal.load_state(name, "gate_since")
            m.detected = set(self.journal.load_state(name, "detected") or ())
            self._configure_monitor(name)
            self._publish(m, m.state)
            self._save(m)
            return m.state

    def _reconcile(self, state: ModelState, champion: str | None) -> ModelState:
        """Make the saved state agree with the registry's champion alias (the truth)."""
        if state.champion == champion:
            return state
        if champion is None:
            return state  # registry empty (e.g. a fresh registry): keep what we knew
        if state.challenger == champion:
            # Crashed after promoting in the registry, before saving the state.
            fallback = state.champion
        else:
            fallback = state.fallback if state.fallback != champion else None
        return replace(state, phase="steady", champion=champion, challenger=None,
                       fallback=fallback, step=0, canary_started_at=None,
                       step_started_at=None, step_requests={}, min_p=1.0,
                       weights={champion: 1.0}, shadow=(), validating_since=None)

    def _configure_monitor(self, model: str) -> None:
        m = self._models[model]
        for v in (m.state.champion, m.state.challenger):
            if v is None:
                continue
            loaded = self._load(model, v)
            self.monitor.configure(model, task=loaded.schema.task, classes=loaded.schema.classes,
                                   target=loaded.schema.target,
                                   window_rows=m.cfg.monitor.window_rows)
            if loaded.reference_profile and not self.monitor.has_reference(model, v):
                self.monitor.set_reference(model, v, loaded.reference_profile)

    def _load(self, model: str, version: str) -> Any:
        key = (model, str(version))
        if key not in self._loaded:
            self._loaded[key] = self.registry(model).load(model, version)
        return self._loaded[key]

    # --------------------------------------------------------------- the loop

    def tick(self, model: str | None = None) -> dict[str, Decision]:
        """One pass of gather → decide → apply → record, for one model or all of them."""
        names = [model] if model is not None else self.models()
        out: dict[str, Decision] = {}
        for name in names:
            with self._lock:
                try:
                    out[name] = self._tick_one(self._managed(name))
                except ControlError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one model must not stop the others
                    log.exception("tick failed for model %s", name)
                    m = self._models[name]
                    why = f"tick failed: {type(exc).__name__}: {exc}"
                    if m.last.get("error") != why:  # journal a persisting failure once
                        self.journal.record(name, "error", reasons=[why],
                                            outcome=f"failed: {type(exc).__name__}")
                    m.last = {**m.last, "error": why}
        return out

    def _tick_one(self, m: Managed) -> Decision:
        now = float(self.clock())
        records = m.cfg.resolved_state_dir() / "records"
        if records.is_dir():
            # What the endpoint spooled to disk while the monitor was away counts too.
            self.monitor.replay(str(records))
        self._journal_detections(m, now)
        ev = self.gather(m, now)
        decision = decide(m.state, ev, m.cfg.policy)
        new_state = next_state(m.state, decision, ev)
        outcome = "applied"
        try:
            new_state = self._apply(m, decision, ev, new_state)
        except (RegistryError, TrainingError, ControlError, OSError, ValueError) as exc:
            outcome = f"failed: {type(exc).__name__}: {exc}"
            log.warning("applying %s for %s failed: %s", decision.action, m.cfg.name, exc)
            new_state = m.state
        outcome = self._record(m, decision, ev, outcome)
        m.state = new_state
        self._publish(m, new_state)
        self._save(m)
        m.last = {"ts": now, "decision": decision.to_dict(), "outcome": outcome}
        return decision

    # ------------------------------------------------------------------ apply

    def _apply(self, m: Managed, d: Decision, ev: Evidence, new: ModelState) -> ModelState:
        """Carry out ``d``: launches and registry moves; returns the state to keep."""
        name, old = m.cfg.name, m.state
        reg = self.registry(name)
        if d.action == "retrain":
            self._launch(m, d, ev)
            if ev.error_change is not None and old.champion is not None:
                # acted on: the next alarm must be a new change
                self.journal.save_state(name, f"change_acted:{old.champion}",
                                        ev.error_change.at)
                self.monitor.reset_detectors(name, old.champion)
        elif d.action in ("abort", "validate") or (
                old.phase == "training" and new.phase != "training"):
            if m.training is not None and m.training.journal_id is not None:
                # The retrain's own entry says how it ended, not only that it was launched.
                end = (f"trained version {ev.candidate}" if ev.candidate is not None
                       else f"failed: {ev.training_error or d.action}")
                self.journal.update_outcome(
                    m.training.journal_id,
                    f"applied: {self.launcher.kind} {m.training.handle}: {end}")
            m.training = None
        if d.action == "validate":
            # Gate on labelled rows the candidate did not train on.
            m.gate_since = self._cut_of_last_training(m)
        if d.action == "start_canary" and "gate_candidate_value" in d.numbers:
            self.journal.save_state(name, f"gate_value:{d.version}",
                                    d.numbers["gate_candidate_value"])
        # Registry follows the state: champion first (serving follows the alias) ...
        if new.champion is not None and new.champion != old.champion:
            history = reg.champion_history(name)
            if (d.action == "rollback" and len(history) >= 2 and history[-1] == old.champion
                    and history[-2] == new.champion):
                reg.rollback(name)
            else:
                reg.promote(name, new.champion)
            self._load(name, new.champion)
            self.monitor.reset_detectors(name)
            if d.action == "promote" and d.baseline is not None:
                self.journal.save_state(name, f"baseline_floor:{new.champion}", d.baseline)
            self.monitor.reset_feature_detectors(name)
        # ... then the challenger that left (archived unless it became champion) ...
        gone = old.challenger
        if gone is not None and gone != new.challenger and gone != new.champion:
            self._archive(reg, name, gone)
        if (d.action in ("archive_candidate", "accept_drift") and d.rebaseline
                and new.champion is not None):
            m.note = self._rebaseline(name, new.champion,
                                      m.cfg.policy.triggers.drift.min_rows)
            if d.baseline is not None:
                self.journal.save_state(name, f"baseline:{new.champion}", d.baseline)
        # ... then a new challenger.
        if new.challenger is not None and new.challenger != old.challenger:
            reg.set_alias(name, "challenger", new.challenger)
            self._transition(reg, name, new.challenger, "testing")
            loaded = self._load(name, new.challenger)
            if loaded.reference_profile:
                self.monitor.set_reference(name, new.challenger, loaded.reference_profile)
        if new.phase == "canary" and old.phase != "canary" and new.challenger is not None:
            self._transition(reg, name, new.challenger, "staging")
        if new.champion is not None and new.champion != old.champion:
            self._configure_monitor(name)
        live = {new.champion, new.challenger, new.fallback}
        for key in [k for k in self._loaded if k[0] == name and k[1] not in live]:
            del self._loaded[key]  # keep loaded only the versions the model may still use
        return new

    @staticmethod
    def _transition(reg: Any, name: str, version: str, status: str) -> None:
        current = reg.get(name, version).status
        if current in (status, "production"):
            return
        if status == "staging" and current == "draft":
            reg.transition(name, version, "testing")
        reg.transition(name, version, status)

    @staticmethod
    def _archive(reg: Any, name: str, version: str) -> None:
        challenger = reg.alias(name, "challenger")
        if challenger is not None and challenger.version == version:
            reg.delete_alias(name, "challenger")
        if reg.get(name, version).status not in ("archived", "production"):
            reg.transition(name, version, "archived")

    def _rebaseline(self, name: str, champion: str, rows: int) -> str:
        """Accept the drift the champion held up on: re-fit its reference on the newest rows.

        The newest ``rows`` only (the drift trigger's ``min_rows``): the window behind
        the drift report still holds rows from before the shift, and a reference
        fitted on them reads the shifted rows that replace them as drift again.
        """
        try:
            done = self.monitor.rebaseline(name, champion, rows=rows)
        except (ControlError, ValueError) as exc:
            # The archive stands either way; the drift trigger merely fires again.
            return f"re-baseline of champion {champion} failed: {type(exc).__name__}: {exc}"
        # The alarms spoke of the inputs the old reference described; start them afresh.
        self.monitor.reset_feature_detectors(name)
        return f"champion {champion} reference re-baselined on {done['rows']} recent rows"

    def _cut_of_last_training(self, m: Managed) -> float | None:
        saved = self.journal.load_state(m.cfg.name, "last_cut")
        return None if saved is None else float(saved)

    def _launch(self, m: Managed, d: Decision, ev: Evidence) -> None:
        name, cfg = m.cfg.name, m.cfg
        trigger = d.trigger or "manual"
        state_dir = cfg.resolved_state_dir()
        ccfg = cfg.controller
        # after a located change, the rows since it only (d.train_since): older rows teach
        # the concept that no longer holds
        frame = self.monitor.labelled_frame(name, since=d.train_since, limit=ccfg.retrain_rows)
        time_col = cfg.data.time_column
        if time_col and time_col not in frame.columns:
            # Requests carry features only; the prediction time orders the window instead.
            frame[time_col] = frame["_ts"]
        # The newest rows stay out of training: the offline gate compares champion and
        # candidate on rows neither has seen.
        n_hold = int(len(frame) * ccfg.gate_holdout)
        train = frame.iloc[: len(frame) - n_hold] if n_hold else frame
        request_dir = state_dir / "retrain"
        request_dir.mkdir(parents=True, exist_ok=True)
        stamp = f"{name}-{int(ev.now * 1000)}"
        cfg_path = state_dir / "configs" / f"{name}.yaml"
        cfg_path.parent.mkdir(parents=True, exist_ok=True)
        raw = cfg.model_dump(mode="json")
        # Absolute paths: load_config resolves relative ones against the YAML's own folder.
        raw["state_dir"] = str(state_dir)
        if cfg.data.path is not None:
            raw["data"]["path"] = str(cfg.data.path.expanduser().resolve())
        cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        data_path = request_dir / f"{stamp}.parquet"
        if len(train):
            cut = float(train["_ts"].iloc[-1])
            window = (f"labelled rows {len(train)} ts {float(train['_ts'].iloc[0]):.0f}"
                      f"..{cut:.0f}")
        else:
            cut, window = None, "none"
        train.drop(columns=["_ts", "_request_id"], errors="ignore").to_parquet(data_path)
        req = RetrainRequest(name, str(cfg_path), trigger, m.state.champion, str(data_path),
                             window, float(ev.now))
        if len(train) < ccfg.min_retrain_rows and trigger != "initial":
            m.training = Training("none", req, status=LaunchStatus(
                "failed", error=f"only {len(train)} labelled rows for the retrain window "
                                f"(< controller.min_retrain_rows {ccfg.min_retrain_rows})"))
            return
        self.journal.save_state(name, "last_cut", cut)
        try:
            handle = self.launcher.launch(req)
        except Exception as exc:  # noqa: BLE001 - a failed launch is a failed training
            m.training = Training("none", req, status=LaunchStatus(
                "failed", error=f"launch failed: {type(exc).__name__}: {exc}"))
            return
        m.training = Training(handle, req)

    # ---------------------------------------------------------------- detect

    def _journal_detections(self, m: Managed, now: float) -> None:
        """Journal the streaming detectors' new alarms as one ``detected`` entry, and notify.

        Alarms: the monitor's ADWIN on each numeric input feature
        (:meth:`~autopilot.monitor.MonitorStore.feature_alarms`) and the first
        firing of ADWIN on the champion's error stream (on the drift benchmark
        DDM false-alarms and Page-Hinkley is slower; see the README). They are early
        warnings: no action follows from them here; the policy's triggers act on
        the drift report and the labelled performance. Each alarm is journalled
        once; the keys journalled are saved, so a restart does not repeat them,
        and forgotten when the monitor forgets the alarm (a reset).
        """
        name, champ = m.cfg.name, m.state.champion
        current: dict[str, dict[str, Any]] = {}
        for a in self.monitor.feature_alarms(name):
            key = f"feature:{a['feature']}:{a['detector']}:{a['at']!r}"
            current[key] = {"signal": a["feature"], **a}
        if champ is not None:
            det = self.monitor.detectors(name, champ)
            if "adwin" in det.first_at:
                n = int(det.first_at["adwin"])
                alarm = {"signal": "error", "detector": "adwin", "version": champ, "n": n,
                         "labelled": int(det.n)}
                located = self.monitor.error_change(name, champ)
                if located is not None:  # where the change was, and the score either side
                    alarm.update(at=located["at"], rows_since=located["rows_since"],
                                 score_before=located["before"], score_after=located["after"])
                current[f"error:{champ}:adwin:{n}"] = alarm
        fresh = [a for k, a in current.items() if k not in m.detected]
        if not fresh:
            if m.detected - set(current):
                m.detected &= set(current)
                self.journal.save_state(name, "detected", sorted(m.detected))
            return
        fresh.sort(key=lambda a: (a["signal"] == "error", a["n"], a["signal"]))
        reasons = [_detection_reason(a) for a in fresh]
        numbers = {"alarms": fresh, "champion": champ}
        self.journal.record(name, "detected", reasons=reasons, evidence={"alarms": fresh},
                            numbers=numbers, outcome="noted: early warning, no action",
                            ts=now)
        m.detected = set(current)
        self.journal.save_state(name, "detected", sorted(m.detected))
        signals = ", ".join(str(a["signal"]) for a in fresh)
        self._notifier_for(m).notify(name, "detected", reasons,
                                     {"signals": signals, "champion": champ})

    # ----------------------------------------------------------------- record

    def _record(self, m: Managed, d: Decision, ev: Evidence, outcome: str) -> str:
        """Journal and notify; returns the outcome as journalled."""
        name = m.cfg.name
        if d.action == "none":
            return outcome
        shape = _shape(d.reasons)
        if d.action == "hold" and shape == m.last_hold and not d.alert:
            # The same wait (numbers aside) is journalled once, not every tick.
            return outcome
        m.last_hold = shape if d.action == "hold" else ()
        if m.training is not None and d.action == "retrain":
            outcome = (f"{outcome}: {self.launcher.kind} {m.training.handle}"
                       if m.training.status is None else f"failed: {m.training.status.error}")
        if d.action == "validate":
            outcome = f"{outcome}: candidate {d.version}"
        if m.note:
            outcome, m.note = f"{outcome}; {m.note}", ""
        evidence = ev.to_dict()
        entry = self.journal.record(name, d.action, reasons=d.reasons, evidence=evidence,
                                    numbers={**d.to_dict(), "phase": m.state.phase},
                                    outcome=outcome, ts=ev.now)
        if d.action == "retrain" and m.training is not None:
            m.training.journal_id = entry.id
        if d.action not in _NOTIFY_QUIET or d.alert:
            # Version and weights lead: Slack shows the first 10 fields only, and a
            # canary's numbers alone fill them.
            numbers: dict[str, Any] = {}
            if d.version is not None:
                numbers["version"] = d.version
            if d.weights is not None:
                numbers["weights"] = dict(d.weights)
            numbers.update((k, v) for k, v in d.numbers.items() if k not in numbers)
            self._notifier_for(m).notify(name, d.action, d.reasons, numbers)
        return outcome

    def _notifier_for(self, m: Managed) -> Notifier:
        if self._notifier is not None:
            return self._notifier
        name = m.cfg.name
        if name not in self._notifiers:
            self._notifiers[name] = Notifier(m.cfg.controller.webhooks)
        return self._notifiers[name]

    def _save(self, m: Managed) -> None:
        name = m.cfg.name
        self.journal.save_state(name, "state", m.state.to_dict())
        if m.table is not None:
            self.journal.save_state(name, "routing", m.table.to_dict())
        self.journal.save_state(name, "training", None if m.training is None or
                                m.training.status is not None else {
                                    "handle": m.training.handle,
                                    "request": jsonable(m.training.request),
                                    "journal_id": m.training.journal_id})
        self.journal.save_state(name, "gate_since", m.gate_since)

    # --------------------------------------------------------------- routing

    def _publish(self, m: Managed, st: ModelState) -> None:
        """Rebuild the routing table from the state; bump its version when it changed."""
        if st.champion is None:
            return
        table = build_table(st, 0 if m.table is None else m.table.table_version)
        if m.table is None or table_key(table) != table_key(m.table):
            m.table = replace(table, table_version=(0 if m.table is None
                                                    else m.table.table_version) + 1)

    def routing_table(self, model: str) -> dict[str, Any] | None:
        """The current routing table as a dict (what the endpoint's replicas poll)."""
        m = self._models.get(model)
        return None if m is None or m.table is None else m.table.to_dict()

    # -------------------------------------------------------------- commands

    def command(self, model: str, action: str, payload: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
        """A person's override; applied at once (one tick of this model) and journalled."""
        if action not in COMMANDS:
            raise ControlError(f"unknown command {action!r}; commands are {COMMANDS}")
        payload = dict(payload or {})
        m = self._managed(model)
        weights = payload.get("weights")
        if action == "set_weights" and not isinstance(weights, Mapping):
            raise ControlError(f"set_weights needs payload {{'weights': {{version: share}}}}, "
                               f"got {payload!r}")
        cmd = ManualCommand(
            kind=action,  # type: ignore[arg-type]
            version=None if payload.get("version") is None else str(payload["version"]),
            weights=None if weights is None else {str(k): float(v) for k, v in weights.items()},
            reason=str(payload.get("reason", "manual")),
        )
        with self._lock:
            m.commands.append(cmd)
            d = self.tick(model).get(model)
        return {"model": model, "action": action, "decision": None if d is None else d.to_dict(),
                "outcome": m.last.get("outcome"), "state": m.state.to_dict(),
                "routing": self.routing_table(model)}

    # ---------------------------------------------------------------- status

    def status(self, model: str | None = None) -> dict[str, Any]:
        """State, routing, training and the last decision for one model or all."""
        names = [model] if model is not None else self.models()
        out: dict[str, Any] = {}
        for name in names:
            m = self._managed(name)
            out[name] = {
                "state": m.state.to_dict(),
                "routing": self.routing_table(name),
                "training": None if m.training is None else {
                    "handle": m.training.handle, "trigger": m.training.request.trigger,
                    "launched_at": m.training.request.launched_at,
                    "launcher": self.launcher.kind},
                "last": m.last,
                "journal_entries": self.journal.count(name),
                "monitor": self._monitor_summary(m),
            }
        return out

    def _monitor_summary(self, m: Managed) -> dict[str, Any]:
        """What the monitor sees for the live versions (for people; the policy gets Evidence)."""
        name = m.cfg.name
        versions: dict[str, Any] = {}
        for v in (m.state.champion, m.state.challenger):
            if v is None:
                continue
            det = self.monitor.detectors(name, v)
            versions[v] = {
                "performance": self.monitor.performance(name, v),
                "estimated": self.monitor.estimated_accuracy(name, v),
                "detectors_fired": list(det.fired),
                "anomalies": self.monitor.anomalies(name, v),
            }
        return {"stored": self.monitor.count(name), "traffic": self.monitor.traffic(name),
                "versions": versions, "feature_alarms": self.monitor.feature_alarms(name)}

    def history(self, model: str | None = None, *, action: str | None = None,
                since: float | None = None, limit: int | None = 50) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.journal.query(model=model, action=action, since=since,
                                                        limit=limit)]



_NUMBER = re.compile(r"[-+]?\d[\d.,eE+-]*%?")


def _shape(reasons: tuple[str, ...]) -> tuple[str, ...]:
    """Reasons with their numbers blanked: "p=0.31" and "p=0.29" are the same wait."""
    return tuple(_NUMBER.sub("#", r) for r in reasons)


def _detection_reason(a: Mapping[str, Any]) -> str:
    """One line per alarm for the journal and the notification."""
    if a["signal"] == "error":
        where = "" if "score_before" not in a else (
            f"; located {a['rows_since']} labelled rows back, online score "
            f"{a['score_before']:.4g} -> {a['score_after']:.4g}")
        return (f"ADWIN on the error stream of champion {a['version']} fired at labelled row "
                f"{a['n']} since the last reset{where}")
    return (f"ADWIN on feature {a['feature']}: mean {a['mean_before']:.4g} -> "
            f"{a['mean_after']:.4g} (version {a['version']}, served row {a['n']} since the "
            f"last reset, change within the last {a['rows_after']} rows)")

