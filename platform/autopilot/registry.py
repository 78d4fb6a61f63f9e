"""The model registry: versions with lineage, integrity and a lifecycle.

This is the only module that talks to MLflow's model registry. Everything else
sees :class:`Registry` and its frozen results (:class:`ModelVersion`,
:class:`Lineage`, :class:`LoadedModel`), so the controller, the endpoint and
the training jobs never depend on MLflow's entities or exceptions; MLflow
errors become :class:`~autopilot.errors.RegistryError` subclasses here.

Lifecycle
---------
Each version carries a status tag (``autopilot.status``)::

    draft ──► testing ──► staging ──► production ──► archived
      │  │       │  │        │            ▲    ▲         │
      │  └───────┼──┴────────┼── promote ─┘    └─ rollback┘
      └──────────┴───────────┴──► archived

- :meth:`Registry.register` creates a ``draft``.
- :meth:`Registry.transition` makes the ordinary moves
  (draft→testing→staging, and any of them →archived). Moves into or out of
  ``production`` belong to :meth:`~Registry.promote` and
  :meth:`~Registry.rollback`, which also move the aliases and the champion
  history; asking ``transition`` for them raises :class:`TransitionError`.
- :meth:`Registry.promote` makes a draft, testing, staging or archived version
  the ``champion`` (status ``production``). The old champion is **archived**
  and gets the ``previous`` alias; a ``challenger`` alias on the promoted
  version is removed. The version is appended to the champion history, which
  lives in the registry itself (a registered-model tag), so it survives a
  restart of the process that promoted.
- :meth:`Registry.rollback` retires the current champion (archived, tagged
  ``autopilot.rolled_back_at``), removes it from the history, and makes the
  previous history entry champion again (``production``). Repeated rollbacks
  walk further back; with no earlier champion it raises ``VersionNotFound``.

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

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import os
import pickle
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from autopilot.errors import (
    AutopilotError,
    IntegrityError,
    RegistryError,
    TransitionError,
    VersionNotFound,
)
from autopilot.schema import FeatureSchema

if TYPE_CHECKING:  # pragma: no cover
    from autopilot.config import AutopilotConfig

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

STATUSES = ("draft", "testing", "staging", "production", "archived")
#: Every allowed status move. Those into or out of ``production`` happen only
#: through :meth:`Registry.promote` and :meth:`Registry.rollback`.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"testing", "archived", "production"}),
    "testing": frozenset({"staging", "archived", "production"}),
    "staging": frozenset({"archived", "production"}),
    "production": frozenset({"archived"}),
    "archived": frozenset({"production"}),
}
ALIASES = ("champion", "challenger", "previous")

STATUS_TAG = "autopilot.status"
SHA_TAG = "autopilot.sha256"
LINEAGE_TAG = "autopilot.lineage"
HISTORY_TAG = "autopilot.champion_history"
ROLLED_BACK_TAG = "autopilot.rolled_back_at"
_RESERVED_TAGS = frozenset({STATUS_TAG, SHA_TAG, LINEAGE_TAG})
_HISTORY_KEEP = 500  # history entries kept (a registry tag holds up to 100 kB)

_FLUENT_LOCK = threading.RLock()  # the fluent tracking URI is process-wide state

SCHEMA_FILE = "schema.json"
PROFILE_FILE = "reference_profile.json"
LINEAGE_FILE = "lineage.json"


# ------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Lineage:
    """Where a version came from."""

    trigger: str  # e.g. "initial", "drift", "performance", "schedule", "manual", "online"
    parent_version: str | None  # the champion it was trained to replace
    data_fingerprint: str  # autopilot.training.data.fingerprint of the training frame
    data_window: str  # e.g. "rows 0:6000" or an ISO interval
    metrics: Mapping[str, float]
    training_run_id: str | None
    family: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # the mappings are dicts; hash their canonical JSON
        return hash(_json_bytes(self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = {str(k): float(v) for k, v in self.metrics.items()}
        d["params"] = json.loads(json.dumps(dict(self.params), default=str))
        return d

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Lineage:
        return cls(
            trigger=str(raw.get("trigger", "")),
            parent_version=None if raw.get("parent_version") is None
            else str(raw["parent_version"]),
            data_fingerprint=str(raw.get("data_fingerprint", "")),
            data_window=str(raw.get("data_window", "")),
            metrics={str(k): float(v) for k, v in dict(raw.get("metrics", {})).items()},
            training_run_id=raw.get("training_run_id"),
            family=str(raw.get("family", "")),
            params=dict(raw.get("params", {})),
        )


@dataclass(frozen=True)
class ModelVersion:
    """One registered version as the registry sees it now."""

    name: str
    version: str
    status: str
    aliases: tuple[str, ...]
    sha256: str
    run_id: str | None
    source: str
    lineage: Lineage
    created_at: float  # seconds since the epoch
    tags: Mapping[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.status, self.aliases, self.sha256))


@dataclass(frozen=True)
class LoadedModel:
    """A verified model with what it needs to serve and be monitored."""

    model: Any
    version: ModelVersion
    schema: FeatureSchema
    reference_profile: dict | None


# -------------------------------------------------------------------------- hashing


def sha256_files(files: Mapping[str, bytes]) -> str:
    """One SHA-256 over a set of files, independent of the order they are given in.

    Each file contributes its relative path (``/``-separated), its length and
    its bytes, in path order, so renaming, adding or dropping a file changes the
    hash as surely as changing a byte.

    >>> sha256_files({"b": b"2", "a": b"1"}) == sha256_files({"a": b"1", "b": b"2"})
    True
    >>> sha256_files({"a": b"1"}) == sha256_files({"a": b"2"})
    False
    """
    h = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        h.update(path.encode())
        h.update(b"\0")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _json_bytes(obj: Any) -> bytes:
    def _default(o: Any) -> Any:
        if hasattr(o, "tolist"):  # numpy scalars and arrays
            return o.tolist()
        if isinstance(o, (set, frozenset, tuple)):
            return list(o)
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"{type(o).__name__} is not JSON serialisable")

    return json.dumps(obj, sort_keys=True, indent=1, default=_default).encode()


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise TransitionError(f"unknown status {status!r}; statuses are {STATUSES}")


def _version_str(version: str | int) -> str:
    v = str(version).strip()
    if not v.isdigit():
        raise VersionNotFound(f"version {version!r} is not a version number")
    return str(int(v))


# --------------------------------------------------------------------- the contract


class Registry(abc.ABC):
    """Model versions, aliases, lifecycle and champion history.

    Subclasses implement storage (:meth:`register`, :meth:`get`,
    :meth:`list_versions`, :meth:`load`, aliases, tags and the history);
    the lifecycle rules (:meth:`transition`, :meth:`promote`,
    :meth:`rollback`) live here so both backends behave identically.
    """

    # -- storage, per backend -------------------------------------------------

    @abc.abstractmethod
    def register(
        self,
        name: str,
        model: Any,
        *,
        schema: FeatureSchema,
        lineage: Lineage,
        reference_profile: dict | None = None,
        input_example: pd.DataFrame | None = None,
        run_id: str | None = None,
    ) -> ModelVersion:
        """Store ``model`` as a new ``draft`` version with its lineage and hash."""

    @abc.abstractmethod
    def get(self, name: str, version: str | int) -> ModelVersion:
        """One version; ``VersionNotFound`` when absent."""

    @abc.abstractmethod
    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first (empty when the model is unknown)."""

    @abc.abstractmethod
    def load(self, name: str, version: str | int) -> LoadedModel:
        """Verify the artifact's SHA-256, then unpickle; ``IntegrityError`` on mismatch."""

    @abc.abstractmethod
    def alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version an alias points at, or ``None``."""

    @abc.abstractmethod
    def _set_alias(self, name: str, alias: str, version: str) -> None: ...

    @abc.abstractmethod
    def _delete_alias(self, name: str, alias: str) -> None: ...

    @abc.abstractmethod
    def _write_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def _read_history(self, name: str) -> list[str]: ...

    @abc.abstractmethod
    def _write_history(self, name: str, history: list[str]) -> None: ...

    # -- aliases and tags ---------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str | int) -> None:
        """Point ``alias`` at ``version`` (``champion`` moves only by promote/rollback)."""
        if alias == "champion":
            raise RegistryError("the 'champion' alias moves only through promote() or rollback()")
        v = self.get(name, version)
        self._set_alias(name, alias, v.version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` if it exists (``champion`` moves only by promote/rollback)."""
        if alias == "champion":
            raise RegistryError("the 'champion' alias moves only through promote() or rollback()")
        self._delete_alias(name, alias)

    def set_tag(self, name: str, version: str | int, key: str, value: Any) -> None:
        """Set a free-form version tag (the status, hash and lineage tags are reserved)."""
        if key in _RESERVED_TAGS:
            raise RegistryError(f"tag {key!r} is managed by the registry and cannot be set")
        v = self.get(name, version)
        self._write_tag(name, v.version, key, str(value))

    def champion_history(self, name: str) -> list[str]:
        """Versions that were champion, oldest first; the last is the current one."""
        return list(self._read_history(name))

    # -- lifecycle -----------------------------------------------------------------

    def transition(self, name: str, version: str | int, status: str) -> ModelVersion:
        """Move a version along the lifecycle (not into or out of ``production``).

        Raises
        ------
        TransitionError
            Unknown status, a move :data:`TRANSITIONS` does not allow, or a move
            into/out of ``production`` (use :meth:`promote` / :meth:`rollback`).
        """
        _check_status(status)
        v = self.get(name, version)
        if status == v.status:
            return v
        if status not in TRANSITIONS[v.status]:
            raise TransitionError(
                f"{name} v{v.version}: transition {v.status} -> {status} is not allowed "
                f"(allowed from {v.status}: {sorted(TRANSITIONS[v.status]) or 'none'})"
            )
        if "production" in (status, v.status):
            raise TransitionError(
                f"{name} v{v.version}: transition {v.status} -> {status} changes the champion; "
                "use promote() or rollback()"
            )
        self._write_tag(name, v.version, STATUS_TAG, status)
        return self.get(name, v.version)

    def promote(self, name: str, version: str | int) -> ModelVersion:
        """Make ``version`` the champion (status ``production``).

        The old champion becomes ``archived`` with the ``previous`` alias; a
        ``challenger`` alias on the promoted version is removed; the version is
        appended to the champion history. Promoting the current champion
        returns it unchanged.

        Raises
        ------
        VersionNotFound
            No such version.
        TransitionError
            The version's status cannot move to ``production``.
        """
        v = self.get(name, version)
        current = self.alias(name, "champion")
        if current is not None and current.version == v.version:
            return v
        if "production" not in TRANSITIONS[v.status]:
            raise TransitionError(
                f"{name} v{v.version}: transition {v.status} -> production is not allowed"
            )
        history = self._read_history(name)
        # Order: statuses, then aliases, then history, so a failure part-way leaves the
        # champion alias (what serving follows) on the old version.
        if current is not None:
            self._write_tag(name, current.version, STATUS_TAG, "archived")
        self._write_tag(name, v.version, STATUS_TAG, "production")
        if current is not None:
            self._set_alias(name, "previous", current.version)
        self._set_alias(name, "champion", v.version)
        challenger = self.alias(name, "challenger")
        if challenger is not None and challenger.version == v.version:
            self._delete_alias(name, "challenger")
        self._write_history(name, [*history, v.version])
        return self.get(name, v.version)

    def rollback(self, name: str) -> ModelVersion:
        """Return to the last good champion in one call.

        The current champion is archived, tagged ``autopilot.rolled_back_at``
        and dropped from the history; the newest earlier history entry that
        still exists becomes champion (``production``), and ``previous`` moves
        to the entry before it (or is removed).

        Raises
        ------
        VersionNotFound
            There is no champion, or no earlier champion to return to.
        """
        current = self.alias(name, "champion")
        if current is None:
            raise VersionNotFound(f"model {name!r} has no champion to roll back from")
        history = [h for h in self._read_history(name) if h != current.version]
        target: ModelVersion | None = None
        while history:
            try:
                target = self.get(name, history[-1])
                break
            except VersionNotFound:
                history.pop()  # deleted outside Autopilot: skip it
        if target is None:
            raise VersionNotFound(
                f"model {name!r}: no earlier champion to roll back to from v{current.version}"
            )
        self._write_tag(name, current.version, STATUS_TAG, "archived")
        self._write_tag(name, current.version, ROLLED_BACK_TAG, f"{time.time():.3f}")
        self._write_tag(name, target.version, STATUS_TAG, "production")
        self._set_alias(name, "champion", target.version)
        if len(history) >= 2:
            self._set_alias(name, "previous", history[-2])
        else:
            self._delete_alias(name, "previous")
        self._write_history(name, history)
        return self.get(name, target.version)


