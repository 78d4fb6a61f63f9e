"""What the endpoint hands to the monitor: prediction records and labels.

:class:`PredictionRecord` is written once per prediction (one per row) and
:class:`Label` once per ground-truth label that arrives through the feedback
route. Both travel as plain dicts (``to_dict``) so the Monitor actor needs no
import of this module's classes across process boundaries.

:class:`RecordBuffer` keeps the hand-off off the request path: ``add`` only
appends to a bounded in-memory queue; a daemon thread drains it in batches to a
sink callable. A slow sink delays only that thread; a sink that raises loses
nothing silently: the batch goes to the ``fallback`` sink if one is given, and
what neither could take (or what arrived while the queue was full) is counted
in :attr:`RecordBuffer.dropped`.

Example
-------
>>> got = []
>>> buf = RecordBuffer(got.extend, batch_size=2, flush_s=0.01)
>>> for i in range(3):
...     _ = buf.add({"i": i})
>>> buf.close()
>>> sorted(r["i"] for r in got), buf.dropped
([0, 1, 2], 0)
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "MONITOR_ACTOR",
    "NAMESPACE",
    "BufferStats",
    "Label",
    "PredictionRecord",
    "RecordBuffer",
    "Sink",
    "named_actor",
]

#: The sink: ``ray.get_actor(MONITOR_ACTOR, namespace=NAMESPACE)`` with
#: ``ingest.remote(list[dict])`` and ``ingest_labels.remote(list[dict])``.
NAMESPACE = "autopilot"
MONITOR_ACTOR = "autopilot-monitor"

Sink = Callable[[list[dict[str, Any]]], Any]


def named_actor(name: str, what: str) -> Any:
    """The running Ray actor ``name`` in :data:`NAMESPACE`.

    Raises
    ------
    ControlError
        If there is none, naming the ``what`` (e.g. "monitor") that is missing.
    """
    import ray

    from autopilot.errors import ControlError

    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError as exc:
        raise ControlError(
            f"no {what} actor {name!r} in namespace {NAMESPACE!r}; start it first"
        ) from exc


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, numpy scalars become Python ones."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return _clean(item())
    return value


def _clean_flat(features: Mapping[str, Any]) -> dict[str, Any]:
    """``_clean`` for a flat mapping, skipping the common case of plain str/int/finite floats."""
    out = dict(features)
    for k, v in out.items():
        t = type(v)
        if t is str or t is int or v is None or (t is float and math.isfinite(v)):
            continue
        out[k] = _clean(v)
    return out


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as the monitor sees it.

    ``version`` is the version whose answer is in ``prediction`` (the fallback's
    when the breaker redirected); ``shadow`` marks a challenger's copy that was
    never returned to the caller. ``error`` holds the failure message when the
    version raised (the caller then got the fallback's answer, recorded
    separately).

    >>> r = PredictionRecord("r1", "churn", "3", {"x": 1.0}, 1, [0.2, 0.8], 3.5, None,
    ...                      False, "u1", 1.7e9)
    >>> PredictionRecord.from_dict(r.to_dict()) == r
    True
    """

    request_id: str
    model: str
    version: str
    features: dict[str, Any]
    prediction: Any
    proba: list[float] | None
    latency_ms: float
    error: str | None
    cache_hit: bool
    caller_key: str | None
    ts: float
    shadow: bool = False

    def to_dict(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies every feature value, and this runs
        # once per predicted row on the serving hot path.
        return {
            "request_id": self.request_id,
            "model": self.model,
            "version": self.version,
            "features": _clean_flat(self.features),
            "prediction": _clean(self.prediction),
            "proba": None if self.proba is None else _clean(list(self.proba)),
            "latency_ms": _clean(float(self.latency_ms)),
            "error": self.error,
            "cache_hit": bool(self.cache_hit),
            "caller_key": self.caller_key,
            "ts": float(self.ts),
            "shadow": bool(self.shadow),
        }

    @staticmethod
    def batch_dicts(
        request_ids: Sequence[str],
        model: str,
        version: str,
        features: Sequence[Mapping[str, Any]],
        predictions: Sequence[Any],
        proba: list[list[float]] | None,
        latency_ms: float,
        error: str | None,
        cache_hit: bool,
        caller_key: str | None,
        ts: float,
        shadow: bool = False,
        features_clean: bool = False,
    ) -> list[dict[str, Any]]:
        """``to_dict()`` of one record per row of a request, without building the objects.

        The serving hot path emits one record per predicted row; this skips a frozen
        dataclass per row and shares the per-request fields. ``features_clean=True``
        says the feature dicts are already JSON-safe (the endpoint's validated rows:
        finite floats, ``None``, str, int, bool) and are used as they are.

        >>> d = PredictionRecord.batch_dicts(["a", "b"], "m", "1", [{"x": 1.0}, {"x": 2.0}],
        ...                                  [0, 1], None, 2.0, None, False, None, 5.0)
        >>> d[1] == PredictionRecord("b", "m", "1", {"x": 2.0}, 1, None, 2.0, None, False,
        ...                          None, 5.0).to_dict()
        True
        """
        lat = _clean(float(latency_ms))
        out = []
        for i, rid in enumerate(request_ids):
            out.append({
                "request_id": rid,
                "model": model,
                "version": version,
                "features": features[i] if features_clean else _clean_flat(features[i]),
                "prediction": _clean(predictions[i]),
                "proba": None if proba is None or proba[i] is None else _clean(list(proba[i])),
                "latency_ms": lat,
                "error": error,
                "cache_hit": bool(cache_hit),
                "caller_key": caller_key,
                "ts": float(ts),
                "shadow": bool(shadow),
            })
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PredictionRecord:
        proba = raw.get("proba")
        return cls(
            request_id=str(raw["request_id"]),
            model=str(raw["model"]),
            version=str(raw["version"]),
            features=dict(raw["features"]),
            prediction=raw["prediction"],
            proba=None if proba is None else [float(p) for p in proba],
            latency_ms=float(raw["latency_ms"]),
            error=raw.get("error"),
            cache_hit=bool(raw.get("cache_hit", False)),
            caller_key=raw.get("caller_key"),
            ts=float(raw["ts"]),
            shadow=bool(raw.get("shadow", False)),
        )


@dataclass(frozen=True)
class Label:
    """Ground truth for an earlier prediction, joined by ``request_id``.

    >>> lab = Label("r1", "churn", 1, 1.7e9)
    >>> Label.from_dict(lab.to_dict()) == lab
    True
    """

    request_id: str
    model: str
    label: Any
    ts: float

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Label:
        return cls(str(raw["request_id"]), str(raw["model"]), raw["label"], float(raw["ts"]))


@dataclass(frozen=True)
class BufferStats:
    """Counters of a :class:`RecordBuffer` (monotonic since creation)."""

    accepted: int
    delivered: int
    fallback_delivered: int
    dropped: int
    pending: int
    sink_errors: int


@dataclass
class _Counters:
    accepted: int = 0
    delivered: int = 0
    fallback_delivered: int = 0
    dropped: int = 0
    sink_errors: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class RecordBuffer:
    """Batch dicts off the caller's thread to ``sink`` (and ``fallback`` on failure).

    Parameters
    ----------
    sink : callable
        Called as ``sink(batch)`` with a list of dicts from the buffer's own
        thread; may block (that only delays later batches) or raise.
    batch_size : int
        Largest batch handed to the sink; a full batch wakes the thread early.
    flush_s : float
        Longest time a record waits before its batch is handed off.
    max_pending : int
        Bound on queued records; ``add`` on a full queue counts a drop and
        returns ``False`` instead of growing memory or blocking.
    fallback : callable, optional
        Takes a batch the sink refused (for example a local JSONL writer).
    name : str
        Thread name, for debugging.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        batch_size: int = 256,
        flush_s: float = 0.5,
        max_pending: int = 100_000,
        fallback: Sink | None = None,
        name: str = "autopilot-records",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not flush_s > 0:
            raise ValueError(f"flush_s must be > 0, got {flush_s}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self._sink = sink
        self._fallback = fallback
        self._batch_size = int(batch_size)
        self._flush_s = float(flush_s)
        self._max_pending = int(max_pending)
        self._queue: deque[dict[str, Any]] = deque()
        self._c = _Counters()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------- request side

    def add(self, item: dict[str, Any]) -> bool:
        """Queue one record; never blocks. ``False`` (and a counted drop) when full or closed."""
        with self._c.lock:
            if self._closed.is_set() or len(self._queue) >= self._max_pending:
                self._c.dropped += 1
                return False
            self._queue.append(item)
            self._c.accepted += 1
            n = len(self._queue)
        if n >= self._batch_size:
            self._wake.set()
        return True

    def extend(self, items: list[dict[str, Any]]) -> int:
        """Queue several records under one lock; returns how many were accepted."""
        with self._c.lock:
            room = 0 if self._closed.is_set() else self._max_pending - len(self._queue)
            take = items[:max(0, room)]
            self._queue.extend(take)
            self._c.accepted += len(take)
            self._c.dropped += len(items) - len(take)
            n = len(self._queue)
        if n >= self._batch_size:
            self._wake.set()
        return len(take)

    # --------------------------------------------------------------- inspection

    @property
    def dropped(self) -> int:
        return self._c.dropped

    @property
    def last_error(self) -> str | None:
        """Message of the last sink failure, if any."""
        return self._c.last_error

    def stats(self) -> BufferStats:
        with self._c.lock:
            return BufferStats(
                accepted=self._c.accepted,
                delivered=self._c.delivered,
                fallback_delivered=self._c.fallback_delivered,
                dropped=self._c.dropped,
                pending=len(self._queue) + self._in_flight,
                sink_errors=self._c.sink_errors,
            )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far has been handed off; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Hand off what is queued, then stop the thread; later ``add`` calls count drops."""
        self.flush(timeout)
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout)

    # ------------------------------------------------------------- worker side

    def _take(self) -> list[dict[str, Any]]:
        with self._c.lock:
            n = min(self._batch_size, len(self._queue))
            # In flight before popping, so flush() never sees both empty mid-move.
            self._in_flight = n
            batch = [self._queue.popleft() for _ in range(n)]
        return batch

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._sink(batch)
        except Exception as exc:  # noqa: BLE001 - any sink failure is counted, never raised
            with self._c.lock:
                self._c.sink_errors += 1
                self._c.last_error = f"{type(exc).__name__}: {exc}"
        else:
            with self._c.lock:
                self._c.delivered += len(batch)
            return
        if self._fallback is not None:
            try:
                self._fallback(batch)
            except Exception as exc:  # noqa: BLE001
                with self._c.lock:
                    self._c.last_error = f"fallback {type(exc).__name__}: {exc}"
            else:
                with self._c.lock:
                    self._c.fallback_delivered += len(batch)
                return
        with self._c.lock:
            self._c.dropped += len(batch)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_s)
            self._wake.clear()
            while True:
                batch = self._take()
                if not batch:
                    break
                self._deliver(batch)
                with self._idle:
                    self._in_flight = 0
                    self._idle.notify_all()
            with self._idle:
                self._idle.notify_all()
            if self._closed.is_set():
                return
