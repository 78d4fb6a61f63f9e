"""MonitorStore: durable ingest, label joins, windows and the questions the controller asks."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autopilot.monitor import MonitorStore


class _CountingDetector:
    """Fires once it has seen ``after`` errors (x == 1) in a row."""

    def __init__(self, after: int = 5) -> None:
        self.after = after
        self.run = 0

    def update(self, x: float) -> bool:
        self.run = self.run + 1 if x >= 1 else 0
        return self.run >= self.after


def _dets() -> dict[str, Any]:
    return {"streak": _CountingDetector()}


def _rec(i: int, version: str = "1", *, model: str = "m", pred: Any = 1, error: str | None = None,
         shadow: bool = False, latency: float = 5.0, x: float | None = None,
         proba: list[float] | None = None, ts: float | None = None) -> dict[str, Any]:
    return {
        "request_id": f"r{i}", "model": model, "version": version,
        "features": {"x": float(i) if x is None else x, "c": "a" if i % 2 else "b"},
        "prediction": pred, "proba": proba, "latency_ms": latency, "error": error,
        "cache_hit": False, "caller_key": f"u{i}", "ts": 1000.0 + i if ts is None else ts,
        "shadow": shadow,
    }


def _lab(i: int, label: Any, model: str = "m") -> dict[str, Any]:
    return {"request_id": f"r{i}", "model": model, "label": label, "ts": 2000.0 + i}


@pytest.fixture()
def store(tmp_path: Path) -> MonitorStore:
    s = MonitorStore(tmp_path / "mon.db", window_rows=100, detector_factory=_dets)
    s.configure("m", task="classification", classes=[0, 1], target="y")
    return s


def test_ingest_acknowledges_and_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "mon.db"
    s = MonitorStore(path, window_rows=50, detector_factory=_dets)
    s.configure("m", task="classification", classes=[0, 1], target="y")
    assert s.ingest([_rec(i) for i in range(30)]) == 30
    assert s.ingest_labels([_lab(i, 1) for i in range(10)]) == 10
    # simulate a crash: no close(); a new store opens the same file
    again = MonitorStore(path, window_rows=50, detector_factory=_dets)
    assert again.count("m") == 30
    assert again.performance("m", "1")["n_labels"] == 10
    assert again.performance("m", "1")["accuracy"] == 1.0
    assert len(again.feature_frame("m", "1")) == 30
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_retried_batch_not_stored_twice(store: MonitorStore) -> None:
    batch = [_rec(i) for i in range(5)]
    assert store.ingest(batch) == 5
    assert store.ingest(batch) == 5  # acknowledged again, no duplicate rows
    assert store.count("m") == 5


def test_malformed_records_rejected_and_counted(store: MonitorStore) -> None:
    bad = {"request_id": "x", "model": "m"}
    assert store.ingest([bad, _rec(1), {"features": 3}]) == 1
    assert store.rejected == 2
    assert store.ingest_labels([{"model": "m"}, _lab(1, None)]) == 0
    assert store.rejected == 4


def test_label_before_prediction_joins_later(store: MonitorStore) -> None:
    store.ingest_labels([_lab(7, 0)])
    store.ingest([_rec(7, pred=1)])
    perf = store.performance("m", "1")
    assert perf["n_labels"] == 1 and perf["accuracy"] == 0.0
    arm = store.arm_stats("m", "1")
    assert arm["labelled"] == 1 and arm["successes"] == 0.0


def test_served_count_excludes_shadow_and_error_records(store: MonitorStore) -> None:
    store.ingest([_rec(i) for i in range(10)])
    store.ingest([_rec(i, "2", shadow=True) for i in range(10)])
    store.ingest([_rec(100, "3", error="boom"), _rec(100, "1")])  # erroring arm, then fallback
    assert store.count("m") == 22
    assert store.count("m", served_only=True) == 11
    t = store.traffic("m")
    assert t["1"]["served"] == 11 and t["2"]["shadow"] == 10 and t["3"]["errors"] == 1


def test_arm_stats_and_labelled_frame(store: MonitorStore) -> None:
    preds = [1, 1, 0, 0, 1, 1, 1, 0]
    truth = [1, 0, 0, 0, 1, 1, 0, 0]
    store.ingest([_rec(i, "2", pred=p, latency=float(i + 1)) for i, p in enumerate(preds)])
    store.ingest_labels([_lab(i, y) for i, y in enumerate(truth)])
    arm = store.arm_stats("m", "2")
    assert arm["requests"] == 8 and arm["labelled"] == 8
    assert arm["successes"] == sum(int(p == y) for p, y in zip(preds, truth, strict=True))
    assert arm["p95_latency_ms"] == 7.0  # floor(0.95 * 7) = 6 -> 7th smallest
    assert store.arm_stats("m", "2", since=1004.0)["requests"] == 4
    frame = store.labelled_frame("m")
    assert list(frame["y"]) == truth
    assert list(frame["x"]) == [float(i) for i in range(8)]
    assert len(store.labelled_frame("m", since=1006.0)) == 2
    assert len(store.labelled_frame("m", limit=3)) == 3
    assert list(store.labelled_frame("m", limit=3)["_request_id"]) == ["r5", "r6", "r7"]


def test_labelled_frame_one_row_per_request(store: MonitorStore) -> None:
    store.ingest([_rec(1, "1"), _rec(1, "2", shadow=True), _rec(2, "3", error="x"), _rec(2, "1")])
    store.ingest_labels([_lab(1, 1), _lab(2, 0)])
    frame = store.labelled_frame("m")
    assert sorted(frame["_request_id"]) == ["r1", "r2"]


def test_performance_metrics_match_sklearn(store: MonitorStore) -> None:
    from sklearn.metrics import accuracy_score, roc_auc_score

    rng = np.random.default_rng(0)
    p1 = rng.uniform(size=60)
    preds = (p1 > 0.5).astype(int)
    truth = (rng.uniform(size=60) < p1).astype(int)
    store.ingest([_rec(i, pred=int(preds[i]), proba=[1 - p1[i], p1[i]]) for i in range(60)])
    store.ingest_labels([_lab(i, int(truth[i])) for i in range(60)])
    perf = store.performance("m", "1")
    assert perf["accuracy"] == pytest.approx(accuracy_score(truth, preds))
    assert perf["roc_auc"] == pytest.approx(roc_auc_score(truth, p1))
    assert "log_loss" in perf


def test_cbpe_estimate_from_probabilities(store: MonitorStore) -> None:
    store.ingest([_rec(i, proba=[0.2, 0.8]) for i in range(10)])
    store.ingest([_rec(i, proba=[0.4, 0.6]) for i in range(10, 20)])
    est = store.estimated_accuracy("m", "1")
    assert est["estimated_accuracy"] == pytest.approx(0.7)
    store.ingest_labels([_lab(i, 1) for i in range(10)])
    # only the unlabelled rows are estimated
    assert store.estimated_accuracy("m", "1")["estimated_accuracy"] == pytest.approx(0.6)


def test_regression_scores_and_metrics(tmp_path: Path) -> None:
    s = MonitorStore(tmp_path / "r.db", detector_factory=_dets)
    s.configure("r", task="regression", target="price")
    s.ingest([_rec(i, model="r", pred=float(i)) for i in range(5)])
    s.ingest_labels([_lab(i, float(i) + 1.0, model="r") for i in range(5)])
    perf = s.performance("r", "1")
    assert perf["mae"] == pytest.approx(1.0) and perf["rmse"] == pytest.approx(1.0)
    arm = s.arm_stats("r", "1")
    assert arm["successes"] == pytest.approx(-5.0) and arm["score_sumsq"] == pytest.approx(5.0)
    assert s.prediction_distribution("r", "1")["quantiles"]["p50"] == 2.0


def test_detectors_fire_on_error_stream(store: MonitorStore) -> None:
    store.ingest([_rec(i, pred=1) for i in range(20)])
    store.ingest_labels([_lab(i, 1) for i in range(10)])
    assert store.detectors("m", "1").fired == ()
    store.ingest_labels([_lab(i, 0) for i in range(10, 20)])
    det = store.detectors("m", "1")
    assert det.fired == ("streak",) and det.first_at["streak"] == 15 and det.n == 20
    store.reset_detectors("m")
    assert store.detectors("m", "1").fired == ()


def test_window_is_bounded(store: MonitorStore) -> None:
    store.ingest([_rec(i) for i in range(250)])
    assert len(store.feature_frame("m", "1")) == 100
    assert store.count("m") == 250
    # labels for rows that left the window still join in SQLite
    store.ingest_labels([_lab(0, 1)])
    assert store.arm_stats("m", "1")["labelled"] == 1


def test_series_buckets(store: MonitorStore) -> None:
    recs = [_rec(i, latency=10.0, ts=float(i)) for i in range(50)]
    recs += [_rec(100 + i, latency=100.0, ts=60.0 + i, error="x" if i < 20 else None)
             for i in range(50)]
    store.ingest(recs)
    pts = store.series("m", "1", bucket_s=60.0)
    assert [p.requests for p in pts] == [50, 50]
    assert [p.errors for p in pts] == [0, 20] and pts[1].error_rate == 0.4
    assert pts[0].p95_latency_ms == 10.0 and pts[1].p50_latency_ms == 100.0
    assert len(store.series("m", "1", bucket_s=60.0, since=60.0)) == 1


def test_drift_report_uses_reference(store: MonitorStore) -> None:
    seen: list[int] = []

    class _Profile:
        def compare(self, frame: Any) -> dict[str, Any]:
            seen.append(len(frame))
            return {"rows": len(frame), "mean_x": float(frame["x"].mean())}

    assert store.drift_report("m", "1") is None  # no reference yet
    store.set_reference("m", "1", _Profile())
    store.ingest([_rec(i, x=5.0) for i in range(10)])
    assert store.drift_report("m", "1", min_rows=20) is None
    assert store.drift_report("m", "1") == {"rows": 10, "mean_x": 5.0}


def test_configure_validates_task(store: MonitorStore) -> None:
    with pytest.raises(ValueError, match="'ranking'"):
        store.configure("m", task="ranking")
    with pytest.raises(ValueError, match="window_rows"):
        MonitorStore(":memory:", window_rows=0)


def test_anomalies_flag_latency_spike(store: MonitorStore) -> None:
    rng = np.random.default_rng(4)
    recs = []
    for b in range(12):
        lat = 500.0 if b == 9 else 10.0
        recs += [_rec(b * 100 + i, latency=lat + float(rng.normal(0, 1)), ts=b * 60.0 + i)
                 for i in range(8)]
    store.ingest(recs)
    out = store.anomalies("m", "1", bucket_s=60.0)
    assert out["latency"] == [540.0]
    assert out["error_rate"] == []


def test_answer_after_failures_is_split_per_version(store: MonitorStore) -> None:
    # The endpoint's shape: the fallback (v1) answered after v3 and v2 failed.
    rec = _rec(1, "1", pred=1, error="v3: ValueError: boom; v2: timeout")
    assert store.ingest([rec]) == 1
    t = store.traffic("m")
    assert t["1"] == {"served": 1, "shadow": 0, "errors": 0}
    assert t["3"]["errors"] == 1 and t["2"]["errors"] == 1
    assert store.arm_stats("m", "3")["errors"] == 1
    assert store.count("m", served_only=True) == 1
    assert store.ingest([rec]) == 1 and store.count("m") == 3  # a retry adds nothing
    odd = _rec(2, "1", pred=1, error="something odd")
    store.ingest([odd])
    assert store.traffic("m")["1"]["errors"] == 1


def test_replay_spooled_jsonl_once(store: MonitorStore, tmp_path: Path) -> None:
    import json

    folder = tmp_path / "records"
    folder.mkdir()
    preds = folder / "m-predictions-123.jsonl"
    labs = folder / "m-labels-123.jsonl"
    preds.write_text("".join(json.dumps(_rec(i)) + "\n" for i in range(5)) + '{"half": ')
    labs.write_text(json.dumps(_lab(0, 1)) + "\nnot json\n")
    out = store.replay(folder)
    assert out == {"records": 5, "labels": 1, "bad_lines": 1}
    assert store.count("m") == 5 and store.arm_stats("m", "1")["labelled"] == 1
    assert store.replay(folder) == {"records": 0, "labels": 0, "bad_lines": 0}
    with preds.open("a") as fh:  # the half-written line is finished, one more follows
        fh.write('"x"}\n' + json.dumps(_rec(9)) + "\n")
    assert store.replay(folder)["records"] == 1
    assert store.count("m") == 6
    assert store.rejected == 1  # the finished-but-malformed line
    assert store.replay(tmp_path / "absent") == {"records": 0, "labels": 0, "bad_lines": 0}
