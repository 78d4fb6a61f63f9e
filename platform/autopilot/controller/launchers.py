"""Launchers: how the controller starts a retrain and learns how it ended.

A :class:`RetrainRequest` carries everything a retrain needs as plain values;
a :class:`Launcher` starts it and polls a :class:`LaunchStatus`.
:class:`RayJobLauncher` submits ``python -m jobs.retrain`` as a Ray job (visible
in the dashboard), :class:`RayTaskLauncher` runs :func:`train_from_request` as a
Ray task and :class:`LocalLauncher` runs a training callable in a thread.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from autopilot.controller.probes import ray_auth_headers

__all__ = [
    "LaunchStatus",
    "Launcher",
    "LocalLauncher",
    "RayJobLauncher",
    "RayTaskLauncher",
    "RetrainRequest",
    "train_from_request",
]


@dataclass(frozen=True)
class RetrainRequest:
    """Everything a retrain needs, as plain values a Ray job or task can carry."""

    model: str
    config_path: str  # the model's config, written as YAML under the state folder
    trigger: str
    parent_version: str | None
    data_path: str  # Parquet file of the labelled training window
    data_window: str
    launched_at: float


@dataclass(frozen=True)
class LaunchStatus:
    """Where a launched retrain is: ``running``, ``succeeded`` (with ``version``) or ``failed``."""

    status: str
    version: str | None = None
    error: str | None = None


class Launcher(Protocol):
    """Starts retrains and reports on them; handles are strings that survive a restart."""

    kind: str

    def launch(self, request: RetrainRequest) -> str: ...

    def poll(self, handle: str, request: RetrainRequest) -> LaunchStatus: ...


class LocalLauncher:
    """Run ``train(request) -> version`` in a thread pool of this process.

    Used by unit tests and as the last resort when Ray is absent. A handle does
    not survive a restart of the process (poll then reports a failure).
    """

    kind = "local"

    def __init__(self, train: Callable[[RetrainRequest], str], max_workers: int = 1) -> None:
        self._train = train
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="autopilot-retrain")
        self._futures: dict[str, Future[str]] = {}

    def launch(self, request: RetrainRequest) -> str:
        handle = f"local-{uuid.uuid4().hex[:12]}"
        self._futures[handle] = self._pool.submit(self._train, request)
        return handle

    def poll(self, handle: str, request: RetrainRequest) -> LaunchStatus:
        fut = self._futures.get(handle)
        if fut is None:
            return LaunchStatus("failed", error=f"retrain {handle} was lost (process restarted)")
        if not fut.done():
            return LaunchStatus("running")
        exc = fut.exception()
        if exc is not None:
            return LaunchStatus("failed", error=f"{type(exc).__name__}: {exc}")
        return LaunchStatus("succeeded", version=str(fut.result()))

    def wait(self, timeout_s: float = 60.0) -> None:
        """Block until every launched retrain finished (tests)."""
        for fut in list(self._futures.values()):
            try:
                fut.result(timeout=timeout_s)
            except Exception:  # noqa: BLE001 - the failure is reported by poll()
                pass


def train_from_request(request: RetrainRequest) -> str:
    """Run one retrain in this process: load the window, train, register; returns the version.

    An empty window (an initial training, before any labels) trains on the
    config's own data source instead.
    """
    from autopilot.config import load_config
    from autopilot.registry import open_registry
    from autopilot.training.data import load_frame
    from autopilot.training.pipeline import champion_config, train_and_register

    cfg = load_config(request.config_path)
    frame = pd.read_parquet(request.data_path)
    window = request.data_window
    if len(frame) == 0:
        frame = load_frame(cfg.data)
        window = f"config data source rows 0:{len(frame)}"
    registry = open_registry(cfg)
    outcome = train_and_register(
        cfg, frame, registry, trigger=request.trigger,
        parent_version=request.parent_version, data_window=window,
        warm_start=champion_config(registry, request.model),
    )
    return str(outcome.version.version)


class RayTaskLauncher:
    """Run :func:`train_from_request` as a Ray task (when the dashboard is not reachable)."""

    kind = "ray_task"

    def __init__(self, num_cpus: float = 0.5,
                 train: Callable[[RetrainRequest], str] | None = None) -> None:
        import ray

        self._remote = ray.remote(num_cpus=num_cpus, max_retries=0)(train or train_from_request)
        self._refs: dict[str, Any] = {}

    def launch(self, request: RetrainRequest) -> str:
        handle = f"task-{uuid.uuid4().hex[:12]}"
        self._refs[handle] = self._remote.remote(request)
        return handle

    def poll(self, handle: str, request: RetrainRequest) -> LaunchStatus:
        import ray

        ref = self._refs.get(handle)
        if ref is None:
            return LaunchStatus("failed", error=f"retrain task {handle} was lost on restart")
        done, _ = ray.wait([ref], timeout=0)
        if not done:
            return LaunchStatus("running")
        try:
            return LaunchStatus("succeeded", version=str(ray.get(ref)))
        except Exception as exc:  # noqa: BLE001 - a task failure is data for the policy
            return LaunchStatus("failed", error=f"{type(exc).__name__}: {exc}")


class RayJobLauncher:
    """Submit ``python -m jobs.retrain`` as a Ray job, so it shows in the dashboard's job list.

    The entrypoint uses this interpreter's absolute path (a job otherwise runs
    with the PATH of whoever started the cluster). The new version is read back
    from the registry: the newest version registered for the model, with the
    request's trigger and parent, after the launch time.
    """

    kind = "ray_job"

    def __init__(self, address: str, registry_for: Callable[[str], Any]) -> None:
        from ray.job_submission import JobSubmissionClient

        self.address = address
        self._client = JobSubmissionClient(address, headers=ray_auth_headers())
        self._registry_for = registry_for

    def launch(self, request: RetrainRequest) -> str:
        args = [sys.executable, "-m", "jobs.retrain", "--config", request.config_path,
                "--trigger", request.trigger, "--data", request.data_path]
        if request.parent_version is not None:
            args += ["--parent-version", request.parent_version]
        handle = f"autopilot-retrain-{request.model}-{uuid.uuid4().hex[:8]}"
        self._client.submit_job(
            entrypoint=" ".join(_quote(a) for a in args),
            submission_id=handle,
            runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}, **_code_runtime_env()},
        )
        return handle

    def poll(self, handle: str, request: RetrainRequest) -> LaunchStatus:
        from ray.job_submission import JobStatus

        try:
            status = self._client.get_job_status(handle)
        except Exception as exc:  # noqa: BLE001 - the job server lost it
            return LaunchStatus("failed", error=f"job {handle}: {exc}")
        if status in (JobStatus.PENDING, JobStatus.RUNNING):
            return LaunchStatus("running")
        if status != JobStatus.SUCCEEDED:
            tail = ""
            try:
                lines = [ln.strip() for ln in self._client.get_job_logs(handle).splitlines()
                         if ln.strip()]
                tail = " | ".join(lines[-3:])[-400:]
            except Exception:  # noqa: BLE001 - logs are a courtesy
                pass
            return LaunchStatus("failed", error=f"job {handle} {status.value}: {tail}")
        registry = self._registry_for(request.model)
        found = [v for v in registry.list_versions(request.model)
                 if v.created_at >= request.launched_at - 1.0
                 and v.lineage.trigger == request.trigger]
        if not found:
            return LaunchStatus("failed", error=f"job {handle} succeeded but registered "
                                                "no new version")
        return LaunchStatus("succeeded", version=found[-1].version)


def _code_runtime_env() -> dict[str, Any]:
    """This worker's uploaded code (``working_dir``/``py_modules`` URIs), for a job it submits.

    A controller started by ``autopilot up --address`` or inside a Ray job runs code
    shipped to the cluster; its retrain jobs must run that same code, not whatever
    version (if any) the cluster has installed. Empty outside Ray or with no uploads.
    """
    import ray

    try:
        env = ray.get_runtime_context().runtime_env if ray.is_initialized() else {}
    except Exception:  # noqa: BLE001 - no runtime context: nothing to pass on
        return {}
    return {k: env[k] for k in ("working_dir", "py_modules") if env.get(k)}


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
