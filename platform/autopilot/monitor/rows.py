"""What the Monitor holds per prediction in memory, and how it compares values.

A :class:`Row` is one prediction in a version's window (mutable: its label
joins later); :class:`ModelInfo` is a model's task, class order and target
column; :class:`SeriesPoint` is one time bucket of :meth:`MonitorStore.series`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelInfo", "Row", "SeriesPoint", "as_float", "norm", "version_key"]


def norm(value: Any) -> Any:
    """Canonical form for label/prediction comparison: 1, 1.0 and '1' all match."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass
class Row:
    """One prediction held in a version's in-memory window (mutable: labels join later)."""

    request_id: str
    version: str
    ts: float
    features: dict[str, Any]
    prediction: Any
    proba: list[float] | None
    latency_ms: float
    error: bool
    shadow: bool
    label: Any = None
    score: float | None = None


@dataclass
class ModelInfo:
    task: str | None = None  # None: inferred from the first labelled rows
    classes: tuple[str, ...] = ()
    target: str = "label"
    window_rows: int | None = None  # rows kept per version; None: the store's default


@dataclass(frozen=True)
class SeriesPoint:
    """Requests, errors and latency in one time bucket of a version's window."""

    start: float
    requests: int
    errors: int
    error_rate: float
    p50_latency_ms: float
    p95_latency_ms: float



def version_key(v: str) -> tuple[int, str]:
    return (int(v), v) if v.isdigit() else (1 << 62, v)

