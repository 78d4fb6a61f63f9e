"""The Controller: gather evidence, ask the policy, apply the decision, write it down.

:class:`ControllerCore` is plain Python (unit-testable with an
:class:`~autopilot.registry.InMemoryRegistry`, an in-memory
:class:`~autopilot.monitor.MonitorStore`, a fake clock and a launcher that
trains in-process). Each :meth:`~ControllerCore.tick`, per managed model:

1. **gather** an :class:`~autopilot.policy.Evidence` from the monitor (drift of
   the champion's window against its reference profile, labelled performance,
   label-free estimate, canary arm counts), the registry (baseline metric,
   model age) and the retrain launcher (status, candidate version); in the
   ``validating`` phase also score champion and candidate on held-out recent
   labelled rows for the offline gate;
2. **decide** with :func:`autopilot.policy.decide` (pure; no policy here);
3. **apply**: launch a retrain, move registry aliases and statuses so they
   follow the new state (:func:`autopilot.policy.next_state`), publish the
   routing table the endpoint's replicas poll;
4. **record**: the decision with its evidence and outcome in the
   :class:`~autopilot.journal.Journal`, a notification, and the durable state
   (model state, routing table, running training) for recovery.

Before gathering, a tick also journals the monitor's new streaming-detector
alarms (ADWIN on each numeric input feature and on the champion's error
stream) as one ``detected`` entry with a notification: early warnings that
start nothing by themselves.

After a restart :meth:`ControllerCore.add_model` recovers each model from the
journal's saved state and routing table, reconciled with the registry's
aliases (the registry is the truth about the champion); a canary resumes at its
step, with counts that come from the durable monitor.

:class:`ControllerActor` wraps a core as a named, detached, restartable Ray
actor (``"autopilot-controller"`` in namespace ``"autopilot"``) with a tick
thread. Retrains go out through a :class:`Launcher`: :class:`RayJobLauncher`
(``python -m jobs.retrain`` as a Ray job, visible in the dashboard) when the
dashboard answers, else :class:`RayTaskLauncher`; :class:`LocalLauncher` runs
a training callable in a thread (tests, single process).

Modules
-------
core
    :class:`ControllerCore`: tenants, the tick, apply, detections, record, commands, status.
evidence
    The gather step (:class:`~autopilot.controller.evidence.EvidenceGathering`, mixed in).
managed
    What the core keeps per model (state, routing table, running retrain).
tables
    :func:`build_table`: the routing table a model state implies.
launchers
    :class:`RetrainRequest`, :class:`LaunchStatus`, :class:`Launcher` and its three kinds.
probes
    HTTP probes: the Ray dashboard (:func:`dashboard_url`) and the endpoint's breakers.
actor
    :func:`start_controller`, :func:`get_controller` and the actor class.
"""

from autopilot.controller.actor import CONTROLLER_ACTOR, NAMESPACE, get_controller, start_controller
from autopilot.controller.core import COMMANDS as COMMANDS
from autopilot.controller.core import ControllerCore
from autopilot.controller.launchers import (
    Launcher,
    LaunchStatus,
    LocalLauncher,
    RayJobLauncher,
    RayTaskLauncher,
    RetrainRequest,
)
from autopilot.controller.launchers import train_from_request as train_from_request
from autopilot.controller.probes import dashboard_url as dashboard_url
from autopilot.controller.probes import endpoint_breakers
from autopilot.controller.probes import ray_auth_headers as ray_auth_headers
from autopilot.controller.tables import build_table

# Imported `as` themselves: importable from here as before the split, though not in __all__.
__all__ = [
    "CONTROLLER_ACTOR",
    "NAMESPACE",
    "ControllerCore",
    "LaunchStatus",
    "Launcher",
    "LocalLauncher",
    "RayJobLauncher",
    "RayTaskLauncher",
    "RetrainRequest",
    "build_table",
    "endpoint_breakers",
    "get_controller",
    "start_controller",
]

