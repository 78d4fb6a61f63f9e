"""Prediction cache: bounded LRU with a time-to-live, keyed by version and row.

A key is ``(version, row_key)`` where ``row_key`` is a digest of the row's
feature values in schema order (:func:`row_key`), so two versions never share
an answer and a request's field order does not matter. Hit and miss counts are
kept here and exported as metrics by the endpoint.

Example
-------
>>> clock = [0.0]
>>> c = PredictionCache(max_size=2, ttl_s=10.0, clock=lambda: clock[0])
>>> k = row_key(("x", "y"), {"x": 1.0, "y": "a"})
>>> c.get("1", k) is None
True
>>> c.put("1", k, (0, [0.9, 0.1]))
>>> c.get("1", k)
(0, [0.9, 0.1])
>>> clock[0] = 11.0
>>> c.get("1", k) is None, c.hits, c.misses
(True, 1, 2)
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CacheStats", "PredictionCache", "row_key"]


def row_key(names: Sequence[str], row: Mapping[str, Any]) -> bytes:
    """Digest of a row's values in ``names`` order (missing features count as ``None``).

    ``repr`` distinguishes ``1`` from ``"1"`` and ``1.0`` from ``1.5``; BLAKE2b
    with a 16-byte digest is fast and collision-safe for a cache.
    """
    payload = repr(tuple(row.get(n) for n in names)).encode()
    return hashlib.blake2b(payload, digest_size=16).digest()


@dataclass(frozen=True)
class CacheStats:
    size: int
    max_size: int
    hits: int
    misses: int
    evictions: int
    expirations: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class PredictionCache:
    """LRU + TTL map from ``(version, row_key)`` to a cached answer.

    Parameters
    ----------
    max_size : int
        Entries kept; the least recently used is evicted beyond it.
    ttl_s : float
        An entry older than this is a miss (and is removed).
    clock : callable
        Monotonic seconds; injectable for tests.

    Notes
    -----
    Not thread-safe: a Serve replica calls it from its event loop thread only.
    """

    def __init__(
        self, max_size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.max_size = int(max_size)
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._data: OrderedDict[tuple[str, bytes], tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, version: str, key: bytes) -> Any | None:
        """The cached answer, or ``None`` (a miss) when absent or expired."""
        k = (version, key)
        entry = self._data.get(k)
        if entry is None:
            self.misses += 1
            return None
        stored_at, value = entry
        if self._clock() - stored_at > self.ttl_s:
            del self._data[k]
            self.expirations += 1
            self.misses += 1
            return None
        self._data.move_to_end(k)
        self.hits += 1
        return value

    def put(self, version: str, key: bytes, value: Any) -> None:
        k = (version, key)
        self._data[k] = (self._clock(), value)
        self._data.move_to_end(k)
        while len(self._data) > self.max_size:
            self._data.popitem(last=False)
            self.evictions += 1

    def drop_version(self, version: str) -> int:
        """Forget every entry of ``version`` (it was unloaded); returns how many."""
        stale = [k for k in self._data if k[0] == version]
        for k in stale:
            del self._data[k]
        return len(stale)

    def clear(self) -> None:
        self._data.clear()

    def stats(self) -> CacheStats:
        return CacheStats(
            len(self._data), self.max_size, self.hits, self.misses, self.evictions,
            self.expirations,
        )
