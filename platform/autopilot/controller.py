"""The Controller: gather evidence, ask the policy, apply the decision, write it down.

:class:`ControllerCore` is plain Python (unit-testable with an
:class:`~autopilot.registry.InMemoryRegistry`, an in-memory
:class:`~autopilot.monitor.MonitorStore`, a fake clock and a launcher that
trains in-process). Each :meth:`~ControllerCore.tick`, per managed model:

1. **gather** an :class:`~autopilot.policy.Evidence` from the monitor (drift of
   the champion's window against its reference profile, labelled performance,
   label-free estimate, canary arm counts), the registry (baseline metric,
   model age) and the retrain launcher (status, candidate version); in the
   ``validating`` phase also score champion and candidate on held-out recent
   labelled rows for the offline gate;
2. **decide** with :func:`autopilot.policy.decide` (pure; no policy here);
3. **apply**: launch a retrain, move registry aliases and statuses so they
   follow the new state (:func:`autopilot.policy.next_state`), publish the
   routing table the endpoint's replicas poll;
4. **record**: the decision with its evidence and outcome in the
   :class:`~autopilot.journal.Journal`, a notification, and the durable state
   (model state, routing table, running training) for recovery.

Before gathering, a tick also journals the monitor's new streaming-detector
alarms (ADWIN on each numeric input feature and on the champion's error
stream) as one ``detected`` entry with a notification: early warnings that
start nothing by themselves.

After a restart :meth:`ControllerCore.add_model` recovers each model from the
journal's saved state and routing table, reconciled with the registry's
aliases (the registry is the truth about the champion); a canary resumes at its
step, with counts that come from the durable monitor.

:class:`ControllerActor` wraps a core as a named, detached, restartable Ray
actor (``"autopilot-controller"`` in namespace ``"autopilot"``) with a tick
thread. Retrains go out through a :class:`Launcher`: :class:`RayJobLauncher`
(``python -m jobs.retrain`` as a Ray job, visible in the dashboard) when the
dashboard answers, else :class:`RayTaskLauncher`; :class:`LocalLauncher` runs
a training callable in a thread (tests, single process).
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

from autopilot.config import AutopilotConfig
from autopilot.errors import ControlError, RegistryError, TrainingError
from autopilot.journal import Journal, jsonable
from autopilot.notify import Notifier
from autopilot.policy import decide, next_state
from autopilot.policy.gate import HIGHER_IS_BETTER
from autopilot.policy.types import (
    ArmStats,
    Decision,
    Evidence,
    GateEvidence,
    ManualCommand,
    ModelState,
    StreamAlarm,
)
from autopilot.routing import CONTROLLER_ACTOR, NAMESPACE, Arm, RoutingTable

__all__ = [
    "CONTROLLER_ACTOR",
    "NAMESPACE",
    "ControllerCore",
    "LaunchStatus",
    "Launcher",
    "LocalLauncher",
    "RayJobLauncher",
    "RayTaskLauncher",
    "RetrainRequest",
    "build_table",
    "endpoint_breakers",
    "get_controller",
    "start_controller",
]

log = logging.getLogger(__name__)

COMMANDS = ("promote", "rollback", "pause", "resume", "retrain", "set_weights")
_NOTIFY_QUIET = frozenset({"none", "hold"})


# ------------------------------------------------------------------- launching


@dataclass(frozen=True)
class RetrainRequest:
    """Everything a retrain needs, as plain values a Ray job or task can carry."""

    model: str
    config_path: str  # the model's config, written as YAML under the state folder
    trigger: str
    parent_version: str | None
    data_path: str  # Parquet file of the labelled training window
    data_window: str
    launched_at: float


@dataclass(frozen=True)
class LaunchStatus:
    """Where a launched retrain is: ``running``, ``succeeded`` (with ``version``) or ``failed``."""

    status: str
    version: str | None = None
    error: str | None = None


class Launcher(Protocol):
    """Starts retrains and reports on them; handles are strings that survive a restart."""

    kind: str

    def launch(self, request: RetrainRequest) -> str: ...

    def poll(self, handle: str, request: RetrainRequest) -> LaunchStatus: ...


class LocalLauncher:
    """Run ``train(request) -> version`` in a thread pool of this process.

    Used by unit tests and as the last resort when Ray is absent. A handle does
    not survive a restart of the process (poll then reports a failure).
    """

    kind = "local"

    def __init__(self, train: Callable[[RetrainRequest], str], max_workers: int = 1) -> None:
        self._train = train
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="autopilot-retrain")
        self._futures: dict[str, Future[str]] = {}

    def launch(self, request: RetrainRequest) -> str:
        handle = f"local-{uuid.uuid4().hex[:12]}"
        self._futures[handle] = self._pool.submit(self._train, request)
        return handle

    def poll(self, handle: str, request: RetrainRequest) -> LaunchStatus:
        fut = self._futures.get(handle)
        if fut is None:
            return LaunchStatus("failed", error=f"retrain {handle} was lost (process restarted)")
        if not fut.done():
            return LaunchStatus("running")
        exc = fut.exception()
        if exc is not None:
            return LaunchStatus("failed", error=f"{type(exc).__name__}: {exc}")
        return LaunchStatus("succeeded", version=str(fut.result()))

    def wait(self, timeout_s: float = 60.0) -> None:
        """Block until every launched retrain finished (tests)."""
        for fut in list(self._futures.values()):
            try:
                fut.result(timeout=timeout_s)
            except Exception:  # noqa: BLE001 - the failure is reported by poll()
                pass


def train_from_request(request: RetrainRequest) -> str:
    """Run one retrain in this process: load the window, train, register; returns the version.

    An empty window (an initial training, before any labels) trains on the
    config's own data source instead.
    """
    from autopilot.config import load_config
    from autopilot.registry import open_registry
    from autopilot.training.data import load_frame
    from autopilot.training.pipeline import champion_config, train_and_register

    cfg = load_config(request.config_path)
    frame = pd.read_parquet(request.data_path)
    window = request.data_window
    if len(frame) == 0:
        frame = load_frame(cfg.data)
        window = f"config data source rows 0:{len(frame)}"
    registry = open_registry(cfg)
    outcome = train_and_register(
        cfg, frame, registry, trigger=request.trigger,
        parent_version=request.parent_version, data_window=window,
        warm_start=champion_config(registry, request.model),
    )
    return str(outcome.version.version)


class RayTaskLauncher:
    """Run :func:`train_from_request` as a Ray task (when the dashboard is not reachable)."""

    kind = "ray_task"

    def __init__(self, num_cpus: float = 0.5,
                 train: Callable[[RetrainRequest], str] | None = None) -> None:
        import ray

        self._remote = ray.remote(num_cpus=num_cpus, max_retries=0)(train or train_from_request)
        self._refs: dict[str, Any] = {}

    def launch(self, request: RetrainRequest) -> str:
        handle = f"task-{uuid.uuid4().hex[:12]}"
        self._refs[handle] = self._remote.remote(request)
        return handle

    def poll(self, handle: str, request: RetrainRequest) -> LaunchStatus:
        import ray

        ref = self._refs.get(handle)
        if ref is None:
            return LaunchStatus("failed", error=f"retrain task {handle} was lost on restart")
        done, _ = ray.wait([ref], timeout=0)
        if not done:
            return LaunchStatus("running")
        try:
            return LaunchStatus("succeeded", version=str(ray.get(ref)))
        except Exception as exc:  # noqa: BLE001 - a task failure is data for the policy
            return LaunchStatus("failed", error=f"{type(exc).__name__}: {exc}")


def ray_auth_headers() -> dict[str, str]:
    """``Authorization`` header for Ray 2.60's token auth, when a token is configured."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if not token and path.is_file():
        token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def dashboard_url() -> str | None:
    """The running cluster's dashboard URL if it answers, else None."""
    import httpx

    url = os.environ.get("RAY_DASHBOARD_ADDRESS")
    if not url:
        try:
            import ray
            from ray._private import ray_constants
            from ray.experimental.internal_kv import _internal_kv_get

            # The dashboard records its address in the cluster's GCS; absent when the
            # cluster runs without one. (`ray._private.worker.get_dashboard_url()` is only
            # right in a driver: in a worker, the controller actor included, it answers
            # Ray's default 127.0.0.1:8265, which may be another cluster's dashboard.)
            raw = (_internal_kv_get(ray_constants.DASHBOARD_ADDRESS,
                                    namespace=ray_constants.KV_NAMESPACE_DASHBOARD)
                   if ray.is_initialized() else None)
            url = raw.decode() if raw else None
        except Exception:  # noqa: BLE001 - no Ray, no dashboard
            url = None
    if not url:
        return None
    if not url.startswith("http"):
        url = f"http://{url}"
    try:
        resp = httpx.get(f"{url}/api/version", headers=ray_auth_headers(), timeout=2.0)
    except httpx.HTTPError:
        return None
    return url if resp.status_code == 200 else None


