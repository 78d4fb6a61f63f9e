"""The decision journal: every decision the controller took, why, and what came of it.

One SQLite file (WAL mode, so readers such as the CLI never block the
controller) holds two tables:

``decisions``
    One row per decision: time, model, action, the reasons, the evidence and
    numbers it was taken on (JSON), and its outcome (``applied``, ``failed: ...``,
    ``skipped``), which may be filled in later when the action completes.
``state``
    Small named JSON documents per model that the controller must find again
    after a restart: the last published routing table and its own model state.
    Keeping them in the same file as the journal means one durable place to
    recover from.

Example
-------
>>> j = Journal(":memory:")
>>> e = j.record("churn", "retrain", reasons=["drift high"], evidence={"share": 0.5})
>>> j.update_outcome(e.id, "applied")
>>> [(x.action, x.outcome) for x in j.query(model="churn")]
[('retrain', 'applied')]
>>> j.save_state("churn", "routing", {"weights": {"1": 1.0}})
>>> j.load_state("churn", "routing")
{'weights': {'1': 1.0}}
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Journal", "JournalEntry", "jsonable"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    model TEXT NOT NULL,
    action TEXT NOT NULL,
    reasons TEXT NOT NULL,
    evidence TEXT NOT NULL,
    numbers TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_model_ts ON decisions (model, ts);
CREATE INDEX IF NOT EXISTS decisions_action ON decisions (action);
CREATE TABLE IF NOT EXISTS state (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (model, key)
);
"""


def jsonable(obj: Any) -> Any:
    """Turn dataclasses, numpy scalars/arrays, enums, paths and sets into plain JSON values.

    Non-finite floats become ``None`` (JSON has no NaN), so a stored document
    always parses back.

    >>> import numpy as np
    >>> jsonable({"a": np.float64(1.5), "b": (1, 2), "c": float("nan")})
    {'a': 1.5, 'b': [1, 2], 'c': None}
    """
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [jsonable(v) for v in items]
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return jsonable(obj.to_dict())
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy scalars and arrays
        return jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):
        return jsonable(obj.item())
    return str(obj)


@dataclass(frozen=True)
class JournalEntry:
    """One journalled decision."""

    id: int
    ts: float
    model: str
    action: str
    reasons: tuple[str, ...]
    evidence: dict[str, Any]
    numbers: dict[str, Any]
    outcome: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "model": self.model,
            "action": self.action,
            "reasons": list(self.reasons),
            "evidence": self.evidence,
            "numbers": self.numbers,
            "outcome": self.outcome,
        }


class Journal:
    """Durable, queryable journal of decisions plus the controller's recovery state.

    Parameters
    ----------
    path
        SQLite file (its folder is created), or ``":memory:"`` for tests.

    Notes
    -----
    One connection guarded by a lock: the controller writes from its tick
    loop and from command calls, which Ray may run on different threads.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process crashes in WAL mode (only an OS crash can lose
        # the last commits), which is what a restartable actor needs.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._conn.commit()

    # ------------------------------------------------------------------ decisions

    def record(
        self,
        model: str,
        action: str,
        *,
        reasons: Iterable[str] = (),
        evidence: Any = None,
        numbers: Any = None,
        outcome: str = "pending",
        ts: float | None = None,
    ) -> JournalEntry:
        """Append a decision and return it with its id."""
        if not model:
            raise ValueError("journal entry needs a model name, got an empty string")
        if not action:
            raise ValueError(f"journal entry for model {model!r} needs an action")
        ts = time.time() if ts is None else float(ts)
        reasons_t = tuple(str(r) for r in reasons)
        ev = jsonable(evidence) if evidence is not None else {}
        nums = jsonable(numbers) if numbers is not None else {}
        if not isinstance(ev, dict):
            ev = {"value": ev}
        if not isinstance(nums, dict):
            nums = {"value": nums}
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO decisions (ts, model, action, reasons, evidence, numbers, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ts, model, action, json.dumps(list(reasons_t)), json.dumps(ev),
                 json.dumps(nums), outcome),
            )
            self._conn.commit()
            row_id = int(cur.lastrowid or 0)
        return JournalEntry(row_id, ts, model, action, reasons_t, ev, nums, outcome)

    def update_outcome(self, entry_id: int, outcome: str) -> None:
        """Set the outcome of an earlier entry (e.g. a retrain that finished)."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE decisions SET outcome = ? WHERE id = ?", (outcome, int(entry_id))
            )
            self._conn.commit()
        if cur.rowcount == 0:
            raise KeyError(f"no journal entry with id {entry_id}")

    def query(
        self,
        *,
        model: str | None = None,
        action: str | Iterable[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[JournalEntry]:
        """Entries matching every given filter, oldest first unless ``newest_first``.

        ``limit`` keeps the newest ``limit`` matches (still returned in the
        requested order).
        """
        clauses: list[str] = []
        params: list[Any] = []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if action is not None:
            actions = [action] if isinstance(action, str) else list(action)
            clauses.append(f"action IN ({','.join('?' * len(actions))})")
            params.extend(actions)
        if since is not None:
            clauses.append("ts >= ?")
            params.append(float(since))
        if until is not None:
            clauses.append("ts <= ?")
            params.append(float(until))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM decisions {where} ORDER BY id DESC"
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        entries = [self._entry(r) for r in rows]
        return entries if newest_first else entries[::-1]

    def count(self, model: str | None = None) -> int:
        with self._lock:
            if model is None:
                return int(self._conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])
            return int(
                self._conn.execute(
                    "SELECT COUNT(*) FROM decisions WHERE model = ?", (model,)
                ).fetchone()[0]
            )

    def last(self, model: str, action: str | Iterable[str] | None = None) -> JournalEntry | None:
        """The newest entry for ``model`` (optionally of the given action(s))."""
        found = self.query(model=model, action=action, limit=1)
        return found[0] if found else None

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> JournalEntry:
        rid, ts, model, action, reasons, evidence, numbers, outcome = row
        return JournalEntry(
            int(rid), float(ts), model, action, tuple(json.loads(reasons)),
            json.loads(evidence), json.loads(numbers), outcome,
        )

    # ---------------------------------------------------------------------- state

    def save_state(self, model: str, key: str, value: Any) -> None:
        """Durably store a named JSON document for ``model`` (replacing the previous one)."""
        doc = json.dumps(jsonable(value))
        with self._lock:
            self._conn.execute(
                "INSERT INTO state (model, key, value, ts) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (model, key) DO UPDATE SET value = excluded.value, ts = excluded.ts",
                (model, key, doc, time.time()),
            )
            self._conn.commit()

    def load_state(self, model: str, key: str) -> Any | None:
        """The document saved under ``(model, key)``, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM state WHERE model = ? AND key = ?", (model, key)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def models(self) -> list[str]:
        """Every model that has journal entries or saved state."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT model FROM decisions UNION SELECT model FROM state ORDER BY model"
            ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
