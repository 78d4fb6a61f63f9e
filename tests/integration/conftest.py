"""One Ray instance (and at most one Serve instance) per test session.

Integration tests ask for ``ray_session`` (Ray only) or ``serve_session``
(Ray plus Serve on a free port). Each test that deploys deletes its apps.
MLflow runs on a fresh SQLite file per test through ``tracking_uri``.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(
            # "local": always a fresh cluster, never one that another `ray start` left running
            # on this box (ray.init() alone attaches to it and then rejects num_cpus).
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            namespace="autopilot-test",
            runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}},
        )
    yield
    if started:
        try:
            from ray import serve

            serve.shutdown()
        except Exception:  # noqa: BLE001 - best effort at session end
            pass
        ray.shutdown()


@pytest.fixture(scope="session")
def serve_port(ray_session: None) -> int:
    """Start Serve once on a free HTTP port; yields the port."""
    from ray import serve
    from ray.serve.config import HTTPOptions
    from ray.serve.schema import LoggingConfig

    port = int(os.environ.get("AUTOPILOT_TEST_SERVE_PORT", _free_port()))
    serve.start(
        http_options=HTTPOptions(host="127.0.0.1", port=port),
        logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"),
    )
    return port


@pytest.fixture()
def serve_session(serve_port: int) -> Iterator[int]:
    """Serve for one test: yields the HTTP port and deletes every app afterwards."""
    from ray import serve

    yield serve_port
    for app in list(serve.status().applications):
        serve.delete(app)


@pytest.fixture(scope="session")
def _empty_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MLflow's tables, created once: migrating a new SQLite file takes ~10 s here."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture()
def tracking_uri(tmp_path: Path, _empty_mlflow_store: Path) -> str:
    """A fresh MLflow SQLite store (tables already made) under the test's temp dir."""
    db = tmp_path / "mlflow.db"
    shutil.copy(_empty_mlflow_store, db)
    return f"sqlite:///{db}"
