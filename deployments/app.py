"""Build the Serve application for one managed model.

Two ways to run it (the project must be importable where Ray runs: it is
installed in the venv, or pass a ``runtime_env`` working_dir)::

    serve run deployments.app:app_builder config_path=examples/autopilot.yaml
    serve deploy deployments/serve_config.yaml

``app_builder`` takes Serve's builder arguments: ``config_path`` (required),
and optional overrides ``name`` (the application's route prefix stays ``/``).
Replica count, autoscaling, CPUs, batch size and wait all come from the
``serving`` section of the model's config; see ``deployments/serve_config.yaml``
for the serve-deploy form.

Example (no Ray needed to build the description)
-------
>>> from autopilot.config import AutopilotConfig
>>> raw = {"name": "churn", "data": {"generator": {}, "target": "y"}}
>>> cfg = AutopilotConfig.model_validate(raw)
>>> deployment_options(cfg)["ray_actor_options"]
{'num_cpus': 0.25}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopilot.config import AutopilotConfig, load_config
from autopilot.errors import ConfigError

__all__ = [
    "SERVE_PROXY_ENV",
    "ServeHTTP",
    "app_builder",
    "build_app",
    "deployment_options",
    "start_serve",
    "stop_apps",
]

#: Environment for whoever starts Ray (``ray.init`` in this process, or ``ray start``):
#: Serve reads it once, at start-up, in its controller and proxy processes. Measured with
#: ``benchmarks/serving.py`` on 2 cores, the HAProxy-based proxy served 3-5x the requests
#: of Serve's default Python proxy and met the p95 < 50 ms at 200 req/s goal the default
#: proxy missed; it binds all interfaces (Serve forces that so remote HAProxies can reach
#: replicas), so keep the port behind a firewall on shared hosts, or start Ray without it.
SERVE_PROXY_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1"}


def deployment_options(cfg: AutopilotConfig) -> dict[str, Any]:
    """Serve deployment options from the ``serving`` section (replicas, CPUs, logs)."""
    from ray.serve.schema import LoggingConfig

    s = cfg.serving
    # Batching needs many requests in flight per replica; Serve's default (5) would cap
    # every batch at 5 and queue the rest in the proxy.
    max_ongoing = max(128, 4 * s.max_batch_size)
    opts: dict[str, Any] = {
        "name": f"autopilot-{cfg.name}",
        "ray_actor_options": {"num_cpus": s.num_cpus},
        "max_ongoing_requests": max_ongoing,
        "logging_config": LoggingConfig(
            enable_access_log=s.access_log, log_level="INFO" if s.access_log else "WARNING"
        ),
        "health_check_period_s": 10.0,
    }
    if s.num_replicas == "auto":
        opts["autoscaling_config"] = {
            "min_replicas": s.min_replicas,
            "max_replicas": max(s.max_replicas, s.min_replicas),
            # Scale out when a replica holds more than about two full batches.
            "target_ongoing_requests": max(2, 2 * s.max_batch_size),
            "upscale_delay_s": 5.0,
            "downscale_delay_s": 60.0,
        }
    else:
        opts["num_replicas"] = int(s.num_replicas)
    return opts


def build_app(cfg: AutopilotConfig, *, registry: Any = None) -> Any:
    """The bound Serve application (``serve.run(build_app(cfg))``).

    The admin token is read here from ``serving.admin_token_env`` and only its
    SHA-256 is passed to the replicas. ``registry`` is for tests only (it must
    pickle); by default replicas open the config's MLflow registry.
    """
    from ray import serve

    from deployments.endpoint import AutopilotIngress, hash_token

    token = cfg.serving.admin_token
    token_sha = hash_token(token) if token else None
    # serve.deployment is annotated as a decorator factory only; given a class it
    # returns the Deployment itself.
    dep = serve.deployment(AutopilotIngress).options(  # type: ignore[attr-defined]
        **deployment_options(cfg)
    )
    return dep.bind(cfg.model_dump(mode="json"), token_sha, registry)


def app_builder(args: dict[str, Any]) -> Any:
    """Serve's builder entry point: ``args["config_path"]`` names the model's YAML config."""
    path = args.get("config_path") or os.environ.get("AUTOPILOT_CONFIG")
    if not path:
        raise ConfigError("app_builder needs config_path=<model config YAML> "
                          "(or the AUTOPILOT_CONFIG environment variable)")
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        # `serve deploy` builds inside the Serve controller, whose working directory is
        # Ray's session folder: try the project root (parent of this package) as well.
        alt = Path(__file__).resolve().parent.parent / p
        if alt.exists():
            p = alt
    cfg = load_config(p)
    extra = sorted(set(args) - {"config_path"})
    if extra:
        raise ConfigError(f"app_builder: unknown argument(s) {extra}; only config_path")
    return build_app(cfg)


# ------------------------------------------------------------- Serve on a shared cluster


@dataclass(frozen=True)
class ServeHTTP:
    """Where Serve's HTTP proxy listens, and whether this process started Serve."""

    host: str
    port: int
    started: bool

    @property
    def url(self) -> str:
        """Base URL for clients (a proxy bound to every interface is reached on loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


def _running_serve_controller() -> Any | None:
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        return ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:
        return None


def start_serve(host: str, port: int) -> ServeHTTP:
    """Start Serve with its proxy on ``host:port``, or join the Serve already running.

    A cluster has one Serve instance and one HTTP port. When Serve already runs
    (another app, another user's stack on a shared cluster) ``serve.start`` would
    keep its proxy where it is and only warn; this returns where it really
    listens, so callers never advertise a port nobody answers on, and
    ``started=False`` so they never shut down a Serve they did not start.
    """
    import ray
    from ray import serve
    from ray.serve.config import HTTPOptions
    from ray.serve.schema import LoggingConfig

    existing = _running_serve_controller()
    if existing is not None:
        http = ray.get(existing.get_http_config.remote(), timeout=60)
        return ServeHTTP(str(http.host), int(http.port), started=False)
    serve.start(http_options=HTTPOptions(host=host, port=port),
                logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"))
    return ServeHTTP(host, port, started=True)


def stop_apps(names: list[str], *, stop_serve: bool) -> list[str]:
    """Delete the Serve apps ``names``; shut Serve down too if ``stop_serve`` and none remain.

    Returns the names of the applications other owners still run (Serve is left
    up for them).
    """
    from ray import serve

    if _running_serve_controller() is None:
        return []
    for name in names:
        try:
            serve.delete(name)
        except Exception:  # noqa: BLE001 - already gone
            pass
    others = sorted(serve.status().applications)
    if stop_serve and not others:
        serve.shutdown()
    return others