class RayJobLauncher:
    """Submit ``python -m jobs.retrain`` as a Ray job, so it shows in the dashboard's job list.

    The entrypoint uses this interpreter's absolute path (a job otherwise runs
    with the PATH of whoever started the cluster). The new version is read back
    from the registry: the newest version registered for the model, with the
    request's trigger and parent, after the launch time.
    """

    kind = "ray_job"

    def __init__(self, address: str, registry_for: Callable[[str], Any]) -> None:
        from ray.job_submission import JobSubmissionClient

        self.address = address
        self._client = JobSubmissionClient(address, headers=ray_auth_headers())
        self._registry_for = registry_for

    def launch(self, request: RetrainRequest) -> str:
        args = [sys.executable, "-m", "jobs.retrain", "--config", request.config_path,
                "--trigger", request.trigger, "--data", request.data_path]
        if request.parent_version is not None:
            args += ["--parent-version", request.parent_version]
        handle = f"autopilot-retrain-{request.model}-{uuid.uuid4().hex[:8]}"
        self._client.submit_job(
            entrypoint=" ".join(_quote(a) for a in args),
            submission_id=handle,
            runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}, **_code_runtime_env()},
        )
        return handle

    def poll(self, handle: str, request: RetrainRequest) -> LaunchStatus:
        from ray.job_submission import JobStatus

        try:
            status = self._client.get_job_status(handle)
        except Exception as exc:  # noqa: BLE001 - the job server lost it
            return LaunchStatus("failed", error=f"job {handle}: {exc}")
        if status in (JobStatus.PENDING, JobStatus.RUNNING):
            return LaunchStatus("running")
        if status != JobStatus.SUCCEEDED:
            tail = ""
            try:
                lines = [ln.strip() for ln in self._client.get_job_logs(handle).splitlines()
                         if ln.strip()]
                tail = " | ".join(lines[-3:])[-400:]
            except Exception:  # noqa: BLE001 - logs are a courtesy
                pass
            return LaunchStatus("failed", error=f"job {handle} {status.value}: {tail}")
        registry = self._registry_for(request.model)
        found = [v for v in registry.list_versions(request.model)
                 if v.created_at >= request.launched_at - 1.0
                 and v.lineage.trigger == request.trigger]
        if not found:
            return LaunchStatus("failed", error=f"job {handle} succeeded but registered "
                                                "no new version")
        return LaunchStatus("succeeded", version=found[-1].version)


