"""The controller's per-tick monitor queries on a large log, with and without the (model, ts) index.

Every tick the controller asks the monitor to test the newest labelled rows for a
change (``MonitorStore.window_change``: the monitor's window, then the retrain
window) and, with a located change, how many labelled rows followed it
(``labelled_rows_since``). Neither names a version, so without an index led by
``(model, ts)`` SQLite reads and sorts every stored row of the model at each tick.

One store of ``--rows`` labelled predictions (three versions, one model) is
queried, in the same run, with the index the schema creates (``predictions_mt``)
and with it dropped (the schema before it: the peer). Best of ``--repeats``.
Prints a table with both times and the ratio and writes
``benchmarks/results/monitor_queries.json``.
Run: ``.venv/bin/python benchmarks/monitor_queries.py [--rows 300000]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from autopilot.monitor import MonitorStore

RESULTS = Path(__file__).resolve().parent / "results" / "monitor_queries.json"


def _fill(store: MonitorStore, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    chunk = 20_000
    for start in range(0, rows, chunk):
        ids = range(start, min(rows, start + chunk))
        store.ingest([{"request_id": f"r{i}", "model": "m", "version": str(1 + 3 * i // rows),
                       "features": {"x": float(i % 7)}, "prediction": 1, "proba": None,
                       "latency_ms": 5.0, "error": None, "cache_hit": False,
                       "caller_key": f"u{i % 1000}", "ts": 1000.0 + i, "shadow": False}
                      for i in ids])
        store.ingest_labels([{"request_id": f"r{i}", "model": "m",
                              "label": int(rng.random() < 0.9), "ts": 2e6 + i} for i in ids])


def _best(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        store = MonitorStore(Path(tmp) / "monitor.db", window_rows=2000)
        store.configure("m", task="classification", classes=[0, 1], target="y")
        t0 = time.perf_counter()
        _fill(store, args.rows)
        fill_s = time.perf_counter() - t0
        since = 1000.0 + args.rows - 5000
        queries: dict[str, Callable[[], Any]] = {
            "window_change (2,000 rows)": lambda: store.window_change("m", 2000),
            "window_change (20,000 rows)": lambda: store.window_change("m", 20_000),
            "labelled_rows_since (5,000 back)": lambda: store.labelled_rows_since("m", since),
        }
        results = []
        for name, fn in queries.items():
            indexed = _best(fn, args.repeats)
            with store._lock:
                store._conn.execute("DROP INDEX predictions_mt")
            plain = _best(fn, args.repeats)
            with store._lock:
                store._conn.execute("CREATE INDEX predictions_mt ON predictions (model, ts)")
            results.append({"query": name, "indexed_s": indexed, "no_index_s": plain,
                            "speedup": plain / indexed})
        store.close()

    head = f"{'query':<34} {'(model, ts) index':>18} {'no index':>10} {'speed-up':>9}"
    print(f"{args.rows:,} stored labelled rows (filled in {fill_s:.1f} s), "
          f"best of {args.repeats}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['query']:<34} {r['indexed_s'] * 1000:>15.1f} ms {r['no_index_s'] * 1000:>7.1f} "
              f"ms {r['speedup']:>8.1f}x")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": args.rows, "repeats": args.repeats, "fill_s": fill_s,
                               "results": results}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
