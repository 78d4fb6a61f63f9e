"""The in-memory registry twin, for unit tests of everything that uses a registry.

:class:`InMemoryRegistry` keeps versions, aliases, tags and the champion
history in dicts and follows the same lifecycle and integrity rules as
:class:`~autopilot.registry.mlflow_store.MlflowRegistry`, without MLflow.
"""

from __future__ import annotations

import json
import pickle
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from autopilot.errors import IntegrityError, RegistryError, VersionNotFound
from autopilot.registry.integrity import json_bytes, sha256_files
from autopilot.registry.lifecycle import HISTORY_KEEP, Registry
from autopilot.registry.versions import (
    LINEAGE_FILE,
    PROFILE_FILE,
    SCHEMA_FILE,
    STATUS_TAG,
    Lineage,
    LoadedModel,
    ModelVersion,
    version_str,
)
from autopilot.schema import FeatureSchema

__all__ = ["InMemoryRegistry"]


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
            SCHEMA_FILE: json_bytes(schema.to_dict()),
            LINEAGE_FILE: json_bytes(lineage.to_dict()),
        }
        if reference_profile is not None:
            files[PROFILE_FILE] = json_bytes(reference_profile)
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
        v = version_str(version)
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
            self._model(name).history = list(history[-HISTORY_KEEP:])
