"""The ``autopilot`` command: start the local stack, look at it, steer it, stop it.

::

    autopilot up --config examples/autopilot.yaml   # Ray, registry, monitor, controller, endpoint
    autopilot status                                # phase, champion, challenger, weights
    autopilot history [--model M] [--action A]      # the decision journal
    autopilot promote|rollback|retrain|pause|resume [MODEL] [--version V] [--reason TEXT]
    autopilot down                                  # stop only what `up` started

Where things live: ``up`` writes ``stack.json`` into the model's state folder
(Ray address, dashboard URL, the process group of the Ray head it started,
Serve apps, configs) and remembers that folder in
``~/.cache/autopilot/last_state_dir``, so later commands find the stack from
any directory. ``--state-dir`` or ``--config`` point elsewhere.

Adding a subcommand: write ``def _args_x(p)`` and ``def cmd_x(args) -> int``
and register it with ``@subcommand("x", "help", _args_x)``; :func:`build_parser`
picks it up. ``simulate`` and ``report`` are added this way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from autopilot.errors import AutopilotError, ControlError, NotRunningError

__all__ = [
    "SUBCOMMANDS",
    "Progress",
    "Subcommand",
    "build_parser",
    "main",
    "model_route_prefix",
    "project_runtime_env",
    "subcommand",
]

STACK_FILE = "stack.json"
_LAST = Path.home() / ".cache" / "autopilot" / "last_state_dir"


# ----------------------------------------------------------------- registration


@dataclass(frozen=True)
class Subcommand:
    """One ``autopilot`` subcommand: its arguments and the function that runs it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(
    name: str,
    help_text: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register ``fn(args) -> exit code`` as ``autopilot <name>``."""

    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        if name in SUBCOMMANDS:
            raise ValueError(f"subcommand {name!r} is registered twice")
        SUBCOMMANDS[name] = Subcommand(name, help_text, add_arguments or (lambda p: None), fn)
        return fn

    return register


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="autopilot",
        description="Self-driving model operations on Ray: serve, monitor, retrain, canary, "
                    "promote or roll back.",
    )
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="state folder of the stack (default: from --config, "
                             "$AUTOPILOT_STATE_DIR, ./.autopilot, or the last `up`)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for sc in SUBCOMMANDS.values():
        p = sub.add_parser(sc.name, help=sc.help, description=sc.help)
        sc.add_arguments(p)
        p.set_defaults(_run=sc.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``autopilot`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except NotRunningError as exc:
        print(f"autopilot: {exc}", file=sys.stderr)
        return 3
    except AutopilotError as exc:
        print(f"autopilot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autopilot: interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------- progress


class Progress:
    """A small text progress bar (or a spinner when the total is unknown) on stderr.

    >>> import io
    >>> out = io.StringIO()
    >>> with Progress("steps", total=2, stream=out, width=10) as bar:
    ...     bar.advance("one")
    ...     bar.advance("two")
    >>> "[##########] 2/2" in out.getvalue()
    True
    """

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 width: int = 28) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.note = ""
        self.width = width
        self.stream = stream if stream is not None else sys.stderr
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._spin: threading.Thread | None = None
        self._last: tuple[int, str] | None = None

    def __enter__(self) -> Progress:
        if self.total is None and self._tty:
            self._spin = threading.Thread(target=self._spinner, daemon=True)
            self._spin.start()
        else:
            self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._spin is not None:
            self._spin.join(1.0)
        self._draw(final=True)

    def advance(self, note: str = "", n: int = 1) -> None:
        self.done += n
        self.note = note
        self._draw()

    def _line(self, frame: str = "") -> str:
        elapsed = time.monotonic() - self._t0
        if self.total:
            filled = int(self.width * min(self.done, self.total) / self.total)
            bar = "#" * filled + "." * (self.width - filled)
            return f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s {self.note}"
        return f"{self.label} {frame} {elapsed:5.1f}s {self.note}"

    def _draw(self, final: bool = False, frame: str = "") -> None:
        line = self._line(frame)
        if self._tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
        elif (final or self.total) and (self.done, self.note) != self._last:
            self.stream.write(line + "\n")  # a log file gets one line per step
            self._last = (self.done, self.note)
        self.stream.flush()

    def _spinner(self) -> None:
        frames = "|/-\\"
        i = 0
        while not self._stop.wait(0.2):
            self._draw(frame=frames[i % 4])
            i += 1


# ------------------------------------------------------------------- the stack


def _state_dir(args: argparse.Namespace) -> Path:
    """Where the stack's files are: --state-dir, --config, env, ./.autopilot, the last `up`."""
    if getattr(args, "state_dir", None) is not None:
        return Path(args.state_dir).expanduser().resolve()
    configs = getattr(args, "config", None)
    if configs:
        from autopilot.config import load_config

        return load_config(configs[0]).resolved_state_dir()
    env = os.environ.get("AUTOPILOT_STATE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    local = Path(".autopilot").resolve()
    if (local / STACK_FILE).is_file():
        return local
    if _LAST.is_file():
        return Path(_LAST.read_text().strip())
    return local


def _not_running(state_dir: Path, why: str = "") -> NotRunningError:
    extra = f" ({why})" if why else ""
    return NotRunningError(
        f"no Autopilot stack is running for state folder {str(state_dir)!r}{extra}. "
        "Start one with `autopilot up --config <your config.yaml>`."
    )


def read_stack(state_dir: Path) -> dict[str, Any]:
    """The stack file ``up`` wrote, or :class:`NotRunningError`."""
    path = state_dir / STACK_FILE
    if not path.is_file():
        raise _not_running(state_dir)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ControlError(f"stack file {str(path)!r} is corrupt: {exc}") from exc


def project_runtime_env() -> dict[str, Any]:
    """A runtime_env that ships this process's Autopilot code to a cluster it did not start.

    The packages ``autopilot``, ``deployments`` and ``jobs`` as ``py_modules``, so the
    actors, Serve replicas and retrains that ``up --address`` creates run the same code
    as the CLI, whether or not (or whichever version) the cluster has installed.
    """
    import importlib.util

    dirs = []
    for module in ("autopilot.cli", "deployments.app", "jobs.retrain"):
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ControlError(f"cannot find the module {module!r} to ship to the cluster")
        dirs.append(str(Path(spec.origin).resolve().parent))
    return {"py_modules": dirs}


def _connect(stack: dict[str, Any], state_dir: Path,
             runtime_env: dict[str, Any] | None = None) -> None:
    address = stack.get("ray_address")
    if not _port_open(address):
        raise _not_running(state_dir, f"Ray at {address} does not answer")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    mode = stack.get("auth_mode") or ("token" if _token_available() else None)
    if mode:
        # A driver defaults to auth mode "disabled" and would not send the token that a
        # head started by `ray start` (token mode, Ray 2.60's default) requires. Ray
        # reads the mode once, so this must happen before its first import.
        os.environ.setdefault("RAY_AUTH_MODE", mode)
    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(address=address, namespace="autopilot", log_to_driver=False,
                 logging_level=logging.ERROR, runtime_env=runtime_env)
    except ConnectionError as exc:
        mode = os.environ.get("RAY_AUTH_MODE", "disabled")
        raise ControlError(
            f"could not connect to Ray at {address}: {exc}. This client's RAY_AUTH_MODE is "
            f"{mode!r}; a cluster started by `ray start` in Ray 2.60 wants 'token' and the "
            "token in ~/.ray/auth_token (or RAY_AUTH_TOKEN)"
        ) from exc


def _refuse_second_controller(address: str, disconnect: bool) -> None:
    """Raise if an Autopilot controller already runs on the connected cluster.

    The controller is one named actor per cluster (``up`` would otherwise join the
    running one, which manages its own configs, not these). ``disconnect``: end this
    process's Ray connection before raising (when ``up`` made it).
    """
    import ray

    from autopilot.routing import CONTROLLER_ACTOR, NAMESPACE

    try:
        ray.get_actor(CONTROLLER_ACTOR, namespace=NAMESPACE)
    except ValueError:
        return
    if disconnect:
        ray.shutdown()
    raise ControlError(
        f"an Autopilot controller is already running on the Ray cluster at {address} (one "
        "per cluster): run `autopilot --state-dir <its state folder> down` first, or "
        "manage these models from that stack"
    )


def _port_open(address: str | None, timeout: float = 1.0) -> bool:
    if not address or ":" not in address:
        return False
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _free_port(preferred: int | None = None) -> int:
    if preferred is not None:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _controller(stack: dict[str, Any], state_dir: Path) -> Any:
    _connect(stack, state_dir)
    from autopilot.controller import get_controller

    try:
        return get_controller()
    except ControlError as exc:
        raise _not_running(state_dir, "the controller actor is gone") from exc


def _ray_get(ref: Any, timeout: float = 120.0) -> Any:
    import ray

    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
        if isinstance(cause, AutopilotError):
            raise cause from None
        raise ControlError(f"the controller refused: {cause}") from exc


def _start_ray_head(state_dir: Path, num_cpus: int, dashboard: bool) -> dict[str, Any]:
    """``ray start --head --block`` in its own session; returns address, ports, pgid."""
    ray_bin = Path(sys.executable).with_name("ray")
    exe = str(ray_bin) if ray_bin.exists() else (shutil.which("ray") or "ray")
    gcs = _free_port()
    dash = _free_port(8265)
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    from ray._private.services import get_node_ip_address

    # ray.init() rewrites 127.0.0.1 to the node's IP, so the head must listen there.
    node_ip = get_node_ip_address()
    cmd = [exe, "start", "--head", "--block", f"--port={gcs}", f"--num-cpus={num_cpus}",
           f"--node-ip-address={node_ip}",
           "--disable-usage-stats", f"--ray-client-server-port={_free_port()}"]
    if dashboard:
        cmd += ["--include-dashboard=true", "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dash}"]
    else:
        cmd += ["--include-dashboard=false"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0",
           "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}
    log = (logs / "ray-head.log").open("ab")
    # A new session: the head, gcs_server, raylet and every worker share one process
    # group, so `down` can stop exactly this cluster and nobody else's.
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    address = f"{node_ip}:{gcs}"
    deadline = time.monotonic() + 120
    with Progress("starting Ray", stream=sys.stderr) as bar:
        while not _port_open(address):
            if proc.poll() is not None:
                raise ControlError(f"`ray start` exited with code {proc.returncode}; "
                                   f"see {logs / 'ray-head.log'}")
            if time.monotonic() > deadline:
                _kill_group(proc.pid)
                raise ControlError(f"Ray did not start within 120 s; see {logs / 'ray-head.log'}")
            time.sleep(0.5)
        bar.note = address
        _forget_default_address(address, wait_s=30.0)
    return {"ray_address": address, "ray_pgid": proc.pid, "auth_mode": env["RAY_AUTH_MODE"],
            "dashboard_url": f"http://127.0.0.1:{dash}" if dashboard else None}


def _forget_default_address(address: str | None, wait_s: float = 5.0) -> None:
    """Remove ``/tmp/ray/ray_current_cluster`` if it names our head.

    ``ray start`` writes it, and a plain ``ray.init()`` anywhere on the machine
    (another project's tests, say) would then join this cluster instead of
    starting its own.
    """
    if not address:
        return
    from ray._common.utils import get_ray_address_file

    path = Path(get_ray_address_file(None))
    port = address.rsplit(":", 1)[-1]
    deadline = time.monotonic() + wait_s
    while True:
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text.rsplit(":", 1)[-1] == port:
            path.unlink(missing_ok=True)
            return
        if time.monotonic() >= deadline:
            return
        time.sleep(0.25)  # `ray start` writes it a few seconds after the head is up


def _kill_group(pgid: int, grace_s: float = 10.0) -> bool:
    """SIGTERM a process group, SIGKILL what is left after ``grace_s``; True if it is gone."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    try:
        os.killpg(pgid, signal.SIGKILL)  # gcs_server/raylet may ignore SIGTERM for a while
    except ProcessLookupError:
        return True
    return True


@contextmanager
def _step(bar: Progress, note: str) -> Iterator[None]:
    bar.note = note
    if bar._tty:
        bar._draw()
    yield
    bar.advance(note)


# --------------------------------------------------------------------- commands


def _args_up(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", action="append", required=True,
                   help="a model's config YAML (repeat for several models)")
    p.add_argument("--address", default=None,
                   help="use this running Ray cluster instead of starting one")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs for the local Ray (default 2)")
    p.add_argument("--http-port", type=int, default=None,
                   help="Serve's HTTP port (default: serving.http_port of the first config)")
    p.add_argument("--no-dashboard", action="store_true",
                   help="start Ray without its dashboard (retrains then run as Ray tasks)")
    p.add_argument("--no-train", action="store_true",
                   help="do not train a first model when the registry has none")
    p.add_argument("--mlflow-ui", type=int, default=None, metavar="PORT",
                   help="also start the MLflow UI on this port")


@subcommand("up", "start the local stack: Ray, registry, monitor, controller, endpoint", _args_up)
def cmd_up(args: argparse.Namespace) -> int:
    from autopilot.config import load_config

    cfgs = [load_config(c) for c in args.config]
    names = [c.name for c in cfgs]
    if len(set(names)) != len(names):
        raise ControlError(f"model names must be distinct, got {names}")
    state_dir = Path(args.state_dir).resolve() if args.state_dir else cfgs[0].resolved_state_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    if (state_dir / STACK_FILE).is_file():
        old = json.loads((state_dir / STACK_FILE).read_text())
        # A cluster we joined answers whether or not our stack still runs on it; the
        # controller check below (after connecting) tells those apart.
        joined_same = not old.get("started_ray") and old.get("ray_address") == args.address
        if not joined_same and _port_open(old.get("ray_address")):
            raise ControlError(f"a stack is already running for {str(state_dir)!r} "
                               f"(Ray at {old['ray_address']}); run `autopilot down` first")
    if args.address is None or _token_available():
        # Before anything imports ray (it reads the mode once). `ray start` in Ray 2.60
        # turns token authentication on, and a driver in the default mode ("disabled")
        # is refused by such a cluster; RAY_AUTH_MODE=disabled in the shell opts out.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    stack: dict[str, Any] = {
        "state_dir": str(state_dir), "configs": [str(Path(c).resolve()) for c in args.config],
        "models": names, "started_at": time.time(), "started_ray": args.address is None,
        "apps": [], "mlflow_pid": None, "ray_pgid": None, "started_serve": False,
    }
    if args.address is None:
        stack.update(_start_ray_head(state_dir, args.num_cpus, not args.no_dashboard))
    else:
        stack.update({"ray_address": args.address, "dashboard_url": None,
                      "auth_mode": os.environ.get("RAY_AUTH_MODE")})
        # Before the stack file is written, so a refusal leaves the earlier one intact.
        # On a cluster we did not start, ship our code (its workers do not see our
        # PYTHONPATH or virtualenv).
        connected = "ray" in sys.modules and sys.modules["ray"].is_initialized()
        _connect(stack, state_dir, runtime_env=project_runtime_env())
        _refuse_second_controller(args.address, disconnect=not connected)
    # Written now, so `down` can clean up even if a later step fails.
    _write_stack(state_dir, stack)
    _LAST.parent.mkdir(parents=True, exist_ok=True)
    _LAST.write_text(str(state_dir))
    total = 4 + len(cfgs) * 2 + (1 if args.mlflow_ui else 0)
    with Progress("autopilot up", total=total) as bar:
        with _step(bar, "connecting"):
            # A head we started inherits our environment (a joined cluster is connected).
            _connect(stack, state_dir)
            if args.address is not None:
                from autopilot.controller import dashboard_url

                # Retrains go out as Ray jobs through it when it answers (else as tasks).
                stack["dashboard_url"] = dashboard_url()
        if args.mlflow_ui:
            with _step(bar, "MLflow UI"):
                stack["mlflow_pid"] = _start_mlflow_ui(cfgs[0], args.mlflow_ui, state_dir)
                stack["mlflow_url"] = f"http://127.0.0.1:{args.mlflow_ui}"
        with _step(bar, "monitor"):
            from autopilot.monitor import start_monitor

            store = cfgs[0].monitor.store or state_dir / "monitor.db"
            start_monitor(Path(store).resolve(), window_rows=cfgs[0].monitor.window_rows)
        for cfg in cfgs:
            with _step(bar, f"first model for {cfg.name}"):
                if not args.no_train:
                    _train_first(cfg)
        with _step(bar, "serve"):
            from deployments.app import start_serve

            http = start_serve(cfgs[0].serving.host,
                               args.http_port or cfgs[0].serving.http_port)
            stack["started_serve"] = http.started
            stack["serve_url"] = http.url
            _write_stack(state_dir, stack)
        # One Serve proxy (one port) for the cluster: each model is its own application,
        # under /<name> when there are several.
        prefixes = {c.name: model_route_prefix(c.name, len(cfgs)) for c in cfgs}
        with _step(bar, "controller"):
            from autopilot.controller import start_controller

            urls = {n: http.url + p.rstrip("/") for n, p in prefixes.items()}
            start_controller(cfgs, journal_path=state_dir / "journal.db", endpoints=urls)
        for cfg in cfgs:
            with _step(bar, f"endpoint for {cfg.name}"):
                from ray import serve

                from deployments.app import build_app

                app = f"autopilot-{cfg.name}"
                prefix = prefixes[cfg.name]
                # The route prefix must be unique on the cluster's one Serve instance.
                serve.run(build_app(cfg), name=app, route_prefix=prefix, blocking=False)
                stack["apps"].append({"name": app, "route_prefix": prefix})
                _write_stack(state_dir, stack)
    _forget_default_address(stack.get("ray_address") if stack["started_ray"] else None,
                            wait_s=0.0)
    print(f"Autopilot is up: {', '.join(names)}")
    for app in stack["apps"]:
        name = app["name"].removeprefix("autopilot-")
        base = stack["serve_url"] + app["route_prefix"].rstrip("/")
        print(f"  endpoint   {base}/v1/models/{name}/predict")
    if not stack["started_serve"]:
        print(f"  (Serve was already running on this cluster: its proxy at {stack['serve_url']} "
              "is used, and `down` leaves Serve up)")
    if stack.get("dashboard_url"):
        print(f"  dashboard  {stack['dashboard_url']}")
    if stack.get("mlflow_url"):
        print(f"  mlflow     {stack['mlflow_url']}")
    print(f"  state      {state_dir}")
    print("  next       autopilot status | autopilot history | autopilot down")
    return 0


def model_route_prefix(name: str, n_models: int) -> str:
    """Serve route prefix of a model's application: ``/`` alone, ``/<name>`` among several.

    >>> model_route_prefix("churn", 1), model_route_prefix("churn", 2)
    ('/', '/churn')
    """
    return "/" if n_models == 1 else f"/{name}"


def _token_available() -> bool:
    """True when a Ray auth token is configured for this user (env or ``~/.ray/auth_token``)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    return path.is_file()


def _write_stack(state_dir: Path, stack: dict[str, Any]) -> None:
    tmp = state_dir / (STACK_FILE + ".tmp")
    tmp.write_text(json.dumps(stack, indent=2))
    tmp.replace(state_dir / STACK_FILE)


def _start_mlflow_ui(cfg: Any, port: int, state_dir: Path) -> int:
    mlflow = Path(sys.executable).with_name("mlflow")
    log = (state_dir / "logs" / "mlflow.log").open("ab")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", cfg.resolved_tracking_uri(),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc.pid


def _train_first(cfg: Any) -> None:
    """Train and promote a first version when the registry has no champion."""
    from autopilot.registry import open_registry

    registry = open_registry(cfg)
    if registry.alias(cfg.name, "champion") is not None:
        return
    from autopilot.training.data import load_frame
    from autopilot.training.pipeline import train_and_register

    frame = load_frame(cfg.data)
    outcome = train_and_register(cfg, frame, registry, trigger="initial",
                                 data_window=f"rows 0:{len(frame)}")
    registry.promote(cfg.name, outcome.version.version)


def _args_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="one model (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON")


@subcommand("status", "show each model's phase, versions, weights and last decision",
            _args_status)
def cmd_status(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    stack = read_stack(state_dir)
    ctl = _controller(stack, state_dir)
    out = _ray_get(ctl.status.remote(args.model))
    if args.json:
        print(json.dumps({"stack": stack, "models": out}, indent=2, default=str))
        return 0
    print(f"stack  {stack.get('serve_url', '?')}  ray {stack.get('ray_address')}  "
          f"dashboard {stack.get('dashboard_url') or '-'}")
    for name, st in out.items():
        s = st["state"]
        routing = st.get("routing") or {}
        weights = ", ".join(f"v{a['version']} {a['role']} {a['weight']:.0%}"
                            for a in routing.get("arms", []))
        print(f"{name}: phase {s['phase']}  champion v{s['champion']}  "
              f"challenger {('v' + s['challenger']) if s['challenger'] else '-'}  "
              f"fallback {('v' + s['fallback']) if s['fallback'] else '-'}")
        print(f"  routing  table {routing.get('table_version', '-')}  "
              f"mode {routing.get('mode', '-')}  {weights}")
        if st.get("training"):
            t = st["training"]
            print(f"  training {t['trigger']} via {t['launcher']} ({t['handle']})")
        last = st.get("last") or {}
        if last.get("decision"):
            d = last["decision"]
            print(f"  last     {d['action']}: {'; '.join(d['reasons'][:2])} -> "
                  f"{last.get('outcome')}")
        mon = st.get("monitor") or {}
        for v, info in (mon.get("versions") or {}).items():
            perf = info.get("performance") or {}
            metrics = ", ".join(f"{k} {val:.3f}" for k, val in perf.items()
                                if k != "n_labels" and val is not None)
            fired = ", ".join(info.get("detectors_fired") or []) or "-"
            print(f"  v{v:<7} {int(perf.get('n_labels', 0))} labelled  {metrics or '-'}  "
                  f"detectors fired: {fired}")
        print(f"  journal  {st['journal_entries']} entries; {mon.get('stored', '?')} records")
    return 0


def _args_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default=None)
    p.add_argument("--action", "-a", default=None, help="only this action (e.g. promote)")
    p.add_argument("--since", type=float, default=None, help="unix time")
    p.add_argument("--limit", "-n", type=int, default=30)
    p.add_argument("--json", action="store_true")


@subcommand("history", "print the decision journal (works while the stack is down too)",
            _args_history)
def cmd_history(args: argparse.Namespace) -> int:
    from autopilot.journal import Journal

    state_dir = _state_dir(args)
    path = state_dir / "journal.db"
    if not path.is_file():
        raise _not_running(state_dir, f"no journal at {path}")
    entries = Journal(path).query(model=args.model, action=args.action, since=args.since,
                                  limit=args.limit)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2, default=str))
        return 0
    if not entries:
        print("no decisions journalled yet")
    for e in entries:
        when = datetime.fromtimestamp(e.ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
        reasons = " ".join("; ".join(e.reasons[:2]).split())  # one line per entry
        print(f"{e.id:>5} {when} {e.model:<16} {e.action:<18} {e.outcome[:40]:<40} {reasons}")
    return 0


def _args_command(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="model name (default: the only managed model)")
    p.add_argument("--version", "-v", default=None, help="target version (promote/rollback)")
    p.add_argument("--reason", "-r", default="manual (CLI)", help="why; goes into the journal")


def _args_weights(p: argparse.ArgumentParser) -> None:
    _args_command(p)
    p.add_argument("--weights", "-w", required=True,
                   help='version shares, e.g. "3=0.9,4=0.1"')


def _send(args: argparse.Namespace, action: str, payload: dict[str, Any]) -> int:
    state_dir = _state_dir(args)
    stack = read_stack(state_dir)
    model = args.model
    if model is None:
        models = stack.get("models", [])
        if len(models) != 1:
            raise ControlError(f"several models are managed ({models}); name one")
        model = models[0]
    ctl = _controller(stack, state_dir)
    payload = {"reason": args.reason, **payload}
    if getattr(args, "version", None):
        payload["version"] = args.version
    out = _ray_get(ctl.command.remote(model, action, payload))
    d = out.get("decision") or {}
    print(f"{model}: {action} -> {d.get('action', '?')} ({out.get('outcome')})")
    for r in d.get("reasons", []):
        print(f"  - {r}")
    return 0 if str(out.get("outcome", "")).startswith("applied") else 1


def _manual(action: str, help_text: str,
            add: Callable[[argparse.ArgumentParser], None] = _args_command) -> None:
    def run(args: argparse.Namespace) -> int:
        payload: dict[str, Any] = {}
        if action == "set_weights":
            payload["weights"] = _parse_weights(args.weights)
        return _send(args, action, payload)

    subcommand(action.replace("_", "-"), help_text, add)(run)


def _parse_weights(text: str) -> dict[str, float]:
    """``"3=0.9,4=0.1"`` -> ``{"3": 0.9, "4": 0.1}``."""
    out: dict[str, float] = {}
    for part in text.split(","):
        if "=" not in part:
            raise ControlError(f"weights {text!r}: expected VERSION=SHARE pairs, got {part!r}")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise ControlError(f"weights {text!r}: share {v!r} is not a number") from None
    return out


_manual("promote", "make a version (default: the challenger) the champion")
_manual("rollback", "roll back: end the canary, or return to the previous champion")
_manual("retrain", "start a retrain now (guards do not apply)")
_manual("pause", "stop automatic decisions (routing goes to the champion)")
_manual("resume", "resume automatic decisions")
_manual("set_weights", "set routing weights by hand", _args_weights)


def _args_down(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-ray", action="store_true",
                   help="remove Autopilot's actors and apps but leave the Ray it started")


@subcommand("down", "stop what `autopilot up` started (and nothing else)", _args_down)
def cmd_down(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    stack = read_stack(state_dir)
    with Progress("autopilot down", total=3) as bar:
        if _port_open(stack.get("ray_address")):
            with _step(bar, "apps and actors"):
                try:
                    _remove_actors_and_apps(stack, state_dir)
                except (ConnectionError, AutopilotError) as exc:
                    # Still stop the processes we started; say what could not be removed.
                    print(f"autopilot: could not reach Ray to remove apps/actors: {exc}",
                          file=sys.stderr)
        else:
            bar.advance("Ray already gone")
        with _step(bar, "mlflow"):
            if stack.get("mlflow_pid"):
                _kill_group(int(stack["mlflow_pid"]), grace_s=5.0)
        with _step(bar, "ray"):
            if stack.get("started_ray") and stack.get("ray_pgid") and not args.keep_ray:
                import ray

                if ray.is_initialized():
                    ray.shutdown()
                _kill_group(int(stack["ray_pgid"]))
                _forget_default_address(stack.get("ray_address"), wait_s=0.0)
    (state_dir / STACK_FILE).unlink(missing_ok=True)
    print(f"Autopilot is down ({state_dir})")
    return 0


def _remove_actors_and_apps(stack: dict[str, Any], state_dir: Path) -> None:
    _connect(stack, state_dir)  # first: it sets Ray's auth mode before Ray is imported
    import ray

    from autopilot.controller import get_controller
    from deployments.app import stop_apps

    # Serve itself goes only if this stack started it and nobody else's app is left on
    # it; with our own Ray head the whole cluster goes next anyway.
    others = stop_apps([a["name"] for a in stack.get("apps", [])],
                       stop_serve=bool(stack.get("started_serve")) and not stack.get("started_ray"))
    if others and stack.get("started_serve") and not stack.get("started_ray"):
        print(f"autopilot: Serve left running for other applications: {', '.join(others)}",
              file=sys.stderr)
    from autopilot.monitor import get_monitor

    for getter in (get_controller, get_monitor):
        try:
            ray.kill(getter(), no_restart=True)
        except ControlError:
            pass


# --------------------------------------------------------- simulate and report (issue 6)


def _args_simulate(p: argparse.ArgumentParser) -> None:
    from autopilot.simulate import add_arguments

    add_arguments(p)


@subcommand("simulate", "replay a labelled history: never vs periodic vs Autopilot's policy",
            _args_simulate)
def cmd_simulate(args: argparse.Namespace) -> int:
    from autopilot.simulate import run_cli

    return run_cli(args)


def _args_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="the model (default: the only one)")
    p.add_argument("--out", default=None,
                   help="HTML file to write (default <state dir>/report.html; PNG beside it)")
    p.add_argument("--window-rows", type=int, default=300,
                   help="predictions per point of the metric and drift series")


@subcommand("report", "write the HTML report (and timeline PNG) from the journal and monitor",
            _args_report)
def cmd_report(args: argparse.Namespace) -> int:
    from autopilot.report import report_data_from_state, write_report

    state_dir = _state_dir(args)
    try:
        data = report_data_from_state(state_dir, args.model, window_rows=args.window_rows)
    except (FileNotFoundError, ValueError) as exc:
        raise ControlError(str(exc)) from exc
    files = write_report(data, args.out or state_dir / "report.html")
    print(f"wrote {files.html} and {files.png}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
