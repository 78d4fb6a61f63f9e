"""Endpoint metrics through ``ray.util.metrics`` (Ray dashboard and Prometheus).

All series carry ``model`` and ``version`` tags, so one dashboard shows each
live version side by side. Outside a Ray worker the calls are no-ops, which is
what lets unit tests build an endpoint as plain Python.

Series (Prometheus adds the ``ray_`` prefix):

- ``autopilot_requests_total``: HTTP prediction requests by the version that answered
- ``autopilot_predictions_total``: rows predicted
- ``autopilot_errors_total``: calls of a version that raised (tag ``kind``)
- ``autopilot_latency_ms``: request latency histogram
- ``autopilot_cache_hits_total`` / ``autopilot_cache_misses_total``: per row
- ``autopilot_batch_size``: rows per model call after ``@serve.batch``
- ``autopilot_breaker_open``: 1 while a version's breaker is open or half-open
- ``autopilot_fallbacks_total``: rows answered by a fallback instead of the chosen version
- ``autopilot_records_dropped``: records the buffer could not hand off (gauge, cumulative)
"""

from __future__ import annotations

from ray.util.metrics import Counter, Gauge, Histogram

__all__ = ["LATENCY_BOUNDARIES_MS", "ServingMetrics"]

LATENCY_BOUNDARIES_MS: list[float] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
_BATCH_BOUNDARIES: list[float] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096]
_TAGS = ("model", "version")


class ServingMetrics:
    """The endpoint's metric objects for one model."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._requests = Counter("autopilot_requests_total", "prediction requests", _TAGS)
        self._predictions = Counter("autopilot_predictions_total", "rows predicted", _TAGS)
        self._errors = Counter(
            "autopilot_errors_total", "version calls that raised", (*_TAGS, "kind")
        )
        self._latency = Histogram(
            "autopilot_latency_ms", "request latency (ms)", LATENCY_BOUNDARIES_MS, _TAGS
        )
        self._hits = Counter("autopilot_cache_hits_total", "cache hits (rows)", _TAGS)
        self._misses = Counter("autopilot_cache_misses_total", "cache misses (rows)", _TAGS)
        self._batch = Histogram(
            "autopilot_batch_size", "rows per model call", _BATCH_BOUNDARIES, _TAGS
        )
        self._breaker = Gauge("autopilot_breaker_open", "1 if the breaker is not closed", _TAGS)
        self._fallbacks = Counter(
            "autopilot_fallbacks_total", "rows answered by a fallback", _TAGS
        )
        self._dropped = Gauge(
            "autopilot_records_dropped", "prediction records not handed off", ("model",)
        )

    def _t(self, version: str) -> dict[str, str]:
        return {"model": self.model, "version": version}

    def request(self, version: str, rows: int, latency_ms: float) -> None:
        tags = self._t(version)
        self._requests.inc(1, tags)
        self._predictions.inc(rows, tags)
        self._latency.observe(latency_ms, tags)

    def error(self, version: str, kind: str) -> None:
        self._errors.inc(1, {**self._t(version), "kind": kind})

    def cache(self, version: str, hits: int, misses: int) -> None:
        if hits:
            self._hits.inc(hits, self._t(version))
        if misses:
            self._misses.inc(misses, self._t(version))

    def batch(self, version: str, rows: int) -> None:
        self._batch.observe(rows, self._t(version))

    def breaker(self, version: str, is_open: bool) -> None:
        self._breaker.set(1.0 if is_open else 0.0, self._t(version))

    def fallback(self, version: str, rows: int) -> None:
        self._fallbacks.inc(rows, self._t(version))

    def dropped(self, total: int) -> None:
        self._dropped.set(float(total), {"model": self.model})
