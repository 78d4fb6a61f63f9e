"""``make demo``: the whole Autopilot loop, live, over real HTTP, in a few minutes.

What it does (``python -m jobs.demo [--quick] [--keep]``; on a running cluster
``--address HOST:PORT``, or as a Ray job: ``ray job submit --working-dir .
--runtime-env-json '{"py_modules": ["platform/autopilot"]}' -- <venv>/bin/python -m
jobs.demo --state-dir /abs/path``, see the README's "Run on a Ray cluster"):

1. starts a local stack under a state folder: a Ray head (with its dashboard), MLflow
   on SQLite, the Monitor and Controller actors, the Serve endpoint;
2. trains the first model with AutoML (Ray Tune, every trial in MLflow) on the quiet
   first rows of the built-in ``demo`` drifting stream and makes it champion;
3. replays the rest of the stream as live traffic: single-row ``POST
   /v1/models/demo/predict`` requests from many distinct user keys at a steady rate;
   the true labels go back through ``/feedback`` after a delay;
4. the stream holds a quiet stretch (nothing may happen), an abrupt covariate shift
   (the drift checks must catch it) and an abrupt concept drift (inputs look the same;
   only labelled performance can catch it);
5. the first retrain after the concept drift is sabotaged once: it registers a
   challenger that passes the offline gate but, once live, raises on every row with
   ``promo=1`` (a broken build). Autopilot must roll it back and retrain again;
6. prints one line per event (drift found, retrain started/finished with the
   leaderboard winner, offline gate, canary weights, promotion, rollback) beside a
   progress bar, then a summary (accuracy before/after each decision, retrains, time
   to detect each change, where to look) and writes an HTML report with plots.

Everything it started is shut down at the end unless ``--keep`` (then ``autopilot
down --state-dir <folder>`` stops it). Retrains run as Ray tasks through
:func:`demo_train`; the controller hands each the newest ``RETRAIN_ROWS`` labelled
rows less the newest ``GATE_HOLDOUT`` share, which the offline gate scores on (a
model meant to follow the present should not learn mostly from before a change).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MODEL = "demo"
RETRAIN_ROWS = 900  # the retrain window: about 20 s of demo traffic
GATE_HOLDOUT = 0.2  # its newest fifth is held out for the offline gate
MARKER = ".autopilot-demo"
QUIET = ("none", "hold")


# ----------------------------------------------------------------- the bad challenger


class FlakyChallenger:
    """A real model that, once its fault is armed, raises on every row with ``promo == 1``.

    It behaves offline (so it passes the gate, as a broken build often does) and fails
    only on live traffic: the demo arms it by creating ``<state_dir>/fault`` when its
    canary starts, as a bad dependency would break it in production.
    """

    def __init__(self, model: Any, fault_flag: str) -> None:
        self.model = model
        self.fault_flag = fault_flag
        self.classes_ = getattr(model, "classes_", None)

    def _check(self, X: Any) -> None:
        if os.path.exists(self.fault_flag):
            promo = pd.DataFrame(X).get("promo")
            if promo is not None and (promo.astype(str) == "1").any():
                raise RuntimeError("FlakyChallenger: injected fault on rows with promo=1")

    def predict(self, X: Any) -> Any:
        self._check(X)
        return self.model.predict(X)

    def predict_proba(self, X: Any) -> Any:
        self._check(X)
        return self.model.predict_proba(X)


def demo_train(request: Any) -> str:
    """Retrain on the newest labelled rows; once (when scheduled) register a flaky challenger."""
    from autopilot.config import load_config
    from autopilot.controller import train_from_request

    cfg = load_config(request.config_path)
    state = cfg.resolved_state_dir()
    # The broken build stays broken until one of its challengers has reached the canary
    # (the demo then removes the flag): a flaky candidate that fails the offline gate
    # is simply archived, and the next retrain is flaky again.
    if not (state / "sabotage_next").exists():
        return train_from_request(request)
    return _register_flaky(cfg, request, state)


def _register_flaky(cfg: Any, request: Any, state: Path) -> str:
    from autopilot.registry import Lineage, open_registry
    from autopilot.stats import ReferenceProfile
    from autopilot.training.data import fingerprint, infer_schema, split_xy
    from autopilot.training.families import build_pipeline

    frame = pd.read_parquet(request.data_path)
    features = cfg.data.features
    schema = infer_schema(frame, cfg.data.target, features=features, task=cfg.task)
    X, y = split_xy(frame, schema)
    model = FlakyChallenger(build_pipeline("logistic", {}, schema).fit(X, y),
                            str(state / "fault"))
    acc = float(np.mean(np.asarray(model.predict(X)).astype(str) == np.asarray(y).astype(str)))
    lineage = Lineage(request.trigger, request.parent_version, fingerprint(frame),
                      request.data_window, {"accuracy": acc}, None, "flaky-logistic", {})
    profile = ReferenceProfile.fit(X, {c.name: c.kind for c in schema.columns}).to_dict()
    reg = open_registry(cfg)
    return reg.register(cfg.name, model, schema=schema, lineage=lineage,
                        reference_profile=profile).version


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class DemoSettings:
    rows: int  # rows in the generated stream
    train_rows: int  # quiet rows the first model learns from (not replayed)
    rate: float  # requests per second
    label_delay_s: float
    families: tuple[str, ...]
    trials: int
    time_budget_s: float
    tick_s: float
    min_interval_s: float
    tail_s: float  # after the stream: keep serving final-regime rows this long at most
    canary_max_s: float  # a canary with no verdict after this long keeps the champion


FULL = DemoSettings(rows=8000, train_rows=1500, rate=40.0, label_delay_s=2.0,
                    families=("logistic", "hist_gb"), trials=4, time_budget_s=40.0,
                    tick_s=2.0, min_interval_s=25.0, tail_s=120.0, canary_max_s=45.0)
QUICK = DemoSettings(rows=6000, train_rows=1200, rate=45.0, label_delay_s=1.0,
                     families=("logistic",), trials=2, time_budget_s=40.0,
                     tick_s=1.5, min_interval_s=15.0, tail_s=150.0, canary_max_s=30.0)


def demo_config(s: DemoSettings, state_dir: Path, port: int, seed: int) -> dict[str, Any]:
    """The managed model's config (written as YAML under the state folder)."""
    return {
        "name": MODEL, "task": "classification",
        "data": {"generator": {"scenario": "demo", "n_rows": s.rows, "seed": seed},
                 "target": "y", "time_column": "t",
                 "features": {"numeric": ["x1", "x2", "x3", "amount"],
                              "categorical": ["segment"], "binary": ["promo"]}},
        "training": {"families": list(s.families), "metric": "accuracy",
                     "num_trials": s.trials, "time_budget_s": s.time_budget_s, "cv_folds": 3,
                     "cpus_per_trial": 0.5, "ensemble_top_k": 0, "seed": seed},
        "serving": {"host": "127.0.0.1", "http_port": port, "num_cpus": 0.25,
                    "table_refresh_s": 0.5, "record_flush_s": 0.2,
                    "cache": {"enabled": False}},
        "monitor": {"window_rows": 800},
        "policy": {
            "triggers": {"drift": {"severity": "high", "min_rows": 300},
                         "performance": {"relative_drop": 0.05, "min_labels": 200}},
            "guards": {"min_interval_s": s.min_interval_s, "max_concurrent": 1},
            "gate": {"min_rows": 100},
            "canary": {"steps": [0.1, 0.5, 1.0], "min_samples_per_step": 60,
                       "guardrail_min_requests": 10, "srm_min_requests": 80,
                       "max_duration_s": s.canary_max_s},
        },
        "controller": {"tick_interval_s": s.tick_s, "retrain_rows": RETRAIN_ROWS,
                       "gate_holdout": GATE_HOLDOUT},
        "state_dir": str(state_dir),
    }


