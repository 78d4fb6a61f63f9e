"""`autopilot up --address` with two model configs on a cluster it did not start.

The session's Ray (and its Serve, on the session's port) stands in for someone
else's cluster: ``up`` must join both, train a first version of each model,
serve each under its own route prefix on that one Serve port, and ``status``
must list both; ``down`` must remove its apps and actors and leave the Ray and
the Serve it did not start running.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

pytestmark = pytest.mark.integration


def _config(name: str, scenario: str, task: str, family: str, metric: str, state: Path,
            uri: str) -> dict[str, Any]:
    return {
        "name": name, "task": task,
        "data": {"generator": {"scenario": scenario, "n_rows": 400, "seed": 3},
                 "target": "y", "time_column": "t"},
        "training": {"families": [family], "metric": metric, "num_trials": 1,
                     "time_budget_s": 30, "cv_folds": 2, "cpus_per_trial": 0.5,
                     "ensemble_top_k": 0, "seed": 3},
        # A port nobody listens on: Serve already runs, so `up` must use its real port.
        "serving": {"host": "127.0.0.1", "http_port": 1, "num_cpus": 0.1},
        "controller": {"tick_interval_s": 30},
        "state_dir": str(state), "tracking_uri": uri,
    }


def test_up_two_models_on_a_running_cluster(
    tmp_path: Path, serve_session: int, tracking_uri: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import ray

    from autopilot import cli
    from autopilot.routing import CONTROLLER_ACTOR, NAMESPACE

    # Keep the user's "last stack" pointer and auth mode out of this test.
    monkeypatch.setattr(cli, "_LAST", tmp_path / "last_state_dir")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    state = tmp_path / "state"
    paths = []
    for cfg in (_config("up-churn", "demo", "classification", "logistic", "accuracy",
                        state, tracking_uri),
                _config("up-spend", "regression", "regression", "linear", "r2",
                        state, tracking_uri)):
        path = tmp_path / f"{cfg['name']}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        paths.append(str(path))
    address = ray.get_runtime_context().gcs_address
    argv = ["up", "--address", address, "--config", paths[0], "--config", paths[1]]
    try:
        assert cli.main(argv) == 0
        stack = json.loads((state / cli.STACK_FILE).read_text())
        assert stack["started_ray"] is False and stack["started_serve"] is False
        assert stack["serve_url"] == f"http://127.0.0.1:{serve_session}"
        assert [a["route_prefix"] for a in stack["apps"]] == ["/up-churn", "/up-spend"]

        base = stack["serve_url"]
        rows = {"up-churn": {"x1": 0.1, "x2": 1.2, "x3": -0.3, "amount": 50.0,
                             "segment": "a", "promo": 0},
                "up-spend": {"x1": 0.3, "x2": -0.6, "x3": 1.8, "amount": 14.9,
                             "segment": "a", "promo": 1}}
        for name, row in rows.items():
            r = httpx.post(f"{base}/{name}/v1/models/{name}/predict", json=[row], timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["model"] == name and r.json()["version"] == "1"
        # Each app answers for its own model only.
        r = httpx.post(f"{base}/up-churn/v1/models/up-spend/predict", json=[rows["up-spend"]],
                       timeout=60)
        assert r.status_code == 404, r.text

        capsys.readouterr()
        assert cli.main(["--state-dir", str(state), "status", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert sorted(out["models"]) == ["up-churn", "up-spend"]
        assert all(m["state"]["champion"] == "1" for m in out["models"].values())

        # A second stack on the same cluster is refused before it writes anything: the
        # controller is one per cluster, and joining it would leave these configs unmanaged.
        before = (state / cli.STACK_FILE).read_text()
        other = tmp_path / "other"
        capsys.readouterr()
        assert cli.main(["--state-dir", str(other), "up", "--address", address,
                         "--config", paths[0]]) == 2
        assert "controller is already running on the Ray cluster" in capsys.readouterr().err
        assert not (other / cli.STACK_FILE).exists()
        # ... and so is a second `up` into the same state folder; its stack file is kept.
        assert cli.main(["up", "--address", address, "--config", paths[0]]) == 2
        assert (state / cli.STACK_FILE).read_text() == before
        assert ray.is_initialized()  # the refusal did not end the session's connection
    finally:
        assert cli.main(["--state-dir", str(state), "down"]) == 0
    from ray import serve

    assert ray.is_initialized()
    assert not {"autopilot-up-churn", "autopilot-up-spend"} & set(serve.status().applications)
    with pytest.raises(ValueError):
        ray.get_actor(CONTROLLER_ACTOR, namespace=NAMESPACE)
    # Serve (which `up` did not start) still answers on its port.
    assert httpx.get(f"http://127.0.0.1:{serve_session}/-/healthz", timeout=10).status_code == 200

    # A stack file left behind (say `down` never ran and the controller died) does not
    # block a new `up` on a cluster that still answers: nothing of that stack runs there.
    stale = {"state_dir": str(state), "ray_address": address, "started_ray": False,
             "apps": [], "mlflow_pid": None, "ray_pgid": None, "started_serve": False}
    (state / cli.STACK_FILE).write_text(json.dumps(stale))

    class _Past(Exception):
        pass

    def _stop_here(*_a: Any, **_k: Any) -> None:
        raise _Past  # up got past its checks; the rest is covered above

    monkeypatch.setattr("autopilot.monitor.start_monitor", _stop_here)
    with pytest.raises(_Past):
        cli.main(["up", "--address", address, "--config", paths[0], "--no-train"])
    assert "started_at" in json.loads((state / cli.STACK_FILE).read_text())  # up's own file