def _code_runtime_env() -> dict[str, Any]:
    """This worker's uploaded code (``working_dir``/``py_modules`` URIs), for a job it submits.

    A controller started by ``autopilot up --address`` or inside a Ray job runs code
    shipped to the cluster; its retrain jobs must run that same code, not whatever
    version (if any) the cluster has installed. Empty outside Ray or with no uploads.
    """
    import ray

    try:
        env = ray.get_runtime_context().runtime_env if ray.is_initialized() else {}
    except Exception:  # noqa: BLE001 - no runtime context: nothing to pass on
        return {}
    return {k: env[k] for k in ("working_dir", "py_modules") if env.get(k)}


def endpoint_breakers(url: str, model: str, timeout_s: float = 2.0) -> dict[str, str]:
    """Breaker state per version from the endpoint's ``GET /v1/models/{model}``; {} if away."""
    import httpx

    try:
        resp = httpx.get(f"{url.rstrip('/')}/v1/models/{model}", timeout=timeout_s)
        versions = resp.json().get("versions", {}) if resp.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}
    return {str(v): str(info.get("breaker")) for v, info in versions.items()
            if isinstance(info, Mapping) and info.get("breaker")}


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# ------------------------------------------------------------------------ core


@dataclass
class _Training:
    handle: str
    request: RetrainRequest
    journal_id: int | None = None
    status: LaunchStatus | None = None  # set when the launch itself failed


