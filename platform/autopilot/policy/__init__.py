"""Pure decisions: triggers, guards, the offline gate, canary verdicts, rollbacks.

No Ray, no MLflow, no I/O: functions of frozen dataclasses and numpy arrays.
"""

from autopilot.policy.types import *  # noqa: F403
from autopilot.policy.types import __all__ as _types_all

__all__ = [*_types_all]
