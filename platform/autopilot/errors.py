"""Autopilot's exception hierarchy.

Every error Autopilot raises on purpose is an :class:`AutopilotError`, so a
caller can catch the project's failures without catching programming errors.
Errors from outside systems (MLflow, Ray, Serve) become one of these at the
adapter that talks to them, chained with ``raise ... from``.

Bad arguments to pure functions (``stats/``, ``policy/``) raise the built-in
``ValueError``/``TypeError`` naming the bad value, as numpy and scipy do.

::

    AutopilotError
    ├── ConfigError            the user's config file is invalid (names the key path)
    ├── DataError              training or scoring data cannot be used (names the column)
    ├── TrainingError          a training or retrain could not produce a candidate
    ├── RegistryError          the model registry refused or failed an operation
    │   ├── VersionNotFound    no such model, version or alias
    │   ├── IntegrityError     an artifact's SHA-256 does not match the registry
    │   └── TransitionError    a lifecycle move that is not allowed
    ├── ServingError           the endpoint could not be built or reached
    └── ControlError           the controller or monitor is absent or refused
        └── NotRunningError    no local stack is running (CLI)
"""

from __future__ import annotations

__all__ = [
    "AutopilotError",
    "ConfigError",
    "ControlError",
    "DataError",
    "IntegrityError",
    "NotRunningError",
    "RegistryError",
    "ServingError",
    "TrainingError",
    "TransitionError",
    "VersionNotFound",
]


class AutopilotError(Exception):
    """Base class of every error Autopilot raises on purpose."""


class ConfigError(AutopilotError):
    """The configuration is invalid; the message names the key path."""


class DataError(AutopilotError):
    """Data cannot be used for training or scoring; the message names why."""


class TrainingError(AutopilotError):
    """A training run could not produce a candidate model."""


class RegistryError(AutopilotError):
    """The model registry refused or failed an operation."""


class VersionNotFound(RegistryError):
    """No such registered model, version or alias."""


class IntegrityError(RegistryError):
    """A model artifact's SHA-256 differs from the hash recorded at registration."""


class TransitionError(RegistryError):
    """A lifecycle transition that the status machine does not allow."""


class ServingError(AutopilotError):
    """The serving endpoint could not be built, updated or reached."""


class ControlError(AutopilotError):
    """The controller or monitor is absent, or refused a command."""


class NotRunningError(ControlError):
    """No local Autopilot stack is running."""