# ------------------------------------------------------------------------ the console


class Console:
    """Event lines above a one-line progress bar (redrawn in place on a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.tty = sys.stdout.isatty()
        self.status = ""
        self._last_plain = -1

    def event(self, text: str) -> None:
        with self.lock:
            stamp = f"[{time.monotonic() - self.t0:6.1f}s]"
            if self.tty:
                sys.stdout.write("\r\x1b[2K")
            sys.stdout.write(f"{stamp} {text}\n")
            self._bar()
            sys.stdout.flush()

    def progress(self, done: int, status: str = "") -> None:
        with self.lock:
            self.done = done
            self.status = status or self.status
            self._bar()
            sys.stdout.flush()

    def _bar(self) -> None:
        frac = min(1.0, self.done / max(1, self.total))
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        line = f"replay [{bar}] {self.done}/{self.total} rows  {self.status}"
        if self.tty:
            sys.stdout.write("\r\x1b[2K" + line)
        elif int(frac * 10) != self._last_plain:  # a plain log gets a line per 10 %
            self._last_plain = int(frac * 10)
            sys.stdout.write(line + "\n")

    def close(self) -> None:
        if self.tty:
            with self.lock:
                sys.stdout.write("\n")
                sys.stdout.flush()


# ----------------------------------------------------------------------------- traffic


class Traffic:
    """Replays rows as single-row requests at a steady rate; labels follow after a delay."""

    def __init__(self, url: str, features: list[str], rate: float, label_delay_s: float,
                 rng: np.random.Generator, workers: int = 8) -> None:
        import httpx

        self.url = url
        self.features = features
        self.rate = rate
        self.delay = label_delay_s
        self.rng = rng
        self.client = httpx.Client(base_url=url, timeout=30.0,
                                   limits=httpx.Limits(max_connections=workers * 2))
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="demo-traffic")
        self.labels: deque[tuple[float, str, Any]] = deque()
        self.log: list[dict[str, Any]] = []  # one entry per answered request
        self.errors = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _one(self, row: dict[str, Any], label: Any, key: str, stream_row: int) -> None:
        try:
            r = self.client.post(f"/v1/models/{MODEL}/predict", json={"rows": [row], "key": key})
        except Exception:  # noqa: BLE001 - counted; the replay goes on
            with self.lock:
                self.errors += 1
            return
        if r.status_code != 200:
            with self.lock:
                self.errors += 1
            return
        out = r.json()
        now = time.time()
        with self.lock:
            self.labels.append((now + self.delay, out["request_id"], label))
            self.log.append({"ts": now, "row": stream_row, "version": str(out["version"]),
                             "routed_to": str(out.get("routed_to")),
                             "correct": str(out["predictions"][0]) == str(label)})

    def _feed(self) -> None:
        while not self._stop.wait(0.3):
            self.flush_labels(due_only=True)

    def flush_labels(self, due_only: bool) -> None:
        now = time.time()
        batch = []
        with self.lock:
            while self.labels and (not due_only or self.labels[0][0] <= now):
                _, rid, label = self.labels.popleft()
                batch.append({"request_id": rid, "label": label})
        if batch:
            try:
                self.client.post(f"/v1/models/{MODEL}/feedback", json={"labels": batch})
            except Exception:  # noqa: BLE001 - labels may be lost; the loop tolerates it
                pass

    def send(self, frame: pd.DataFrame, start_row: int) -> Any:
        """Submit every row of ``frame`` at the steady rate; yields after each row."""
        t_next = time.monotonic()
        for i in range(len(frame)):
            rec = frame.iloc[i]
            row = {}
            for f in self.features:
                v = rec[f]
                row[f] = None if (isinstance(v, float) and np.isnan(v)) or v is None else (
                    v.item() if hasattr(v, "item") else v)
            key = f"user-{int(self.rng.integers(0, 3000))}"
            self.pool.submit(self._one, row, rec["y"].item(), key, start_row + i)
            t_next += 1.0 / self.rate
            pause = t_next - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            yield start_row + i

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self._stop.set()
        self.flush_labels(due_only=False)
        self.client.close()


# ------------------------------------------------------------------------------- watch


class Watcher:
    """Follows the controller's journal and routing table; prints one line per event."""

    def __init__(self, controller: Any, registry: Any, console: Console, state_dir: Path,
                 monitor: Any) -> None:
        self.controller = controller
        self.registry = registry
        self.console = console
        self.state_dir = state_dir
        self.monitor = monitor
        self.seen: set[int] = set()
        self.entries: list[dict[str, Any]] = []
        self.weights: list[dict[str, Any]] = []
        self.drift: list[dict[str, Any]] = []
        self.drift_table: pd.DataFrame | None = None
        self.flaky: str | None = None
        self._last_table: Any = None
        self._routed: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - the watcher must not stop the demo
                self.console.event(f"(watcher: {type(exc).__name__}: {exc})")

    def poll(self) -> None:
        import ray

        hist = ray.get(self.controller.history.remote(MODEL, limit=None), timeout=30)
        for e in hist:
            if e["id"] in self.seen:
                continue
            self.seen.add(e["id"])
            self.entries.append(e)
            if e["action"] not in QUIET:
                self.console.event(self.describe(e))
        status = ray.get(self.controller.status.remote(MODEL), timeout=30)[MODEL]
        table = status.get("routing")
        if table and table != self._last_table:
            self._last_table = table
            now = time.time()
            arms = table.get("arms", [])
            live = {str(a["version"]) for a in arms}
            for a in arms:
                self.weights.append({"t": now, "version": str(a["version"]),
                                     "weight": float(a["weight"])})
            for v in self._routed - live:  # a version that left the table gets no traffic
                self.weights.append({"t": now, "version": v, "weight": 0.0})
            self._routed = live
            if len(arms) > 1 and all(a["weight"] > 0 for a in arms):
                shares = ", ".join(f"v{a['version']} {a['weight']:.0%}" for a in arms)
                self.console.event(f"canary weights   {shares}")
        champ = status.get("state", {}).get("champion")
        if champ is not None:
            rep = ray.get(self.monitor.call.remote("drift_report", MODEL, str(champ)),
                          timeout=30)
            if rep is not None:
                frame = rep.to_frame()
                now = time.time()
                for _, r in frame.iterrows():
                    self.drift.append({"t": now, "feature": r["feature"],
                                       "score": float(r["effect_size"]),
                                       "threshold": _effect_threshold(r)})
                self.drift_table = frame[["feature", "kind", "method", "statistic",
                                          "p_value_adjusted", "effect_size", "severity",
                                          "recommendation"]]

    def describe(self, e: dict[str, Any]) -> str:
        act, reasons = e["action"], e.get("reasons") or []
        nums = e.get("numbers") or {}
        version = nums.get("version")
        first = reasons[0] if reasons else ""
        if act == "retrain":
            trig = nums.get("trigger") or ""
            label = {"drift": "drift found", "performance": "performance drop"}.get(trig, trig)
            return f"{label:<16} {first}\n{'':>10}retrain started  ({e.get('outcome', '')})"
        if act == "validate":
            who = ""
            try:
                mv = self.registry.get(MODEL, version)
                acc = mv.lineage.metrics.get("accuracy")
                who = (f": leaderboard winner {mv.lineage.family}"
                       + (f", holdout accuracy {acc:.3f}" if acc is not None else ""))
                if mv.lineage.family.startswith("flaky"):
                    self.flaky = str(version)
                    who += " (the sabotaged build: it will fail once live)"
            except Exception:  # noqa: BLE001 - describing must not fail the demo
                pass
            return f"retrain finished version {version}{who}"
        if act == "start_canary":
            line = f"offline gate     passed: {first}"
            if self.flaky is not None and str(version) == self.flaky:
                (self.state_dir / "sabotage_next").unlink(missing_ok=True)
                (self.state_dir / "fault").touch()
                line += (f"\n{'':>10}FAULT INJECTED   v{version} now raises on rows with "
                         "promo=1 (a broken build reaches the canary)")
            return line
        if act == "archive_candidate":
            return f"candidate archived v{version}: {first}"
        if act == "ramp":
            return f"canary ramp      v{version}: {first}"
        if act == "promote":
            return f"PROMOTED         v{version}: {first}"
        if act == "rollback":
            if self.flaky is not None:
                (self.state_dir / "fault").unlink(missing_ok=True)
            return f"ROLLED BACK      v{version} ({nums.get('strategy')}): {'; '.join(reasons)}"
        return f"{act:<16} {first}"


