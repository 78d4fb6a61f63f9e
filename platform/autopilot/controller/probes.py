"""What the controller asks over HTTP: the Ray dashboard's address and the endpoint's breakers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["dashboard_url", "endpoint_breakers", "ray_auth_headers"]


def ray_auth_headers() -> dict[str, str]:
    """``Authorization`` header for Ray 2.60's token auth, when a token is configured."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if not token and path.is_file():
        token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def dashboard_url() -> str | None:
    """The running cluster's dashboard URL if it answers, else None."""
    import httpx

    url = os.environ.get("RAY_DASHBOARD_ADDRESS")
    if not url:
        try:
            import ray
            from ray._private import ray_constants
            from ray.experimental.internal_kv import _internal_kv_get

            # The dashboard records its address in the cluster's GCS; absent when the
            # cluster runs without one. (`ray._private.worker.get_dashboard_url()` is only
            # right in a driver: in a worker, the controller actor included, it answers
            # Ray's default 127.0.0.1:8265, which may be another cluster's dashboard.)
            raw = (_internal_kv_get(ray_constants.DASHBOARD_ADDRESS,
                                    namespace=ray_constants.KV_NAMESPACE_DASHBOARD)
                   if ray.is_initialized() else None)
            url = raw.decode() if raw else None
        except Exception:  # noqa: BLE001 - no Ray, no dashboard
            url = None
    if not url:
        return None
    if not url.startswith("http"):
        url = f"http://{url}"
    try:
        resp = httpx.get(f"{url}/api/version", headers=ray_auth_headers(), timeout=2.0)
    except httpx.HTTPError:
        return None
    return url if resp.status_code == 200 else None


def endpoint_breakers(url: str, model: str, timeout_s: float = 2.0) -> dict[str, str]:
    """Breaker state per version from the endpoint's ``GET /v1/models/{model}``; {} if away."""
    import httpx

    try:
        resp = httpx.get(f"{url.rstrip('/')}/v1/models/{model}", timeout=timeout_s)
        versions = resp.json().get("versions", {}) if resp.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}
    return {str(v): str(info.get("breaker")) for v, info in versions.items()
            if isinstance(info, Mapping) and info.get("breaker")}

