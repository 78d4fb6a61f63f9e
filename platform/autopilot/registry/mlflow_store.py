"""The registry on MLflow: the only module that talks to MLflow's model registry.

:class:`MlflowRegistry` stores versions as MLflow registered-model versions
(sklearn flavour, cloudpickle), keeps status, hash and lineage in version
tags and the champion history in a registered-model tag, and turns MLflow's
exceptions into :class:`~autopilot.errors.RegistryError` subclasses.
:func:`open_registry` builds the one a config points at. MLflow is imported
inside the methods, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import pandas as pd

from autopilot.errors import AutopilotError, IntegrityError, RegistryError, VersionNotFound
from autopilot.registry.integrity import json_bytes, read_tree, sha256_files
from autopilot.registry.lifecycle import HISTORY_KEEP, Registry
from autopilot.registry.versions import (
    HISTORY_TAG,
    LINEAGE_FILE,
    LINEAGE_TAG,
    PROFILE_FILE,
    SCHEMA_FILE,
    SHA_TAG,
    STATUS_TAG,
    Lineage,
    LoadedModel,
    ModelVersion,
    version_str,
)
from autopilot.schema import FeatureSchema

if TYPE_CHECKING:  # pragma: no cover
    from autopilot.config import AutopilotConfig

__all__ = ["MlflowRegistry", "open_registry"]

_FLUENT_LOCK = threading.RLock()  # the fluent tracking URI is process-wide state


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
                # None (no URI set) is what MLflow itself restores; its annotation omits it.
                utils.set_tracking_uri(old_global)  # type: ignore[arg-type]
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
            return read_tree(local)

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
            extra[0].write_bytes(json_bytes(schema.to_dict()))
            extra[1].write_bytes(json_bytes(lineage.to_dict()))
            if reference_profile is not None:
                try:
                    (Path(tmp) / PROFILE_FILE).write_bytes(json_bytes(reference_profile))
                except TypeError as exc:
                    raise RegistryError(f"reference_profile is not JSON: {exc}") from exc
                extra.append(Path(tmp) / PROFILE_FILE)
            signature = _signature(schema, model, input_example)
            with self._errors(f"log the model for {name!r}"):
                if run_id is None:
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
            sha = sha256_files(read_tree(local))
        tags = {
            STATUS_TAG: "draft",
            SHA_TAG: sha,
            LINEAGE_TAG: json_bytes(lineage.to_dict()).decode(),
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
        v = version_str(version)
        with self._errors(f"get {name} v{v}"):
            return self._view(self._client.get_model_version(name, v))

    def list_versions(self, name: str) -> list[ModelVersion]:
        if "'" in name:
            raise RegistryError(f"invalid model name {name!r}")
        with self._errors(f"list versions of {name!r}"):
            found: list[Any] = []  # MLflow's ModelVersion entities
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
                name, HISTORY_TAG, json.dumps(list(history[-HISTORY_KEEP:]))
            )


def _is_local(uri: str) -> bool:
    return uri.startswith("file:") or uri.startswith("/") or "://" not in uri


@overload
def _side_file(
    files: Mapping[str, bytes], name: str, *, required: Literal[True] = ...
) -> bytes: ...


@overload
def _side_file(files: Mapping[str, bytes], name: str, *, required: bool) -> bytes | None: ...


def _side_file(files: Mapping[str, bytes], name: str, *, required: bool = True) -> bytes | None:
    """A JSON side file stored with the model (MLflow puts extra files in a subfolder).

    Raises
    ------
    KeyError
        ``required`` and the file is not there.
    """
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

