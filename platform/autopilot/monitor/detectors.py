"""Streaming detectors: the error-stream set per version and :class:`FeatureWatch` per model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autopilot.monitor.rows import as_float

__all__ = ["DetectorState", "FeatureWatch", "default_detectors"]


@dataclass(frozen=True)
class DetectorState:
    """Streaming detectors on one version's error stream (1 = wrong, 0 = right).

    ``fired`` names the detectors that signalled a change since the last
    :meth:`MonitorStore.reset_detectors`; ``first_at`` is the count of labelled
    rows at each first signal.
    """

    version: str
    n: int
    fired: tuple[str, ...]
    first_at: Mapping[str, int] = field(default_factory=dict)


class FeatureWatch:
    """ADWIN on each numeric input feature of one model's served rows, fed in arrival order.

    The monitor keeps one per model (:meth:`MonitorStore.feature_alarms`); the
    drift benchmark runs the same class. Inputs drift before labels arrive, so a
    change in a feature's mean is an early warning that needs no labels. Each
    detector is ``stats.ADWIN`` with its defaults (River 0.26's); after a
    detection it starts afresh by itself. Memory is O(features * log rows).

    Attributes
    ----------
    n : int
        Rows fed so far (a row missing some feature still counts).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> watch = FeatureWatch()
    >>> xs = np.concatenate([rng.normal(0, 1, 2000), rng.normal(2, 1, 500)])
    >>> hits = [(watch.n, f, c.rows_after, round(c.mean_before, 2), round(c.mean_after, 2))
    ...         for x in xs for f, c in watch.update({"x": x, "k": "a"}, ["x"])]
    >>> hits  # 48 rows after x's mean moved from 0 to 2; the kept 64 rows straddle the change
    [(2048, 'x', 64, -0.03, 1.51)]
    """

    detector = "adwin"

    def __init__(self) -> None:
        self.n = 0
        self._detectors: dict[str, Any] = {}

    def update(self, features: Mapping[str, Any], numeric: Iterable[str]
               ) -> list[tuple[str, Any]]:
        """Feed one row; returns ``(feature, stats.StreamChange)`` for each detector that fired.

        Features named in ``numeric`` whose value is missing, not a number or not
        finite are skipped (that detector sees no observation for this row).
        """
        from autopilot.stats import ADWIN

        self.n += 1
        fired = []
        for name in numeric:
            x = as_float(features.get(name))
            if x is None:
                continue
            det = self._detectors.get(name)
            if det is None:
                det = self._detectors[name] = ADWIN()
            # last_change_ is read now: the detector's next update starts it afresh.
            if det.update(x):
                fired.append((name, det.last_change_))
        return fired


def default_detectors() -> dict[str, Any]:
    from autopilot.stats import ADWIN, DDM, PageHinkley

    return {"page_hinkley": PageHinkley(), "adwin": ADWIN(), "ddm": DDM()}