def _effect_threshold(row: Any) -> float:
    """Effect size at which the drift report grades a feature "high" (the demo's trigger).

    Severity is the effect size (normalised Wasserstein for numeric features,
    Jensen-Shannon for the others; both default to a 0.1 threshold) in multiples of
    its threshold; "high" starts at 2.5 times it.
    """
    return 2.5 * 0.1


# ------------------------------------------------------------------------------ stack


def _free_port(preferred: int) -> int:
    import socket

    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def _wait_http(url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/models/{MODEL}", timeout=5).status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the endpoint at {url} did not come up within {timeout:.0f} s")


def _accuracy_around(log: list[dict[str, Any]], t: float, span: float = 20.0) -> tuple[
        float | None, float | None]:
    before = [e["correct"] for e in log if t - span <= e["ts"] < t]
    after = [e["correct"] for e in log if t + 2.0 <= e["ts"] < t + 2.0 + span]
    return (float(np.mean(before)) if before else None,
            float(np.mean(after)) if after else None)


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller, faster run (tests)")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--state-dir", default=".autopilot/demo", help="state folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (next free if taken)")
    parser.add_argument("--no-dashboard", action="store_true", help="start Ray without it")
    parser.add_argument("--address", default=None,
                        help="run on this Ray cluster instead of starting one (default: "
                             "$RAY_ADDRESS, which Ray sets for a submitted job)")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_worker_niceness", "0")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

    state_dir = Path(args.state_dir).expanduser().resolve()
    if state_dir.exists():
        if not (state_dir / MARKER).exists() and any(state_dir.iterdir()):
            print(f"error: {state_dir} exists and is not a demo folder; choose --state-dir",
                  file=sys.stderr)
            return 2
        shutil.rmtree(state_dir)  # a fresh demo every time
    state_dir.mkdir(parents=True)
    (state_dir / MARKER).write_text("created by jobs.demo\n")
    t_start = time.monotonic()
    print(f"Autopilot demo ({'quick' if args.quick else 'full'}): state in {state_dir}")

    import yaml

    from autopilot import cli
    from autopilot.config import load_config

    port = _free_port(args.port)
    cfg_path = state_dir / "demo.yaml"
    cfg_path.write_text(yaml.safe_dump(demo_config(s, state_dir, port, args.seed)))
    cfg = load_config(cfg_path)

    stack: dict[str, Any] = {"state_dir": str(state_dir), "configs": [str(cfg_path)],
                             "models": [MODEL], "started_at": time.time(), "started_ray": True,
                             "apps": [], "mlflow_pid": None, "ray_pgid": None}
    # A submitted Ray job gets RAY_ADDRESS (its cluster) and its code through the job's
    # runtime_env; --address names a cluster from outside, and then our code is shipped.
    env_address = os.environ.get("RAY_ADDRESS", "")
    # An http(s) RAY_ADDRESS is a job-submission (dashboard) address, not a cluster to join.
    address = args.address or (env_address if not env_address.startswith("http") else None)
    if address:  # someone else's cluster: start no Ray, stop only what we start on it
        if args.address and cli._token_available():
            os.environ.setdefault("RAY_AUTH_MODE", "token")  # before Ray is imported
        stack.update({"ray_address": address, "started_ray": False, "dashboard_url": None,
                      "auth_mode": os.environ.get("RAY_AUTH_MODE"),
                      "ship_code": bool(args.address), "started_serve": False})
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        stack.update(cli._start_ray_head(state_dir, 2, not args.no_dashboard))
    cli._write_stack(state_dir, stack)
    code = 1
    try:
        code = _run(args, s, cfg, stack, state_dir, t_start)
    finally:
        if args.keep:
            print(f"stack left running; stop it with: autopilot down --state-dir {state_dir}")
        else:
            _shutdown(stack, state_dir)
    return code


