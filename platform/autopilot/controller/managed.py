"""What the controller keeps per managed model: its config, state, routing and retrain."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from autopilot.config import AutopilotConfig
from autopilot.controller.launchers import LaunchStatus, RetrainRequest
from autopilot.policy.types import ManualCommand, ModelState
from autopilot.routing import RoutingTable

__all__ = ["Managed", "Training"]


@dataclass
class Training:
    handle: str
    request: RetrainRequest
    journal_id: int | None = None
    status: LaunchStatus | None = None  # set when the launch itself failed


@dataclass
class Managed:
    cfg: AutopilotConfig
    state: ModelState
    table: RoutingTable | None = None
    training: Training | None = None
    commands: deque[ManualCommand] = field(default_factory=deque)
    last_hold: tuple[str, ...] = ()
    gate_since: float | None = None
    last: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # what applying the decision did beyond the routing, for its outcome
    detected: set[str] = field(default_factory=set)  # keys of the alarms already journalled

