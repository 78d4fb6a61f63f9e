"""Scenario builders shared by the policy tests: a model waiting on its offline gate."""

from __future__ import annotations

import numpy as np

from autopilot.policy import GateEvidence, ModelState

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def validating(trigger: str | None) -> ModelState:
    return ModelState(model="m", phase="validating", champion="3", challenger="4",
                      weights={"3": 1.0}, validating_since=T0 - 60, trigger=trigger,
                      last_training_at=T0 - 600, training_history=(T0 - 600,))


def gate_rows(acc_champion: float, acc_candidate: float, n: int = 1000) -> GateEvidence:
    r = np.random.default_rng(7)
    y = r.integers(0, 2, n)
    return GateEvidence(y, np.where(r.random(n) < acc_champion, y, 1 - y),
                        np.where(r.random(n) < acc_candidate, y, 1 - y))
