"""Each model in a shared monitor keeps its own window size, through a restart and from a
store written before models had one."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from autopilot.monitor import MonitorStore


def _rec(i: int) -> dict[str, Any]:
    return {"request_id": f"r{i}", "model": "m", "version": "1", "features": {"x": 0.0},
            "prediction": 1, "proba": None, "latency_ms": 5.0, "error": None,
            "cache_hit": False, "caller_key": f"u{i}", "ts": 1000.0 + i, "shadow": False}


def test_each_model_keeps_its_own_window_and_a_restart_remembers_it(tmp_path: Path) -> None:
    # two models in one monitor (one `up` with two configs), each with its monitor.window_rows
    store = MonitorStore(tmp_path / "mon.db", window_rows=5000)
    store.configure("m", task="classification", classes=[0, 1], target="y", window_rows=300)
    store.configure("n", task="classification", classes=[0, 1], target="y")
    store.ingest([_rec(i) for i in range(1000)])
    store.ingest([{**_rec(i), "model": "n", "request_id": f"n{i}"} for i in range(1000)])
    assert len(store._rows("m", "1")) == 300 and len(store._rows("n", "1")) == 1000
    store.configure("m", task="classification", classes=[0, 1], target="y", window_rows=100)
    assert len(store._rows("m", "1")) == 100  # shrunk at once, oldest rows dropped
    assert store._rows("m", "1")[-1].request_id == "r999"
    store.close()
    again = MonitorStore(tmp_path / "mon.db", window_rows=5000)
    assert len(again._rows("m", "1")) == 100 and len(again._rows("n", "1")) == 1000
    with pytest.raises(ValueError, match="window_rows must be >= 1"):
        again.configure("m", window_rows=0)


def test_a_store_from_before_per_model_windows_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE models (model TEXT PRIMARY KEY, task TEXT, classes TEXT NOT NULL,"
                 " target TEXT NOT NULL)")
    conn.execute("INSERT INTO models VALUES ('m', 'classification', '[\"0\", \"1\"]', 'y')")
    conn.commit()
    conn.close()
    store = MonitorStore(path, window_rows=50)
    store.ingest([_rec(i) for i in range(80)])
    assert len(store._rows("m", "1")) == 50  # no window of its own: the store's default
    assert store._models["m"].target == "y"
