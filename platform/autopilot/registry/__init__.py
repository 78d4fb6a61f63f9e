"""The model registry: versions with lineage, integrity and a lifecycle.

Only this package talks to MLflow's model registry. Everything else sees
:class:`Registry` and its frozen results (:class:`ModelVersion`,
:class:`Lineage`, :class:`LoadedModel`), so the controller, the endpoint and
the training jobs never depend on MLflow's entities or exceptions; MLflow
errors become :class:`~autopilot.errors.RegistryError` subclasses here.

Modules
-------
versions
    The frozen results, and the tags and side files a version is recorded with.
integrity
    Canonical JSON and the SHA-256 over a model artifact's files.
lifecycle
    The abstract :class:`Registry`: statuses, transitions, promote, rollback.
memory
    :class:`InMemoryRegistry`, the twin for unit tests.
mlflow_store
    :class:`MlflowRegistry` and :func:`open_registry`, the MLflow backend.

Integrity
---------
At registration the registry hashes every file of the model artifact
(``model.pkl``, ``MLmodel``, ``schema.json``, ``reference_profile.json``,
``lineage.json`` ...) into one SHA-256 (see :func:`sha256_files`) and records
it as the version tag ``autopilot.sha256``. :meth:`Registry.load` reads the
files into memory, recomputes the hash and raises
:class:`~autopilot.errors.IntegrityError` on a mismatch *before* anything is
unpickled; the bytes it then unpickles are the bytes it hashed.

Example
-------
>>> from sklearn.dummy import DummyClassifier
>>> from autopilot.schema import Column, FeatureSchema
>>> reg = InMemoryRegistry()
>>> schema = FeatureSchema((Column("x", "numeric"),), "y", "classification", ("0", "1"))
>>> lineage = Lineage(trigger="initial", parent_version=None, data_fingerprint="ab12",
...                   data_window="0:1000", metrics={"accuracy": 0.9},
...                   training_run_id=None, family="dummy", params={})
>>> v1 = reg.register("churn", DummyClassifier().fit([[0], [1]], [0, 1]),
...                   schema=schema, lineage=lineage)
>>> v1.version, v1.status
('1', 'draft')
>>> reg.promote("churn", "1").aliases
('champion',)
>>> reg.load("churn", "1").model.predict([[0.5]]).shape
(1,)
"""

from autopilot.registry.integrity import sha256_files
from autopilot.registry.lifecycle import ALIASES, STATUSES, TRANSITIONS, Registry
from autopilot.registry.memory import InMemoryRegistry
from autopilot.registry.mlflow_store import MlflowRegistry, open_registry
from autopilot.registry.versions import Lineage, LoadedModel, ModelVersion

__all__ = [
    "ALIASES",
    "STATUSES",
    "TRANSITIONS",
    "InMemoryRegistry",
    "Lineage",
    "LoadedModel",
    "MlflowRegistry",
    "ModelVersion",
    "Registry",
    "open_registry",
    "sha256_files",
]
