"""Routing tables from model states: the table a state implies, and its content key."""

from __future__ import annotations

from typing import Any

from autopilot.policy.types import ModelState
from autopilot.routing import Arm, RoutingTable

__all__ = ["build_table", "table_key"]


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


def table_key(t: RoutingTable) -> dict[str, Any]:
    d = t.to_dict()
    d.pop("table_version")
    return d
