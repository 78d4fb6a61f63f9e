"""Serving benchmark: the Autopilot endpoint against a bare Serve deployment, over HTTP.

An external load generator (``wrk``, installed with apt-get when missing) drives,
in one run and on one fresh local Ray per proxy option:

(a) ``bare``      a minimal Serve FastAPI deployment calling the same scikit-learn
                  model's ``predict`` + ``predict_proba`` per request (no validation,
                  batching, routing, cache or records);
(b) ``nocache``   the Autopilot endpoint with its cache off (1-row requests);
(c) ``cached``    the Autopilot endpoint answering from its cache (same row every time);
(d) ``rows100``   the Autopilot endpoint, cache off, 100-row requests;
(e) ``rate200``   the Autopilot endpoint, cache off, paced near 200 requests/s for latency;

plus (b) and (c) again at light load (2 connections) for the cache's latency effect.

It prints requests/s, predictions/s, p50/p95/p99 and the ratio (b)/(a), checks the
goals ((b)/(a) >= 0.8; p95 < 50 ms at 200 req/s; >= 20,000 predictions/s with 100-row
requests; cache-hit p50 <= half the miss p50, at light load and at saturation), and
writes everything as JSON.

Proxy options (each needs its own Ray, since Serve reads them at start-up):
``default`` (Serve's Python HTTP proxy), ``haproxy`` (``RAY_SERVE_ENABLE_HA_PROXY=1``,
which also turns on direct ingress), ``direct`` (``RAY_SERVE_ENABLE_DIRECT_INGRESS=1``)
and ``throughput`` (``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``).

Run (load only ever goes to 127.0.0.1)::

    python benchmarks/serving.py                       # default and haproxy
    python benchmarks/serving.py --proxy all --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import Request  # module level: FastAPI resolves the route's string annotations

ROOT = Path(__file__).resolve().parent.parent
PROXIES = {
    "default": {},
    "haproxy": {"RAY_SERVE_ENABLE_HA_PROXY": "1"},
    "direct": {"RAY_SERVE_ENABLE_DIRECT_INGRESS": "1"},
    "throughput": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"},
}
MODEL = "bench"
GOALS = {
    "ratio_b_over_a": 0.8,
    "p95_ms_at_200rps": 50.0,
    "predictions_per_s_100rows": 20_000.0,
    "cache_hit_p50_over_miss_p50": 0.5,
}

_LUA = """
local f = io.open("{body}", "r")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
{delay}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,' ..
    '"p50":%.3f,"p95":%.3f,"p99":%.3f,"mean":%.3f}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    """Path of ``wrk``; installs the Debian package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get (Debian package 'wrk')", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True,
                   stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


def run_wrk(wrk: str, url: str, body: Any, seconds: float, conns: int, tmp: Path,
            delay_ms: float | None = None) -> dict[str, float]:
    """One wrk run; returns requests/s and latency percentiles in ms."""
    body_path = tmp / f"body-{abs(hash((url, conns, delay_ms)))}.json"
    body_path.write_text(json.dumps(body))
    delay = f"function delay() return {delay_ms:.1f} end" if delay_ms else ""
    script = tmp / f"script-{abs(hash((url, conns, delay_ms)))}.lua"
    script.write_text(_LUA.format(body=body_path, delay=delay))
    cmd = [wrk, "-t1", f"-c{conns}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s",
           str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"RESULT (\{.*\})", out)
    if not m:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    return {"rps": r["requests"] / secs, "requests": r["requests"], "errors": r["errors"],
            "non2xx": r["non2xx"], "p50_ms": r["p50"], "p95_ms": r["p95"],
            "p99_ms": r["p99"], "mean_ms": r["mean"]}


# --------------------------------------------------------------------------- child


def _bare_app(model_bytes: bytes, feature_names: list[str]) -> Any:
    """(a): the same model behind a minimal Serve FastAPI route, one call per request.

    Defined in this script (``__main__`` in the child), so Serve pickles it by value.
    """
    from fastapi import FastAPI
    from ray import serve
    from ray.serve.schema import LoggingConfig

    app = FastAPI()

    @serve.deployment(
        ray_actor_options={"num_cpus": 0.25},
        max_ongoing_requests=256,
        logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"),
    )
    @serve.ingress(app)
    class Bare:
        def __init__(self, blob: bytes, names: list[str]) -> None:
            self.model = pickle.loads(blob)
            self.names = names

        async def predict(self, request):  # noqa: ANN001 - annotated below
            import pandas as pd

            rows = await request.json()
            frame = pd.DataFrame.from_records(rows, columns=self.names)
            return {"predictions": self.model.predict(frame).tolist(),
                    "probabilities": self.model.predict_proba(frame).tolist()}

        # Real objects, not strings: this module uses postponed annotations, and the
        # replica (which unpickles the class by value) cannot resolve "Request".
        predict.__annotations__ = {"request": Request, "return": dict}
        predict = app.post("/predict")(predict)

    return Bare.bind(model_bytes, feature_names)