@dataclass
class _Managed:
    cfg: AutopilotConfig
    state: ModelState
    table: RoutingTable | None = None
    training: _Training | None = None
    commands: deque[ManualCommand] = field(default_factory=deque)
    last_hold: tuple[str, ...] = ()
    gate_since: float | None = None
    last: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # what applying the decision did beyond the routing, for its outcome
    detected: set[str] = field(default_factory=set)  # keys of the alarms already journalled


def _default_metric(cfg: AutopilotConfig, task: str, n_classes: int) -> str:
    from autopilot.training.metrics import default_metric

    return cfg.training.metric or default_metric(task, n_classes)


def _higher_is_better(metric: str) -> bool:
    from autopilot.training.metrics import direction

    try:
        return direction(metric) == "max"
    except (KeyError, ValueError):
        return HIGHER_IS_BETTER.get(metric, True)


class ControllerCore:
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
        self._models: dict[str, _Managed] = {}
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

    def _managed(self, model: str) -> _Managed:
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
            m = _Managed(cfg, ModelState(model=name, mode=cfg.policy.canary.mode))
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
                m.training = _Training(training["handle"], RetrainRequest(**training["request"]),
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
                                   target=loaded.schema.target)
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

    def _tick_one(self, m: _Managed) -> Decision:
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

    # ----------------------------------------------------------------- gather

    def gather(self, m: _Managed, now: float) -> Evidence:
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
        """The champion's performance baseline: its holdout score, raised to the floor it
        inherited on promotion, unless a re-baseline anchored it to a live measurement."""
        anchored = self.journal.load_state(name, f"baseline:{champ}")
        if anchored is not None:
            return float(anchored)
        floor = self.journal.load_state(name, f"baseline_floor:{champ}")
        values = [float(v) for v in (holdout, floor) if v is not None]
        if not values:
            return None
        return max(values) if higher_is_better else min(values)

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

    def _arms(self, m: _Managed, now: float) -> dict[str, ArmStats]:
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

    def _gate_evidence(self, m: _Managed, champ: str, cand: str) -> GateEvidence | None:
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

    # ------------------------------------------------------------------ apply

    def _apply(self, m: _Managed, d: Decision, ev: Evidence, new: ModelState) -> ModelState:
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
        if d.action == "archive_candidate" and d.rebaseline and new.champion is not None:
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

    def _cut_of_last_training(self, m: _Managed) -> float | None:
        saved = self.journal.load_state(m.cfg.name, "last_cut")
        return None if saved is None else float(saved)

    def _launch(self, m: _Managed, d: Decision, ev: Evidence) -> None:
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
            m.training = _Training("none", req, status=LaunchStatus(
                "failed", error=f"only {len(train)} labelled rows for the retrain window "
                                f"(< controller.min_retrain_rows {ccfg.min_retrain_rows})"))
            return
        self.journal.save_state(name, "last_cut", cut)
        try:
            handle = self.launcher.launch(req)
        except Exception as exc:  # noqa: BLE001 - a failed launch is a failed training
            m.training = _Training("none", req, status=LaunchStatus(
                "failed", error=f"launch failed: {type(exc).__name__}: {exc}"))
            return
        m.training = _Training(handle, req)

    # ---------------------------------------------------------------- detect

    def _journal_detections(self, m: _Managed, now: float) -> None:
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

    def _record(self, m: _Managed, d: Decision, ev: Evidence, outcome: str) -> str:
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
            numbers = {k: v for k, v in d.numbers.items()}
            if d.version is not None:
                numbers["version"] = d.version
            if d.weights is not None:
                numbers["weights"] = dict(d.weights)
            self._notifier_for(m).notify(name, d.action, d.reasons, numbers)
        return outcome

    def _notifier_for(self, m: _Managed) -> Notifier:
        if self._notifier is not None:
            return self._notifier
        name = m.cfg.name
        if name not in self._notifiers:
            self._notifiers[name] = Notifier(m.cfg.controller.webhooks)
        return self._notifiers[name]

    def _save(self, m: _Managed) -> None:
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

    def _publish(self, m: _Managed, st: ModelState) -> None:
        """Rebuild the routing table from the state; bump its version when it changed."""
        if st.champion is None:
            return
        table = build_table(st, 0 if m.table is None else m.table.table_version)
        if m.table is None or _table_key(table) != _table_key(m.table):
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

    def _monitor_summary(self, m: _Managed) -> dict[str, Any]:
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


