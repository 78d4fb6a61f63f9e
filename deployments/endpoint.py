"""The Autopilot endpoint: one Serve ingress deployment per managed model.

Every live version (champion, challengers, fallback) is loaded *inside* the
ingress replica: measured on this class of machine, a DeploymentHandle hop to a
separate model deployment cost several times the throughput of an in-process
call (see ``benchmarks/serving.py``), so there is no second deployment.

Per request: validate against the champion's feature schema
(:mod:`deployments.schemas`), pick a version by sticky weighted hashing of the
caller key (:func:`autopilot.routing.choose_version`), answer cached rows from
the LRU/TTL cache, send the rest through that version's ``@serve.batch`` queue,
and fall back when its circuit breaker is open or the call raises:

    challenger -> champion -> fallback version -> constant baseline
    champion   -> fallback version -> constant baseline

Shadow challengers get a copy after the answer is computed, never delaying it.
One :class:`~autopilot.records.PredictionRecord` per row goes to a
:class:`~autopilot.records.RecordBuffer` (Monitor actor, else JSONL files).

The routing table comes from the Controller actor (polled in a background
thread every ``serving.table_refresh_s``); when it is away, from the table file
``<state_dir>/routing/<model>.json`` that the admin routes write, and at first
start from the registry aliases (``champion``, ``challenger``, ``previous``).
A new table is applied by loading (and SHA-256 verifying) every version it
needs first and then switching one reference, so requests in flight finish on
the old versions and none is dropped; a table whose versions cannot be loaded
is not applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from ray import serve

from autopilot.config import AutopilotConfig
from autopilot.errors import AutopilotError, ServingError
from autopilot.records import Label, PredictionRecord, RecordBuffer
from autopilot.routing import (
    CONTROLLER_ACTOR,
    NAMESPACE,
    Arm,
    RoutingTable,
    choose_version,
    shadow_versions,
)
from autopilot.schema import FeatureSchema
from autopilot.training.data import coerce_features
from deployments.breaker import CircuitBreaker
from deployments.cache import PredictionCache, row_key
from deployments.metrics import ServingMetrics
from deployments.schemas import FeedbackRequest, RequestError, RequestParser, V2Request
from deployments.sinks import ActorSink, JsonlSink

__all__ = ["ADMIN_ACTIONS", "AutopilotEndpoint", "AutopilotIngress", "build_fastapi", "hash_token"]

logger = logging.getLogger("autopilot.serving")

ADMIN_ACTIONS = ("promote", "rollback", "pause", "resume", "retrain", "set_weights")
BASELINE = "baseline"

def hash_token(token: str) -> str:
    """SHA-256 hex of an admin token (only the hash travels in deployment arguments)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _json(payload: Any, status: int = 200) -> Response:
    # orjson: several times faster than json on the hot path, and strict JSON (NaN -> null).
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
                     default=str),
        status_code=status,
        media_type="application/json",
    )


def _error(status: int, message: str) -> Response:
    return _json({"error": message, "status": status}, status)


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ----------------------------------------------------------------- live versions


@dataclass
class _Live:
    """One loaded version: model, breaker and its own batch queue."""

    version: str
    model: Any
    schema: Any
    classes: list[Any] | None
    breaker: CircuitBreaker
    call: Callable[[list[dict[str, Any]]], Awaitable[Any]] = field(repr=False)


@dataclass(frozen=True)
class _State:
    """What a request reads, swapped as one reference."""

    table: RoutingTable
    live: dict[str, _Live]
    parser: RequestParser
    source: str  # "controller", "file", "registry", "admin"


