"""The Controller as a Ray actor: a :class:`ControllerCore` with a tick thread, found by name.

:func:`start_controller` creates the named actor ``"autopilot-controller"`` in
namespace ``"autopilot"`` (detached, restarting) around
:class:`_ControllerActorImpl`; :func:`get_controller` finds it by name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from autopilot.config import AutopilotConfig
from autopilot.controller.core import ControllerCore
from autopilot.controller.launchers import Launcher, RayJobLauncher, RayTaskLauncher, RetrainRequest
from autopilot.controller.probes import dashboard_url, endpoint_breakers
from autopilot.errors import ControlError
from autopilot.journal import Journal, jsonable
from autopilot.records import named_actor
from autopilot.routing import CONTROLLER_ACTOR, NAMESPACE

__all__ = ["CONTROLLER_ACTOR", "NAMESPACE", "get_controller", "start_controller"]

# The package's logger, named as before the split.
log = logging.getLogger("autopilot.controller")


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
    # Ray types an actor method without @ray.method as the plain function, hiding .remote.
    ray.get(handle.ready.remote())  # type: ignore[attr-defined]
    return handle


def get_controller() -> Any:
    """The running Controller actor, or :class:`ControlError` if there is none."""
    return named_actor(CONTROLLER_ACTOR, "controller")
