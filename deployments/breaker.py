"""Per-version circuit breaker over a sliding window of outcomes.

States: ``closed`` (traffic flows), ``open`` (the version gets no traffic; the
endpoint answers from the champion, the fallback version or a baseline), and
``half_open`` (after ``open_s``, up to ``half_open_probes`` requests go through
as probes; that many successes in a row close it, one failure re-opens it).

A call counts as *bad* when it raised or took longer than ``latency_ms`` (a
slow version hurts users as much as a failing one). The breaker trips once the
window holds at least ``min_requests`` outcomes and the bad share reaches
``error_rate``.

Example
-------
>>> from autopilot.config import BreakerConfig
>>> t = [0.0]
>>> b = CircuitBreaker(BreakerConfig(window=4, min_requests=2, error_rate=0.5, open_s=5,
...                                  half_open_probes=1), clock=lambda: t[0])
>>> b.record(False, 1.0); b.record(False, 1.0); b.state
'open'
>>> b.allow()
False
>>> t[0] = 6.0
>>> b.allow(), b.state
(True, 'half_open')
>>> b.record(True, 1.0); b.state
'closed'
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from autopilot.config import BreakerConfig

__all__ = ["BreakerSnapshot", "CircuitBreaker", "State"]

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerSnapshot:
    state: State
    window_calls: int
    window_bad: int
    trips: int
    opened_at: float | None


class CircuitBreaker:
    """One version's breaker; call :meth:`allow` before and :meth:`record` after a call.

    Not thread-safe: used from a replica's event loop thread only.
    """

    def __init__(self, cfg: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock
        self._window: deque[bool] = deque(maxlen=cfg.window)  # True = bad
        self._bad = 0
        self._state: State = "closed"
        self._opened_at: float | None = None
        self._probes_out = 0
        self._probe_successes = 0
        self.trips = 0

    @property
    def state(self) -> State:
        return self._state

    def allow(self) -> bool:
        """May a request go to this version now? (Moves open -> half-open after ``open_s``.)"""
        if self._state == "closed":
            return True
        if self._state == "open":
            assert self._opened_at is not None
            if self._clock() - self._opened_at < self.cfg.open_s:
                return False
            self._state = "half_open"
            self._probes_out = 0
            self._probe_successes = 0
        if self._probes_out < self.cfg.half_open_probes:
            self._probes_out += 1
            return True
        return False

    def record(self, ok: bool, latency_ms: float) -> None:
        """Record the outcome of a call this breaker allowed."""
        bad = (not ok) or latency_ms > self.cfg.latency_ms
        if self._state == "half_open":
            if bad:
                self._open()
                return
            self._probe_successes += 1
            self._probes_out = max(0, self._probes_out - 1)
            if self._probe_successes >= self.cfg.half_open_probes:
                self._close()
            return
        if self._state == "open":
            return  # a call that started before the trip; its outcome is already priced in
        if len(self._window) == self._window.maxlen and self._window[0]:
            self._bad -= 1
        self._window.append(bad)
        self._bad += bad
        n = len(self._window)
        if n >= self.cfg.min_requests and self._bad / n >= self.cfg.error_rate:
            self._open()

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self.trips += 1
        self._probes_out = 0
        self._probe_successes = 0

    def _close(self) -> None:
        self._state = "closed"
        self._opened_at = None
        self._window.clear()
        self._bad = 0

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(self._state, len(self._window), self._bad, self.trips,
                               self._opened_at)