class _Failure:
    """A batch item whose model call raised (serve.batch needs one result per item)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def _frame(rows: list[dict[str, Any]], schema: Any) -> pd.DataFrame:
    """Validated rows as a frame, numeric columns already ``float64`` (NaN for missing).

    One 2-D float array for the numeric block (numpy turns ``None`` into NaN) is many
    times faster than ``DataFrame.from_records`` or per-column Series, and typed
    numeric columns are exactly what ``coerce_features`` would make of them.
    """
    names = list(schema.names)
    numeric = [c.name for c in schema.columns if c.kind == "numeric"]
    block = np.array([[r.get(n) for n in numeric] for r in rows], dtype=float)
    frame = pd.DataFrame(block.reshape(len(rows), len(numeric)), columns=numeric)
    if len(numeric) == len(names):
        return frame
    labels = tuple(c for c in schema.columns if c.kind != "numeric")
    raw = pd.DataFrame({c.name: [r.get(c.name) for r in rows] for c in labels})
    # Levels go through the training code itself, so "1", 1 and 1.0 mean one level.
    sub = FeatureSchema(labels, schema.target, schema.task, schema.classes)
    # concat keeps the labels' object dtype (assignment would infer pandas' string dtype).
    return pd.concat([frame, coerce_features(raw, sub)], axis=1)[names]


def _predict_rows(model: Any, schema: Any, classes: list[Any] | None,
                  rows: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
    frame = _frame(rows, schema)
    preds = np.asarray(model.predict(frame))
    proba = None
    if classes is not None:
        proba = np.asarray(model.predict_proba(frame), dtype=float).tolist()
    return [_finite_or_none(p) for p in preds.tolist()], proba


def _make_call(model: Any, schema: Any, classes: list[Any] | None, max_batch: int,
               wait_s: float, metrics: ServingMetrics, version: str) -> Callable:
    """A ``@serve.batch`` function for one version: one model call per batch of requests."""

    async def run(requests: list[list[dict[str, Any]]]) -> list[Any]:
        sizes = [len(r) for r in requests]
        rows = [row for req in requests for row in req]
        metrics.batch(version, len(rows))
        try:
            preds, proba = _predict_rows(model, schema, classes, rows)
        except Exception as exc:  # noqa: BLE001 - isolated per request below
            if len(requests) == 1:
                return [_Failure(f"{type(exc).__name__}: {exc}")]
            # One poisoned request must not fail its batch-mates: retry one by one.
            out: list[Any] = []
            for req in requests:
                try:
                    out.append(_predict_rows(model, schema, classes, req))
                except Exception as inner:  # noqa: BLE001
                    out.append(_Failure(f"{type(inner).__name__}: {inner}"))
            return out
        out, start = [], 0
        for n in sizes:
            out.append((preds[start:start + n], None if proba is None else proba[start:start + n]))
            start += n
        return out

    if not _in_replica():
        # Plain Python (unit tests, notebooks): serve.batch needs a replica context.
        async def direct(rows: list[dict[str, Any]]) -> Any:
            return (await run([rows]))[0]

        return direct
    return serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=wait_s)(run)


def _in_replica() -> bool:
    try:
        serve.get_replica_context()
    except Exception:  # noqa: BLE001 - RayServeException outside a deployment
        return False
    return True


# ----------------------------------------------------------------------- the class


class AutopilotEndpoint:
    """Serve ingress for one managed model (plain Python until wrapped by ``build_app``).

    Parameters
    ----------
    config : dict
        ``AutopilotConfig.model_dump(mode="json")`` of the managed model.
    token_sha256 : str, optional
        SHA-256 of the admin token, taken from the builder's environment; the
        replica's own environment variable ``serving.admin_token_env`` wins if set.
    registry : Registry, optional
        Injected registry (tests); by default the config's MLflow registry.
    start_threads : bool
        Start the table refresher (off in unit tests that drive it by hand).
    """

    def __init__(
        self,
        config: dict[str, Any],
        token_sha256: str | None = None,
        registry: Any = None,
        start_threads: bool = True,
    ) -> None:
        self.cfg = AutopilotConfig.model_validate(config)
        self.name = self.cfg.name
        s = self.cfg.serving
        self.scfg = s
        env_token = os.environ.get(s.admin_token_env)
        self._token_sha = hash_token(env_token) if env_token else token_sha256
        if registry is None:
            from autopilot.registry import open_registry

            registry = open_registry(self.cfg)
        self.registry = registry
        self.metrics = ServingMetrics(self.name)
        self.cache = PredictionCache(s.cache.max_size, s.cache.ttl_s) if s.cache.enabled else None
        self.rng = np.random.default_rng()
        self._lock = threading.RLock()  # serialises table changes (refresher vs admin)
        self._failed_tables: dict[str, str] = {}  # table fingerprint -> why it was refused
        self._last_error: str | None = None
        self._controller_seen = False
        self._baseline_counts: Counter[Any] = Counter()
        self._baseline_sum = 0.0
        self._baseline_n = 0
        self._shadow_tasks: set[asyncio.Task[Any]] = set()
        self._started = time.time()

        state_dir = self.cfg.resolved_state_dir()
        self._table_file = state_dir / "routing" / f"{self.name}.json"
        self._table_file_mtime: float | None = None
        pid = os.getpid()
        rec_dir = state_dir / "records"
        self.records = RecordBuffer(
            ActorSink("ingest"),
            batch_size=s.record_batch_size,
            flush_s=s.record_flush_s,
            fallback=JsonlSink(rec_dir / f"{self.name}-predictions-{pid}.jsonl"),
            name=f"autopilot-records-{self.name}",
        )
        self.labels = RecordBuffer(
            ActorSink("ingest_labels"),
            batch_size=s.record_batch_size,
            flush_s=s.record_flush_s,
            fallback=JsonlSink(rec_dir / f"{self.name}-labels-{pid}.jsonl"),
            name=f"autopilot-labels-{self.name}",
        )

        self._state = self._initial_state()
        self._stop = threading.Event()
        if start_threads:
            threading.Thread(target=self._refresh_loop, name="autopilot-table", daemon=True).start()

    # ------------------------------------------------------------ table & versions

    def _controller(self) -> Any | None:
        import ray

        if not ray.is_initialized():
            return None
        try:
            return ray.get_actor(CONTROLLER_ACTOR, namespace=NAMESPACE)
        except ValueError:
            return None

    def _controller_table(self) -> RoutingTable | None:
        import ray

        handle = self._controller()
        if handle is None:
            self._controller_seen = False
            return None
        try:
            raw = ray.get(handle.routing_table.remote(self.name), timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - controller away: keep the last table
            self._last_error = f"controller unreachable: {type(exc).__name__}: {exc}"
            self._controller_seen = False
            return None
        self._controller_seen = True
        return None if raw is None else RoutingTable.from_dict(raw)

    def _file_table(self, force: bool = False) -> RoutingTable | None:
        try:
            mtime = self._table_file.stat().st_mtime
        except FileNotFoundError:
            return None
        if not force and mtime == self._table_file_mtime:
            return None
        try:
            table = RoutingTable.from_dict(json.loads(self._table_file.read_text()))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            self._last_error = f"table file {self._table_file} unreadable: {exc}"
            return None
        self._table_file_mtime = mtime
        return table

    def _write_table_file(self, table: RoutingTable) -> None:
        self._table_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._table_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table.to_dict(), indent=1))
        os.replace(tmp, self._table_file)  # atomic: other replicas never read half a file
        self._table_file_mtime = self._table_file.stat().st_mtime

    def _registry_table(self) -> RoutingTable:
        champion = self.registry.alias(self.name, "champion")
        if champion is None:
            raise ServingError(
                f"model {self.name!r} has no champion version in the registry "
                f"({self.cfg.resolved_tracking_uri()}); promote one before serving"
            )
        challenger = self.registry.alias(self.name, "challenger")
        previous = self.registry.alias(self.name, "previous")
        mode = self.scfg.mode
        arms = [Arm(champion.version, 1.0, "champion")]
        if challenger is not None and challenger.version != champion.version:
            w = 0.0 if mode == "shadow" else float(self.cfg.policy.canary.steps[0])
            arms = [Arm(champion.version, 1.0 - w, "champion"),
                    Arm(challenger.version, w, "challenger")]
        fallback = None
        if previous is not None and previous.version not in {a.version for a in arms}:
            fallback = previous.version
        return RoutingTable(self.name, 1, mode, tuple(arms), fallback)

    def _load(self, version: str, reuse: dict[str, _Live]) -> _Live:
        if version in reuse:
            return reuse[version]
        loaded = self.registry.load(self.name, version)  # verifies SHA-256 before unpickling
        model, schema = loaded.model, loaded.schema
        classes = None
        if schema.task == "classification" and hasattr(model, "predict_proba"):
            classes = [c.item() if hasattr(c, "item") else c
                       for c in getattr(model, "classes_", schema.classes)]
        s = self.scfg
        call = _make_call(model, schema, classes, s.max_batch_size, s.batch_wait_timeout_s,
                          self.metrics, version)
        return _Live(version, model, schema, classes, CircuitBreaker(s.breaker), call)

    def _build_state(self, table: RoutingTable, source: str, current: _State | None,
                     preloaded: dict[str, _Live] | None = None) -> _State:
        """Load every version ``table`` needs (reusing loaded ones), then return the state.

        A fallback that fails to load is dropped from the table (serving goes on
        without it); an arm that fails makes the whole table unusable.
        """
        reuse = dict(current.live) if current is not None else {}
        reuse.update(preloaded or {})
        live: dict[str, _Live] = {}
        for arm in table.arms:
            live[arm.version] = self._load(arm.version, reuse)
        if table.fallback is not None and table.fallback not in live:
            try:
                live[table.fallback] = self._load(table.fallback, reuse)
            except AutopilotError as exc:
                self._last_error = f"fallback v{table.fallback} not loaded: {exc}"
                logger.warning(self._last_error)
        champion = live[table.champion]
        if current is not None and current.table.champion == table.champion:
            parser = current.parser
        else:
            parser = RequestParser(champion.schema, self.scfg.max_rows)
        return _State(table, live, parser, source)

    def _initial_state(self) -> _State:
        table = self._controller_table()
        source = "controller"
        if table is None:
            registry_table = self._registry_table()
            file_table = self._file_table(force=True)
            # A table file left from an earlier run counts only if the registry agrees
            # on the champion (someone may have promoted through the CLI meanwhile).
            if file_table is not None and file_table.champion == registry_table.champion:
                table, source = file_table, "file"
            else:
                table, source = registry_table, "registry"
        try:
            return self._build_state(table, source, None)
        except AutopilotError as exc:
            if source == "registry":
                raise ServingError(f"cannot serve {self.name!r}: {exc}") from exc
            self._last_error = f"{source} table refused: {exc}"
            return self._build_state(self._registry_table(), "registry", None)

    def _apply(self, table: RoutingTable, source: str) -> None:
        """Load then switch; refuse (keep the current state) if any arm cannot load."""
        with self._lock:
            current = self._state
            if table == current.table:
                return
            fp = json.dumps(table.to_dict(), sort_keys=True)
            if fp in self._failed_tables:
                return
            try:
                new = self._build_state(table, source, current)
            except AutopilotError as exc:
                self._failed_tables[fp] = str(exc)
                self._last_error = f"table v{table.table_version} from {source} refused: {exc}"
                logger.warning(self._last_error)
                return
            self._state = new  # the switch: one reference assignment

    def refresh(self) -> None:
        """One poll: controller first, else the table file."""
        table = self._controller_table()
        source = "controller"
        if table is None and not self._controller_seen:
            table, source = self._file_table(), "file"
        if table is not None:
            self._apply(table, source)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.scfg.table_refresh_s):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - the refresher must never die
                self._last_error = f"refresh failed: {type(exc).__name__}: {exc}"
                logger.warning(self._last_error)

    # ------------------------------------------------------------------- predictions

    def _baseline(self, n: int, classes: list[Any] | None) -> tuple[list[Any], Any]:
        """Constant answer when no version can: the most frequent prediction seen so far."""
        if classes is not None:
            total = sum(self._baseline_counts.values())
            if total:
                top = self._baseline_counts.most_common(1)[0][0]
                p = [self._baseline_counts.get(c, 0) / total for c in classes]
            else:
                top, p = classes[0], [1.0 / len(classes)] * len(classes)
            return [top] * n, [p] * n
        mean = self._baseline_sum / self._baseline_n if self._baseline_n else 0.0
        return [mean] * n, None

    def _observe(self, preds: list[Any], classes: list[Any] | None) -> None:
        if classes is not None:
            self._baseline_counts.update(preds)
        else:
            vals = [p for p in preds if isinstance(p, int | float)]
            self._baseline_sum += float(sum(vals))
            self._baseline_n += len(vals)

    async def _call_version(self, live: _Live, rows: list[dict[str, Any]]) -> Any:
        """Call one version through its batch queue; ``_Failure`` instead of raising."""
        t0 = time.perf_counter()
        try:
            result = await live.call(rows)
        except Exception as exc:  # noqa: BLE001 - the queue itself failed
            result = _Failure(f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - t0) * 1e3
        ok = not isinstance(result, _Failure)
        live.breaker.record(ok, ms)
        if not ok:
            self.metrics.error(live.version, "model")
        self.metrics.breaker(live.version, live.breaker.state != "closed")
        return result

    def _chain(self, state: _State, chosen: str) -> list[str]:
        """Versions to try, in order, for a request routed to ``chosen``."""
        order = [chosen]
        if chosen != state.table.champion:
            order.append(state.table.champion)
        fb = state.table.fallback
        if fb is not None and fb not in order:
            order.append(fb)
        return [v for v in order if v in state.live]

    async def _answer(self, state: _State, rows: list[dict[str, Any]], key: str | None
                      ) -> dict[str, Any]:
        chosen = choose_version(state.table, key, self.rng)
        names = state.parser.names
        errors: list[tuple[str, str]] = []
        answered_by: str | None = None
        preds: list[Any] = []
        proba: list[Any] | None = None
        hits = 0
        classes = state.live[state.table.champion].classes
        keys = [row_key(names, r) for r in rows] if self.cache is not None else None
        for version in self._chain(state, chosen):
            live = state.live[version]
            cached: list[Any] = [None] * len(rows)
            if keys is not None:
                cached = [self.cache.get(version, k) for k in keys]  # type: ignore[union-attr]
            miss_idx = [i for i, c in enumerate(cached) if c is None]
            hits = len(rows) - len(miss_idx)
            if keys is not None:
                self.metrics.cache(version, hits, len(miss_idx))
            # Ask the breaker only when the model must run, so a half-open probe slot is
            # always followed by a recorded outcome (answers cached while healthy stay valid).
            if miss_idx and not live.breaker.allow():
                continue
            if miss_idx:
                result = await self._call_version(live, [rows[i] for i in miss_idx])
                if isinstance(result, _Failure):
                    errors.append((version, result.message))
                    continue
                m_preds, m_proba = result
                for j, i in enumerate(miss_idx):
                    cached[i] = (m_preds[j], None if m_proba is None else m_proba[j])
                    if keys is not None:
                        self.cache.put(version, keys[i], cached[i])  # type: ignore[union-attr]
            preds = [c[0] for c in cached]
            proba = None if live.classes is None else [c[1] for c in cached]
            classes = live.classes
            answered_by = version
            break
        if answered_by is None:
            preds, proba = self._baseline(len(rows), classes)
            answered_by = BASELINE
        else:
            self._observe(preds, classes)
        return {
            "chosen": chosen,
            "version": answered_by,
            "predictions": preds,
            "proba": proba,
            "classes": classes,
            "errors": errors,
            "cache_hits": hits,
        }

    def _emit(self, rid: list[str], rows: list[dict[str, Any]], version: str,
              preds: list[Any], proba: list[Any] | None, latency_ms: float,
              error: str | None, cache_hit: bool, key: str | None, shadow: bool) -> None:
        self.records.extend(PredictionRecord.batch_dicts(
            rid, self.name, version, rows, preds, proba, latency_ms, error, cache_hit, key,
            time.time(), shadow, features_clean=True,  # validated rows: already JSON-safe
        ))

    async def _shadow(self, state: _State, rows: list[dict[str, Any]], rid: list[str],
                      key: str | None) -> None:
        for version in shadow_versions(state.table):
            live = state.live.get(version)
            if live is None or not live.breaker.allow():
                continue
            t0 = time.perf_counter()
            result = await self._call_version(live, rows)
            ms = (time.perf_counter() - t0) * 1e3
            if isinstance(result, _Failure):
                self._emit(rid, rows, version, [None] * len(rows), None, ms, result.message,
                           False, key, True)
            else:
                self._emit(rid, rows, version, result[0], result[1], ms, None, False, key, True)

    async def predict_rows(self, rows: list[dict[str, Any]], key: str | None,
                           request_id: str | None = None) -> dict[str, Any]:
        """Route, answer and record one validated request (the core of every predict route)."""
        t0 = time.perf_counter()
        state = self._state
        base = request_id or uuid.uuid4().hex
        rid = [base] if len(rows) == 1 else [f"{base}-{i}" for i in range(len(rows))]
        out = await self._answer(state, rows, key)
        ms = (time.perf_counter() - t0) * 1e3
        version = out["version"]
        self.metrics.request(version, len(rows), ms)
        if version != out["chosen"]:
            self.metrics.fallback(out["chosen"], len(rows))
        err = "; ".join(f"v{v}: {m}" for v, m in out["errors"]) or None
        self._emit(rid, rows, version, out["predictions"], out["proba"], ms, err,
                   out["cache_hits"] == len(rows), key, False)
        if shadow_versions(state.table):
            task = asyncio.get_running_loop().create_task(self._shadow(state, rows, rid, key))
            self._shadow_tasks.add(task)  # keep a reference until done (asyncio holds weak ones)
            task.add_done_callback(self._shadow_tasks.discard)
        out.update(request_id=base, request_ids=rid, latency_ms=ms)
        return out

    # ------------------------------------------------------------------ admin

    def _authorise(self, request: Request) -> Response | None:
        if self._token_sha is None:
            return _error(403, f"admin routes are disabled: no admin token configured "
                               f"(set the environment variable {self.scfg.admin_token_env!r})")
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "Authorization: missing bearer token")
        if not hmac.compare_digest(hash_token(token.strip()), self._token_sha):
            return _error(401, "Authorization: invalid bearer token")
        return None

    def _local_command(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply an admin action without a controller: registry aliases + the table file."""
        with self._lock:
            cur = self._state.table
            nxt = cur.table_version + 1
            preloaded: dict[str, _Live] = {}
            if action in ("pause", "resume"):
                table = RoutingTable(self.name, nxt, cur.mode, cur.arms, cur.fallback,
                                     paused=action == "pause")
            elif action == "set_weights":
                table = self._weights_table(cur, payload, nxt)
            elif action == "promote":
                version = str(payload.get("version", "")).strip()
                if not version:
                    raise RequestError(422, "version: required for promote")
                # Load (and verify) before touching the registry: never promote what
                # cannot be served.
                preloaded = {version: self._load(version, dict(self._state.live))}
                self.registry.promote(self.name, version)
                old = cur.champion
                fb = old if old != version else cur.fallback
                arms = [Arm(version, 1.0, "champion")]
                table = RoutingTable(self.name, nxt, cur.mode, tuple(arms), fb, cur.paused)
            elif action == "rollback":
                target = self.registry.champion_history(self.name)[:-1]
                if target:  # verify the version rollback will return to before moving aliases
                    preloaded = {target[-1]: self._load(target[-1], dict(self._state.live))}
                mv = self.registry.rollback(self.name)
                prev = self.registry.alias(self.name, "previous")
                fb = prev.version if prev is not None and prev.version != mv.version else None
                table = RoutingTable(self.name, nxt, cur.mode,
                                     (Arm(mv.version, 1.0, "champion"),), fb, cur.paused)
            elif action == "retrain":
                raise RequestError(409, "retrain: needs the controller actor "
                                        f"{CONTROLLER_ACTOR!r}, which is not running")
            else:  # pragma: no cover - checked by the route
                raise RequestError(404, f"action: unknown {action!r}")
            new = self._build_state(table, "admin", self._state, preloaded)
            self._write_table_file(table)
            self._state = new
            return {"applied": action, "by": "endpoint", "table": table.to_dict()}

    def _weights_table(self, cur: RoutingTable, payload: dict[str, Any], nxt: int
                       ) -> RoutingTable:
        weights = payload.get("weights")
        if not isinstance(weights, dict) or not weights:
            raise RequestError(422, "weights: required, an object of version -> weight")
        try:
            w = {str(k): float(v) for k, v in weights.items()}
        except (TypeError, ValueError):
            raise RequestError(422, "weights: every weight must be a number") from None
        mode = payload.get("mode", cur.mode)
        champion = str(payload.get("champion", cur.champion))
        if champion not in w:
            w[champion] = 0.0
        arms = [Arm(champion, w[champion], "champion")]
        arms += [Arm(v, x, "challenger") for v, x in w.items() if v != champion]
        fallback = payload.get("fallback", cur.fallback)
        fallback = None if fallback is None else str(fallback)
        if fallback in w:
            fallback = cur.fallback if cur.fallback not in w else None
        try:
            return RoutingTable(self.name, nxt, mode, tuple(arms), fallback, cur.paused)
        except (ValueError, TypeError) as exc:
            raise RequestError(422, f"weights: {exc}") from None

    async def admin(self, name: str, action: str, request: Request) -> Response:
        denied = self._authorise(request)  # before anything else: no probing without a token
        if denied is not None:
            return denied
        self._check_name(name)
        if action not in ADMIN_ACTIONS:
            return _error(404, f"action: unknown {action!r}; one of {list(ADMIN_ACTIONS)}")
        body = await request.body()
        try:
            payload = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            return _error(400, "body: not valid JSON")
        if not isinstance(payload, dict):
            return _error(422, "body: must be a JSON object")
        handle = self._controller()
        if handle is not None:
            try:
                result = await handle.command.remote(self.name, action, payload)
            except Exception as exc:  # noqa: BLE001 - refusal or failure of the controller
                return _error(409, f"controller refused {action}: {type(exc).__name__}: {exc}")
            return _json({"applied": action, "by": "controller", "result": result})
        try:
            result = await asyncio.to_thread(self._local_command, action, payload)
        except RequestError as exc:
            return _error(exc.status, exc.message)
        except AutopilotError as exc:  # VersionNotFound, IntegrityError, TransitionError...
            status = 404 if type(exc).__name__ == "VersionNotFound" else 409
            return _error(status, f"{action}: {type(exc).__name__}: {exc}")
        return _json(result)

    # ------------------------------------------------------------------ views

    def describe(self) -> dict[str, Any]:
        state = self._state
        t = state.table
        versions = {}
        for v, live in state.live.items():
            snap = live.breaker.snapshot()
            role = next((a.role for a in t.arms if a.version == v), "fallback")
            versions[v] = {
                "role": role,
                "weight": t.weights().get(v, 0.0),
                "breaker": snap.state,
                "breaker_trips": snap.trips,
                "task": live.schema.task,
                "classes": live.classes,
            }
        rec, lab = self.records.stats(), self.labels.stats()
        self.metrics.dropped(rec.dropped + lab.dropped)
        return {
            "model": self.name,
            "table": t.to_dict(),
            "table_source": state.source,
            "mode": t.mode,
            "paused": t.paused,
            "champion": t.champion,
            "versions": versions,
            "features": [{"name": c.name, "kind": c.kind, "nullable": c.nullable}
                         for c in state.parser.schema.columns],
            "cache": None if self.cache is None else {
                **self.cache.stats().__dict__, "hit_rate": self.cache.stats().hit_rate},
            "records": rec.__dict__,
            "labels": lab.__dict__,
            "controller": self._controller_seen,
            "last_error": self._last_error,
            "healthy": all(live.breaker.state == "closed" for live in state.live.values()),
            "uptime_s": time.time() - self._started,
        }

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        try:
            # Lenient second try: Python's parser reads NaN/Infinity, so the caller learns
            # which field held one (a 422 naming it) instead of a bare "not JSON".
            return json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise RequestError(400, "body: not valid JSON") from None

    def _check_name(self, name: str) -> None:
        if name != self.name:
            raise RequestError(404, f"model: unknown {name!r}; this endpoint serves {self.name!r}")



