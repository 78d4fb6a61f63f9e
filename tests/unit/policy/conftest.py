"""Builders shared by the policy tests: a canary state and arm statistics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from autopilot.config import PolicyConfig
from autopilot.policy.types import ArmStats, Evidence, ModelState

DAY = 86400.0
T0 = 1_800_000_000.0  # a fixed Unix time (2027-01-15 08:00 UTC)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def policy() -> PolicyConfig:
    return PolicyConfig()


@pytest.fixture
def make_policy() -> Callable[..., PolicyConfig]:
    """``make_policy(canary={...}, guards={...})``: a PolicyConfig with sections overridden."""

    def build(**sections: dict[str, Any]) -> PolicyConfig:
        return PolicyConfig.model_validate(sections)

    return build


@pytest.fixture
def canary_state() -> Callable[..., ModelState]:
    """A model mid-canary: champion "1", challenger "2", settled at step ``step``."""

    def build(step: int = 0, share: float | None = None, **changes: Any) -> ModelState:
        steps = (0.05, 0.25, 0.5, 1.0)
        s = steps[step] if share is None else share
        fields: dict[str, Any] = dict(
            model="m", phase="canary", champion="1", challenger="2", fallback="0",
            step=step, canary_started_at=T0, step_started_at=T0,
            step_requests={"1": 0, "2": 0}, weights={"1": 1.0 - s, "2": s},
        )
        fields.update(changes)
        return ModelState(**fields)

    return build


@pytest.fixture
def arms() -> Callable[..., dict[str, ArmStats]]:
    """``arms(n_a, acc_a, n_b, acc_b, ...)``: labelled, error-free arm stats by version."""

    def build(n_a: int, acc_a: float, n_b: int, acc_b: float, errors_b: int = 0,
              p95_b: float = 20.0, errors_a: int = 0) -> dict[str, ArmStats]:
        return {
            "1": ArmStats("1", n_a, float(round(n_a * acc_a)), n_a, errors_a, 20.0),
            "2": ArmStats("2", n_b, float(round(n_b * acc_b)), n_b, errors_b, p95_b),
        }

    return build


@pytest.fixture
def evidence() -> Callable[..., Evidence]:
    def build(now: float = T0 + 60.0, **fields: Any) -> Evidence:
        return Evidence(model="m", now=now, **fields)

    return build