# ------------------------------------------------------------------- in-memory twin


@dataclass
class _MemVersion:
    version: str
    files: dict[str, bytes]
    sha256: str
    run_id: str | None
    lineage: Lineage
    created_at: float
    tags: dict[str, str]


@dataclass
class _MemModel:
    versions: dict[str, _MemVersion] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)


class InMemoryRegistry(Registry):
    """The registry in a dict, for unit tests of other modules.

    Behaves like :class:`MlflowRegistry`: same statuses, transitions, aliases,
    history and hashing (over the pickled model and its JSON side files, kept
    in :attr:`files`); ``files[(name, version)]`` may be edited by a test to
    simulate a tampered artifact.
    """

    def __init__(self) -> None:
        self._models: dict[str, _MemModel] = {}
        self._lock = threading.RLock()
        self._run_counter = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]  # locks do not pickle; a copy gets its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def files(self) -> dict[tuple[str, str], dict[str, bytes]]:
        """Stored artifact files by ``(name, version)`` (mutable, for tamper tests)."""
        return {(n, v): mv.files for n, m in self._models.items() for v, mv in m.versions.items()}

    def register(
        self,
        name: str,
        model: Any,
        *,
        schema: FeatureSchema,
        lineage: Lineage,
        reference_profile: dict | None = None,
        input_example: pd.DataFrame | None = None,
        run_id: str | None = None,
    ) -> ModelVersion:
        try:
            blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise RegistryError(f"cannot serialise model for {name!r}: {exc}") from exc
        files = {
            "model.pkl": blob,
            SCHEMA_FILE: _json_bytes(schema.to_dict()),
            LINEAGE_FILE: _json_bytes(lineage.to_dict()),
        }
        if reference_profile is not None:
            files[PROFILE_FILE] = _json_bytes(reference_profile)
        if input_example is not None:
            files["input_example.json"] = input_example.to_json(orient="split").encode()
        with self._lock:
            m = self._models.setdefault(name, _MemModel())
            version = str(max(map(int, m.versions), default=0) + 1)
            if run_id is None:
                self._run_counter += 1
                run_id = f"memory-run-{self._run_counter}"
            m.versions[version] = _MemVersion(
                version=version,
                files=files,
                sha256=sha256_files(files),
                run_id=run_id,
                lineage=Lineage.from_dict(lineage.to_dict()),
                created_at=time.time(),
                tags={STATUS_TAG: "draft"},
            )
            return self._view(name, version)

    def _model(self, name: str) -> _MemModel:
        try:
            return self._models[name]
        except KeyError:
            raise VersionNotFound(f"no registered model {name!r}") from None

    def _entry(self, name: str, version: str | int) -> _MemVersion:
        v = _version_str(version)
        try:
            return self._model(name).versions[v]
        except KeyError:
            raise VersionNotFound(f"model {name!r} has no version {v}") from None

    def _view(self, name: str, version: str) -> ModelVersion:
        m = self._model(name)
        e = self._entry(name, version)
        return ModelVersion(
            name=name,
            version=e.version,
            status=e.tags.get(STATUS_TAG, "draft"),
            aliases=tuple(sorted(a for a, v in m.aliases.items() if v == e.version)),
            sha256=e.sha256,
            run_id=e.run_id,
            source=f"memory://{name}/{e.version}",
            lineage=e.lineage,
            created_at=e.created_at,
            tags=dict(e.tags),
        )

    def get(self, name: str, version: str | int) -> ModelVersion:
        with self._lock:
            return self._view(name, self._entry(name, version).version)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._lock:
            if name not in self._models:
                return []
            return [self._view(name, v) for v in sorted(self._models[name].versions, key=int)]

    def load(self, name: str, version: str | int) -> LoadedModel:
        with self._lock:
            e = self._entry(name, version)
            files = dict(e.files)
            mv = self._view(name, e.version)
        actual = sha256_files(files)
        if actual != e.sha256:
            raise IntegrityError(
                f"{name} v{e.version}: artifact SHA-256 {actual} does not match the "
                f"registered {e.sha256}; refusing to load"
            )
        return LoadedModel(
            model=pickle.loads(files["model.pkl"]),  # noqa: S301 - verified above
            version=mv,
            schema=FeatureSchema.from_dict(json.loads(files[SCHEMA_FILE])),
            reference_profile=json.loads(files[PROFILE_FILE]) if PROFILE_FILE in files else None,
        )

    def alias(self, name: str, alias: str) -> ModelVersion | None:
        with self._lock:
            m = self._models.get(name)
            if m is None or alias not in m.aliases:
                return None
            return self._view(name, m.aliases[alias])

    def _set_alias(self, name: str, alias: str, version: str) -> None:
        with self._lock:
            self._entry(name, version)
            self._model(name).aliases[alias] = version

    def _delete_alias(self, name: str, alias: str) -> None:
        with self._lock:
            m = self._models.get(name)
            if m is not None:
                m.aliases.pop(alias, None)

    def _write_tag(self, name: str, version: str, key: str, value: str) -> None:
        with self._lock:
            self._entry(name, version).tags[key] = value

    def _read_history(self, name: str) -> list[str]:
        with self._lock:
            m = self._models.get(name)
            return list(m.history) if m is not None else []

    def _write_history(self, name: str, history: list[str]) -> None:
        with self._lock:
            self._model(name).history = list(history[-_HISTORY_KEEP:])