def child(proxy: str, seconds: float, out_path: Path) -> None:
    """Start Ray + Serve with one proxy option, deploy the apps, run wrk, write JSON."""
    import httpx
    import pandas as pd
    import ray
    from ray import serve
    from ray.serve.config import HTTPOptions
    from ray.serve.schema import LoggingConfig
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from autopilot.config import AutopilotConfig
    from autopilot.registry import Lineage, MlflowRegistry
    from autopilot.training.data import infer_schema
    from deployments.app import build_app

    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix=f"autopilot-bench-{proxy}-"))
    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    y = data.target
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    schema = infer_schema(pd.concat([X, y.rename("target")], axis=1), "target")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    reg = MlflowRegistry(uri)
    lineage = Lineage("initial", None, "bench", "all", {}, None, "logistic")
    reg.register(MODEL, model, schema=schema, lineage=lineage)
    reg.promote(MODEL, "1")

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = _free_port()
    serve.start(http_options=HTTPOptions(host="127.0.0.1", port=port),
                logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"))

    def cfg(cache: bool) -> AutopilotConfig:
        return AutopilotConfig.model_validate({
            "name": MODEL, "data": {"generator": {}, "target": "target"},
            "tracking_uri": uri, "state_dir": str(tmp / f"state-{cache}"),
            "serving": {"cache": {"enabled": cache}, "num_cpus": 0.25, "max_rows": 1000},
        })

    serve.run(_bare_app(pickle.dumps(model), list(X.columns)), name="bare",
              route_prefix="/bare")
    serve.run(build_app(cfg(False)), name="nocache", route_prefix="/nocache")
    serve.run(build_app(cfg(True)), name="cached", route_prefix="/cached")

    base = f"http://127.0.0.1:{port}"
    one = X.iloc[:1].to_dict(orient="records")
    hundred = X.sample(100, random_state=0).to_dict(orient="records")
    urls = {
        "bare": (f"{base}/bare/predict", one, 1),
        "nocache": (f"{base}/nocache/v1/models/{MODEL}/predict", {"rows": one}, 1),
        "cached": (f"{base}/cached/v1/models/{MODEL}/predict", {"rows": one}, 1),
        "rows100": (f"{base}/nocache/v1/models/{MODEL}/predict", {"rows": hundred}, 100),
    }
    # Correctness before speed: every target answers, and with the model's own predictions.
    with httpx.Client(timeout=30) as c:
        for label, (url, body, _) in urls.items():
            r = c.post(url, json=body)
            if r.status_code != 200:
                raise SystemExit(f"{label}: HTTP {r.status_code}: {r.text[:500]}")
            preds = r.json()["predictions"]
            rows = body if isinstance(body, list) else body["rows"]
            expect = model.predict(pd.DataFrame(rows)).tolist()
            if preds != expect:
                raise SystemExit(f"{label}: predictions differ from the model's own")

    results: dict[str, Any] = {"proxy": proxy, "port": port, "seconds": seconds}
    for label, (url, body, nrows) in urls.items():
        run_wrk(wrk, url, body, 2, 8, tmp)  # warm-up: JIT paths, caches, connections
        r = run_wrk(wrk, url, body, seconds, 16, tmp)
        r["predictions_per_s"] = r["rps"] * nrows
        results[label] = r
        print(f"  [{proxy}] {label:8s} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:.1f} ms  "
              f"p95 {r['p95_ms']:.1f} ms  errors {r['errors'] + r['non2xx']}", flush=True)
    # Light load (2 connections): latency is service time, not queueing, so the cache's
    # effect on one request shows; at saturation p50 is mostly time spent in queues.
    for label in ("nocache", "cached"):
        url, body, _ = urls[label]
        r = run_wrk(wrk, url, body, seconds, 2, tmp)
        r["predictions_per_s"] = r["rps"]
        results[f"{label}_light"] = r
        print(f"  [{proxy}] {label}_light {r['rps']:8.1f} req/s  p50 {r['p50_ms']:.2f} ms",
              flush=True)
    # Paced run: 20 connections each waiting 100 ms between requests ~ 200 req/s offered.
    url, body, _ = urls["nocache"]
    r = run_wrk(wrk, url, body, seconds, 20, tmp, delay_ms=100.0)
    r["predictions_per_s"] = r["rps"]
    results["rate200"] = r
    print(f"  [{proxy}] rate200  {r['rps']:8.1f} req/s  p95 {r['p95_ms']:.1f} ms", flush=True)

    with httpx.Client(timeout=30) as c:
        info = c.get(f"{base}/cached/v1/models/{MODEL}").json()
        results["cache_stats"] = info["cache"]
        results["records"] = c.get(f"{base}/nocache/v1/models/{MODEL}").json()["records"]
    out_path.write_text(json.dumps(results, indent=1))
    serve.shutdown()
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


# -------------------------------------------------------------------------- parent


def _child_env(proxy: str, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_worker_niceness="0", RAY_ADDRESS="local",
               PYTHONPATH=os.pathsep.join([str(ROOT / "platform"), str(ROOT),
                                           env.get("PYTHONPATH", "")]))
    env.update(PROXIES[proxy])
    if proxy == "haproxy":
        # Private files and ports, so a benchmark never touches another HAProxy on the box.
        # HAProxy refuses socket paths over 97 characters and Serve nests a 57-character
        # hash folder inside, so the base must be short.
        hp = Path(tempfile.mkdtemp(prefix="aphp", dir="/tmp"))
        env.update(
            RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=str(hp / "haproxy.cfg"),
            RAY_SERVE_HAPROXY_SOCKET_PATH=str(hp / "admin.sock"),
            RAY_SERVE_HAPROXY_SERVER_STATE_BASE=str(hp),
            RAY_SERVE_HAPROXY_SERVER_STATE_FILE=str(hp / "server-state"),
            RAY_SERVE_HAPROXY_STATS_PORT=str(_free_port()),
            RAY_SERVE_HAPROXY_METRICS_PORT=str(_free_port()),
        )
    return env


def _row(label: str, r: dict[str, float]) -> str:
    return (f"{label:10s} {r['rps']:10.1f} {r['predictions_per_s']:12.0f} {r['p50_ms']:8.1f} "
            f"{r['p95_ms']:8.1f} {r['p99_ms']:8.1f} {int(r['errors'] + r['non2xx']):7d}")


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    """Ratios and goal checks for one proxy option."""
    ratio = res["nocache"]["rps"] / res["bare"]["rps"]
    hit_ratio = res["cached_light"]["p50_ms"] / res["nocache_light"]["p50_ms"]
    hit_ratio_saturated = res["cached"]["p50_ms"] / res["nocache"]["p50_ms"]
    checks = {
        "ratio_b_over_a": (ratio, ratio >= GOALS["ratio_b_over_a"]),
        "p95_ms_at_200rps": (res["rate200"]["p95_ms"],
                             res["rate200"]["p95_ms"] < GOALS["p95_ms_at_200rps"]),
        "predictions_per_s_100rows": (
            res["rows100"]["predictions_per_s"],
            res["rows100"]["predictions_per_s"] >= GOALS["predictions_per_s_100rows"]),
        "cache_hit_p50_over_miss_p50": (hit_ratio,
                                        hit_ratio <= GOALS["cache_hit_p50_over_miss_p50"]),
        "cache_hit_p50_over_miss_p50_saturated": (
            hit_ratio_saturated, hit_ratio_saturated <= GOALS["cache_hit_p50_over_miss_p50"]),
    }
    return {k: {"value": v, "met": met} for k, (v, met) in checks.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", default="default,haproxy",
                    help=f"comma-separated of {list(PROXIES)} or 'all'")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serving.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.duration, args.child_out)
        return 0

    ensure_wrk()
    proxies = list(PROXIES) if args.proxy == "all" else args.proxy.split(",")
    unknown = [p for p in proxies if p not in PROXIES]
    if unknown:
        ap.error(f"unknown proxy option(s) {unknown}; choose from {list(PROXIES)}")
    all_results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "goals": GOALS,
                                   "runs": {}}
    for proxy in proxies:
        tmp = Path(tempfile.mkdtemp(prefix="autopilot-bench-"))
        out = tmp / "result.json"
        print(f"== proxy option: {proxy}", flush=True)
        t0 = time.time()
        env = _child_env(proxy, tmp)
        try:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", proxy, "--duration",
                 str(args.duration), "--child-out", str(out)],
                env=env, cwd=ROOT, timeout=900,
            )
        finally:
            if "RAY_SERVE_HAPROXY_SERVER_STATE_BASE" in env:
                shutil.rmtree(env["RAY_SERVE_HAPROXY_SERVER_STATE_BASE"], ignore_errors=True)
        if proc.returncode != 0 or not out.exists():
            print(f"   {proxy}: failed (exit {proc.returncode}); skipped", flush=True)
            all_results["runs"][proxy] = {"failed": proc.returncode}
            continue
        res = json.loads(out.read_text())
        res["summary"] = summarise(res)
        res["wall_s"] = time.time() - t0
        all_results["runs"][proxy] = res
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    for proxy, res in all_results["runs"].items():
        if "failed" in res:
            continue
        print(f"proxy={proxy}   (wrk -t1 -c16, {args.duration:.0f} s per run, 127.0.0.1)")
        print(f"{'scenario':10s} {'req/s':>10s} {'pred/s':>12s} {'p50 ms':>8s} {'p95 ms':>8s} "
              f"{'p99 ms':>8s} {'errors':>7s}")
        names = {"bare": "(a) bare", "nocache": "(b) miss", "cached": "(c) hit",
                 "rows100": "(d) 100row", "rate200": "(e) 200/s", "nocache_light": "miss c=2",
                 "cached_light": "hit c=2"}
        for key, label in names.items():
            print(_row(label, res[key]))
        for goal, v in res["summary"].items():
            g = GOALS[goal.removesuffix("_saturated")]
            print(f"  {goal:38s} {v['value']:10.3f}   goal {g:>8}   "
                  f"{'MET' if v['met'] else 'not met'}")
        print()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(all_results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