def build_table(st: ModelState, table_version: int) -> RoutingTable:
    """The routing table a model state implies."""
    if st.champion is None:
        raise ValueError(f"model {st.model!r} has no champion to route to")
    champ, chal = st.champion, st.challenger
    live = [champ] + ([chal] if chal is not None and chal not in st.isolated else [])
    raw = {v: max(0.0, float(st.weights.get(v, 0.0))) for v in live}
    total = sum(raw.values())
    weights = {v: w / total for v, w in raw.items()} if total > 0 else {champ: 1.0}
    arms = [Arm(champ, weights.get(champ, 0.0), "champion")]
    if len(live) > 1:
        arms.append(Arm(chal, weights.get(chal, 0.0), "challenger"))  # type: ignore[arg-type]
    fallback = st.fallback if st.fallback not in (None, champ, chal) else None
    mode = "shadow" if st.shadow else (st.mode if st.mode in ("split", "bandit") else "split")
    return RoutingTable(st.model, table_version, mode, tuple(arms), fallback,  # type: ignore
                        paused=st.phase == "paused")


_NUMBER = re.compile(r"[-+]?\d[\d.,eE+-]*%?")


def _shape(reasons: tuple[str, ...]) -> tuple[str, ...]:
    """Reasons with their numbers blanked: "p=0.31" and "p=0.29" are the same wait."""
    return tuple(_NUMBER.sub("#", r) for r in reasons)


def _table_key(t: RoutingTable) -> dict[str, Any]:
    d = t.to_dict()
    d.pop("table_version")
    return d


