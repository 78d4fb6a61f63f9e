"""The Monitor as a Ray actor: start it, find it, and call it like a store.

:func:`start_monitor` creates the named actor ``"autopilot-monitor"`` in
namespace ``"autopilot"`` (detached, restarting) around
:class:`_MonitorActorImpl`; :func:`get_monitor` finds it by name and
:class:`MonitorProxy` calls it with the :class:`MonitorStore` interface.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from autopilot.errors import ControlError
from autopilot.monitor.store import MonitorStore
from autopilot.records import MONITOR_ACTOR, NAMESPACE, named_actor

__all__ = ["MONITOR_ACTOR", "NAMESPACE", "MonitorProxy", "get_monitor", "start_monitor"]



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
    # Ray types an actor method without @ray.method as the plain function, hiding .remote.
    ray.get(handle.ready.remote())  # type: ignore[attr-defined]
    return handle


def get_monitor() -> Any:
    """The running Monitor actor, or :class:`ControlError` if there is none."""
    return named_actor(MONITOR_ACTOR, "monitor")


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