def _shutdown(stack: dict[str, Any], state_dir: Path) -> None:
    """Stop what the demo started: the whole Ray head it launched, or, inside someone
    else's cluster (a Ray job, ``--address``), only its Serve app, Serve itself if the
    demo started it and no other application is left, and its two actors."""
    import ray

    from autopilot import cli

    t = time.monotonic()
    try:
        if ray.is_initialized() and not stack.get("started_ray"):
            from autopilot.controller import get_controller
            from autopilot.monitor import get_monitor
            from deployments.app import stop_apps

            try:
                others = stop_apps([a["name"] for a in stack.get("apps", [])],
                                   stop_serve=bool(stack.get("started_serve")))
                if others and stack.get("started_serve"):
                    print(f"Serve left running for other applications: {', '.join(others)}")
            except Exception as exc:  # noqa: BLE001 - still remove the actors
                print(f"could not remove the Serve app: {type(exc).__name__}: {exc}")
            for getter in (get_controller, get_monitor):
                try:
                    ray.kill(getter(), no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        if ray.is_initialized():
            ray.shutdown()
    finally:
        if stack.get("started_ray") and stack.get("ray_pgid"):
            # Serve, the actors and every worker live in the head's process group.
            cli._kill_group(int(stack["ray_pgid"]))
            cli._forget_default_address(stack.get("ray_address"), wait_s=0.0)
        (state_dir / cli.STACK_FILE).unlink(missing_ok=True)
    print(f"stack stopped ({time.monotonic() - t:.0f} s)")


def _run(args: argparse.Namespace, s: DemoSettings, cfg: Any, stack: dict[str, Any],
         state_dir: Path, t_start: float) -> int:
    import ray
    import ray.cloudpickle

    from autopilot import cli
    from autopilot.controller import start_controller
    from autopilot.monitor import start_monitor
    from autopilot.registry import open_registry
    from autopilot.report import ReportData, write_report
    from autopilot.training.generator import drifting_stream
    from autopilot.training.pipeline import train_and_register

    if stack.get("started_ray"):
        cli._connect(stack, state_dir)
    else:  # someone else's cluster (inside a Ray job, RAY_ADDRESS names it)
        cli._connect(stack, state_dir,
                     runtime_env=cli.project_runtime_env() if stack.get("ship_code") else None)
        from autopilot.controller import dashboard_url

        stack["dashboard_url"] = dashboard_url()
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # keep the console for events
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    stream = drifting_stream("demo", n_rows=s.rows, seed=args.seed)
    frame = stream.frame
    cov, con = (c.row for c in stream.change_points)
    print(f"stream: {s.rows} rows; quiet until row {cov}; covariate shift at row {cov}; "
          f"concept drift at row {con}; first model trains on rows 0:{s.train_rows}")

    t = time.monotonic()
    print(f"training the first model: AutoML over {', '.join(s.families)}, "
          f"{s.trials} trials on Ray Tune ...", flush=True)
    registry = open_registry(cfg)
    outcome = train_and_register(cfg, frame.iloc[:s.train_rows], registry, trigger="initial",
                                 data_window=f"rows 0:{s.train_rows}")
    registry.promote(MODEL, outcome.version.version)
    board = outcome.leaderboard
    print(f"  version {outcome.version.version} ({outcome.family}) is champion; "
          f"{len(board)} trials on the leaderboard; {time.monotonic() - t:.0f} s")

    from ray import serve

    from deployments.app import build_app, start_serve

    # On a cluster whose Serve already runs (a Ray job on a shared cluster), its proxy
    # keeps its port and "/" may be taken: the demo then lives under /demo.
    http = start_serve(cfg.serving.host, cfg.serving.http_port)
    stack["started_serve"] = http.started
    prefix = "/" if http.started else f"/{MODEL}"
    url = http.url + prefix.rstrip("/")
    monitor = start_monitor(state_dir / "monitor.db", window_rows=cfg.monitor.window_rows)
    controller = start_controller([cfg], journal_path=state_dir / "journal.db",
                                  launcher="task", train_fn=demo_train,
                                  endpoints={MODEL: url})
    serve.run(build_app(cfg), name="autopilot-demo", route_prefix=prefix, blocking=False)
    stack["apps"].append({"name": "autopilot-demo", "route_prefix": prefix})
    stack["serve_url"] = url
    cli._write_stack(state_dir, stack)
    _wait_http(url, 180)
    print(f"stack up in {time.monotonic() - t_start:.0f} s: endpoint {url}; "
          f"dashboard {stack.get('dashboard_url') or '(off)'}")

    replay = frame.iloc[s.train_rows:]
    features = [c for c in frame.columns if c not in ("t", "y")]
    traffic = Traffic(url, features, s.rate, s.label_delay_s, np.random.default_rng(args.seed))
    console = Console(len(replay))
    watcher = Watcher(controller, registry, console, state_dir, monitor)
    watcher.start()
    marks: dict[str, float] = {}
    replay_start = time.time()
    marks["replay_start"] = replay_start
    for row in traffic.send(replay, s.train_rows):
        if row == cov:
            marks["covariate"] = time.time()
            console.event(f"--- stream row {cov}: covariate shift begins "
                          "(x2, amount, segment mix move) ---")
        if row == con:
            marks["concept"] = time.time()
            (state_dir / "sabotage_next").touch()
            console.event(f"--- stream row {con}: concept drift begins (x1, segment and promo "
                          "effects flip; inputs look the same) ---")
        done = row - s.train_rows + 1
        if done % 25 == 0:
            console.progress(done, f"{traffic.errors} errors")
    # The story needs the rollback and a later promotion; keep serving rows of the final
    # regime (the stream's last stretch, recycled) until they happened or time is up.
    tail = replay.iloc[-(len(replay) - (con - s.train_rows)) // 2:]
    deadline = time.monotonic() + s.tail_s
    while time.monotonic() < deadline and not _story_done(watcher):
        for _ in traffic.send(tail.iloc[:200], s.rows):
            pass
    traffic.close()
    time.sleep(max(s.label_delay_s, 2 * s.tick_s))
    watcher.stop()
    console.close()

    entries = watcher.entries
    loud = [e for e in entries if e["action"] not in QUIET]
    retrains = [e for e in loud if e["action"] == "retrain"]
    print()
    print("decision         time    accuracy before -> after (20 s each side)  reason")
    for e in loud:
        if e["action"] in ("validate",):
            continue
        b, a = _accuracy_around(traffic.log, e["ts"])
        print(f"{e['action']:<16} {e['ts'] - replay_start:6.1f}s  {_fmt(b)} -> {_fmt(a)}"
              f"                  {(e.get('reasons') or [''])[0][:90]}")
    # A change counts as detected by the first retrain its own kind of check triggered:
    # drift checks for the covariate shift, labelled performance for the concept drift.
    detect = {}
    for kind, trigger in (("covariate", "drift"), ("concept", "performance")):
        t0 = marks.get(kind)
        nxt = [e for e in retrains if t0 is not None and e["ts"] >= t0
               and (e.get("numbers") or {}).get("trigger") == trigger]
        detect[kind] = None if not nxt else nxt[0]["ts"] - t0
    # "detected" entries are early warnings, not decisions (they change nothing)
    quiet_decisions = [e for e in loud if e["ts"] < marks.get("covariate", float("inf"))
                       and e["action"] != "detected"]
    summary = {
        "retrains": len(retrains),
        "promotions": sum(e["action"] == "promote" for e in loud),
        "rollbacks": sum(e["action"] == "rollback" for e in loud),
        "decisions in the quiet stretch": len(quiet_decisions),
        "time to detect covariate shift (s, drift check)": detect["covariate"],
        "time to detect concept drift (s, labelled performance)": detect["concept"],
        "requests": len(traffic.log), "request errors": traffic.errors,
        "accuracy overall": float(np.mean([e["correct"] for e in traffic.log]))
        if traffic.log else None,
        "wall time (s)": time.monotonic() - t_start,
    }
    print()
    for k, v in summary.items():
        print(f"  {k:<52} {v if not isinstance(v, float) else round(v, 3)}")

    metric = _metric_series(traffic.log)
    data = ReportData.from_records(
        MODEL, metric=metric, drift=watcher.drift, weights=watcher.weights,
        decisions=[{"t": e["ts"], "action": e["action"], "reasons": e.get("reasons"),
                    "version": (e.get("numbers") or {}).get("version")} for e in entries],
        drift_table=watcher.drift_table, metric_name="accuracy",
        summary={k: v for k, v in summary.items() if v is not None},
    )
    files = write_report(data, state_dir / "report.html")
    (state_dir / "demo_summary.json").write_text(json.dumps(
        {"marks": marks, "summary": summary, "stream_rows": s.rows, "train_rows": s.train_rows,
         "change_rows": {"covariate": cov, "concept": con}, "flaky_version": watcher.flaky},
        indent=2, default=str))
    print()
    print("where to look:")
    print(f"  report     {files.html}  (timeline PNG: {files.png})")
    print(f"  journal    autopilot --state-dir {state_dir} history")
    print(f"  mlflow     mlflow ui --backend-store-uri {cfg.resolved_tracking_uri()}")
    if stack.get("dashboard_url"):
        print(f"  dashboard  {stack['dashboard_url']}  (Ray; token in ~/.ray/auth_token)")
    return 0


def _story_done(w: Watcher) -> bool:
    acts = [e["action"] for e in w.entries]
    if "rollback" not in acts:
        return False
    last_rb = max(i for i, a in enumerate(acts) if a == "rollback")
    return "promote" in acts[last_rb:]


def _metric_series(log: list[dict[str, Any]], bucket_s: float = 5.0) -> list[dict[str, Any]]:
    if not log:
        return []
    df = pd.DataFrame(log)
    df["bucket"] = (df["ts"] // bucket_s) * bucket_s
    out = df.groupby(["bucket", "version"])["correct"].agg(["mean", "size"]).reset_index()
    out = out[out["size"] >= 5]
    return [{"t": float(r.bucket), "version": r.version, "value": float(r.mean)}
            for r in out.itertuples()]


if __name__ == "__main__":
    raise SystemExit(main())