# ------------------------------------------------------------------------ routes


def _body_doc(component: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{component}"}}}}}


def build_fastapi(ep: AutopilotEndpoint) -> FastAPI:
    """The HTTP routes of one endpoint (built in the replica, after the models load).

    Built per replica rather than at import time so ``/docs`` shows the
    champion's real features, and so unit tests can drive the routes with
    Starlette's ``TestClient`` without Ray.
    """
    app = FastAPI(
        title=f"Autopilot: {ep.name}",
        description="Predictions from the live versions of an Autopilot-managed model, "
        "with sticky weighted routing, shadowing, caching and circuit breaking. Admin "
        "routes need `Authorization: Bearer <token>`.",
        version="1",
    )

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> Response:
        return _error(exc.status, exc.message)

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "ok", "model": ep.name, "champion": ep._state.table.champion})

    @app.get("/v1/models/{name}")
    async def model_info(name: str) -> Response:
        ep._check_name(name)
        return _json(ep.describe())

    @app.post("/v1/models/{name}/predict", openapi_extra=_body_doc("PredictRequest"))
    async def predict(name: str, request: Request) -> Response:
        ep._check_name(name)
        parsed = ep._state.parser.predict(await ep._body(request))
        key = parsed.key or request.headers.get("x-user-id")
        out = await ep.predict_rows(parsed.rows, key)
        resp: dict[str, Any] = {
            "model": ep.name,
            "version": out["version"],
            "routed_to": out["chosen"],
            "request_id": out["request_id"],
            "request_ids": out["request_ids"],
            "predictions": out["predictions"],
            "cache_hits": out["cache_hits"],
        }
        if out["proba"] is not None:
            resp["probabilities"] = out["proba"]
            resp["classes"] = out["classes"]
        return _json(resp)

    @app.post("/v1/models/{name}/feedback", openapi_extra=_body_doc("FeedbackRequest"),
              status_code=202)
    async def feedback(name: str, request: Request) -> Response:
        ep._check_name(name)
        items = ep._state.parser.feedback(await ep._body(request))
        ts = time.time()
        accepted = sum(ep.labels.add(Label(rid, ep.name, lab, ts).to_dict())
                       for rid, lab in items)
        return _json({"accepted": accepted, "dropped": len(items) - accepted}, 202)

    @app.get("/v2/health/ready")
    async def v2_ready() -> Response:
        return _json({"ready": True})

    @app.get("/v2/health/live")
    async def v2_live() -> Response:
        return _json({"live": True})

    @app.get("/v2/models/{name}")
    async def v2_metadata(name: str) -> Response:
        ep._check_name(name)
        state = ep._state
        inputs = [{"name": c.name, "datatype": "FP64" if c.kind == "numeric" else "BYTES",
                   "shape": [-1]} for c in state.parser.schema.columns]
        outputs = [{"name": "predict", "datatype": "BYTES", "shape": [-1]}]
        if state.live[state.table.champion].classes is not None:
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]})
        return _json({"name": ep.name, "versions": list(state.live),
                      "platform": "autopilot-sklearn", "inputs": inputs, "outputs": outputs})

    @app.post("/v2/models/{name}/infer", openapi_extra=_body_doc("V2InferenceRequest"))
    async def v2_infer(name: str, request: Request) -> Response:
        ep._check_name(name)
        parsed = ep._state.parser.v2(await ep._body(request))
        key = parsed.key or request.headers.get("x-user-id")
        out = await ep.predict_rows(parsed.rows, key, parsed.request_id)
        preds = out["predictions"]
        n = len(preds)
        numeric = all(isinstance(p, int | float) and not isinstance(p, bool) for p in preds)
        outputs = [{"name": "predict", "shape": [n],
                    "datatype": "FP64" if numeric else "BYTES", "data": preds}]
        if out["proba"] is not None:
            k = len(out["classes"])
            outputs.append({"name": "predict_proba", "shape": [n, k], "datatype": "FP64",
                            "data": [p for row in out["proba"] for p in row],
                            "parameters": {"classes": [str(c) for c in out["classes"]]}})
        return _json({"model_name": ep.name, "model_version": out["version"],
                      "id": out["request_id"], "outputs": outputs,
                      "parameters": {"request_ids": out["request_ids"]}})

    @app.post("/v1/models/{name}/admin/{action}")
    async def admin(name: str, action: str, request: Request) -> Response:
        return await ep.admin(name, action, request)

    parser = ep._state.parser

    def openapi() -> dict[str, Any]:
        # Document the bodies with the champion's real features (the routes parse
        # them by hand, so FastAPI cannot see the models on its own).
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (parser.predict_model, FeedbackRequest, V2Request):
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                comps.update(js.pop("$defs", {}))
                comps[model.__name__] = js
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


@serve.ingress()
class AutopilotIngress(AutopilotEndpoint):
    """The Serve ingress: :class:`AutopilotEndpoint` plus its FastAPI app, built per replica."""

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_fastapi(self)