# ---------------------------------------------------------------------- MLflow backend


def _pip_requirements() -> list[str]:
    """Pinned requirements of a logged model (explicit: inferring them costs seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "cloudpickle"):
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            continue
    return reqs


def _signature(schema: FeatureSchema, model: Any, input_example: pd.DataFrame | None) -> Any:
    """Input signature from the schema; output inferred from the example when given."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("double" if c.kind == "numeric" else "string", c.name, required=False)
            for c in schema.columns
        ]
    )
    outputs = None
    if input_example is not None and hasattr(model, "predict"):
        try:
            outputs = infer_signature(
                input_example, model.predict(input_example.head(5))
            ).outputs
        except Exception:  # noqa: BLE001 - the output schema is informative only
            outputs = None
    return ModelSignature(inputs=inputs, outputs=outputs)


class MlflowRegistry(Registry):
    """The registry on MLflow: registered models, versions, aliases and tags.

    Parameters
    ----------
    tracking_uri : str
        Tracking and registry URI, e.g. ``sqlite:////abs/path/mlflow.db`` or
        ``http://host:5000``.
    artifact_root : str or Path, optional
        Absolute artifact location for experiments this registry creates. By
        default, ``mlartifacts/`` next to a SQLite database file; for a server
        URI, the server's own default.

    Notes
    -----
    Models are logged with the sklearn flavour in ``cloudpickle`` format, with
    explicit pip requirements and a signature (fast: no requirement inference),
    into ``run_id``'s run or a new run of the ``autopilot-registry`` experiment.
    """

    EXPERIMENT = "autopilot-registry"

    def __init__(self, tracking_uri: str, artifact_root: str | Path | None = None) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        if artifact_root is None and tracking_uri.startswith("sqlite:///"):
            db = Path(tracking_uri[len("sqlite:///") :])
            artifact_root = db.parent / "mlartifacts"
        self.artifact_root: Path | None = (
            Path(artifact_root).expanduser().resolve() if artifact_root is not None else None
        )
        with self._errors("connect to the tracking store"):
            self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def __reduce__(self) -> tuple[Any, ...]:
        # Ship the address, not the client (its connection pool does not travel to actors).
        return (type(self), (self.tracking_uri, self.artifact_root))

    # -- helpers -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn MLflow and storage errors into RegistryError subclasses."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except AutopilotError:
            raise
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                raise VersionNotFound(f"cannot {what}: {exc.message}") from exc
            raise RegistryError(f"cannot {what}: {exc.message}") from exc
        except Exception as exc:  # sqlalchemy, OSError, ...: still the registry's failure
            raise RegistryError(f"cannot {what}: {type(exc).__name__}: {exc}") from exc

    @contextlib.contextmanager
    def _fluent_uri(self) -> Iterator[None]:
        """Point MLflow's process-wide tracking URI at this store, then restore it exactly.

        ``log_model`` and the registry's resolution of ``models:/`` sources use the
        global URI, not the client's. MLflow's own ``_use_tracking_uri`` would unset a
        user's ``MLFLOW_TRACKING_URI`` on exit, so the variable is restored here too.
        """
        from mlflow.tracking._tracking_service import utils

        with _FLUENT_LOCK:
            old_global = utils._tracking_uri
            old_env = os.environ.get("MLFLOW_TRACKING_URI")
            utils.set_tracking_uri(self.tracking_uri)
            try:
                yield
            finally:
                utils.set_tracking_uri(old_global)
                if old_env is None:
                    os.environ.pop("MLFLOW_TRACKING_URI", None)
                else:
                    os.environ["MLFLOW_TRACKING_URI"] = old_env

    def ensure_experiment(self, name: str = EXPERIMENT) -> str:
        """Experiment id for ``name``, created with an absolute artifact location."""
        with self._errors(f"create experiment {name!r}"):
            exp = self._client.get_experiment_by_name(name)
            if exp is not None:
                return str(exp.experiment_id)
            location = None
            if self.artifact_root is not None:
                self.artifact_root.mkdir(parents=True, exist_ok=True)
                location = (self.artifact_root / name).as_uri()
            try:
                return str(self._client.create_experiment(name, artifact_location=location))
            except Exception:
                exp = self._client.get_experiment_by_name(name)  # created concurrently?
                if exp is None:
                    raise
                return str(exp.experiment_id)

    def _view(self, mv: Any) -> ModelVersion:
        tags = dict(mv.tags or {})
        try:
            lineage = Lineage.from_dict(json.loads(tags.get(LINEAGE_TAG, "{}")))
        except (ValueError, TypeError):
            lineage = Lineage.from_dict({})
        return ModelVersion(
            name=mv.name,
            version=str(mv.version),
            status=tags.get(STATUS_TAG, "draft"),
            aliases=tuple(sorted(getattr(mv, "aliases", None) or ())),
            sha256=tags.get(SHA_TAG, ""),
            run_id=mv.run_id or None,
            source=str(mv.source),
            lineage=lineage,
            created_at=(mv.creation_timestamp or 0) / 1000.0,
            tags={k: v for k, v in tags.items()},
        )

    def _fetch_files(self, name: str, version: str) -> dict[str, bytes]:
        """Every file of a version's model artifact, read into memory."""
        import tempfile

        import mlflow.artifacts

        with self._errors(f"locate the artifact of {name} v{version}"):
            uri = self._client.get_model_version_download_uri(name, version)
        with tempfile.TemporaryDirectory(prefix="autopilot-model-") as tmp:
            with self._errors(f"download the artifact of {name} v{version}"):
                local = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=uri, dst_path=None if _is_local(uri) else tmp,
                        tracking_uri=self.tracking_uri,
                    )
                )
            return _read_tree(local)

    # -- storage ---------------------------------------------------------------------------

    def register(
        self,
        name: str,
        model: Any,
        *,
        schema: FeatureSchema,
        lineage: Lineage,
        reference_profile: dict | None = None,
        input_example: pd.DataFrame | None = None,
        run_id: str | None = None,
    ) -> ModelVersion:
        import tempfile

        import mlflow.sklearn

        if "'" in name or not name:
            raise RegistryError(f"invalid model name {name!r}")
        own_run = run_id is None
        with tempfile.TemporaryDirectory(prefix="autopilot-extra-") as tmp:
            extra = [Path(tmp) / SCHEMA_FILE, Path(tmp) / LINEAGE_FILE]
            extra[0].write_bytes(_json_bytes(schema.to_dict()))
            extra[1].write_bytes(_json_bytes(lineage.to_dict()))
            if reference_profile is not None:
                try:
                    (Path(tmp) / PROFILE_FILE).write_bytes(_json_bytes(reference_profile))
                except TypeError as exc:
                    raise RegistryError(f"reference_profile is not JSON: {exc}") from exc
                extra.append(Path(tmp) / PROFILE_FILE)
            signature = _signature(schema, model, input_example)
            with self._errors(f"log the model for {name!r}"):
                if own_run:
                    exp_id = self.ensure_experiment()
                    run = self._client.create_run(
                        exp_id, run_name=f"register-{name}", tags={"autopilot.model": name}
                    )
                    run_id = run.info.run_id
                else:
                    run = self._client.get_run(run_id)
                # Create the logged model in the run's own experiment: left to itself,
                # log_model files it under the fluent API's current experiment (often "0",
                # whose artifact location is relative to the working directory).
                logged = self._client.create_logged_model(
                    experiment_id=run.info.experiment_id,
                    name="model",
                    source_run_id=run_id,
                    tags={"autopilot.model": name},
                )
                ok = False
                try:
                    with self._fluent_uri():
                        info = mlflow.sklearn.log_model(
                            model,
                            name="model",
                            serialization_format="cloudpickle",
                            signature=signature,
                            input_example=input_example,
                            pip_requirements=_pip_requirements(),
                            extra_files=[str(p) for p in extra],
                            run_id=run_id,
                            model_id=logged.model_id,
                        )
                    ok = True
                finally:
                    if own_run:
                        self._client.set_terminated(run_id, "FINISHED" if ok else "FAILED")
        model_id = info.model_id
        with self._errors(f"locate the logged model {model_id}"):
            location = self._client.get_logged_model(model_id).artifact_location
        with tempfile.TemporaryDirectory(prefix="autopilot-model-") as tmp:
            with self._errors(f"read back the logged model {model_id}"):
                import mlflow.artifacts

                local = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=location,
                        dst_path=None if _is_local(location) else tmp,
                        tracking_uri=self.tracking_uri,
                    )
                )
            sha = sha256_files(_read_tree(local))
        tags = {
            STATUS_TAG: "draft",
            SHA_TAG: sha,
            LINEAGE_TAG: _json_bytes(lineage.to_dict()).decode(),
            "lineage.trigger": lineage.trigger,
            "lineage.parent_version": lineage.parent_version or "",
            "lineage.data_fingerprint": lineage.data_fingerprint,
            "lineage.data_window": lineage.data_window,
            "lineage.training_run_id": lineage.training_run_id or "",
            "lineage.family": lineage.family,
        }
        with self._errors(f"register a version of {name!r}"):
            try:
                self._client.get_registered_model(name)
            except Exception as exc:  # noqa: BLE001 - absent model: create it below
                from mlflow.exceptions import MlflowException

                if not (isinstance(exc, MlflowException)
                        and exc.error_code == "RESOURCE_DOES_NOT_EXIST"):
                    raise
                self._client.create_registered_model(
                    name, description="Managed by Autopilot", tags={HISTORY_TAG: "[]"}
                )
            # All tags travel with creation, so a version never exists without its hash.
            # The registry resolves the models:/ source through the fluent tracking URI.
            with self._fluent_uri():
                mv = self._client.create_model_version(
                    name, source=info.model_uri, run_id=run_id, tags=tags, model_id=model_id
                )
        return self.get(name, mv.version)

    def get(self, name: str, version: str | int) -> ModelVersion:
        v = _version_str(version)
        with self._errors(f"get {name} v{v}"):
            return self._view(self._client.get_model_version(name, v))

    def list_versions(self, name: str) -> list[ModelVersion]:
        if "'" in name:
            raise RegistryError(f"invalid model name {name!r}")
        with self._errors(f"list versions of {name!r}"):
            found = []
            token = None
            while True:
                page = self._client.search_model_versions(
                    f"name='{name}'", max_results=1000, page_token=token
                )
                found.extend(page)
                token = getattr(page, "token", None)
                if not token:
                    break
            # search results may omit aliases: fetch them from the registered model
            aliases: dict[str, list[str]] = {}
            if found:
                rm = self._client.get_registered_model(name)
                for alias, ver in (rm.aliases or {}).items():
                    aliases.setdefault(str(ver), []).append(alias)
        views = [self._view(mv) for mv in found]
        views = [replace(v, aliases=tuple(sorted(aliases.get(v.version, ())))) for v in views]
        return sorted(views, key=lambda v: int(v.version))

    def load(self, name: str, version: str | int) -> LoadedModel:
        import yaml

        mv = self.get(name, version)
        if not mv.sha256:
            raise IntegrityError(f"{name} v{mv.version} has no recorded SHA-256; refusing to load")
        files = self._fetch_files(name, mv.version)
        actual = sha256_files(files)
        if actual != mv.sha256:
            raise IntegrityError(
                f"{name} v{mv.version}: artifact SHA-256 {actual} does not match the "
                f"registered {mv.sha256}; refusing to load"
            )
        try:
            meta = yaml.safe_load(files["MLmodel"])
            pickled = files[meta["flavors"]["sklearn"]["pickled_model"]]
            schema_raw = json.loads(_side_file(files, SCHEMA_FILE))
            profile = _side_file(files, PROFILE_FILE, required=False)
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"{name} v{mv.version}: malformed model artifact: {exc}") from exc
        try:
            import cloudpickle

            model = cloudpickle.loads(pickled)  # the verified bytes
        except Exception as exc:
            raise RegistryError(f"{name} v{mv.version}: cannot unpickle the model: {exc}") from exc
        return LoadedModel(
            model=model,
            version=mv,
            schema=FeatureSchema.from_dict(schema_raw),
            reference_profile=json.loads(profile) if profile is not None else None,
        )

    def alias(self, name: str, alias: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self._client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise RegistryError(f"cannot resolve {name}@{alias}: {exc.message}") from exc
        except Exception as exc:
            raise RegistryError(f"cannot resolve {name}@{alias}: {exc}") from exc
        return self._view(mv)

    def _set_alias(self, name: str, alias: str, version: str) -> None:
        with self._errors(f"set alias {name}@{alias} -> v{version}"):
            self._client.set_registered_model_alias(name, alias, version)

    def _delete_alias(self, name: str, alias: str) -> None:
        if self.alias(name, alias) is None:
            return
        with self._errors(f"delete alias {name}@{alias}"):
            self._client.delete_registered_model_alias(name, alias)

    def _write_tag(self, name: str, version: str, key: str, value: str) -> None:
        with self._errors(f"tag {name} v{version} with {key}"):
            self._client.set_model_version_tag(name, version, key, value)

    def _read_history(self, name: str) -> list[str]:
        from mlflow.exceptions import MlflowException

        try:
            rm = self._client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise RegistryError(f"cannot read the history of {name!r}: {exc.message}") from exc
        raw = (rm.tags or {}).get(HISTORY_TAG, "[]")
        try:
            return [str(v) for v in json.loads(raw)]
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"champion history of {name!r} is corrupt: {raw[:80]!r}") from exc

    def _write_history(self, name: str, history: list[str]) -> None:
        with self._errors(f"write the champion history of {name!r}"):
            self._client.set_registered_model_tag(
                name, HISTORY_TAG, json.dumps(list(history[-_HISTORY_KEEP:]))
            )


def _is_local(uri: str) -> bool:
    return uri.startswith("file:") or uri.startswith("/") or "://" not in uri


def _read_tree(root: Path) -> dict[str, bytes]:
    if root.is_file():
        return {root.name: root.read_bytes()}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _side_file(files: Mapping[str, bytes], name: str, *, required: bool = True) -> bytes | None:
    """A JSON side file stored with the model (MLflow puts extra files in a subfolder)."""
    for path in sorted(files):
        if path == name or path.endswith("/" + name):
            return files[path]
    if required:
        raise KeyError(name)
    return None


def open_registry(cfg: AutopilotConfig) -> MlflowRegistry:
    """The registry a config points at (SQLite under the state folder by default)."""
    uri = cfg.resolved_tracking_uri()
    artifact_root = None
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        db.parent.mkdir(parents=True, exist_ok=True)
        artifact_root = db.parent / "mlartifacts"
    return MlflowRegistry(uri, artifact_root=artifact_root)

