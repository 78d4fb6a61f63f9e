"""Where prediction records and labels go: the Monitor actor, else local JSONL.

:class:`ActorSink` calls ``ingest`` (or ``ingest_labels``) on the Monitor actor
``autopilot-monitor`` in namespace ``autopilot`` and waits for the result from
the record buffer's own thread, so a failure is seen (and the batch goes to the
fallback) instead of vanishing in an unobserved ObjectRef.

:class:`JsonlSink` is that fallback: when no monitor runs (or it refuses a
batch), records are appended to ``<state_dir>/records/<model>-<kind>-<pid>.jsonl``
(one file per replica process, so concurrent replicas never interleave partial
lines). Nothing the endpoint acknowledged is lost: the monitor can replay those
files, and only what neither the actor nor the disk took is counted as dropped
(``RecordBuffer.dropped``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from autopilot.errors import ControlError
from autopilot.records import MONITOR_ACTOR, NAMESPACE

__all__ = ["ActorSink", "JsonlSink"]


class ActorSink:
    """Call ``method`` on a named actor with each batch; raise if it is absent or fails.

    Parameters
    ----------
    method : str
        ``"ingest"`` or ``"ingest_labels"``.
    actor : str
        Actor name (default the monitor's).
    namespace : str
    timeout_s : float
        Longest wait for the actor to accept a batch.
    lookup_every_s : float
        After a failed lookup, how long to go straight to the fallback before
        looking again (a lookup costs a GCS round trip).
    """

    def __init__(
        self,
        method: str,
        actor: str = MONITOR_ACTOR,
        namespace: str = NAMESPACE,
        timeout_s: float = 10.0,
        lookup_every_s: float = 2.0,
    ) -> None:
        self.method = method
        self.actor = actor
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.lookup_every_s = lookup_every_s
        self._handle: Any = None
        self._next_lookup = 0.0

    def _get_handle(self) -> Any:
        import ray

        if self._handle is not None:
            return self._handle
        if not ray.is_initialized():
            # Never let a lookup auto-start or auto-connect Ray from a background thread.
            raise ControlError("Ray is not initialised in this process; no monitor to reach")
        now = time.monotonic()
        if now < self._next_lookup:
            raise ControlError(f"actor {self.actor!r} not found (looked up recently)")
        try:
            self._handle = ray.get_actor(self.actor, namespace=self.namespace)
        except ValueError as exc:
            self._next_lookup = now + self.lookup_every_s
            raise ControlError(f"actor {self.actor!r} not found in {self.namespace!r}") from exc
        return self._handle

    def __call__(self, batch: list[dict[str, Any]]) -> None:
        import ray

        handle = self._get_handle()
        try:
            ray.get(getattr(handle, self.method).remote(batch), timeout=self.timeout_s)
        except Exception:
            # The actor may have died or been replaced: look it up afresh next time.
            self._handle = None
            raise


class JsonlSink:
    """Append each batch as JSON lines to one file (created with its folder on demand)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def __call__(self, batch: list[dict[str, Any]]) -> None:
        # orjson: about ten times faster than json here, and this runs for every record
        # whenever no monitor is up (it still competes for the replica's GIL).
        data = b"".join(orjson.dumps(item, default=str) + b"\n" for item in batch)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as fh:
                fh.write(data)
