"""Pure decisions: triggers, guards, the offline gate, canary verdicts, rollbacks.

No Ray, no MLflow, no I/O: functions of frozen dataclasses and numpy arrays.
The controller calls :func:`decide` each tick, applies the :class:`Decision`
and stores :func:`next_state`; the submodules are the pieces ``decide`` uses:

- :mod:`~autopilot.policy.types`     Evidence, ModelState, Decision and results
- :mod:`~autopilot.policy.triggers`  drift, performance, schedule (cron), age, volume, manual
- :mod:`~autopilot.policy.guards`    interval, concurrency, history, low-usage window, adaptive
- :mod:`~autopilot.policy.gate`      offline paired test of candidate vs champion
- :mod:`~autopilot.policy.canary`    SRM, guardrails, always-valid test, ramp, bandit
- :mod:`~autopilot.policy.rollback`  instant, fallback, gradual, isolate
- :mod:`~autopilot.policy.decide`    decide and next_state
"""

from autopilot.policy.canary import judge_canary, last_wait_step, online_test, start_weights
from autopilot.policy.decide import decide, next_state
from autopilot.policy.gate import metric_function, run_gate
from autopilot.policy.guards import (
    GuardResult,
    adaptive_interval,
    check_guards,
    in_low_usage_window,
)
from autopilot.policy.rollback import (
    champion_failure,
    gradual_rollback,
    instant_rollback,
    isolate_version,
)
from autopilot.policy.triggers import (
    URGENT_TRIGGERS,
    CronSchedule,
    evaluate_triggers,
    parse_cron,
)
from autopilot.policy.types import *  # noqa: F403
from autopilot.policy.types import __all__ as _types_all

__all__ = [
    *_types_all,
    "CronSchedule",
    "GuardResult",
    "URGENT_TRIGGERS",
    "adaptive_interval",
    "champion_failure",
    "check_guards",
    "decide",
    "evaluate_triggers",
    "gradual_rollback",
    "in_low_usage_window",
    "instant_rollback",
    "isolate_version",
    "judge_canary",
    "last_wait_step",
    "metric_function",
    "next_state",
    "online_test",
    "parse_cron",
    "run_gate",
    "start_weights",
]