def _norm(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


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


def _drift_fields(report: Any) -> dict[str, Any]:
    """Evidence fields from a ``stats.DriftReport`` (per-feature: its effect size)."""
    return {
        "drift_severity": str(report.severity),
        "drift_share": float(report.share_drifted),
        "drift_rows": int(report.n_current),
        "drift_features": {str(f.feature): float(f.effect_size) for f in report.features},
    }


# ------------------------------------------------------------------ Ray actor


class _ControllerActorImpl:
    """The Ray actor: a :class:`ControllerCore` plus a tick thread."""

    def __init__(self, configs: list[dict[str, Any]], journal_path: str,
                 auto_tick: bool = True, launcher: str = "auto",
                 train_fn: Callable[[RetrainRequest], str] | None = None,
                 endpoints: dict[str, str] | None = None) -> None:
        from autopilot.config import parse_config
        from autopilot.monitor import MonitorProxy, get_monitor
        from autopilot.registry import open_registry

        cfgs = [parse_config(c) for c in configs]
        registries: dict[str, Any] = {}

        def registry_for(cfg: AutopilotConfig) -> Any:
            uri = cfg.resolved_tracking_uri()
            if uri not in registries:
                registries[uri] = open_registry(cfg)
            return registries[uri]

        self._cfgs = {c.name: c for c in cfgs}
        if launcher not in ("auto", "job", "task"):
            raise ControlError(f"launcher must be 'auto', 'job' or 'task', got {launcher!r}")
        url = dashboard_url() if launcher in ("auto", "job") and train_fn is None else None
        if launcher == "job" and url is None:
            raise ControlError("launcher 'job' needs a reachable Ray dashboard")
        if url is not None:
            chosen: Launcher = RayJobLauncher(url, lambda name: registry_for(self._cfgs[name]))
        else:
            cpus = cfgs[0].training.cpus_per_trial if cfgs else 0.5
            chosen = RayTaskLauncher(num_cpus=cpus, train=train_fn)
        self._endpoints = dict(endpoints or {})

        def breakers(cfg: AutopilotConfig) -> dict[str, str]:
            url = self._endpoints.get(cfg.name) or \
                f"http://{cfg.serving.host}:{cfg.serving.http_port}"
            return endpoint_breakers(url, cfg.name)

        self.core = ControllerCore(
            registry=registry_for, monitor=MonitorProxy(get_monitor()),
            journal=Journal(journal_path), launcher=chosen, breakers=breakers,
        )
        for cfg in cfgs:
            self.core.add_model(cfg)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if auto_tick:
            self._thread = threading.Thread(target=self._loop, name="autopilot-tick",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            interval = min((c.controller.tick_interval_s for c in self._cfgs.values()),
                           default=10.0)
            if self._stop.wait(interval):
                return
            try:
                self.core.tick()
            except Exception:  # noqa: BLE001 - the loop never dies
                log.exception("controller tick failed")

    def ready(self) -> dict[str, Any]:
        return {"models": self.core.models(), "launcher": self.core.launcher.kind}

    def add_model(self, cfg: dict[str, Any]) -> dict[str, Any]:
        from autopilot.config import parse_config

        c = parse_config(cfg)
        self._cfgs[c.name] = c
        return self.core.add_model(c).to_dict()

    def tick(self, model: str | None = None) -> dict[str, Any]:
        return {k: v.to_dict() for k, v in self.core.tick(model).items()}

    def routing_table(self, model_name: str) -> dict[str, Any] | None:
        return self.core.routing_table(model_name)

    def command(self, model_name: str, action: str, payload: dict[str, Any] | None = None
                ) -> dict[str, Any]:
        return jsonable(self.core.command(model_name, action, payload or {}))

    def status(self, model_name: str | None = None) -> dict[str, Any]:
        return jsonable(self.core.status(model_name))

    def history(self, model_name: str | None = None, action: str | None = None,
                since: float | None = None, limit: int | None = 50) -> list[dict[str, Any]]:
        return self.core.history(model_name, action=action, since=since, limit=limit)

    def stop(self) -> None:
        self._stop.set()


def start_controller(
    configs: list[AutopilotConfig],
    *,
    journal_path: str | Path | None = None,
    auto_tick: bool = True,
    launcher: str = "auto",
    train_fn: Callable[[RetrainRequest], str] | None = None,
    endpoints: Mapping[str, str] | None = None,
    detached: bool = True,
    num_cpus: float = 0.1,
) -> Any:
    """Start (or find) the named Controller actor and wait until it is ready; returns its handle.

    ``max_restarts=-1`` brings it back after a crash; its constructor then
    recovers every model from the journal (``<state_dir>/journal.db`` of the
    first config by default) and the registry.

    ``launcher``: ``"job"`` (Ray job, needs the dashboard), ``"task"`` (Ray
    task) or ``"auto"`` (job when the dashboard answers). ``train_fn``
    replaces :func:`train_from_request` in the task (a custom trainer).
    ``endpoints`` maps a model to its endpoint's base URL (default
    ``http://<serving.host>:<serving.http_port>``), read for breaker states.
    """
    import ray

    if not configs:
        raise ControlError("start_controller needs at least one model config")
    path = journal_path or configs[0].resolved_state_dir() / "journal.db"
    cls = ray.remote(_ControllerActorImpl)
    opts: dict[str, Any] = dict(
        name=CONTROLLER_ACTOR, namespace=NAMESPACE, get_if_exists=True, max_restarts=-1,
        max_task_retries=3, num_cpus=num_cpus,
        # Threaded: routing_table polls and commands are answered while a tick runs.
        max_concurrency=8,
    )
    if detached:
        opts["lifetime"] = "detached"
    handle = cls.options(**opts).remote([c.model_dump(mode="json") for c in configs],
                                        str(path), auto_tick, launcher, train_fn,
                                        dict(endpoints or {}))
    ray.get(handle.ready.remote())
    return handle


def get_controller() -> Any:
    """The running Controller actor, or :class:`ControlError` if there is none."""
    import ray

    try:
        return ray.get_actor(CONTROLLER_ACTOR, namespace=NAMESPACE)
    except ValueError as exc:
        raise ControlError(
            f"no controller actor {CONTROLLER_ACTOR!r} in namespace {NAMESPACE!r}"
        ) from exc
