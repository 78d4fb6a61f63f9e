"""Pure statistics: drift, experiments, sequential tests, anomalies.

numpy/scipy only: no Ray, no MLflow, no I/O. Every function returns a small
frozen dataclass (:class:`DriftResult`, :class:`TestResult`, ...).
"""

from autopilot.stats import (
    anomaly,
    bayes,
    changepoint,
    drift,
    experiments,
    multivariate,
    power,
    profile,
    report,
    sequential,
    streaming,
)
from autopilot.stats.anomaly import *  # noqa: F403
from autopilot.stats.bayes import *  # noqa: F403
from autopilot.stats.changepoint import *  # noqa: F403
from autopilot.stats.drift import *  # noqa: F403
from autopilot.stats.experiments import *  # noqa: F403
from autopilot.stats.multivariate import *  # noqa: F403
from autopilot.stats.power import *  # noqa: F403
from autopilot.stats.profile import *  # noqa: F403
from autopilot.stats.report import *  # noqa: F403
from autopilot.stats.results import DriftResult, TestResult
from autopilot.stats.sequential import *  # noqa: F403
from autopilot.stats.streaming import *  # noqa: F403

__all__ = [
    "DriftResult",
    "TestResult",
    *drift.__all__,
    *profile.__all__,
    *report.__all__,
    *multivariate.__all__,
    *streaming.__all__,
    *changepoint.__all__,
    *experiments.__all__,
    *power.__all__,
    *sequential.__all__,
    *bayes.__all__,
    *anomaly.__all__,
]
