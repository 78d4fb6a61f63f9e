"""Prediction records, labels, and the off-path buffer."""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from autopilot.records import Label, PredictionRecord, RecordBuffer


def _rec(i: int) -> dict:
    return PredictionRecord(
        f"r{i}", "m", "1", {"x": float(i)}, 1, [0.3, 0.7], 1.0, None, False, None, 1.0
    ).to_dict()


def test_round_trip_and_json_safety() -> None:
    r = PredictionRecord("r", "m", "2", {"x": np.float64(1.5), "n": np.int64(3), "z": math.nan},
                         np.int64(1), [0.5, 0.5], 2.0, None, True, "k", 5.0, shadow=True)
    d = r.to_dict()
    assert d["features"] == {"x": 1.5, "n": 3, "z": None}
    assert type(d["prediction"]) is int
    back = PredictionRecord.from_dict(d)
    assert back.shadow and back.cache_hit and back.version == "2"
    lab = Label("r", "m", "yes", 3.0)
    assert Label.from_dict(lab.to_dict()) == lab


def test_all_delivered_in_batches() -> None:
    batches: list[list[dict]] = []
    buf = RecordBuffer(batches.append, batch_size=10, flush_s=0.01)
    for i in range(35):
        assert buf.add(_rec(i))
    assert buf.flush(5.0)
    buf.close()
    assert sum(len(b) for b in batches) == 35
    assert max(len(b) for b in batches) <= 10
    s = buf.stats()
    assert (s.accepted, s.delivered, s.dropped, s.pending) == (35, 35, 0, 0)


def test_slow_sink_does_not_block_add() -> None:
    gate = threading.Event()
    got: list[dict] = []

    def slow(batch: list[dict]) -> None:
        gate.wait(5.0)
        got.extend(batch)

    buf = RecordBuffer(slow, batch_size=1, flush_s=0.01)
    t0 = time.perf_counter()
    for i in range(200):
        buf.add(_rec(i))
    elapsed = time.perf_counter() - t0
    gate.set()
    buf.close()
    assert len(got) == 200
    assert elapsed < 4.0  # would be >= 5 s if add waited on the sink


def test_failing_sink_goes_to_fallback_or_is_counted() -> None:
    def boom(batch: list[dict]) -> None:
        raise ConnectionError("monitor gone")

    saved: list[dict] = []
    buf = RecordBuffer(boom, batch_size=4, flush_s=0.01, fallback=saved.extend)
    buf.extend([_rec(i) for i in range(9)])
    buf.close()
    s = buf.stats()
    assert len(saved) == 9 and s.fallback_delivered == 9 and s.dropped == 0
    assert s.sink_errors >= 1 and "monitor gone" in (buf.last_error or "")

    buf2 = RecordBuffer(boom, batch_size=4, flush_s=0.01)
    buf2.extend([_rec(i) for i in range(9)])
    buf2.close()
    assert buf2.dropped == 9


def test_full_queue_counts_drops_and_closed_buffer_refuses() -> None:
    gate = threading.Event()
    buf = RecordBuffer(lambda b: gate.wait(5.0), batch_size=1, flush_s=10.0, max_pending=5)
    accepted = sum(buf.add(_rec(i)) for i in range(50))
    assert accepted < 50
    assert buf.dropped == 50 - accepted
    gate.set()
    buf.close()
    assert not buf.add(_rec(99))
    assert buf.dropped == 50 - accepted + 1
