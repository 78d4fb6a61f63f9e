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
from pathlib import Path
from typing import Any

from autopilot.config import AutopilotConfig, load_config
from autopilot.errors import ConfigError

__all__ = ["SERVE_PROXY_ENV", "app_builder", "build_app", "deployment_options"]

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
    dep = serve.deployment(AutopilotIngress).options(**deployment_options(cfg))
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
